//! How the event store fails, and which failures mean "the database is not there".

use crate::store::connections;
use crate::store::group_commit::AppendError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error("the stream changed while the command was decided")]
    Conflict,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored event or snapshot cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(transparent)]
    Append(AppendError),
}

impl From<AppendError> for StoreError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Conflict => StoreError::Conflict,
            other => StoreError::Append(other),
        }
    }
}

impl StoreError {
    /// Errors that say the database is not there or cannot serve now (it was stopped, is
    /// restarting, refuses connections, ended the session, timed out), as opposed to a bug or
    /// bad data: the request may succeed when sent again.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(error) => connections::is_unavailable(error),
            StoreError::Append(error) => {
                matches!(error, AppendError::Unavailable(_) | AppendError::Unknown)
            }
            StoreError::Conflict | StoreError::Corrupt(_) => false,
        }
    }
}
