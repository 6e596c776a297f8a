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
use sqlx::{Connection, PgConnection};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::{Organisation, OrganisationEvent};
use studyledger_aggregates::rulebook::RuleBook;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_projections::fold::MemberFold;
use studyledger_projections::sql::members::replace_members;
use studyledger_projections::sql::orgs::upsert_organisation;

use crate::ledger::Ledger;
use crate::store::commit_order::{self, CommittedEvent};
use crate::store::database;
use crate::store::error::StoreError;
use crate::store::lock;
use crate::telemetry;

/// Events per batch: large enough that catching up shares work across many events, small
/// enough that one batch's transaction stays short.
pub const BATCH_SIZE: i64 = 10_000;
/// How long an idle projector waits before looking for new events.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often the projector makes sure its advisory lock's connection is still alive.
const LOCK_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored event cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
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
        let from = commit_order::checkpoint_on(&mut tx, false).await?;
        let batch = commit_order::read_committed(&mut tx, from, BATCH_SIZE).await?;
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
        if commit_order::checkpoint_on(&mut tx, true).await? != from {
            tx.rollback().await?;
            return Ok(0);
        }
        // Views and checkpoint commit together or not at all, and both are derived from the
        // log: a crash that loses the last batch's commit loses its checkpoint with it, and the
        // batch is simply applied again. So the projector need not wait for the WAL flush.
        database::skip_flush_wait(&mut tx).await?;
        let last = last.checkpoint();
        self.apply(&mut tx, &batch, rulesets.as_slice()).await?;
        commit_order::advance(&mut tx, last, batch.len()).await?;
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
                    upsert_organisation(tx, &record).await?;
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
        replace_members(tx, &folded, rulesets).await?;
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
