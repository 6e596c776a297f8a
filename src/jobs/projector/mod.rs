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

mod batch;

use batch::{Read, ReadBatch};

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_es::Aggregate;
use lru::LruCache;
use sqlx::{Connection, PgConnection};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rulebook::RuleBook;
use studyledger_aggregates::rules::rulesets::Ruleset;

use crate::ledger::Ledger;
use crate::store::commit_order::{self, Checkpoint, CommittedEvent};
use crate::store::database;
use crate::store::error::StoreError;
use crate::store::lock;
use crate::store::skipped::{self, Skip, SkipMap};
use crate::telemetry;

/// Events per batch: large enough that catching up shares work across many events, small
/// enough that one batch's transaction stays short.
pub const BATCH_SIZE: i64 = 10_000;
/// Events per batch while catching up: each full batch doubles the next one up to this, so
/// that a long way behind, fewer members are rewritten in more than one batch and the work of
/// each statement is shared by more events; the first batch that is not full goes back to
/// [`BATCH_SIZE`].
pub const CATCH_UP_BATCH_SIZE: i64 = 80_000;

/// The limit of the batch after one of `limit` events that applied `applied`: doubled after
/// a full one (catching up), back to [`BATCH_SIZE`] after one that was not, and doubled back
/// towards it after a smaller batch that succeeded (see [`Projector::step`]).
fn next_limit(limit: i64, applied: usize) -> i64 {
    let full = i64::try_from(applied).is_ok_and(|n| n >= limit);
    if full {
        (limit * 2).min(CATCH_UP_BATCH_SIZE)
    } else if applied > 0 {
        (limit * 2).min(BATCH_SIZE)
    } else {
        limit
    }
}
/// How long an idle projector waits before looking for new events.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often the projector makes sure its advisory lock's connection is still alive.
const LOCK_CHECK: Duration = Duration::from_secs(1);
/// How long the lock connection may take to answer a check before the projector gives the
/// lock up for lost: a host that died without closing its sockets (a machine gone from the
/// network) would otherwise keep the check waiting until the kernel's TCP timeouts.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProjectorError {
    /// Whether the database refused what an event says (a data exception, a broken
    /// constraint, a limit of the server) rather than failing as a server: an event, not the
    /// projector, is at fault, and it must be found and passed over.
    fn is_about_an_event(&self) -> bool {
        let error = match self {
            ProjectorError::Database(e) | ProjectorError::Store(StoreError::Database(e)) => e,
            ProjectorError::Store(_) => return false,
        };
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| ["22", "23", "54"].iter().any(|c| code.starts_with(c)))
    }
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
    /// The skipped member events, read at the first step and added to as events are skipped:
    /// a member with any is loaded from its events alone, passing over those.
    skips: Mutex<Option<Arc<SkipMap>>>,
    /// Events per batch now. A batch the database refuses for what an event holds is halved
    /// until that event stands alone, and then passed over; successes double it back.
    limit: AtomicI64,
    /// While catching up: the next batch, read on a connection of its own while this one is
    /// applied, so that reading and applying overlap.
    ahead: Mutex<Option<ReadAhead>>,
}

/// A batch being read ahead: the events after `after`, at most `limit`. One no longer wanted
/// is never aborted, only dropped: its task reads to the end of its COPY and gives the
/// connection back to the pool in a clean state (a COPY cut off half way would leave the
/// connection with rows nobody reads, and the next statement on it would receive them).
struct ReadAhead {
    after: Checkpoint,
    limit: i64,
    reading: tokio::task::JoinHandle<Result<ReadBatch, sqlx::Error>>,
}

impl Projector {
    pub fn new(ledger: Arc<Ledger>, member_cache: usize) -> Projector {
        Projector {
            ledger,
            members: Mutex::new(LruCache::new(
                NonZeroUsize::new(member_cache).unwrap_or(NonZeroUsize::MIN),
            )),
            rulesets: Mutex::new(None),
            skips: Mutex::new(None),
            limit: AtomicI64::new(BATCH_SIZE),
            ahead: Mutex::new(None),
        }
    }

