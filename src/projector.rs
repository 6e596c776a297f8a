//! The projector: applies committed events to the view tables in commit order.
//!
//! postgres-es has no global order, and a position taken from a sequence is not commit order:
//! a transaction holding position 10 can commit after the one holding 11. A reader that
//! followed positions would skip 10 for ever. So the projector reads only events whose
//! transaction id is below `pg_snapshot_xmin(pg_current_snapshot())` — every transaction that
//! could still add rows there has ended — in (transaction id, position) order, and checkpoints
//! that pair. Each batch, its view writes and the checkpoint share one transaction, so a crash
//! loses and repeats nothing; member rows are recomputed from the member's whole stream, so
//! applying an event twice changes nothing either.
//!
//! One projector runs per database: it holds a PostgreSQL advisory lock while it works, and
//! the checkpoint row is locked for each batch besides. Others wait for the lock.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::Aggregate;
use lru::LruCache;
use sqlx::{Connection, PgConnection, PgPool, Row};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::{Organisation, OrganisationEvent};
use studyledger_aggregates::rulebook::RuleBook;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_projections::fold::MemberFold;
use studyledger_projections::store as views;

use crate::ledger::Ledger;
use crate::store::StoreError;

/// Events per batch: large enough that catching up shares work across many events, small
/// enough that one batch's transaction stays short.
pub const BATCH_SIZE: i64 = 10_000;
/// How long an idle projector waits before looking for new events.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often the projector makes sure its advisory lock's connection is still alive.
const LOCK_CHECK: Duration = Duration::from_secs(1);
/// The advisory lock one projector per database holds ("STUDYLE" in ASCII).
const ADVISORY_LOCK_KEY: i64 = 0x0053_5455_4459_4c45;

/// Where the projector stands: the last event applied, in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Checkpoint {
    pub transaction_id: u64,
    pub position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored event cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// One event in commit order.
#[derive(Debug, Clone)]
pub struct CommittedEvent {
    pub transaction_id: u64,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: usize,
    pub payload: String,
}

/// The next committed events after `after`, at most `limit`, in commit order. Only events of
/// transactions older than every transaction still running are returned, so nothing that
/// could still commit before them is skipped.
pub async fn read_committed(
    connection: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<CommittedEvent>, sqlx::Error> {
    let rows = sqlx::query(
        // The text form of the id is named `xid`: ordering by a text column named like the
        // xid8 one would sort "1000" before "999" and break commit order.
        "SELECT e.transaction_id::text AS xid, e.position, e.aggregate_type, e.aggregate_id,
                e.sequence, e.payload::text AS payload
           FROM events e
          WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2)
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY e.transaction_id, e.position
          LIMIT $3",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.position)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            // By index: thousands of rows a batch, and a name lookup per column adds up.
            let xid: &str = row.try_get(0)?;
            Ok(CommittedEvent {
                transaction_id: xid.parse().unwrap_or(0),
                position: row.try_get(1)?,
                aggregate_type: row.try_get(2)?,
                aggregate_id: row.try_get(3)?,
                sequence: usize::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0),
                payload: row.try_get(5)?,
            })
        })
        .collect()
}

/// The checkpoint as seen on a connection, optionally locking its row for the transaction.
async fn checkpoint_on(
    connection: &mut PgConnection,
    lock: bool,
) -> Result<Checkpoint, sqlx::Error> {
    let query = if lock {
        "SELECT transaction_id::text AS xid, position FROM projector_checkpoints
          WHERE projector = 'views' FOR UPDATE"
    } else {
        "SELECT transaction_id::text AS xid, position FROM projector_checkpoints
          WHERE projector = 'views'"
    };
    let row = sqlx::query(query).fetch_one(connection).await?;
    let xid: String = row.try_get("xid")?;
    Ok(Checkpoint {
        transaction_id: xid.parse().unwrap_or(0),
        position: row.try_get("position")?,
    })
}

pub async fn checkpoint(pool: &PgPool) -> Result<Checkpoint, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    checkpoint_on(&mut connection, false).await
}

/// The projector of one service instance: the ledger, and the member states it folded last,
/// so that a batch only applies its own events to members it has seen (a miss loads the
/// member from the store, snapshot and tail, together with every other miss of the batch).
pub struct Projector {
    ledger: Arc<Ledger>,
    members: Mutex<LruCache<String, Member>>,
    /// The rulesets read last. Rulesets only change by RuleBook events, which reach the
    /// projector in its batches like any other: a batch that holds one it has not read yet
    /// makes it read them again.
    rulesets: Mutex<Option<Arc<Vec<Ruleset>>>>,
}

impl Projector {
    pub fn new(ledger: Arc<Ledger>, member_cache: usize) -> Projector {
        Projector {
            ledger,
            members: Mutex::new(LruCache::new(
                NonZeroUsize::new(member_cache).unwrap_or(NonZeroUsize::MIN),
            )),
            rulesets: Mutex::new(None),
        }
    }

