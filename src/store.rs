//! The event store behind every aggregate: postgres-es's `events` and `snapshots` tables, with
//! a write path built for round trips.
//!
//! cqrs-es + postgres-es as shipped load the stream and then append in a transaction of one
//! statement per event: three to five round trips a command. Here:
//! - aggregates live in a bounded in-memory cache; a cached aggregate may be stale when another
//!   instance appended, and the append's primary key (type, id, sequence) catches exactly that
//!   — on conflict the caller drops the cached copy, reloads and decides again;
//! - an append is one statement (events from arrays, and, every `snapshot_every` events, the
//!   snapshot upsert in a CTE of the same statement), committed on its own;
//! - a cold load is one statement: the snapshot and the events after it.
//!
//! The tables stay those of postgres-es (plus position, transaction id and recorded time), so
//! its `PostgresEventRepository` reads them too, and `LedgerStore` implements cqrs-es's
//! `EventStore` so it can back a `CqrsFramework` as well as our own command loop.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, DomainEvent, EventEnvelope, EventStore,
};
use lru::LruCache;
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::group_commit::{AppendError, EventRow, GroupCommit};

/// Who recorded an event, when, and in answer to which request.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub actor: String,
    pub request_id: String,
    pub recorded_at: DateTime<Utc>,
}

impl Metadata {
    pub fn system(reason: &str) -> Metadata {
        Metadata {
            actor: "system".to_owned(),
            request_id: reason.to_owned(),
            recorded_at: Utc::now(),
        }
    }

    fn as_map(&self) -> HashMap<String, String> {
        HashMap::from([
            ("actor".to_owned(), self.actor.clone()),
            ("request_id".to_owned(), self.request_id.clone()),
            ("recorded_at".to_owned(), self.recorded_at.to_rfc3339()),
        ])
    }
}

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

impl<T: std::error::Error> From<StoreError> for AggregateError<T> {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => AggregateError::AggregateConflict,
            StoreError::Database(e) => AggregateError::DatabaseConnectionError(Box::new(e)),
            StoreError::Corrupt(e) => AggregateError::DeserializationError(Box::new(e)),
            StoreError::Append(e) => AggregateError::UnexpectedError(Box::new(e)),
        }
    }
}

/// One stored event as an auditor reads it.
#[derive(Debug, Clone)]
pub struct Recorded<E> {
    pub sequence: usize,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: String,
    pub event_version: String,
    pub metadata: serde_json::Value,
    pub payload: serde_json::Value,
    /// The event's link in its stream's hash chain (hex; see migrations/0004_hash_chain.sql).
    pub hash: String,
    pub event: E,
}

/// One appended event: its place in its stream and in the global order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub sequence: usize,
    pub position: i64,
}

/// An aggregate with the stream position it reflects.
#[derive(Debug, Clone)]
pub struct LedgerContext<A> {
    pub aggregate_id: String,
    pub aggregate: A,
    /// Sequence of the last event applied; 0 for a stream without events.
    pub sequence: usize,
    /// Number of the last snapshot written (postgres-es's `current_snapshot`).
    pub snapshot: usize,
}

impl<A: Aggregate> AggregateContext<A> for LedgerContext<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

struct Cached<A> {
    aggregate: A,
    sequence: usize,
    snapshot: usize,
}

pub struct LedgerStore<A> {
    /// For reads.
    pool: PgPool,
    /// For the command path: loads on a cache miss, and appends.
    writer: std::sync::Arc<GroupCommit>,
    cache: Mutex<LruCache<String, Cached<A>>>,
    /// Write a snapshot each time the stream crosses a multiple of this many events (0: never).
    snapshot_every: usize,
    _aggregate: PhantomData<A>,
}

const LOAD: &str = "
WITH snap AS (
    SELECT last_sequence, current_snapshot, payload
      FROM snapshots
     WHERE aggregate_type = $1 AND aggregate_id = $2
)
SELECT 0 AS part, last_sequence AS sequence, current_snapshot, payload::text AS payload FROM snap
UNION ALL
SELECT 1, e.sequence, 0, e.payload::text
  FROM events e
 WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
   AND e.sequence > COALESCE((SELECT last_sequence FROM snap), 0)
ORDER BY part, sequence";

const LOAD_MANY: &str = "
WITH ids AS (SELECT DISTINCT unnest($2::text[]) AS id),
snap AS (
    SELECT s.aggregate_id, s.last_sequence, s.current_snapshot, s.payload
      FROM snapshots s JOIN ids ON s.aggregate_type = $1 AND s.aggregate_id = ids.id
)
SELECT aggregate_id, 0 AS part, last_sequence AS sequence, current_snapshot,
       payload::text AS payload
  FROM snap
