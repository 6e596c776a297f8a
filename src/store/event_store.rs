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
//! The tables stay those of postgres-es (plus position, transaction id, recorded time and hash),
//! so its `PostgresEventRepository` reads them too: a test loads every member of a generated
//! ledger through postgres-es and gets the same state as here.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use lru::LruCache;
use sqlx::{PgConnection, PgPool};

use crate::store::chain;
use crate::store::error::StoreError;
use crate::store::group_commit::{EventRow, GroupCommit};
use crate::store::record::{Appended, Metadata, Recorded};
use crate::telemetry;

/// How an aggregate takes the place of a stored event that no current type can read (written
/// before a rule of the value types, or by hand): the event is passed over, never applied.
pub trait PassOver {
    /// By default nothing: the aggregate does not count its events.
    fn pass_over(&mut self) {}
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
    /// The stored snapshot could not be read (one of an older layout, after an upgrade): the
    /// state came from the events, and the next append writes a new snapshot, due or not.
    pub stale_snapshot: bool,
    /// The last event's link of the stream's hash chain, when this context knows it (a bulk
    /// append computes the links after it; [`LedgerStore::append_many_on`] keeps it).
    pub link: Option<Vec<u8>>,
}

struct Cached<A> {
    aggregate: A,
    sequence: usize,
    snapshot: usize,
    stale_snapshot: bool,
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
WITH ids AS (SELECT id, max(through) AS through
               FROM unnest($2::text[], $3::bigint[]) AS u(id, through) GROUP BY id),
snap AS (
    SELECT s.aggregate_id, s.last_sequence, s.current_snapshot, s.payload
      FROM snapshots s JOIN ids ON s.aggregate_type = $1 AND s.aggregate_id = ids.id
     WHERE s.last_sequence <= ids.through
)
SELECT aggregate_id, 0 AS part, last_sequence AS sequence, current_snapshot,
       payload::text AS payload
  FROM snap
UNION ALL
SELECT e.aggregate_id, 1, e.sequence, 0, e.payload::text
  FROM ids
  JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = ids.id
  LEFT JOIN snap ON snap.aggregate_id = ids.id
 WHERE e.sequence > COALESCE(snap.last_sequence, 0) AND e.sequence <= ids.through
ORDER BY aggregate_id, part, sequence";

const LOAD_EVENTS_ONLY: &str = "
SELECT 1 AS part, sequence, 0::bigint AS current_snapshot, payload::text AS payload
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";

const LOAD_EVENTS_THROUGH: &str = "
SELECT 1 AS part, sequence, 0::bigint AS current_snapshot, payload::text AS payload
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3
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

const APPEND_MANY: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, recorded_at, hash)
SELECT $1, u.aggregate_id, u.sequence, u.event_type, u.event_version, u.payload::json,
       $7::json, $8, u.hash
  FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $9::bytea[])
       AS u(aggregate_id, sequence, event_type, event_version, payload, hash)";

/// The links of the events that bulk appends follow, for streams whose context lacks it.
const LAST_LINKS: &str = "
SELECT e.aggregate_id, e.hash
  FROM UNNEST($2::text[], $3::bigint[]) AS u(aggregate_id, sequence)
  JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = u.aggregate_id
               AND e.sequence = u.sequence";

const SNAPSHOT_MANY: &str = "
INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
SELECT $1, u.aggregate_id, u.last_sequence, u.number, u.payload::json
  FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[])
       AS u(aggregate_id, last_sequence, number, payload)
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
       SET last_sequence = EXCLUDED.last_sequence,
           current_snapshot = EXCLUDED.current_snapshot,
           payload = EXCLUDED.payload
     WHERE snapshots.last_sequence < EXCLUDED.last_sequence";

/// The columns of an append of many streams.
#[derive(Default)]
struct ManyRows {
    ids: Vec<String>,
    sequences: Vec<i64>,
    types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<String>,
    hashes: Vec<Vec<u8>>,
    /// The metadata's JSON, the same for every event of the append.
    metadata: String,
    snapshot_ids: Vec<String>,
    snapshot_last: Vec<i64>,
    snapshot_numbers: Vec<i64>,
    snapshot_payloads: Vec<String>,
}

