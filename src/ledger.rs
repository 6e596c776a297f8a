//! The command path: load an aggregate, let it decide, append its events — with the retries
//! and the locking that make concurrent commands safe.
//!
//! Commands on one aggregate in this process queue on a striped lock, so they never race each
//! other; commands from other instances are caught by the append's sequence check, and the
//! command is decided again on fresh state, a bounded number of times with jitter.
//! This is cqrs-es's `CqrsFramework::execute` loop, kept in our hands because callers need the
//! appended positions and the state after the command to answer.

pub mod closures;
pub mod holds;
pub mod moves;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use rand::Rng;
use sqlx::PgPool;
use studyledger_aggregates::activity::Activity;
use studyledger_aggregates::course::Course;
use studyledger_aggregates::determination_run::DeterminationRun;
use studyledger_aggregates::evaluation::Evaluation;
use studyledger_aggregates::member::Clock;
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::Organisation;
use studyledger_aggregates::rulebook::{RuleBook, RuleBookCommand, RULEBOOK_ID};
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::values::OrgId;
use studyledger_projections::sql::orgs;

use crate::store::connections::WriteConnections;
use crate::store::error::StoreError;
use crate::store::event_store::{LedgerContext, LedgerStore, PassOver};
use crate::store::group_commit::GroupCommit;
use crate::store::record::{Appended, Metadata, Recorded};

/// How often a command is decided again after losing a race with another instance.
const MAX_ATTEMPTS: u32 = 8;
const LOCK_STRIPES: usize = 4096;
/// Snapshot a member every this many events: a member's stream grows for years.
const MEMBER_SNAPSHOT_EVERY: usize = 100;
/// Levels of the organisation tree walked at most (national → … → cell is six).
const MAX_TREE_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error("{0}")]
    Rejected(E),
    #[error("too many concurrent changes to the same record; retry")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The aggregate accepted the command, yet the fact is not in its state: a bug.
    #[error("a recorded fact is missing from the aggregate's state")]
    Vanished,
}

/// A fact a command recorded (or had recorded before, for an exact resend): the sequence and
/// global position of its event, and what the caller read of it from the state afterwards.
#[derive(Debug)]
pub struct Fact<T> {
    pub sequence: usize,
    pub position: Option<i64>,
    pub value: T,
}

/// What a command did: the events it appended (none for an exact resend) and the answer
/// computed from the aggregate's state afterwards.
#[derive(Debug)]
pub struct Executed<R> {
    pub appended: Vec<Appended>,
    pub answer: R,
}

#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// Member aggregates kept in memory.
    pub member_cache: usize,
    /// Connections reserved for the command path (besides the pool used for reads).
    pub write_connections: usize,
    /// The `homePage` of the xAPI accounts that name members.
    pub xapi_homepage: String,
    /// A pool on a standby for reads of the views (`DATABASE_READ_URL`), if any.
    pub read_pool: Option<PgPool>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            member_cache: 20_000,
            write_connections: 4,
            xapi_homepage: crate::config::XAPI_HOMEPAGE.to_owned(),
            read_pool: None,
        }
    }
}

/// The aggregates of the ledger and the stores they live in.
pub struct Ledger {
    pool: PgPool,
    read_pool: Option<PgPool>,
    tz: Tz,
    members: LedgerStore<Member>,
    courses: LedgerStore<Course>,
    organisations: LedgerStore<Organisation>,
    rulebook: LedgerStore<RuleBook>,
    evaluations: LedgerStore<Evaluation>,
    determination_runs: LedgerStore<DeterminationRun>,
    locks: Box<[tokio::sync::Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
    activities: LedgerStore<Activity>,
    xapi_homepage: String,
}

/// An aggregate kept in the [`Ledger`].
pub trait Stored: Aggregate<Services = ()> + Clone + PassOver {
    fn store(ledger: &Ledger) -> &LedgerStore<Self>;
}

impl PassOver for Member {
    fn pass_over(&mut self) {
        Member::pass_over(self);
    }
}
impl PassOver for Course {
    fn pass_over(&mut self) {
        Course::pass_over(self);
    }
}
impl PassOver for Organisation {
    fn pass_over(&mut self) {
        Organisation::pass_over(self);
    }
}
impl PassOver for Evaluation {}
impl PassOver for DeterminationRun {}
impl PassOver for RuleBook {}
impl PassOver for Activity {}

impl Stored for Member {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.members
    }
}
impl Stored for Course {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.courses
    }
}
impl Stored for Organisation {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.organisations
    }
}
impl Stored for Evaluation {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.evaluations
    }
}
impl Stored for DeterminationRun {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.determination_runs
    }
}
impl Stored for Activity {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.activities
    }
}
impl Stored for RuleBook {
    fn store(ledger: &Ledger) -> &LedgerStore<Self> {
        &ledger.rulebook
    }
}