UNION ALL
SELECT e.aggregate_id, 1, e.sequence, 0, e.payload::text
  FROM ids
  JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = ids.id
  LEFT JOIN snap ON snap.aggregate_id = ids.id
 WHERE e.sequence > COALESCE(snap.last_sequence, 0)
ORDER BY aggregate_id, part, sequence";

const LOAD_EVENTS_ONLY: &str = "
SELECT 1 AS part, sequence, 0::bigint AS current_snapshot, payload::text AS payload
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";

const APPEND: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, recorded_at)
SELECT $1, $2, u.sequence, u.event_type, u.event_version, u.payload::json, $6::json, $7
  FROM UNNEST($3::bigint[], $4::text[], $5::text[], $8::text[])
       AS u(sequence, event_type, event_version, payload)
RETURNING sequence, position";

const APPEND_WITH_SNAPSHOT: &str = "
WITH appended AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, recorded_at)
    SELECT $1, $2, u.sequence, u.event_type, u.event_version, u.payload::json, $6::json, $7
      FROM UNNEST($3::bigint[], $4::text[], $5::text[], $8::text[])
           AS u(sequence, event_type, event_version, payload)
    RETURNING sequence, position
), snapshot AS (
    INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
    VALUES ($1, $2, $9, $10, $11::json)
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
       SET last_sequence = EXCLUDED.last_sequence,
           current_snapshot = EXCLUDED.current_snapshot,
           payload = EXCLUDED.payload
     WHERE snapshots.last_sequence < EXCLUDED.last_sequence
)
SELECT sequence, position FROM appended";

