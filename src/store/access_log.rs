//! The record of who read whose record (`access_log`, append-only): written in batches by the
//! read log (`crate::jobs::read_log`), read by auditors and by members about themselves.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// One read, to be recorded.
#[derive(Debug, Clone)]
pub struct Read {
    pub token_id: String,
    pub role: String,
    pub name: String,
    pub route: String,
    pub request_id: String,
    pub member_ids: Vec<Uuid>,
}

/// Records reads, in one statement whatever their number.
pub async fn record(connection: impl PgExecutor<'_>, reads: &[Read]) -> Result<(), sqlx::Error> {
    let column = |f: fn(&Read) -> &str| reads.iter().map(f).collect::<Vec<_>>();
    // One array literal per read: PostgreSQL has no arrays of arrays of different lengths.
    let members: Vec<String> = reads
        .iter()
        .map(|r| {
            let ids: Vec<String> = r.member_ids.iter().map(Uuid::to_string).collect();
            format!("{{{}}}", ids.join(","))
        })
        .collect();
    sqlx::query(
        "INSERT INTO access_log (token_id, role, name, route, request_id, member_ids)
         SELECT t, r, n, ro, q, m::uuid[]
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                AS u(t, r, n, ro, q, m)",
    )
    .bind(column(|r| &r.token_id))
    .bind(column(|r| &r.role))
    .bind(column(|r| &r.name))
    .bind(column(|r| &r.route))
    .bind(column(|r| &r.request_id))
    .bind(members)
    .execute(connection)
    .await?;
    Ok(())
}

/// A recorded read.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Entry {
    pub entry_id: i64,
    pub read_at: DateTime<Utc>,
    pub token_id: String,
    pub role: String,
    pub name: String,
    pub route: String,
    pub request_id: String,
    pub member_ids: Vec<Uuid>,
}

/// Which reads to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub member_id: Option<Uuid>,
    pub token_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries older than this one (the previous page's last).
    pub before: Option<i64>,
}

/// Recorded reads matching `filter`, newest first, at most `limit`.
pub async fn entries(
    connection: impl PgExecutor<'_>,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT entry_id, read_at, token_id, role, name, route, request_id, member_ids
           FROM access_log
          WHERE ($1::uuid IS NULL OR member_ids @> ARRAY[$1::uuid])
            AND ($2::text IS NULL OR token_id = $2)
            AND ($3::timestamptz IS NULL OR read_at >= $3)
            AND ($4::timestamptz IS NULL OR read_at < $4)
            AND ($5::bigint IS NULL OR entry_id < $5)
          ORDER BY entry_id DESC
          LIMIT $6",
    )
    .bind(filter.member_id)
    .bind(&filter.token_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(filter.before)
    .bind(limit)
    .fetch_all(connection)
    .await
}