impl Ledger {
    pub fn new(pool: PgPool, tz: Tz, settings: &LedgerSettings) -> Arc<Ledger> {
        let writer = Arc::new(GroupCommit::new(WriteConnections::new(
            pool.clone(),
            settings.write_connections,
        )));
        Arc::new(Ledger {
            members: LedgerStore::new(
                pool.clone(),
                writer.clone(),
                settings.member_cache,
                MEMBER_SNAPSHOT_EVERY,
            ),
            courses: LedgerStore::new(pool.clone(), writer.clone(), 10_000, 0),
            organisations: LedgerStore::new(pool.clone(), writer.clone(), 10_000, 0),
            rulebook: LedgerStore::new(pool.clone(), writer.clone(), 1, 0),
            evaluations: LedgerStore::new(pool.clone(), writer.clone(), 1_000, 0),
            determination_runs: LedgerStore::new(pool.clone(), writer.clone(), 1_000, 0),
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            activities: LedgerStore::new(pool.clone(), writer.clone(), 10_000, 0),
            xapi_homepage: settings.xapi_homepage.clone(),
            read_pool: settings.read_pool.clone(),
            pool,
            tz,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The standby's pool for reads of the views, when the deployment has one.
    pub fn read_pool(&self) -> Option<&PgPool> {
        self.read_pool.as_ref()
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The `homePage` of the xAPI accounts that name members.
    pub fn xapi_homepage(&self) -> &str {
        &self.xapi_homepage
    }

    /// Holds the command locks of these members (see [`Ledger::execute`]), taken in one order
    /// so that two holders of several never wait on each other.
    pub async fn lock_members(
        &self,
        member_ids: &[String],
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = member_ids
            .iter()
            .map(|id| self.stripe_of::<Member>(id))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.locks[stripe].lock().await);
        }
        guards
    }

    /// The aggregate for a command decided outside [`Ledger::execute`]: from the cache (taken
    /// out of it) or the database. The caller holds its lock, appends with
    /// [`Ledger::append_on`], and hands it back with [`Ledger::keep`] once committed.
    pub async fn take<A: Stored>(
        &self,
        aggregate_id: &str,
    ) -> Result<LedgerContext<A>, StoreError> {
        A::store(self).take(aggregate_id).await
    }

    pub fn keep<A: Stored>(&self, context: LedgerContext<A>) {
        A::store(self).keep(context);
    }

    /// Appends events decided on `context` inside the caller's transaction.
    pub async fn append_on<A: Stored>(
        &self,
        connection: &mut sqlx::PgConnection,
        events: &[A::Event],
        context: &mut LedgerContext<A>,
        metadata: &Metadata,
    ) -> Result<Vec<Appended>, StoreError> {
        A::store(self)
            .append_on(connection, events, context, metadata)
            .await
    }

    /// The time now for a command's decision, in microseconds (what PostgreSQL keeps, so an
    /// instant in a payload reads the same as in a view), and the ledger's time zone.
    pub fn clock(&self) -> Clock {
        Clock {
            now: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
            tz: self.tz,
        }
    }

    fn stripe_of<A: Aggregate>(&self, aggregate_id: &str) -> usize {
        let hash = self.hasher.hash_one((A::TYPE, aggregate_id));
        usize::try_from(hash % LOCK_STRIPES as u64).unwrap_or(0)
    }

    fn lock_for<A: Aggregate>(&self, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        &self.locks[self.stripe_of::<A>(aggregate_id)]
    }

    /// Decides `command` on the aggregate and appends what it decided. `answer` reads the
    /// aggregate's state after the command (also for an exact resend, which appends nothing).
    ///
    /// A request dropped half-way is safe: nothing is written before the append, the append
    /// withdraws or completes its row (see `group_commit`), and the cached aggregate is only
    /// put back after a successful append, so the next command reloads from the database.
    pub async fn execute<A, R>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        answer: impl Fn(&A) -> R,
    ) -> Result<Executed<R>, CommandError<A::Error>>
    where
        A: Stored,
        A::Command: Clone,
    {
        let mut metadata = metadata.clone();
        let store = A::store(self);
        let _guard = self.lock_for::<A>(aggregate_id).lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let mut context = store.take(aggregate_id).await?;
            let sink = EventSink::<A>::default();
            if let Err(rejection) = context.aggregate.handle(command.clone(), &(), &sink).await {
                // `decide` runs before any event is written, so the state is untouched.
                store.keep(context);
                return Err(CommandError::Rejected(rejection));
            }
            let events = sink.collect().await;
            // Recorded now, under the aggregate's lock, so recording times follow sequences;
            // in microseconds, the precision PostgreSQL keeps, so metadata and column agree.
            metadata.recorded_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
            match store.append(&events, &mut context, &metadata).await {
                Ok(appended) => {
                    let answer = answer(&context.aggregate);
                    store.keep(context);
                    return Ok(Executed { appended, answer });
                }
                Err(StoreError::Conflict) => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "append conflict; deciding again"
                    );
                    let ceiling = 5u64 << attempt.min(6);
                    let pause = rand::rng().random_range(1..=ceiling);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                // The outcome of a failed append is unknown (the commit may have happened), so
                // the context is dropped and the next command reloads.
                Err(other) => return Err(other.into()),
            }
        }
        Err(CommandError::Contention)
    }

    /// Runs a command that records one fact. `find` locates the fact in the state afterwards —
    /// its event's sequence and what the answer needs — so that a resend, which appends
    /// nothing, answers exactly as the first request did.
    pub async fn record<A, T>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        find: impl Fn(&A) -> Option<(usize, T)>,
    ) -> Result<Fact<T>, CommandError<A::Error>>
    where
        A: Stored,
        A::Command: Clone,
    {
        let executed = self
            .execute::<A, _>(aggregate_id, command, metadata, find)
            .await?;
        let Some((sequence, value)) = executed.answer else {
            tracing::error!(
                aggregate = A::TYPE,
                aggregate_id,
                "a recorded fact vanished"
            );
            return Err(CommandError::Vanished);
        };
        let position = self
            .position_after::<A>(aggregate_id, &executed.appended, sequence)
            .await?;
        Ok(Fact {
            sequence,
            position,
            value,
        })
    }

    /// Appends what was decided on many members in one statement inside the caller's
    /// transaction (bulk import).
    pub async fn append_members_on(
        &self,
        connection: &mut sqlx::PgConnection,
        appends: &mut [(
            &mut LedgerContext<Member>,
            Vec<<Member as Aggregate>::Event>,
        )],
        metadata: &Metadata,
    ) -> Result<usize, StoreError> {
        self.members
            .append_many_on(connection, appends, metadata)
            .await
    }

    /// Members as stored, each as of a sequence (`through`, by id), read in one statement on
    /// the caller's connection (inside its transaction).
    pub async fn load_members_on(
        &self,
        connection: &mut sqlx::PgConnection,
        member_ids: &[String],
        through: &[i64],
    ) -> Result<Vec<LedgerContext<Member>>, StoreError> {
        self.members
            .load_many_on(connection, member_ids, through)
            .await
    }

    /// Loads a member as of sequence `through` from its events on the caller's connection,
    /// passing over `skipped`.
    pub async fn load_member_passing_over_on(
        &self,
        connection: &mut sqlx::PgConnection,
        member_id: &str,
        skipped: &std::collections::BTreeSet<usize>,
        through: usize,
    ) -> Result<LedgerContext<Member>, StoreError> {
        self.members
            .load_passing_over_on(connection, member_id, skipped, through)
            .await
    }

    /// The aggregate as stored now, read from the database (never from the cache, which may
    /// lag behind another instance's writes).
    pub async fn read<A: Stored>(&self, aggregate_id: &str) -> Result<(A, usize), StoreError> {
        let context = A::store(self).load_fresh(aggregate_id).await?;
        Ok((context.aggregate, context.sequence))
    }

    /// The aggregate from the cache when it is there, else from the database. Only for what
    /// never changes once recorded: an activity's link, whether a course or organisation is
    /// registered (a course's terms, an organisation's name and parent do change: read those
    /// with [`Ledger::read`]).
    pub async fn read_immutable<A: Stored>(&self, aggregate_id: &str) -> Result<A, StoreError> {
        let store = A::store(self);
        if let Some(aggregate) = store.peek_cached(aggregate_id) {
            return Ok(aggregate);
        }
        let context = store.load_fresh(aggregate_id).await?;
        let aggregate = context.aggregate.clone();
        store.keep(context);
        Ok(aggregate)
    }

    /// The global position of the event a command answers for: the last one it appended, or,
    /// for an exact resend that appended nothing, the event that recorded the fact first.
    pub async fn position_after<A: Stored>(
        &self,
        aggregate_id: &str,
        appended: &[Appended],
        recorded_sequence: usize,
    ) -> Result<Option<i64>, StoreError> {
        match appended.last() {
            Some(appended) => Ok(Some(appended.position)),
            None => {
                A::store(self)
                    .position_of(aggregate_id, recorded_sequence)
                    .await
            }
        }
    }

    /// Whether `org_id` is `ancestor` or lies below it in the organisation tree of today (an
    /// unknown organisation lies nowhere). The tree as the views hold it answers (one indexed
    /// read); an organisation registered so recently that the views do not hold it yet is
    /// walked up in the log (its parent, their parents: moves change parents, so none of it
    /// comes from the cache).
    pub async fn organisation_within(
        &self,
        org_id: &OrgId,
        ancestor: &OrgId,
    ) -> Result<bool, StoreError> {
        if let Some(within) = orgs::within(self.pool(), org_id.as_str(), ancestor.as_str()).await? {
            return Ok(within);
        }
        let mut current = org_id.clone();
        // A tree deeper than this is not one the registry could have built.
        for _ in 0..MAX_TREE_DEPTH {
            if &current == ancestor {
                return Ok(true);
            }
            let (organisation, _) = self.read::<Organisation>(current.as_str()).await?;
            match organisation.parent() {
                Some(parent) => current = parent.clone(),
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Every published ruleset, fresh from the database.
    pub async fn rulesets(&self) -> Result<Vec<Ruleset>, StoreError> {
        let (rulebook, _) = self.read::<RuleBook>(RULEBOOK_ID).await?;
        Ok(rulebook.rulesets().to_vec())
    }

    /// A stream as stored; with `as_of`, only what was recorded by then.
    pub async fn history<A: Stored>(
        &self,
        aggregate_id: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<Recorded<A::Event>>, StoreError> {
        A::store(self).history(aggregate_id, as_of).await
    }

    /// The rulesets that had been published by `as_of`.
    pub async fn rulesets_as_of(&self, as_of: DateTime<Utc>) -> Result<Vec<Ruleset>, StoreError> {
        let mut rulebook = RuleBook::default();
        for recorded in self.history::<RuleBook>(RULEBOOK_ID, Some(as_of)).await? {
            if let Some(event) = recorded.event {
                rulebook.apply(event);
            }
        }
        Ok(rulebook.rulesets().to_vec())
    }

    /// Publishes ruleset version 1 into an empty ledger (a resend is a no-op).
    pub async fn publish_initial_rules(
        &self,
    ) -> Result<(), CommandError<<RuleBook as Aggregate>::Error>> {
        let (rulebook, _) = self.read::<RuleBook>(RULEBOOK_ID).await?;
        if !rulebook.rulesets().is_empty() {
            return Ok(());
        }
        self.execute::<RuleBook, ()>(
            RULEBOOK_ID,
            RuleBookCommand::Publish(Ruleset::version_1()),
            &Metadata::system("initial-ruleset"),
            |_| (),
        )
        .await?;
        Ok(())
    }
}