impl<A> LedgerStore<A>
where
    A: Aggregate + Clone,
{
    pub fn new(
        pool: PgPool,
        writer: std::sync::Arc<GroupCommit>,
        cache_capacity: usize,
        snapshot_every: usize,
    ) -> LedgerStore<A> {
        LedgerStore {
            pool,
            writer,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(cache_capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            snapshot_every,
            _aggregate: PhantomData,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Cached<A>>> {
        // A panic while holding this lock cannot leave the map half-changed (every operation
        // is a single LruCache call), so a poisoned lock is still a usable cache.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the aggregate for a command: out of the cache when present, else from the
    /// database. The caller holds the aggregate's lock and hands it back with [`Self::keep`].
    pub async fn take(&self, aggregate_id: &str) -> Result<LedgerContext<A>, StoreError> {
        if let Some(cached) = self.cache().pop(aggregate_id) {
            return Ok(LedgerContext {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: cached.aggregate,
                sequence: cached.sequence,
                snapshot: cached.snapshot,
            });
        }
        let mut lease = self.writer.connections().lease().await?;
        let rows = lease
            .run(|connection| self.load_query(aggregate_id).fetch_all(connection))
            .await?;
        drop(lease);
        self.rebuild(aggregate_id, rows).await
    }

    /// Returns an aggregate to the cache. Streams without events are not cached, so that an
    /// aggregate another instance creates is never hidden behind a cached absence.
    pub fn keep(&self, context: LedgerContext<A>) {
        if context.sequence == 0 {
            return;
        }
        self.cache().put(
            context.aggregate_id,
            Cached {
                aggregate: context.aggregate,
                sequence: context.sequence,
                snapshot: context.snapshot,
            },
        );
    }

    /// A clone of the cached aggregate, if the cache holds one.
    pub fn peek_cached(&self, aggregate_id: &str) -> Option<A> {
        self.cache().get(aggregate_id).map(|c| c.aggregate.clone())
    }

    /// Loads the aggregate from the database in one statement: snapshot, then later events.
    pub async fn load_fresh(&self, aggregate_id: &str) -> Result<LedgerContext<A>, StoreError> {
        let rows = self.load_query(aggregate_id).fetch_all(&self.pool).await?;
        self.rebuild(aggregate_id, rows).await
    }

    /// Loads many aggregates in one statement on the caller's connection: for each id its
    /// snapshot (if any) and the events after it. Ids without events are left out.
    pub async fn load_many_on(
        &self,
        connection: &mut sqlx::PgConnection,
        aggregate_ids: &[String],
    ) -> Result<Vec<LedgerContext<A>>, StoreError> {
        let rows = sqlx::query(LOAD_MANY)
            .bind(A::TYPE)
            .bind(aggregate_ids)
            .fetch_all(connection)
            .await?;
        let mut loaded = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while let Some(first) = rows.next() {
            let id: String = first.get("aggregate_id");
            let mut group = vec![first];
            while let Some(row) = rows.next_if(|r| r.get::<String, _>("aggregate_id") == id) {
                group.push(row);
            }
            loaded.push(self.rebuild(&id, group).await?);
        }
        Ok(loaded)
    }

    fn load_query<'q>(
        &self,
        aggregate_id: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let query = if self.snapshot_every > 0 {
            LOAD
        } else {
            LOAD_EVENTS_ONLY
        };
        sqlx::query(query).bind(A::TYPE).bind(aggregate_id)
    }

    /// The aggregate from the rows of [`LOAD`]: the snapshot, if any, then the later events.
    async fn rebuild(
        &self,
        aggregate_id: &str,
        rows: Vec<sqlx::postgres::PgRow>,
    ) -> Result<LedgerContext<A>, StoreError> {
        let mut context = LedgerContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            sequence: 0,
            snapshot: 0,
        };
        let mut rows = rows.into_iter().peekable();
        if let Some(row) = rows.next_if(|r| r.get::<i32, _>("part") == 0) {
            let payload: String = row.get("payload");
            // Kept even when the payload is unreadable, so the next snapshot numbers on.
            context.snapshot = usize::try_from(row.get::<i64, _>("current_snapshot")).unwrap_or(0);
            // A snapshot of an older shape is ignored: the events rebuild the state, and the
            // next snapshot written replaces it.
            if let Ok(aggregate) = serde_json::from_str::<A>(&payload) {
                context.aggregate = aggregate;
                context.sequence = sequence_of(&row);
            } else {
                tracing::warn!(
                    aggregate_id,
                    "snapshot unreadable; replaying the whole stream"
                );
                return self
                    .load_without_snapshot(aggregate_id, context.snapshot)
                    .await;
            }
        }
        apply_rows(&mut context, rows)?;
        Ok(context)
    }

    async fn load_without_snapshot(
        &self,
        aggregate_id: &str,
        snapshot: usize,
    ) -> Result<LedgerContext<A>, StoreError> {
        let rows = sqlx::query(LOAD_EVENTS_ONLY)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_all(&self.pool)
            .await?;
        let mut context = LedgerContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            sequence: 0,
            snapshot,
        };
        apply_rows(&mut context, rows)?;
        Ok(context)
    }

    /// Appends `events` after `context.sequence` in one statement. `context.aggregate` must
    /// already have the events applied (cqrs-es's `EventSink` does that while deciding). On
    /// success the context is advanced past them; on [`StoreError::Conflict`] it is stale.
    pub async fn append(
        &self,
        events: &[A::Event],
        context: &mut LedgerContext<A>,
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let first = context.sequence + 1;
        let last = context.sequence + events.len();
        let sequences: Vec<i64> = (first..=last).map(to_i64).collect();
        let types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
        let versions: Vec<String> = events.iter().map(DomainEvent::event_version).collect();
        let payloads: Vec<String> = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        let metadata_json = serde_json::to_string(&metadata.as_map())?;
        let snapshot_due = self.snapshot_every > 0
            && last / self.snapshot_every > context.sequence / self.snapshot_every;

        if events.len() == 1 && !snapshot_due {
            let position = self
                .writer
                .append(EventRow {
                    aggregate_type: A::TYPE,
                    aggregate_id: context.aggregate_id.clone(),
                    sequence: sequences[0],
                    event_type: types[0].clone(),
                    event_version: versions[0].clone(),
                    payload: payloads[0].clone(),
                    metadata: metadata_json,
                    recorded_at: metadata.recorded_at,
                })
                .await?;
            context.sequence = last;
            return Ok(vec![Appended {
                sequence: last,
                position,
            }]);
        }
        let query = if snapshot_due {
            sqlx::query(APPEND_WITH_SNAPSHOT)
        } else {
            sqlx::query(APPEND)
        };
        let mut query = query
            .bind(A::TYPE)
            .bind(&context.aggregate_id)
            .bind(&sequences)
            .bind(&types)
            .bind(&versions)
            .bind(&metadata_json)
            .bind(metadata.recorded_at)
            .bind(&payloads);
        if snapshot_due {
            query = query
                .bind(to_i64(last))
                .bind(to_i64(context.snapshot + 1))
                .bind(serde_json::to_string(&context.aggregate)?);
        }
        let mut lease = self.writer.connections().lease().await?;
        let rows = lease
            .run(|connection| query.fetch_all(connection))
            .await
            .map_err(|e| {
                if is_sequence_conflict(&e) {
                    StoreError::Conflict
                } else {
                    StoreError::Database(e)
                }
            })?;
        let mut appended: Vec<Appended> = rows
            .iter()
            .map(|row| Appended {
                sequence: sequence_of(row),
                position: row.get("position"),
            })
            .collect();
        appended.sort_by_key(|a| a.sequence);
        context.sequence = last;
        if snapshot_due {
            context.snapshot += 1;
        }
        Ok(appended)
    }

    /// The stream as stored, in sequence order; with `as_of`, only the events recorded by then.
    pub async fn history(
        &self,
        aggregate_id: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Recorded<A::Event>>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, position, recorded_at, event_type, event_version,
                    metadata::text AS metadata, payload::text AS payload,
                    encode(hash, 'hex') AS hash
               FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2
                AND ($3::timestamptz IS NULL OR recorded_at <= $3)
              ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        // Recording times come from each instance's clock, so a later sequence may carry an
        // earlier time: the stream as of a moment is the unbroken run of sequences up to it.
        rows.iter()
            .enumerate()
            .take_while(|(index, row)| sequence_of(row) == index + 1)
            .map(|(_, row)| {
                let payload: serde_json::Value =
                    serde_json::from_str(row.get::<&str, _>("payload"))?;
                let metadata: String = row.get("metadata");
                Ok(Recorded {
                    sequence: sequence_of(row),
                    position: row.get("position"),
                    recorded_at: row.get("recorded_at"),
                    event_type: row.get("event_type"),
                    event_version: row.get("event_version"),
                    metadata: serde_json::from_str(&metadata)?,
                    // Parsed once: the event is read from the same JSON that is shown.
                    event: serde::Deserialize::deserialize(&payload)?,
                    payload,
                    hash: row.get("hash"),
                })
            })
            .collect()
    }

    /// The global position of an event already in the store.
    pub async fn position_of(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Option<i64>, StoreError> {
        let position = sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(to_i64(sequence))
        .fetch_optional(&self.pool)
        .await?;
        Ok(position)
    }
}

/// Applies event rows (`sequence`, `payload`) to an aggregate, in the order given.
fn apply_rows<A: Aggregate>(
    context: &mut LedgerContext<A>,
    rows: impl IntoIterator<Item = sqlx::postgres::PgRow>,
) -> Result<(), StoreError> {
    for row in rows {
        let payload: String = row.get("payload");
        context.aggregate.apply(serde_json::from_str(&payload)?);
        context.sequence = sequence_of(&row);
    }
    Ok(())
}

fn sequence_of(row: &sqlx::postgres::PgRow) -> usize {
    usize::try_from(row.get::<i64, _>("sequence")).unwrap_or(0)
}

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A unique violation on the events' primary key: somebody else took this sequence number.
fn is_sequence_conflict(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some("23505") && e.constraint() == Some("events_pkey")
    })
}