    fn cached_ahead(&self) -> std::sync::MutexGuard<'_, Option<ReadAhead>> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The batch after `from`: read ahead if it was, else now on `tx`.
    async fn next_batch(
        &self,
        tx: &mut PgConnection,
        from: Checkpoint,
        limit: i64,
    ) -> Result<ReadBatch, ProjectorError> {
        let ahead = self.cached_ahead().take();
        if let Some(ahead) = ahead {
            if ahead.after == from && ahead.limit == limit {
                if let Ok(Ok(batch)) = ahead.reading.await {
                    return Ok(batch);
                }
            }
            // A read ahead for another place is left to finish on its own and dropped: see
            // `ReadAhead`.
        }
        let committed = commit_order::read_committed(tx, from, limit).await?;
        Ok(ReadBatch::off_the_runtime(committed).await)
    }

    /// Starts reading the batch after `after` on a connection of its own.
    fn read_ahead(&self, after: Checkpoint, limit: i64) {
        let pool = self.ledger.pool().clone();
        let reading = tokio::spawn(async move {
            let mut connection = pool.acquire().await?;
            let committed = commit_order::read_committed(&mut connection, after, limit).await?;
            drop(connection);
            Ok(ReadBatch::off_the_runtime(committed).await)
        });
        // A stale read ahead is left to finish on its own (see `ReadAhead`).
        drop(self.cached_ahead().replace(ReadAhead {
            after,
            limit,
            reading,
        }));
    }

    fn cached_rulesets(&self) -> std::sync::MutexGuard<'_, Option<Arc<Vec<Ruleset>>>> {
        self.rulesets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached_skips(&self) -> std::sync::MutexGuard<'_, Option<Arc<SkipMap>>> {
        self.skips.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The skipped member events as last read, or read now.
    async fn skips(&self) -> Result<Arc<SkipMap>, ProjectorError> {
        if let Some(skips) = self.cached_skips().clone() {
            return Ok(skips);
        }
        let skips = Arc::new(skipped::member_skips(self.ledger.pool()).await?);
        *self.cached_skips() = Some(skips.clone());
        Ok(skips)
    }

    /// Adds events just listed as skipped (their transaction committed).
    fn note_skips(&self, found: &[Skip]) {
        if found.is_empty() {
            return;
        }
        telemetry::events_skipped(found.len());
        for skip in found {
            tracing::warn!(
                aggregate_type = %skip.aggregate_type,
                aggregate_id = %skip.aggregate_id,
                sequence = skip.sequence,
                position = skip.position,
                reason = %skip.reason,
                "an event cannot be applied; passed over (GET /v1/skipped-events lists it)"
            );
        }
        let mut cached = self.cached_skips();
        if let Some(skips) = cached.as_mut() {
            let skips = Arc::make_mut(skips);
            for skip in found.iter().filter(|s| s.aggregate_type == Member::TYPE) {
                skips
                    .entry(skip.aggregate_id.clone())
                    .or_default()
                    .insert(usize::try_from(skip.sequence).unwrap_or(0));
            }
        }
    }

    fn members(&self) -> std::sync::MutexGuard<'_, LruCache<String, Member>> {
        // Every operation under this lock is a single LruCache call: never half done.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// States are facts from the log and stay true, but start afresh after any failure
    /// rather than reason about what the failed batch left behind.
    fn forget(&self) {
        self.members().clear();
        *self.cached_rulesets() = None;
        *self.cached_skips() = None;
        // Left to finish on its own (see `ReadAhead`).
        drop(self.cached_ahead().take());
    }

