//! What an operator checks first (`GET /v1/health`): the last replay, the xAPI statements
//! waiting for review by outcome, the imports and their refused rows, the skipped events.
//! Each count reads a small table or one index range of a partial index.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// The replay started last.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastReplay {
    pub replay_id: Uuid,
    pub dry_run: bool,
    pub status: String,
    pub rules_version: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn last_replay(
    connection: impl PgExecutor<'_>,
) -> Result<Option<LastReplay>, sqlx::Error> {
    sqlx::query_as(
        "SELECT replay_id, dry_run, status, rules_version, started_at, finished_at
           FROM replays ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_optional(connection)
    .await
}

/// Statements waiting for review, by outcome (outcomes without any left out).
pub async fn statements_to_review(
    connection: impl PgExecutor<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT outcome, count(*) FROM xapi_mappings
          WHERE outcome IN ('refused', 'unreadable', 'unknown_member', 'unknown_activity')
          GROUP BY outcome ORDER BY outcome",
    )
    .fetch_all(connection)
    .await
}

/// Imports so far: how many, their refused rows in all, and the one started last.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Imports {
    pub imports: i64,
    pub rows_refused: i64,
    pub last_import_id: Option<Uuid>,
    pub last_status: Option<String>,
    pub last_started_at: Option<DateTime<Utc>>,
}

pub async fn imports(connection: impl PgExecutor<'_>) -> Result<Imports, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS imports, coalesce(sum(rows_refused), 0)::bigint AS rows_refused,
                (array_agg(import_id ORDER BY started_at DESC))[1] AS last_import_id,
                (array_agg(status ORDER BY started_at DESC))[1] AS last_status,
                max(started_at) AS last_started_at
           FROM imports",
    )
    .fetch_one(connection)
    .await
}

/// Skipped events: all, and those not set aside.
pub async fn skipped(connection: impl PgExecutor<'_>) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE set_aside_sequence IS NULL) FROM skipped_events",
    )
    .fetch_one(connection)
    .await
}