impl<A> EventStore<A> for LedgerStore<A>
where
    A: Aggregate + Clone,
{
    type AC = LedgerContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let rows = sqlx::query(
            "SELECT sequence, payload::text AS payload, metadata::text AS metadata
               FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        rows.iter()
            .map(|row| {
                let payload: String = row.get("payload");
                let metadata: String = row.get("metadata");
                Ok(EventEnvelope {
                    aggregate_id: aggregate_id.to_owned(),
                    sequence: sequence_of(row),
                    payload: serde_json::from_str(&payload).map_err(StoreError::from)?,
                    metadata: serde_json::from_str(&metadata).map_err(StoreError::from)?,
                })
            })
            .collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<LedgerContext<A>, AggregateError<A::Error>> {
        Ok(self.take(aggregate_id).await?)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        mut context: LedgerContext<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let meta = Metadata {
            actor: metadata
                .get("actor")
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned()),
            request_id: metadata.get("request_id").cloned().unwrap_or_default(),
            recorded_at: Utc::now(),
        };
        let appended = self.append(&events, &mut context, &meta).await?;
        let map = meta.as_map();
        let envelopes = events
            .into_iter()
            .zip(appended)
            .map(|(payload, a)| EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence: a.sequence,
                payload,
                metadata: map.clone(),
            })
            .collect();
        self.keep(context);
        Ok(envelopes)
    }
}