impl ManyRows {
    /// Adds a stream's events with their links, chained from `previous` (the link of the event
    /// before them; empty for a new stream). Answers the last one.
    fn add(
        &mut self,
        (aggregate_type, aggregate_id): (&str, &str),
        previous: Vec<u8>,
        events: Serialised,
    ) -> Vec<u8> {
        let mut link = previous;
        for (i, sequence) in events.sequences.iter().enumerate() {
            link = chain::link(
                &link,
                &chain::Fields {
                    aggregate_type,
                    aggregate_id,
                    event_type: &events.types[i],
                    event_version: &events.versions[i],
                    sequence: *sequence,
                    recorded_at: events.recorded_at,
                    metadata: &events.metadata,
                    payload: &events.payloads[i],
                },
            );
            self.hashes.push(link.clone());
        }
        self.ids.extend(std::iter::repeat_n(
            aggregate_id.to_owned(),
            events.sequences.len(),
        ));
        // One append, one metadata.
        self.metadata = events.metadata;
        self.sequences.extend(events.sequences);
        self.types.extend(events.types);
        self.versions.extend(events.versions);
        self.payloads.extend(events.payloads);
        if let Some((last, number, payload)) = events.snapshot {
            self.snapshot_ids.push(aggregate_id.to_owned());
            self.snapshot_last.push(last);
            self.snapshot_numbers.push(number);
            self.snapshot_payloads.push(payload);
        }
        link
    }
}

/// One row of a load: the snapshot (`part` 0) or an event after it (`part` 1).
#[derive(sqlx::FromRow)]
struct StreamRow {
    /// Only in loads of many aggregates.
    #[sqlx(default)]
    aggregate_id: String,
    part: i32,
    sequence: i64,
    current_snapshot: i64,
    payload: String,
}

/// One stored event with everything an auditor reads.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    sequence: i64,
    position: i64,
    recorded_at: DateTime<Utc>,
    event_type: String,
    event_version: String,
    metadata: String,
    payload: String,
    hash: String,
}

const HISTORY: &str = "
SELECT sequence, position, recorded_at, event_type, event_version, metadata::text AS metadata,
       payload::text AS payload, encode(hash, 'hex') AS hash
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
   AND ($3::timestamptz IS NULL OR recorded_at <= $3)
 ORDER BY sequence";

const POSITION_OF: &str = "
SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";

/// An append, serialised: the columns of its events and, when one is due, the snapshot.
struct Serialised {
    sequences: Vec<i64>,
    types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<String>,
    metadata: String,
    recorded_at: DateTime<Utc>,
    /// (last sequence, snapshot number, payload).
    snapshot: Option<(i64, i64, String)>,
}

