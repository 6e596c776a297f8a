//! Reads across many streams at once: a replay's pass over every member in member order,
//! determinations checking who is enrolled, the service's welcome, and the benchmarks' scans
//! and copies. Single streams are read through [`crate::store::event_store`].

use std::collections::HashSet;

use cqrs_es::Aggregate;
use futures::stream::BoxStream;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgExecutor, PgPool};
use studyledger_aggregates::course::Course;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::organisation::Organisation;

use crate::store::skipped::Skip;

/// An event as a pass over many streams reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StreamEvent {
    pub aggregate_id: String,
    pub sequence: i64,
    pub position: i64,
    pub event_type: String,
    pub payload: String,
}

impl StreamEvent {
    /// The event as listed when it is passed over.
    pub fn skip(&self, aggregate_type: &str, why: &dyn std::fmt::Display) -> Skip {
        Skip {
            position: self.position,
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence,
            event_type: self.event_type.clone(),
            reason: Skip::reason_of(why),
        }
    }
}

/// Every member event of a transaction below `horizon` (a transaction id in text form), in
/// member order and sequence order within a member: the primary key's order, one pass, no
/// sort.
pub fn member_events_by_member<'c>(
    connection: &'c mut PgConnection,
    horizon: &'c str,
) -> BoxStream<'c, Result<StreamEvent, sqlx::Error>> {
    sqlx::query_as(
        "SELECT aggregate_id, sequence, position, event_type, payload::text AS payload
           FROM events
          WHERE aggregate_type = $2 AND transaction_id < $1::text::xid8
          ORDER BY aggregate_id, sequence",
    )
    .bind(horizon)
    .bind(Member::TYPE)
    .fetch(connection)
}

/// How many member events lie below `horizon`.
pub async fn count_member_events_below(
    connection: impl PgExecutor<'_>,
    horizon: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_type = $2 AND transaction_id < $1::text::xid8",
    )
    .bind(horizon)
    .bind(Member::TYPE)
    .fetch_one(connection)
    .await
}

/// The organisation events below `horizon`, in commit order (parents first).
pub async fn organisation_events_below(
    connection: impl PgExecutor<'_>,
    horizon: &str,
) -> Result<Vec<StreamEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT aggregate_id, sequence, position, event_type, payload::text AS payload
           FROM events
          WHERE aggregate_type = $2 AND transaction_id < $1::text::xid8
          ORDER BY transaction_id, position",
    )
    .bind(horizon)
    .bind(Organisation::TYPE)
    .fetch_all(connection)
    .await
}

/// Which of these members are enrolled (their stream starts with an enrolment): one indexed
/// statement for the whole list.
pub async fn enrolled_among(
    pool: &PgPool,
    member_ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let enrolled: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE aggregate_type = $1 AND aggregate_id = ANY($2) AND sequence = 1
            AND event_type = $3",
    )
    .bind(Member::TYPE)
    .bind(member_ids)
    .bind(MemberEvent::ENROLLED)
    .fetch_all(pool)
    .await?;
    Ok(enrolled.into_iter().collect())
}

/// The member recorded first, if any (for examples shown to a new user).
pub async fn first_member(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = $1 ORDER BY position LIMIT 1",
    )
    .bind(Member::TYPE)
    .fetch_optional(pool)
    .await
}

/// Course ids after `after`, in order, at most `limit`: the first event of each course
/// stream, one range of the events' primary key.
pub async fn course_ids_after(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE aggregate_type = $1 AND aggregate_id > COALESCE($2, '') AND sequence = 1
          ORDER BY aggregate_id LIMIT $3",
    )
    .bind(Course::TYPE)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One organisation's events: (sequence, payload, recorded at), in order.
pub async fn organisation_stream(
    pool: &PgPool,
    org_id: &str,
) -> Result<Vec<(i64, String, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, payload::text, recorded_at FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(Organisation::TYPE)
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// Whether any member is enrolled.
pub async fn has_members(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1)")
        .bind(Member::TYPE)
        .fetch_one(pool)
        .await
}

/// PostgreSQL's own scan of every event in commit order, read to the end by this process (a
/// benchmark's baseline); answers the bytes read.
pub async fn copy_out_in_commit_order(connection: &mut PgConnection) -> Result<usize, sqlx::Error> {
    let mut stream = connection
        .copy_out_raw(
            "COPY (SELECT transaction_id, position, aggregate_type, aggregate_id, sequence, payload
                     FROM events ORDER BY transaction_id, position) TO STDOUT",
        )
        .await?;
    let mut bytes = 0_usize;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len();
    }
    Ok(bytes)
}

/// PostgreSQL's own scan of every event in member order, written by the server to /dev/null
/// (a benchmark's baseline; needs a superuser).
pub async fn copy_to_null_in_member_order(
    connection: &mut PgConnection,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "COPY (SELECT aggregate_id, sequence, payload FROM events ORDER BY aggregate_id, sequence)
           TO '/dev/null'",
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Member events and the position of the last one.
pub async fn member_events_extent(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(max(position), 0) FROM events WHERE aggregate_type = $1",
    )
    .bind(Member::TYPE)
    .fetch_one(pool)
    .await
}

/// Every member's id: what a benchmark chooses the members it reads from. A member's stream
/// starts with its enrolment (the aggregate accepts nothing else first), so its first event
/// is enough, and the primary key alone answers (an index-only scan of a vacuumed table, not
/// a pass over every payload).
pub async fn member_ids(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND sequence = 1")
        .bind(Member::TYPE)
        .fetch_all(pool)
        .await
}

/// Member events and members.
pub async fn member_census(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = $1",
    )
    .bind(Member::TYPE)
    .fetch_one(pool)
    .await
}

/// Copies the streams of the members recorded up to `last_position` under new member ids
/// derived from the old ones and `copy` (in the payloads too): a benchmark grows a store far
/// faster than the command path could. The copies are appended in the order of the originals,
/// or, `round_by_round`, every stream's first event, then every stream's second, … — so that
/// a member's events lie apart in the table, as a year of real traffic leaves them. Each
/// copied event is hashed into its new stream's chain by the table's trigger, as any append.
pub async fn copy_member_streams(
    pool: &PgPool,
    copy: i64,
    last_position: i64,
    round_by_round: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata, recorded_at)
         SELECT e.aggregate_type, n.id, e.sequence, e.event_type, e.event_version,
                replace(e.payload::text, e.aggregate_id, n.id)::json, e.metadata,
                e.recorded_at
           FROM events e,
                LATERAL (SELECT md5(e.aggregate_id || '/' || $1)::uuid::text AS id) n
          WHERE e.aggregate_type = $3 AND e.position <= $2
          ORDER BY CASE WHEN $4 THEN e.sequence ELSE 0 END, e.position",
    )
    .bind(copy)
    .bind(last_position)
    .bind(Member::TYPE)
    .bind(round_by_round)
    .execute(pool)
    .await?;
    Ok(())
}

/// Fresh statistics for the planner after a bulk load.
pub async fn analyze_events(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("VACUUM ANALYZE events").execute(pool).await?;
    Ok(())
}

/// `bench_events`: a table with the shape, constraints and indexes of `events` and none of its
/// triggers (a benchmark's baseline for PostgreSQL's own insert rate).
pub async fn create_baseline_table(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    sqlx::query("ALTER TABLE bench_events ALTER COLUMN hash DROP NOT NULL")
        .execute(pool)
        .await?;
    Ok(())
}
