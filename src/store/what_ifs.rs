//! What-ifs' records and results (migration 0019): nothing here is read by the ledger's views.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// How long a what-if's results are kept.
pub const KEPT_DAYS: i64 = 7;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WhatIf {
    pub what_if_id: Uuid,
    pub proposed: serde_json::Value,
    pub status: String,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub members_examined: i64,
    pub members_changed: i64,
    pub error: Option<String>,
}

/// One quarter that would change, with the member's number and name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Change {
    pub member_id: Uuid,
    pub member_no: Option<String>,
    pub name: Option<String>,
    pub quarter: String,
    pub org_id: String,
    pub status_now: String,
    pub status_proposed: String,
}

/// Deletes the what-ifs past their time, with their results.
pub async fn sweep(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM what_ifs WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Marks the what-ifs still `running` as failed: called by whoever holds the what-if lock, so
/// none of them is running — their service stopped before they ended.
pub async fn mark_interrupted(connection: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE what_ifs
            SET status = 'failed', finished_at = now(),
                error = 'interrupted: the service running it stopped before it ended'
          WHERE status = 'running'",
    )
    .execute(connection)
    .await?;
    Ok(done.rows_affected())
}

/// Starts a what-if's record.
pub async fn start(
    pool: &PgPool,
    what_if_id: Uuid,
    proposed: &serde_json::Value,
    requested_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO what_ifs (what_if_id, proposed, status, requested_by, expires_at)
         VALUES ($1, $2, 'running', $3, now() + $4 * interval '1 day')",
    )
    .bind(what_if_id)
    .bind(proposed)
    .bind(requested_by)
    .bind(KEPT_DAYS as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Adds a batch of changes and the progress so far.
pub async fn record(
    pool: &PgPool,
    what_if_id: Uuid,
    changes: &[(Uuid, String, String, String, String)],
    examined: i64,
    changed: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !changes.is_empty() {
        let column = |f: fn(&(Uuid, String, String, String, String)) -> String| -> Vec<String> {
            changes.iter().map(f).collect()
        };
        let members: Vec<Uuid> = changes.iter().map(|c| c.0).collect();
        sqlx::query(
            "INSERT INTO what_if_changes
                    (what_if_id, member_id, quarter, org_id, status_now, status_proposed)
             SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])",
        )
        .bind(what_if_id)
        .bind(&members)
        .bind(column(|c| c.1.clone()))
        .bind(column(|c| c.2.clone()))
        .bind(column(|c| c.3.clone()))
        .bind(column(|c| c.4.clone()))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE what_ifs SET members_examined = $2, members_changed = $3 WHERE what_if_id = $1",
    )
    .bind(what_if_id)
    .bind(examined)
    .bind(changed)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Ends a what-if: its counts per organisation, and its outcome.
pub async fn finish(
    pool: &PgPool,
    what_if_id: Uuid,
    orgs: &[(String, i64)],
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<&str> = orgs.iter().map(|(o, _)| o.as_str()).collect();
    let counts: Vec<i64> = orgs.iter().map(|(_, n)| *n).collect();
    sqlx::query(
        "INSERT INTO what_if_orgs (what_if_id, org_id, members)
         SELECT $1, * FROM unnest($2::text[], $3::bigint[])",
    )
    .bind(what_if_id)
    .bind(&ids)
    .bind(&counts)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE what_ifs SET status = $2, error = $3, finished_at = now() WHERE what_if_id = $1",
    )
    .bind(what_if_id)
    .bind(if error.is_some() {
        "failed"
    } else {
        "succeeded"
    })
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn find(
    connection: impl PgExecutor<'_>,
    what_if_id: Uuid,
) -> Result<Option<WhatIf>, sqlx::Error> {
    sqlx::query_as(
        "SELECT what_if_id, proposed, status, requested_by, started_at, finished_at, expires_at,
                members_examined, members_changed, error
           FROM what_ifs WHERE what_if_id = $1 AND expires_at > now()",
    )
    .bind(what_if_id)
    .fetch_optional(connection)
    .await
}

/// The organisations with the most members who would change (up to `limit`), with names.
pub async fn orgs(
    connection: impl PgExecutor<'_>,
    what_if_id: Uuid,
    limit: i64,
) -> Result<Vec<(String, Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.org_id, o.name, w.members FROM what_if_orgs w
           LEFT JOIN org_view o ON o.org_id = w.org_id
          WHERE w.what_if_id = $1 ORDER BY w.members DESC, w.org_id LIMIT $2",
    )
    .bind(what_if_id)
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// A page of changes after `(member, quarter)`, in member and quarter order (one range of the
/// primary key).
pub async fn changes(
    connection: impl PgExecutor<'_>,
    what_if_id: Uuid,
    after: Option<(Uuid, String)>,
    limit: i64,
) -> Result<Vec<Change>, sqlx::Error> {
    const SELECT: &str = "SELECT c.member_id, m.member_no, m.name, c.quarter, c.org_id,
                                 c.status_now, c.status_proposed
                            FROM what_if_changes c
                            LEFT JOIN member_view m ON m.member_id = c.member_id
                           WHERE c.what_if_id = $1";
    match after {
        Some((member, quarter)) => {
            let sql = format!(
                "{SELECT} AND (c.member_id, c.quarter) > ($3, $4)
                 ORDER BY c.member_id, c.quarter LIMIT $2"
            );
            sqlx::query_as(&sql)
                .bind(what_if_id)
                .bind(limit)
                .bind(member)
                .bind(quarter)
                .fetch_all(connection)
                .await
        }
        None => {
            let sql = format!("{SELECT} ORDER BY c.member_id, c.quarter LIMIT $2");
            sqlx::query_as(&sql)
                .bind(what_if_id)
                .bind(limit)
                .fetch_all(connection)
                .await
        }
    }
}
