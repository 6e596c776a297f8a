//! The listing of events the ledger could not apply (`skipped_events`): written by the
//! projector and by replay when they pass over an event, read by auditors, by member reads
//! (their `incomplete` flag) and by determinations (refused while a skip is open).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// An event passed over, to be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub reason: String,
}

impl Skip {
    /// The reason as it can be stored and shown: a parser's words may quote the very text
    /// that could not be held, so control characters go, and the length is bounded.
    pub fn reason_of(error: &dyn std::fmt::Display) -> String {
        error
            .to_string()
            .chars()
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .take(500)
            .collect()
    }
}

/// Lists skipped events (again: a skip already listed stays as it was).
pub async fn record(
    connection: impl PgExecutor<'_>,
    skips: &[Skip],
    skipped_by: &str,
) -> Result<(), sqlx::Error> {
    if skips.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Skip) -> &str| skips.iter().map(f).collect::<Vec<_>>();
    let numbers = |f: fn(&Skip) -> i64| skips.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO skipped_events (position, aggregate_type, aggregate_id, sequence,
                                     event_type, reason, skipped_by)
         SELECT p, t, i, s, e, r, $7
           FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                       $6::text[]) AS u(p, t, i, s, e, r)
         ON CONFLICT DO NOTHING",
    )
    .bind(numbers(|s| s.position))
    .bind(column(|s| &s.aggregate_type))
    .bind(column(|s| &s.aggregate_id))
    .bind(numbers(|s| s.sequence))
    .bind(column(|s| &s.event_type))
    .bind(column(|s| &s.reason))
    .bind(skipped_by)
    .execute(connection)
    .await?;
    Ok(())
}

/// Marks a member's skipped events as set aside by the member's events that did so:
/// (skipped sequence, sequence of the setting-aside event) pairs.
pub async fn set_aside(
    connection: impl PgExecutor<'_>,
    member_id: &str,
    decisions: &[(i64, i64)],
) -> Result<(), sqlx::Error> {
    let (skipped, by): (Vec<i64>, Vec<i64>) = decisions.iter().copied().unzip();
    sqlx::query(
        "UPDATE skipped_events s SET set_aside_sequence = u.by
           FROM UNNEST($2::bigint[], $3::bigint[]) AS u(skipped, by)
          WHERE s.aggregate_type = 'member' AND s.aggregate_id = $1
            AND s.sequence = u.skipped AND s.set_aside_sequence IS NULL",
    )
    .bind(member_id)
    .bind(skipped)
    .bind(by)
    .execute(connection)
    .await?;
    Ok(())
}

/// Skipped member events by member.
pub type SkipMap = HashMap<String, BTreeSet<usize>>;

/// Every skipped member event, set aside or not (the member's own stream says which it set
/// aside), by member: what the projector and replay pass over, and what determinations ask
/// about. The listing is short: events are refused at the door that a later step could not
/// hold.
pub async fn member_skips(connection: impl PgExecutor<'_>) -> Result<SkipMap, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, sequence FROM skipped_events WHERE aggregate_type = 'member'",
    )
    .fetch_all(connection)
    .await?;
    let mut skips: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (member, sequence) in rows {
        let sequence = usize::try_from(sequence).unwrap_or(0);
        skips.entry(member).or_default().insert(sequence);
    }
    Ok(skips)
}

/// The sequences of a member's skipped events, set aside or not.
pub async fn of_member(
    connection: impl PgExecutor<'_>,
    member_id: &str,
) -> Result<Vec<usize>, sqlx::Error> {
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM skipped_events
          WHERE aggregate_type = 'member' AND aggregate_id = $1
          ORDER BY sequence",
    )
    .bind(member_id)
    .fetch_all(connection)
    .await?;
    Ok(sequences
        .into_iter()
        .map(|s| usize::try_from(s).unwrap_or(0))
        .collect())
}

/// The positions of every listed event: what a replay passes over.
pub async fn positions(connection: impl PgExecutor<'_>) -> Result<HashSet<i64>, sqlx::Error> {
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM skipped_events")
        .fetch_all(connection)
        .await?;
    Ok(positions.into_iter().collect())
}

/// Whether a member has a skipped event that is not set aside.
pub async fn is_incomplete(
    connection: impl PgExecutor<'_>,
    member_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM skipped_events
                         WHERE aggregate_id = $1 AND aggregate_type = 'member'
                           AND set_aside_sequence IS NULL)",
    )
    .bind(member_id)
    .fetch_one(connection)
    .await
}

/// A listed skip, as auditors read it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Listed {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub reason: String,
    pub skipped_by: String,
    pub skipped_at: DateTime<Utc>,
    pub set_aside_sequence: Option<i64>,
}

/// A page of the listing in position order, after `after`; only open skips with `open`.
pub async fn list(
    connection: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
    open: bool,
) -> Result<Vec<Listed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, reason,
                skipped_by, skipped_at, set_aside_sequence
           FROM skipped_events
          WHERE position > $1 AND (NOT $3 OR set_aside_sequence IS NULL)
          ORDER BY position
          LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .bind(open)
    .fetch_all(connection)
    .await
}
