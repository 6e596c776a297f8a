//! How the event store fails, and which failures mean "the database is not there".

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
    /// Errors that say the database could not be reached, as opposed to a bug or bad data.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            ) | StoreError::Append(AppendError::Unavailable(_) | AppendError::Unknown)
        )
    }
}
