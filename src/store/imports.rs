//! The record of bulk imports (`imports`, `import_refusals`; see
//! migrations/0015_imports.sql): progress counted in the transactions that commit the rows.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An import as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ImportRecord {
    pub import_id: Uuid,
    pub format: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_read: i64,
    pub rows_recorded: i64,
    pub rows_unchanged: i64,
    pub rows_refused: i64,
    pub error: Option<String>,
}

/// What a batch did, counted into its import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: i64,
    pub recorded: i64,
    pub unchanged: i64,
    pub refused: i64,
}

/// Starts an import's record; false when one with this id exists already.
pub async fn start(
    pool: &PgPool,
    import_id: Uuid,
    format: &str,
    started_by: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO imports (import_id, format, status, started_by, started_at)
         VALUES ($1, $2, 'running', $3, now()) ON CONFLICT (import_id) DO NOTHING",
    )
    .bind(import_id)
    .bind(format)
    .bind(started_by)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Counts a batch and records its refusals, in the batch's transaction.
pub async fn count(
    tx: &mut PgConnection,
    import_id: Uuid,
    counts: Counts,
    refusals: &[(u64, String)],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE imports SET rows_read = rows_read + $2, rows_recorded = rows_recorded + $3,
                rows_unchanged = rows_unchanged + $4, rows_refused = rows_refused + $5
          WHERE import_id = $1",
    )
    .bind(import_id)
    .bind(counts.read)
    .bind(counts.recorded)
    .bind(counts.unchanged)
    .bind(counts.refused)
    .execute(&mut *tx)
    .await?;
    if refusals.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = refusals
        .iter()
        .map(|(line, _)| i64::try_from(*line).unwrap_or(i64::MAX))
        .collect();
    let reasons: Vec<&str> = refusals.iter().map(|(_, reason)| reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO import_refusals (import_id, line, reason)
         SELECT $1, u.line, u.reason FROM UNNEST($2::bigint[], $3::text[]) AS u(line, reason)
         ON CONFLICT DO NOTHING",
    )
    .bind(import_id)
    .bind(&lines)
    .bind(&reasons)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Ends an import: succeeded, or failed with why.
pub async fn finish(
    pool: &PgPool,
    import_id: Uuid,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE imports SET status = CASE WHEN $2::text IS NULL THEN 'succeeded' ELSE 'failed' END,
                error = $2, finished_at = now()
          WHERE import_id = $1",
    )
    .bind(import_id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, import_id: Uuid) -> Result<Option<ImportRecord>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM imports WHERE import_id = $1")
        .bind(import_id)
        .fetch_optional(pool)
        .await
}

/// A page of an import's refused rows after line `after`, in line order.
pub async fn refusals(
    pool: &PgPool,
    import_id: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT line, reason FROM import_refusals
          WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3",
    )
    .bind(import_id)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
