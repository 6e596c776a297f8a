//! Hash-chain verifications asked for over HTTP (`POST /v1/verifications`): one row each, with
//! its progress and the broken links it found, so any instance can answer how it went.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

/// A link that does not hold, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

/// A verification as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Verification {
    pub verification_id: Uuid,
    pub member_id: Option<Uuid>,
    pub status: String,
    pub events_total: i64,
    pub events_checked: i64,
    pub broken_links: Json<Vec<Break>>,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

pub async fn record_start(
    connection: impl PgExecutor<'_>,
    verification_id: Uuid,
    member_id: Option<Uuid>,
    events_total: i64,
    requested_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verifications (verification_id, member_id, status, events_total,
                                    requested_by)
         VALUES ($1, $2, 'running', $3, $4)",
    )
    .bind(verification_id)
    .bind(member_id)
    .bind(events_total)
    .bind(requested_by)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn record_progress(
    connection: impl PgExecutor<'_>,
    verification_id: Uuid,
    events_checked: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE verifications SET events_checked = $2 WHERE verification_id = $1")
        .bind(verification_id)
        .bind(events_checked)
        .execute(connection)
        .await?;
    Ok(())
}

/// The verification's end: what it found, or why it could not finish.
pub async fn record_end(
    connection: impl PgExecutor<'_>,
    verification_id: Uuid,
    outcome: Result<(i64, &[Break]), &str>,
) -> Result<(), sqlx::Error> {
    let (status, checked, broken, error) = match outcome {
        Ok((checked, broken)) => ("succeeded", Some(checked), broken.to_vec(), None),
        Err(error) => ("failed", None, vec![], Some(error)),
    };
    sqlx::query(
        "UPDATE verifications
            SET status = $2, events_checked = COALESCE($3, events_checked), broken_links = $4,
                error = $5, finished_at = now()
          WHERE verification_id = $1",
    )
    .bind(verification_id)
    .bind(status)
    .bind(checked)
    .bind(Json(broken))
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn verification(
    connection: impl PgExecutor<'_>,
    verification_id: Uuid,
) -> Result<Option<Verification>, sqlx::Error> {
    sqlx::query_as(
        "SELECT verification_id, member_id, status, events_total, events_checked, broken_links,
                requested_by, started_at, finished_at, error
           FROM verifications WHERE verification_id = $1",
    )
    .bind(verification_id)
    .fetch_optional(connection)
    .await
}