    fn cached_rulesets(&self) -> std::sync::MutexGuard<'_, Option<Arc<Vec<Ruleset>>>> {
        self.rulesets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rulesets as last read, or read now.
    async fn rulesets(&self) -> Result<Arc<Vec<Ruleset>>, ProjectorError> {
        if let Some(rulesets) = self.cached_rulesets().clone() {
            return Ok(rulesets);
        }
        let rulesets = Arc::new(self.ledger.rulesets().await?);
        *self.cached_rulesets() = Some(rulesets.clone());
        Ok(rulesets)
    }

    fn members(&self) -> std::sync::MutexGuard<'_, LruCache<String, Member>> {
        // Every operation under this lock is a single LruCache call: never half done.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one batch; answers how many events it applied (0: caught up).
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        let outcome = self.try_step().await;
        if outcome.is_err() {
            // States are facts from the log and stay true, but start afresh after any failure
            // rather than reason about what the failed batch left behind.
            self.members().clear();
            *self.cached_rulesets() = None;
        }
        outcome
    }

    async fn try_step(&self) -> Result<usize, ProjectorError> {
        // Read before anything is locked or written: an idle projector costs no transaction id.
        // Everything the batch needs besides the batch comes before the transaction too: inside
        // it, waiting on another connection could deadlock against a lock queued on `events`.
        let rulesets = self.rulesets().await?;
        let mut tx = self.ledger.pool().begin().await?;
        let from = checkpoint_on(&mut tx, false).await?;
        let batch = read_committed(&mut tx, from, BATCH_SIZE).await?;
        let Some(last) = batch.last() else {
            tx.rollback().await?;
            return Ok(0);
        };
        // A ruleset published since the rules were read: read them again (outside the
        // transaction) and take the batch on the next step. Each RuleBook event adds one.
        let published = batch
            .iter()
            .filter(|e| e.aggregate_type == RuleBook::TYPE)
            .map(|e| e.sequence)
            .max();
        if published.is_some_and(|sequence| sequence > rulesets.len()) {
            tx.rollback().await?;
            *self.cached_rulesets() = None;
            return Box::pin(self.try_step()).await;
        }
        // Work to do: take the checkpoint row; if another projector moved it meanwhile, leave
        // this batch to it.
        if checkpoint_on(&mut tx, true).await? != from {
            tx.rollback().await?;
            return Ok(0);
        }
        // Views and checkpoint commit together or not at all, and both are derived from the
        // log: a crash that loses the last batch's commit loses its checkpoint with it, and the
        // batch is simply applied again. So the projector need not wait for the WAL flush.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let last = Checkpoint {
            transaction_id: last.transaction_id,
            position: last.position,
        };
        self.apply(&mut tx, &batch, rulesets.as_slice()).await?;
        sqlx::query(
            "UPDATE projector_checkpoints
                SET transaction_id = $1::text::xid8, position = $2,
                    events_applied = events_applied + $3, batches = batches + 1, updated_at = now()
              WHERE projector = 'views'",
        )
        .bind(last.transaction_id.to_string())
        .bind(last.position)
        .bind(i64::try_from(batch.len()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(batch.len())
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        batch: &[CommittedEvent],
        rulesets: &[Ruleset],
    ) -> Result<(), ProjectorError> {
        // Member events of the batch, per member, in sequence order (commit order is sequence
        // order within one stream: an append is decided on the committed state before it).
        let mut member_events: BTreeMap<&str, Vec<&CommittedEvent>> = BTreeMap::new();
        for event in batch {
            match event.aggregate_type.as_str() {
                t if t == Organisation::TYPE => {
                    let OrganisationEvent::OrganisationRegistered(record) =
                        serde_json::from_str(&event.payload)?;
                    views::upsert_organisation(tx, &record).await?;
                }
                t if t == Member::TYPE => {
                    member_events
                        .entry(&event.aggregate_id)
                        .or_default()
                        .push(event);
                }
                // Courses and rulesets change no view row by themselves: completions carry
                // their course's terms, and rows say which ruleset version judged them.
                _ => {}
            }
        }
        if member_events.is_empty() {
            return Ok(());
        }
        for events in member_events.values_mut() {
            events.sort_by_key(|e| e.sequence);
        }
        let mut states: Vec<(String, Member)> = Vec::with_capacity(member_events.len());
        let mut misses: Vec<String> = Vec::new();
        for (id, events) in member_events {
            // A member not cached whose events here start at sequence 1 needs no load: the
            // batch holds its whole stream so far (a new member, or a catch-up from zero).
            let mut member = self.members().pop(id).unwrap_or_default();
            if !follows(&member, &events) {
                misses.push(id.to_owned());
                continue;
            }
            let held = member.version();
            for event in events.iter().filter(|e| e.sequence > held) {
                member.apply(serde_json::from_str(&event.payload)?);
            }
            states.push((id.to_owned(), member));
        }
        if !misses.is_empty() {
            for context in self.ledger.load_members_on(tx, &misses).await? {
                states.push((context.aggregate_id, context.aggregate));
            }
        }
        let (ids, folded): (Vec<String>, Vec<(Member, MemberFold)>) = states
            .into_iter()
            .map(|(id, member)| {
                let fold = MemberFold::new(&member, rulesets, self.ledger.tz());
                (id, (member, fold))
            })
            .unzip();
        views::replace_members(tx, &folded, rulesets).await?;
        let mut cache = self.members();
        for (id, (member, _)) in ids.into_iter().zip(folded) {
            cache.put(id, member);
        }
        Ok(())
    }

    /// Runs until the process ends: waits for the advisory lock, then applies batches,
    /// polling briefly when there is nothing new.
    pub async fn run(self) {
        loop {
            if let Err(error) = self.hold_lock_and_project().await {
                crate::metrics::projector_error();
                tracing::warn!(%error, "projector stopped; retrying");
                // Cached states are facts from the log and stay valid; the lock may not be ours.
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn hold_lock_and_project(&self) -> Result<(), ProjectorError> {
        let mut lock_connection = self.ledger.pool().acquire().await?.detach();
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .fetch_one(&mut lock_connection)
                .await?;
            if locked {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!("projector active");
        let mut pinged = std::time::Instant::now();
        loop {
            let applied = self.step().await?;
            crate::metrics::projector_batch(applied);
            // Still ours? A lost lock connection means another instance may take over.
            if pinged.elapsed() >= LOCK_CHECK {
                lock_connection.ping().await?;
                pinged = std::time::Instant::now();
            }
            if applied == 0 {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Whether a cached state can take these events: it holds everything before the first of them
/// (events it already holds are skipped, so a batch applied twice changes nothing).
fn follows(member: &Member, events: &[&CommittedEvent]) -> bool {
    let held = member.version();
    // Sorted by sequence: the new ones must be held + 1, held + 2, ... without a gap, else only
    // the store can say what the member holds.
    events
        .iter()
        .filter(|e| e.sequence > held)
        .zip(held + 1..)
        .all(|(event, expected)| event.sequence == expected)
}

/// The first transaction id not yet started now: every event committed so far lies below it.
pub async fn horizon(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let xmax: String = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        .fetch_one(pool)
        .await?;
    Ok(xmax.parse().unwrap_or(u64::MAX))
}

/// The horizon that covers the event at `position` (its transaction, and all before it).
pub async fn horizon_of_position(pool: &PgPool, position: i64) -> Result<Option<u64>, sqlx::Error> {
    let xid: Option<String> =
        sqlx::query_scalar("SELECT transaction_id::text FROM events WHERE position = $1")
            .bind(position)
            .fetch_optional(pool)
            .await?;
    Ok(xid.and_then(|x| x.parse::<u64>().ok()).map(|x| x + 1))
}

/// Whether every committed event of a transaction below `horizon` is in the views.
pub async fn caught_up_to(pool: &PgPool, horizon: u64) -> Result<bool, sqlx::Error> {
    let behind: bool = sqlx::query_scalar(
        "SELECT EXISTS (
            SELECT 1 FROM events e, projector_checkpoints c
             WHERE c.projector = 'views'
               AND e.transaction_id < $1::text::xid8
               AND (e.transaction_id, e.position) > (c.transaction_id, c.position))",
    )
    .bind(horizon.to_string())
    .fetch_one(pool)
    .await?;
    Ok(!behind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use studyledger_aggregates::facts::Enrolment;
    use studyledger_aggregates::member::MemberEvent;

    fn event(sequence: usize) -> CommittedEvent {
        CommittedEvent {
            transaction_id: 1,
            position: 1,
            aggregate_type: "member".to_owned(),
            aggregate_id: "m".to_owned(),
            sequence,
            payload: String::new(),
        }
    }

    #[test]
    fn a_cached_member_takes_only_the_events_that_directly_follow_it() {
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(Enrolment {
            member_id: uuid::Uuid::nil(),
            member_no: "M".to_owned(),
            name: "N".to_owned(),
            org_id: "org".parse().expect("slug"),
            enrolled_on: chrono::NaiveDate::MIN,
        }));
        let follows_with = |sequences: &[usize]| {
            let events: Vec<CommittedEvent> = sequences.iter().map(|s| event(*s)).collect();
            let refs: Vec<&CommittedEvent> = events.iter().collect();
            follows(&member, &refs)
        };
        assert!(follows_with(&[2, 3]));
        assert!(follows_with(&[1, 2]), "an event already held is skipped");
        assert!(follows_with(&[1]), "nothing new is fine too");
        assert!(
            !follows_with(&[3]),
            "a gap sends the member back to the store"
        );
        assert!(!follows_with(&[2, 4]));
    }
}