impl<A> LedgerStore<A>
where
    A: Aggregate + Clone + PassOver,
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
                stale_snapshot: cached.stale_snapshot,
                link: None,
            });
        }
        let mut lease = self.writer.connections().lease().await?;
        let rows = lease
            .run(|connection| self.load_query(aggregate_id).fetch_all(connection))
            .await?;
        // The write connection goes back before the rows are parsed and applied.
        drop(lease);
        match self.rebuild(aggregate_id, rows) {
            Ok(context) => Ok(context),
            Err(snapshot) => {
                let mut lease = self.writer.connections().lease().await?;
                let rows = lease
                    .run(|connection| {
                        events_through::<A>(aggregate_id, i64::MAX).fetch_all(connection)
                    })
                    .await?;
                drop(lease);
                Ok(from_events(aggregate_id, snapshot, rows))
            }
        }
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
                stale_snapshot: context.stale_snapshot,
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
        match self.rebuild(aggregate_id, rows) {
            Ok(context) => Ok(context),
            Err(snapshot) => {
                let rows = events_through::<A>(aggregate_id, i64::MAX)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(from_events(aggregate_id, snapshot, rows))
            }
        }
    }

    /// Loads many aggregates in one statement on the caller's connection, each as of a
    /// sequence (`through`, by id): its snapshot (if it is no later) and the events after it,
    /// up to that sequence. Ids without events are left out.
    pub async fn load_many_on(
        &self,
        connection: &mut sqlx::PgConnection,
        aggregate_ids: &[String],
        through: &[i64],
    ) -> Result<Vec<LedgerContext<A>>, StoreError> {
        let rows: Vec<StreamRow> = sqlx::query_as(LOAD_MANY)
            .bind(A::TYPE)
            .bind(aggregate_ids)
            .bind(through)
            .fetch_all(&mut *connection)
            .await?;
        // As the statement reads them: an id given twice is loaded through the later sequence.
        debug_assert_eq!(aggregate_ids.len(), through.len());
        let mut through_of: HashMap<&str, i64> = HashMap::new();
        for (id, &sequence) in aggregate_ids.iter().zip(through) {
            let entry = through_of.entry(id.as_str()).or_insert(sequence);
            *entry = (*entry).max(sequence);
        }
        let mut loaded = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while let Some(first) = rows.next() {
            let id = first.aggregate_id.clone();
            let mut group = vec![first];
            while let Some(row) = rows.next_if(|r| r.aggregate_id == id) {
                group.push(row);
            }
            match self.rebuild(&id, group) {
                Ok(context) => loaded.push(context),
                Err(snapshot) => {
                    let through = through_of.get(id.as_str()).copied().unwrap_or(i64::MAX);
                    let rows = events_through::<A>(&id, through)
                        .fetch_all(&mut *connection)
                        .await?;
                    loaded.push(from_events(&id, snapshot, rows));
                }
            }
        }
        Ok(loaded)
    }

    /// Loads an aggregate as of sequence `through` from its events alone (no snapshot: one
    /// may hold what the projector had to skip) on the caller's connection, passing over the
    /// events of `skipped`.
    pub async fn load_passing_over_on(
        &self,
        connection: &mut sqlx::PgConnection,
        aggregate_id: &str,
        skipped: &std::collections::BTreeSet<usize>,
        through: usize,
    ) -> Result<LedgerContext<A>, StoreError> {
        let rows = events_through::<A>(aggregate_id, to_i64(through))
            .fetch_all(connection)
            .await?;
        let mut context = LedgerContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            sequence: 0,
            snapshot: 0,
            stale_snapshot: false,
            link: None,
        };
        // Rows come in sequence order.
        for row in rows {
            if skipped.contains(&to_usize(row.sequence)) {
                context.aggregate.pass_over();
                context.sequence = to_usize(row.sequence);
            } else {
                apply_rows(&mut context, [row]);
            }
        }
        Ok(context)
    }

    fn load_query<'q>(
        &self,
        aggregate_id: &'q str,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, StreamRow, sqlx::postgres::PgArguments> {
        let query = if self.snapshot_every > 0 {
            LOAD
        } else {
            LOAD_EVENTS_ONLY
        };
        sqlx::query_as(query).bind(A::TYPE).bind(aggregate_id)
    }

    /// The aggregate from the rows of [`LOAD`]: the snapshot, if any, then the later events.
    /// When the snapshot cannot be read (one of an older layout, after an upgrade), `Err`
    /// with its number: the caller loads the events alone and builds with [`from_events`].
    fn rebuild(&self, aggregate_id: &str, rows: Vec<StreamRow>) -> Result<LedgerContext<A>, usize> {
        let mut context = LedgerContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            sequence: 0,
            snapshot: 0,
            stale_snapshot: false,
            link: None,
        };
        let mut rows = rows.into_iter().peekable();
        if let Some(row) = rows.next_if(|r| r.part == 0) {
            // Kept even when the payload is unreadable, so the next snapshot numbers on.
            context.snapshot = usize::try_from(row.current_snapshot).unwrap_or(0);
            match serde_json::from_str::<A>(&row.payload) {
                Ok(aggregate) => {
                    context.aggregate = aggregate;
                    context.sequence = to_usize(row.sequence);
                }
                Err(error) => {
                    // After an upgrade this is every cold load of a member not written since:
                    // counted, and logged only at debug level.
                    telemetry::snapshot_unreadable();
                    tracing::debug!(
                        aggregate_type = A::TYPE,
                        aggregate_id,
                        %error,
                        "a snapshot this build cannot read; rebuilding from the events"
                    );
                    return Err(context.snapshot);
                }
            }
        }
        apply_rows(&mut context, rows);
        Ok(context)
    }

    /// Appends `events` after `context.sequence`. `context.aggregate` must already have the
    /// events applied (cqrs-es's `EventSink` does that while deciding). On success the context
    /// is advanced past them; on [`StoreError::Conflict`] it is stale.
    pub async fn append(
        &self,
        events: &[A::Event],
        context: &mut LedgerContext<A>,
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let serialised = self.serialise(events, context, metadata, &metadata_text(metadata)?)?;
        let appended = if events.len() == 1 && serialised.snapshot.is_none() {
            // The common case: one event, no snapshot due — it rides in a group commit.
            self.append_alone(&context.aggregate_id, serialised).await?
        } else {
            self.append_statement(&context.aggregate_id, serialised)
                .await?
        };
        self.advance(context, events.len());
        Ok(appended)
    }

    /// Moves a context past `appended` events just written, counting the snapshot written
    /// with them when one fell due.
    fn advance(&self, context: &mut LedgerContext<A>, appended: usize) {
        let last = context.sequence + appended;
        if self.snapshot_due(context, last) {
            context.snapshot += 1;
            context.stale_snapshot = false;
        }
        context.sequence = last;
        // The database computed the new links: this context no longer knows its last one.
        context.link = None;
    }

    /// Whether an append after `context` through sequence `last` writes a snapshot: when it
    /// crosses a multiple of `snapshot_every`, or replaces one that could not be read.
    fn snapshot_due(&self, context: &LedgerContext<A>, last: usize) -> bool {
        let every = self.snapshot_every;
        every > 0 && (context.stale_snapshot || last / every > context.sequence / every)
    }

    /// The events' columns after `context`, with `metadata` rendered as `metadata_text` (see
    /// [`metadata_text`]).
    fn serialise(
        &self,
        events: &[A::Event],
        context: &LedgerContext<A>,
        metadata: &Metadata,
        metadata_text: &str,
    ) -> Result<Serialised, StoreError> {
        let last = context.sequence + events.len();
        let snapshot = if self.snapshot_due(context, last) {
            Some((
                to_i64(last),
                to_i64(context.snapshot + 1),
                serde_json::to_string(&context.aggregate)?,
            ))
        } else {
            None
        };
        Ok(Serialised {
            sequences: (context.sequence + 1..=last).map(to_i64).collect(),
            types: events.iter().map(DomainEvent::event_type).collect(),
            versions: events.iter().map(DomainEvent::event_version).collect(),
            payloads: events
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?,
            metadata: metadata_text.to_owned(),
            recorded_at: metadata.recorded_at,
            snapshot,
        })
    }

    async fn append_alone(
        &self,
        aggregate_id: &str,
        mut event: Serialised,
    ) -> Result<Vec<Appended>, StoreError> {
        let sequence = event.sequences[0];
        let position = self
            .writer
            .append(EventRow {
                aggregate_type: A::TYPE,
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                event_type: event.types.swap_remove(0),
                event_version: event.versions.swap_remove(0),
                payload: event.payloads.swap_remove(0),
                metadata: event.metadata,
                recorded_at: event.recorded_at,
            })
            .await?;
        Ok(vec![Appended {
            sequence: to_usize(sequence),
            position,
        }])
    }

    /// Several events, or one with a snapshot: one statement on a write connection.
    async fn append_statement(
        &self,
        aggregate_id: &str,
        events: Serialised,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut lease = self.writer.connections().lease().await?;
        lease
            .run(|connection| insert_serialised(connection, A::TYPE, aggregate_id, &events))
            .await
            .map_err(append_error)
    }

    /// Appends `events` after `context.sequence` inside the caller's transaction, so that they
    /// commit together with what else it writes (the LRS stores a statement with the facts it
    /// maps to). On [`StoreError::Conflict`] the context is stale and the transaction failed.
    pub async fn append_on(
        &self,
        connection: &mut PgConnection,
        events: &[A::Event],
        context: &mut LedgerContext<A>,
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let serialised = self.serialise(events, context, metadata, &metadata_text(metadata)?)?;
        let appended = insert_serialised(connection, A::TYPE, &context.aggregate_id, &serialised)
            .await
            .map_err(append_error)?;
        self.advance(context, events.len());
        Ok(appended)
    }

    /// Appends what was decided on many aggregates in one statement inside the caller's
    /// transaction (bulk import): each `(context, events)` after its context's sequence, with
    /// the snapshots that fall due and the links of the hash chain computed here (from each
    /// context's last link, read in one statement for contexts that lack it). On success the
    /// contexts are advanced and hold their new last link; on [`StoreError::Conflict`] (another
    /// writer took a sequence) the transaction failed and the contexts are stale.
    pub async fn append_many_on(
        &self,
        connection: &mut PgConnection,
        appends: &mut [(&mut LedgerContext<A>, Vec<A::Event>)],
        metadata: &Metadata,
    ) -> Result<usize, StoreError> {
        // The column keeps microseconds, and the link covers the time as stored.
        let metadata = &Metadata {
            recorded_at: chrono::SubsecRound::trunc_subsecs(metadata.recorded_at, 6),
            ..metadata.clone()
        };
        self.read_last_links(connection, appends).await?;
        // Rendered once for the whole append.
        let text = metadata_text(metadata)?;
        // Rows go in in the primary key's order (ids are ASCII: byte order is the collation's),
        // so that each row's B-tree descent finds the pages the one before touched: a fifth
        // less time for the INSERT than in the callers' (hash map) order.
        let mut order: Vec<usize> = (0..appends.len()).collect();
        order.sort_unstable_by(|&a, &b| appends[a].0.aggregate_id.cmp(&appends[b].0.aggregate_id));
        let mut rows = ManyRows::default();
        let mut last_links = vec![None; appends.len()];
        for index in order {
            let (context, events) = &appends[index];
            if events.is_empty() {
                continue;
            }
            let serialised = self.serialise(events, context, metadata, &text)?;
            let previous = context.link.clone().unwrap_or_default();
            let stream = (A::TYPE, context.aggregate_id.as_str());
            last_links[index] = Some(rows.add(stream, previous, serialised));
        }
        if rows.ids.is_empty() {
            return Ok(0);
        }
        sqlx::query(APPEND_MANY)
            .bind(A::TYPE)
            .bind(&rows.ids)
            .bind(&rows.sequences)
            .bind(&rows.types)
            .bind(&rows.versions)
            .bind(&rows.payloads)
            .bind(&rows.metadata)
            .bind(metadata.recorded_at)
            .bind(&rows.hashes)
            .execute(&mut *connection)
            .await
            .map_err(append_error)?;
        if !rows.snapshot_ids.is_empty() {
            sqlx::query(SNAPSHOT_MANY)
                .bind(A::TYPE)
                .bind(&rows.snapshot_ids)
                .bind(&rows.snapshot_last)
                .bind(&rows.snapshot_numbers)
                .bind(&rows.snapshot_payloads)
                .execute(&mut *connection)
                .await?;
        }
        for ((context, events), last) in appends.iter_mut().zip(last_links) {
            if let Some(last) = last {
                self.advance(context, events.len());
                context.link = Some(last);
            }
        }
        Ok(rows.ids.len())
    }

    /// Fills in the last link of each context about to be appended to that does not know it
    /// (a new stream's is empty), in one statement.
    async fn read_last_links(
        &self,
        connection: &mut PgConnection,
        appends: &mut [(&mut LedgerContext<A>, Vec<A::Event>)],
    ) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        let mut sequences = Vec::new();
        for (context, events) in appends.iter_mut() {
            if events.is_empty() || context.link.is_some() {
                continue;
            }
            if context.sequence == 0 {
                context.link = Some(Vec::new());
            } else {
                ids.push(context.aggregate_id.clone());
                sequences.push(to_i64(context.sequence));
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let found: Vec<(String, Vec<u8>)> = sqlx::query_as(LAST_LINKS)
            .bind(A::TYPE)
            .bind(&ids)
            .bind(&sequences)
            .fetch_all(&mut *connection)
            .await?;
        let mut found: std::collections::HashMap<String, Vec<u8>> = found.into_iter().collect();
        for (context, events) in appends.iter_mut() {
            if !events.is_empty() && context.link.is_none() {
                // A context ahead of the store (it cannot be: contexts come from the store)
                // would chain from nothing; the append's conflict check refuses it anyway.
                context.link = Some(
                    found
                        .remove(&context.aggregate_id)
                        .ok_or(StoreError::Conflict)?,
                );
            }
        }
        Ok(())
    }

    /// The stream as stored, in sequence order; with `as_of`, only the events recorded by then.
    pub async fn history(
        &self,
        aggregate_id: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Recorded<A::Event>>, StoreError> {
        let rows: Vec<HistoryRow> = sqlx::query_as(HISTORY)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(as_of)
            .fetch_all(&self.pool)
            .await?;
        // Recording times come from each instance's clock, so a later sequence may carry an
        // earlier time: the stream as of a moment is the unbroken run of sequences up to it.
        rows.into_iter()
            .enumerate()
            .take_while(|(index, row)| to_usize(row.sequence) == index + 1)
            .map(|(_, row)| {
                let payload: serde_json::Value = serde_json::from_str(&row.payload)?;
                Ok(Recorded {
                    sequence: to_usize(row.sequence),
                    position: row.position,
                    recorded_at: row.recorded_at,
                    event_type: row.event_type,
                    event_version: row.event_version,
                    metadata: serde_json::from_str(&row.metadata)?,
                    // Parsed once: the event is read from the same JSON that is shown. One that
                    // cannot be read is shown as stored, and passed over by every fold.
                    event: serde::Deserialize::deserialize(&payload).ok(),
                    payload,
                    hash: row.hash,
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
        let position = sqlx::query_scalar(POSITION_OF)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(to_i64(sequence))
            .fetch_optional(&self.pool)
            .await?;
        Ok(position)
    }
}

/// The metadata column's text for an append.
fn metadata_text(metadata: &Metadata) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&metadata.as_map())?)
}

/// The statement loading a stream's events alone, through sequence `through`.
fn events_through<'q, A: Aggregate>(
    aggregate_id: &'q str,
    through: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, StreamRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(LOAD_EVENTS_THROUGH)
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(through)
}

/// An aggregate from its events alone, in place of a snapshot it could not read (number
/// `snapshot`): the next append writes a new one. The events are read by a statement after
/// the snapshot's: should another instance write snapshot `snapshot + 1` in between, the next
/// append numbers its snapshot `snapshot + 1` again (postgres-es's counter repeats; the state
/// and the upsert's sequence guard are unaffected).
fn from_events<A: Aggregate + PassOver>(
    aggregate_id: &str,
    snapshot: usize,
    rows: Vec<StreamRow>,
) -> LedgerContext<A> {
    let mut context = LedgerContext {
        aggregate_id: aggregate_id.to_owned(),
        aggregate: A::default(),
        sequence: 0,
        snapshot,
        stale_snapshot: true,
        link: None,
    };
    apply_rows(&mut context, rows);
    context
}

/// Applies event rows to an aggregate, in the order given; an event that cannot be read is
/// passed over (and the projector lists it).
fn apply_rows<A: Aggregate + PassOver>(
    context: &mut LedgerContext<A>,
    rows: impl IntoIterator<Item = StreamRow>,
) {
    for row in rows {
        match serde_json::from_str(&row.payload) {
            Ok(event) => context.aggregate.apply(event),
            Err(error) => {
                tracing::warn!(
                    aggregate_type = A::TYPE,
                    aggregate_id = %context.aggregate_id,
                    sequence = row.sequence,
                    %error,
                    "an event cannot be read; passed over"
                );
                context.aggregate.pass_over();
            }
        }
        context.sequence = to_usize(row.sequence);
    }
}

fn to_usize(value: i64) -> usize {
    usize::try_from(value).unwrap_or(0)
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

/// Inserts an append's events (and its snapshot, when one is due) in one statement.
async fn insert_serialised(
    connection: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    events: &Serialised,
) -> Result<Vec<Appended>, sqlx::Error> {
    let query = match &events.snapshot {
        Some(_) => sqlx::query_as(APPEND_WITH_SNAPSHOT),
        None => sqlx::query_as(APPEND),
    };
    let mut query = query
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(&events.sequences)
        .bind(&events.types)
        .bind(&events.versions)
        .bind(&events.metadata)
        .bind(events.recorded_at)
        .bind(&events.payloads);
    if let Some((last, number, payload)) = &events.snapshot {
        query = query.bind(last).bind(number).bind(payload);
    }
    let rows: Vec<(i64, i64)> = query.fetch_all(connection).await?;
    let mut appended: Vec<Appended> = rows
        .into_iter()
        .map(|(sequence, position)| Appended {
            sequence: to_usize(sequence),
            position,
        })
        .collect();
    appended.sort_by_key(|a| a.sequence);
    Ok(appended)
}

/// A failed append: another writer took the sequence, or the database refused.
fn append_error(error: sqlx::Error) -> StoreError {
    if is_sequence_conflict(&error) {
        StoreError::Conflict
    } else {
        StoreError::Database(error)
    }
}