    /// Applies one batch; answers how many events it applied or passed over (0: caught up).
    pub async fn step(&self) -> Result<usize, ProjectorError> {
        loop {
            let limit = self.limit.load(Ordering::Relaxed);
            let error = match self.try_step(limit).await {
                Ok(applied) => {
                    self.limit
                        .store(next_limit(limit, applied), Ordering::Relaxed);
                    return Ok(applied);
                }
                Err(error) => error,
            };
            self.forget();
            if !error.is_about_an_event() {
                return Err(error);
            }
            if limit > 1 {
                tracing::debug!(%error, limit, "a batch was refused; trying a smaller one");
                self.limit.store(limit / 2, Ordering::Relaxed);
                continue;
            }
            let skipped = self.skip_next(&error).await?;
            self.limit.store(BATCH_SIZE, Ordering::Relaxed);
            return Ok(skipped);
        }
    }

    async fn try_step(&self, limit: i64) -> Result<usize, ProjectorError> {
        // Read before anything is locked or written: an idle projector costs no transaction id.
        // Everything the batch needs besides the batch comes before the transaction too: inside
        // it, waiting on another connection could deadlock against a lock queued on `events`.
        let rulesets = self.rulesets().await?;
        let skips = self.skips().await?;
        let mut tx = self.ledger.pool().begin().await?;
        let from = commit_order::checkpoint_on(&mut tx, false).await?;
        let ReadBatch { committed, reads } = self.next_batch(&mut tx, from, limit).await?;
        let batch = &committed.events;
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
            return Box::pin(self.try_step(limit)).await;
        }
        // Work to do: take the checkpoint row; if another projector moved it meanwhile, leave
        // this batch to it.
        if commit_order::checkpoint_on(&mut tx, true).await? != from {
            tx.rollback().await?;
            return Ok(0);
        }
        // Views and checkpoint commit together or not at all, and both are derived from the
        // log: a crash that loses the last batch's commit loses its checkpoint with it, and the
        // batch is simply applied again. So the projector need not wait for the WAL flush.
        database::skip_flush_wait(&mut tx).await?;
        let last = last.checkpoint();
        // A full batch: more is waiting, so read it while this one is applied.
        let full = i64::try_from(batch.len()).is_ok_and(|n| n >= limit);
        if full {
            self.read_ahead(last, next_limit(limit, batch.len()));
        }
        let found = self.apply(&mut tx, batch, reads, &rulesets, &skips).await?;
        skipped::record(&mut *tx, &found, "projector").await?;
        // A batch that is not full holds every event below the horizon it was read under.
        let covered = (!full).then_some(committed.below);
        commit_order::advance(&mut tx, last, batch.len(), covered).await?;
        tx.commit().await?;
        self.note_skips(&found);
        Ok(batch.len())
    }

    /// The next event cannot be applied, even alone: list it as skipped and move the
    /// checkpoint past it, in one transaction.
    async fn skip_next(&self, error: &ProjectorError) -> Result<usize, ProjectorError> {
        let mut tx = self.ledger.pool().begin().await?;
        let from = commit_order::checkpoint_on(&mut tx, true).await?;
        let next = commit_order::read_committed(&mut tx, from, 1).await?;
        let Some(event) = next.events.first() else {
            tx.rollback().await?;
            return Ok(0);
        };
        let found = [batch::skip(event, error)];
        skipped::record(&mut *tx, &found, "projector").await?;
        commit_order::advance(&mut tx, event.checkpoint(), 1, None).await?;
        tx.commit().await?;
        self.note_skips(&found);
        Ok(1)
    }

    /// Applies a batch to the views; answers the events in it that cannot be read.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        batch: &[CommittedEvent],
        reads: Vec<Read>,
        rulesets: &[Ruleset],
        skips: &SkipMap,
    ) -> Result<Vec<Skip>, ProjectorError> {
        let mut sorted = batch::Sorted::of(batch, reads);
        for change in &sorted.organisations {
            change.write(&mut *tx).await?;
        }
        if sorted.members.is_empty() {
            return Ok(sorted.unreadable);
        }
        let states = self.member_states(tx, &mut sorted, skips).await?;
        batch::write_members(tx, &states, rulesets, &self.ledger, &sorted.set_aside).await?;
        self.keep(states);
        Ok(sorted.unreadable)
    }

    /// Each member of the batch with its events applied: from the cache when the cached state
    /// directly precedes them, else from the store (passing over its skipped events).
    async fn member_states(
        &self,
        tx: &mut PgConnection,
        sorted: &mut batch::Sorted<'_>,
        skips: &SkipMap,
    ) -> Result<Vec<(String, Member)>, ProjectorError> {
        let mut states: Vec<(String, Member)> = Vec::with_capacity(sorted.members.len());
        // Members the cache cannot serve, each with the last sequence of the batch: loaded as
        // of that event, so that the rows (and a refusal by the database) belong to the batch.
        let mut misses: Vec<(String, usize)> = Vec::new();
        for (id, events) in std::mem::take(&mut sorted.members) {
            // A member not cached whose events here start at sequence 1 needs no load: the
            // batch holds its whole stream so far (a new member, or a catch-up from zero).
            let member = self.members().pop(id).unwrap_or_default();
            let through = events.last().map_or(0, |(sequence, _)| *sequence);
            match batch::advanced(member, events) {
                Some(member) => states.push((id.to_owned(), member)),
                None => misses.push((id.to_owned(), through)),
            }
        }
        let (mut plain, mut plain_through) = (Vec::new(), Vec::new());
        for (id, through) in misses {
            let mut passed = skips.get(&id).cloned().unwrap_or_default();
            passed.extend(sorted.unreadable_of(&id));
            if passed.is_empty() {
                plain.push(id);
                plain_through.push(i64::try_from(through).unwrap_or(i64::MAX));
            } else {
                let ledger = &self.ledger;
                let context = ledger
                    .load_member_passing_over_on(tx, &id, &passed, through)
                    .await?;
                states.push((id, context.aggregate));
            }
        }
        if !plain.is_empty() {
            let loaded = self.ledger.load_members_on(tx, &plain, &plain_through);
            for context in loaded.await? {
                states.push((context.aggregate_id, context.aggregate));
            }
        }
        Ok(states)
    }

    /// Keeps the states the batch left for the next one.
    fn keep(&self, states: Vec<(String, Member)>) {
        let mut cache = self.members();
        for (id, member) in states {
            cache.put(id, member);
        }
    }

    /// Runs until the process ends: waits for the advisory lock, then applies batches,
    /// polling briefly when there is nothing new.
    pub async fn run(self) {
        loop {
            if let Err(error) = self.hold_lock_and_project().await {
                telemetry::projector_error();
                tracing::warn!(%error, "projector stopped; retrying");
                // Cached states are facts from the log and stay valid; the lock may not be ours.
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn hold_lock_and_project(&self) -> Result<(), ProjectorError> {
        let mut lock_connection = self.ledger.pool().acquire().await?.detach();
        loop {
            if lock::try_lock(&mut lock_connection, lock::PROJECTOR).await? {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!("projector active");
        let mut pinged = std::time::Instant::now();
        loop {
            let applied = self.step().await?;
            telemetry::projector_batch(applied);
            // Still ours? A lost lock connection means another instance may take over.
            if pinged.elapsed() >= LOCK_CHECK {
                tokio::time::timeout(LOCK_CHECK_TIMEOUT, lock_connection.ping())
                    .await
                    .map_err(|_| {
                        sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the projector's lock connection did not answer its check",
                        ))
                    })??;
                pinged = std::time::Instant::now();
            }
            if applied == 0 {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_while_catching_up_and_shrink_once_caught_up() {
        assert_eq!(
            next_limit(BATCH_SIZE, 10_000),
            2 * BATCH_SIZE,
            "a full batch doubles"
        );
        assert_eq!(next_limit(CATCH_UP_BATCH_SIZE, 80_000), CATCH_UP_BATCH_SIZE);
        assert_eq!(next_limit(CATCH_UP_BATCH_SIZE, 12), BATCH_SIZE, "caught up");
        assert_eq!(next_limit(BATCH_SIZE, 0), BATCH_SIZE, "nothing new");
        assert_eq!(
            next_limit(1, 1),
            2,
            "after a refused batch, successes double it back"
        );
        assert_eq!(next_limit(4, 3), 8);
    }
}
