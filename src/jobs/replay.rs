//! Replay (DESIGN §3 rule 10): rebuild every view from the event log under the current
//! rulesets, into fresh tables, and swap them in atomically; or, as a dry run, only list who
//! changes status.
//!
//! - **What it replays:** every event of a transaction below the snapshot's `xmax` when it
//!   starts, once every transaction of this database open then has ended (all of them final,
//!   none can still appear below it; at most 30 s of waiting, else below `pg_snapshot_xmin`).
//!   The projector's checkpoint is set to the last of them at the swap, and the projector
//!   re-applies whatever came later.
//! - **How:** member events stream in member order (the events' primary key), are folded one
//!   member at a time, and written in bulk (multi-row inserts of a few thousand members) by a
//!   second connection into fresh copies of the view tables (`projections::sql::rebuild`).
//!   Memory holds one member and a couple of write batches, whatever the store's size.
//! - **Swap:** one transaction locks the projector's checkpoint and the live tables, moves the
//!   live tables out and the new ones in, and sets the checkpoint. Readers hold their tables
//!   for a statement (or a roll-up's transaction), so they see the old views or the new ones,
//!   never a mix, and never a half-built table.
//! - **Failure:** a replay that fails or dies leaves the live views alone; the next replay
//!   drops what the last one left behind and starts again. One replay runs at a time (an
//!   advisory lock); a replay still marked running without holding it was interrupted.
//! - **Diff:** for each member and evaluation, the final recorded eligibility against the
//!   same quarters judged again under the replay's rules and the member's facts.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use studyledger_aggregates::member::{Clock, Member, MemberEvent};
use studyledger_aggregates::organisation::{Organisation, OrganisationEvent};
use studyledger_aggregates::rules::eligibility::{eligibility_change, EligibilityChange};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_projections::counters::{contributions, Deltas};
use studyledger_projections::fold::MemberFold;
use studyledger_projections::sql::members::MemberRows;
use studyledger_projections::sql::orgs::OrgChange;
use studyledger_projections::sql::replays::{self, ReplayChange};
use studyledger_projections::sql::{counters, rebuild};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::jobs::progress::Progress;
use crate::ledger::Ledger;
use crate::store::commit_order::{self, Cover};
use crate::store::error::StoreError;
use crate::store::skipped::{self, Skip};
use crate::store::streams::StreamEvent;
use crate::store::{database, lock, streams};
use crate::telemetry;

/// Members per bulk write.
const MEMBERS_PER_WRITE: usize = 2_000;
/// Raw events per hand-over from the reader to the folder.
const EVENTS_PER_CHUNK: usize = 4_096;
/// How long a swap keeps trying to take the live tables from long readers (each try waits
/// at most a second, so readers queued behind it wait no longer than that).
const SWAP_PATIENCE: Duration = Duration::from_secs(600);
/// How often the replay's row shows its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long a replay waits for the transactions open when it starts to end.
const COVER_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("a replay is already running")]
    AlreadyRunning,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored event cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the replay's {0} stopped")]
    Stopped(&'static str),
}

/// A replay that holds the lock and has its row, ready to run.
pub struct Started {
    pub replay_id: Uuid,
    pub dry_run: bool,
    lock: PgConnection,
}

/// Takes the replay lock and records a new replay as running.
pub async fn start(ledger: &Ledger, dry_run: bool, actor: &str) -> Result<Started, ReplayError> {
    let mut lock = ledger.pool().acquire().await?.detach();
    // A replay marks its outcome a moment before it lets the lock go: while none is marked
    // running, the holder is finishing, so wait for it (a little) rather than refuse.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lock::try_lock(&mut lock, lock::REPLAY).await? {
        if replays::any_running(&mut lock).await? || Instant::now() >= deadline {
            return Err(ReplayError::AlreadyRunning);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The lock is ours: a replay still marked running died without finishing.
    replays::mark_interrupted(&mut lock).await?;
    let replay_id = Uuid::new_v4();
    replays::record_start(&mut lock, replay_id, dry_run, actor).await?;
    Ok(Started {
        replay_id,
        dry_run,
        lock,
    })
}

/// What a replay tells its watcher as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Report {
    /// Member events to replay in all.
    Total(u64),
    /// More member events replayed.
    Advanced(u64),
}

/// What a finished replay did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub replay_id: Uuid,
    pub dry_run: bool,
    pub events: u64,
    pub members: u64,
    pub changes: u64,
    pub rules_version: u32,
}

/// Runs a started replay to its end and records the outcome in its row.
pub async fn run(
    ledger: Arc<Ledger>,
    started: Started,
    report: impl Fn(Report) + Send + Sync,
) -> Result<Summary, ReplayError> {
    let Started {
        replay_id,
        dry_run,
        lock,
    } = started;
    let outcome = replay(&ledger, replay_id, dry_run, &report).await;
    let pool = ledger.pool();
    match &outcome {
        // A rebuild marked itself in the swap's transaction.
        Ok(summary) if dry_run => {
            let (events, members) = (to_i64(summary.events), to_i64(summary.members));
            replays::mark_succeeded(pool, replay_id, events, members).await?;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%replay_id, %error, "replay failed");
            if !dry_run {
                // Best effort: the next replay drops it anyway.
                let _ = rebuild::drop_next(pool).await;
            }
            replays::mark_failed(pool, replay_id, &error.to_string()).await?;
        }
    }
    // Closing the connection releases the lock.
    let _ = lock.close().await;
    outcome
}

/// Runs a started replay with a progress bar on a terminal (plain lines otherwise).
pub async fn run_with_progress(
    ledger: Arc<Ledger>,
    started: Started,
) -> Result<Summary, ReplayError> {
    let progress: std::sync::OnceLock<Progress> = std::sync::OnceLock::new();
    let summary = run(ledger, started, |report| match report {
        Report::Total(total) => {
            let _ = progress.set(Progress::new("replay", total));
        }
        Report::Advanced(n) => {
            if let Some(progress) = progress.get() {
                progress.advance(n);
            }
        }
    })
    .await?;
    if let Some(progress) = progress.get() {
        progress.finish();
    }
    Ok(summary)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the folder hands the writer.
struct WriteBatch {
    rows: MemberRows,
    changes: Vec<ReplayChange>,
}

async fn replay(
    ledger: &Ledger,
    replay_id: Uuid,
    dry_run: bool,
    report: &(impl Fn(Report) + Send + Sync),
) -> Result<Summary, ReplayError> {
    let pool = ledger.pool();
    let rulesets = ledger.rulesets().await?;
    let rules_version = latest_version(&rulesets).unwrap_or(0);
    let mut reader = pool.acquire().await?.detach();
    let cover = commit_order::cover(&mut reader, COVER_WAIT).await?;
    let total = streams::count_member_events_below(&mut reader, &cover.horizon).await?;
    let version = i32::try_from(rules_version).unwrap_or(i32::MAX);
    replays::record_total(pool, replay_id, total, version).await?;
    report(Report::Total(u64::try_from(total).unwrap_or(0)));

    let mut writer = pool.acquire().await?.detach();
    // "does not exist, skipping" and the like are expected here, not news.
    database::warnings_only(&mut writer).await?;
    let skips = skipped::positions(pool).await?;
    let unreadable_organisations = if dry_run {
        Vec::new()
    } else {
        prepare_tables(&mut writer, &mut reader, &cover, &skips).await?
    };
    let (batches, received) = mpsc::channel::<WriteBatch>(2);
    let writing = tokio::spawn(write_batches(writer, replay_id, dry_run, received));
    let mut folder = Folder::new(ledger, &rulesets, dry_run, replay_id);
    folder.skips = skips;
    let folded = folder
        .fold_all(reader, &cover, &batches, report, &unreadable_organisations)
        .await;
    drop(batches);
    // The writer's own error first: when it fails, the folder only sees it stop.
    let mut writer = writing
        .await
        .map_err(|_| ReplayError::Stopped("writer"))??;
    let (events, members, changes, counts) = folded?;
    let summary = Summary {
        replay_id,
        dry_run,
        events,
        members,
        changes,
        rules_version,
    };
    if !dry_run {
        counters::add_counts(&mut writer, counts.into_changes()).await?;
        rebuild::index_next(&mut writer).await?;
        swap(&mut writer, &cover, &summary).await?;
    }
    let _ = writer.close().await;
    Ok(summary)
}

/// Creates the new tables and fills the organisation tree (small, in commit order: parents
/// before children).
/// Answers the organisation events that cannot be read (passed over, like those listed as
/// skipped already).
async fn prepare_tables(
    writer: &mut PgConnection,
    reader: &mut PgConnection,
    cover: &Cover,
    skips: &HashSet<i64>,
) -> Result<Vec<Skip>, ReplayError> {
    rebuild::create_next(writer).await?;
    let mut unreadable = Vec::new();
    for event in streams::organisation_events_below(reader, &cover.horizon).await? {
        if skips.contains(&event.position) {
            continue;
        }
        match serde_json::from_str::<OrganisationEvent>(&event.payload) {
            Ok(org_event) => {
                OrgChange::of(&event.aggregate_id, org_event)
                    .write(writer)
                    .await?;
            }
            Err(error) => unreadable.push(event.skip(Organisation::TYPE, &error)),
        }
    }
    Ok(unreadable)
}

/// A chunk of member events.
type Chunk = Vec<StreamEvent>;

/// Streams member events in member order from `reader`, in chunks, beside the folder, so that
/// reading and folding overlap.
fn read_member_events(
    mut reader: PgConnection,
    horizon: String,
) -> (
    mpsc::Receiver<Chunk>,
    tokio::task::JoinHandle<Result<(), sqlx::Error>>,
) {
    let (chunks, incoming) = mpsc::channel::<Chunk>(4);
    let reading = tokio::spawn(async move {
        let mut rows = streams::member_events_by_member(&mut reader, &horizon);
        let mut chunk = Vec::with_capacity(EVENTS_PER_CHUNK);
        while let Some(row) = rows.try_next().await? {
            chunk.push(row);
            if chunk.len() == EVENTS_PER_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(EVENTS_PER_CHUNK));
                if chunks.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.send(chunk).await;
        }
        Ok(())
    });
    (incoming, reading)
}

/// Folds members one at a time as their events stream in, and hands their rows and changes to
/// the writer in batches.
struct Folder<'a> {
    ledger: &'a Ledger,
    rulesets: &'a [Ruleset],
    dry_run: bool,
    replay_id: Uuid,
    clock: Clock,
    rows: MemberRows,
    changes: Vec<ReplayChange>,
    members: u64,
    changes_total: u64,
    /// The positions of the events listed as skipped when the replay started: passed over.
    skips: HashSet<i64>,
    /// Events found that cannot be read (passed over), listed at the end.
    unreadable: Vec<Skip>,
    /// Per member, the skipped events its stream set aside: (skipped, setting-aside) sequences.
    set_aside: Vec<(String, Vec<(i64, i64)>)>,
    /// Everybody's part in the roll-up counters, summed as the members go by.
    counts: Deltas,
}

impl<'a> Folder<'a> {
    fn new(ledger: &'a Ledger, rulesets: &'a [Ruleset], dry_run: bool, replay_id: Uuid) -> Self {
        Folder {
            ledger,
            rulesets,
            dry_run,
            replay_id,
            clock: ledger.clock(),
            rows: MemberRows::default(),
            changes: Vec::new(),
            members: 0,
            changes_total: 0,
            skips: HashSet::new(),
            unreadable: Vec::new(),
            set_aside: Vec::new(),
            counts: Deltas::default(),
        }
    }

    /// The event as the current types read it; `None` (it is passed over) when it is listed
    /// as skipped or cannot be read, which lists it.
    fn read(&mut self, event: &StreamEvent) -> Option<MemberEvent> {
        if self.skips.contains(&event.position) {
            return None;
        }
        match serde_json::from_str(&event.payload) {
            Ok(read) => Some(read),
            Err(error) => {
                self.unreadable.push(event.skip(Member::TYPE, &error));
                None
            }
        }
    }

    /// Lists what the replay passed over and the decisions that set skipped events aside.
    async fn list_skips(&self, found: &[Skip]) -> Result<(), ReplayError> {
        let pool = self.ledger.pool();
        let mut all = found.to_vec();
        all.extend(self.unreadable.iter().cloned());
        skipped::record(pool, &all, "replay").await?;
        telemetry::events_skipped(all.len());
        for (member_id, decisions) in &self.set_aside {
            skipped::set_aside(pool, member_id, decisions).await?;
        }
        Ok(())
    }

    /// Folds every member event below the cover; answers (events, members, changes).
    async fn fold_all(
        mut self,
        reader: PgConnection,
        cover: &Cover,
        batches: &mpsc::Sender<WriteBatch>,
        report: &(impl Fn(Report) + Send + Sync),
        unreadable_organisations: &[Skip],
    ) -> Result<(u64, u64, u64, Deltas), ReplayError> {
        let (mut incoming, reading) = read_member_events(reader, cover.horizon.clone());
        let mut current: Option<(String, Member)> = None;
        let mut events: u64 = 0;
        let mut last_progress = Instant::now();
        while let Some(chunk) = incoming.recv().await {
            let n = chunk.len() as u64;
            for event in chunk {
                let read = self.read(&event);
                let member = match &mut current {
                    Some((id, member)) if *id == event.aggregate_id => member,
                    _ => {
                        if let Some((id, member)) = current.take() {
                            self.finish(&id, &member, batches).await?;
                        }
                        &mut current.insert((event.aggregate_id, Member::default())).1
                    }
                };
                match read {
                    Some(read) => member.apply(read),
                    None => member.pass_over(),
                }
            }
            events += n;
            report(Report::Advanced(n));
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let pool = self.ledger.pool();
                let (done, members) = (to_i64(events), to_i64(self.members));
                replays::record_progress(pool, self.replay_id, done, members).await?;
            }
        }
        reading
            .await
            .map_err(|_| ReplayError::Stopped("reader"))??;
        if let Some((id, member)) = current.take() {
            self.finish(&id, &member, batches).await?;
        }
        self.flush(batches).await?;
        self.list_skips(unreadable_organisations).await?;
        let counts = std::mem::take(&mut self.counts);
        Ok((events, self.members, self.changes_total, counts))
    }

    /// A member's stream has ended: its view rows, and its changes of eligibility.
    async fn finish(
        &mut self,
        member_id: &str,
        member: &Member,
        batches: &mpsc::Sender<WriteBatch>,
    ) -> Result<(), ReplayError> {
        self.members += 1;
        if !member.set_aside().is_empty() {
            let decisions = member
                .set_aside()
                .iter()
                .map(|a| (to_i64(a.skipped_sequence as u64), to_i64(a.sequence as u64)))
                .collect();
            self.set_aside.push((member_id.to_owned(), decisions));
        }
        // Credit is folded once, for the view rows and for every evaluation judged.
        let fold = MemberFold::new(member, self.rulesets, self.ledger.tz());
        if !self.dry_run {
            self.rows.add(member, &fold, self.rulesets);
            if let Some((_, standing)) = self.rows.standings().last() {
                self.counts.add(contributions(standing, self.rulesets));
            }
        }
        let changes = eligibility_changes(member, &fold, self.rulesets, self.clock);
        if let Ok(member_id) = Uuid::parse_str(member_id) {
            self.changes_total += changes.len() as u64;
            self.changes.extend(changes.into_iter().map(
                |(evaluation_id, determination_id, change)| ReplayChange {
                    member_id,
                    evaluation_id,
                    determination_id,
                    change,
                },
            ));
        }
        if self.rows.len() >= MEMBERS_PER_WRITE || self.changes.len() >= MEMBERS_PER_WRITE {
            self.flush(batches).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, batches: &mpsc::Sender<WriteBatch>) -> Result<(), ReplayError> {
        let batch = WriteBatch {
            rows: std::mem::take(&mut self.rows),
            changes: std::mem::take(&mut self.changes),
        };
        batches
            .send(batch)
            .await
            .map_err(|_| ReplayError::Stopped("writer"))
    }
}

/// Rule 10 for one member: each evaluation whose final recorded eligibility differs from the
/// same quarters judged under `rulesets` and the member's facts now (`fold`: the member folded
/// under those `rulesets`).
pub fn eligibility_changes(
    member: &Member,
    fold: &MemberFold,
    rulesets: &[Ruleset],
    clock: Clock,
) -> Vec<(String, Uuid, EligibilityChange)> {
    let mut evaluations: Vec<_> = member
        .determinations()
        .iter()
        .map(|d| &d.evaluation_id)
        .collect();
    evaluations.sort_unstable();
    evaluations.dedup();
    evaluations
        .into_iter()
        .filter_map(|evaluation_id| {
            let recorded = member.final_eligibility(evaluation_id)?;
            let latest = recorded.determination;
            let quarters: Vec<_> = latest.quarters.iter().map(|q| q.quarter).collect();
            let (_, now) = member.eligibility_on(fold.totals(), &quarters, rulesets, clock)?;
            let change = eligibility_change(recorded.eligible, &latest.quarters, &now)?;
            Some((evaluation_id.to_string(), latest.determination_id, change))
        })
        .collect()
}

/// Writes batches as they come, each in its own transaction; gives the connection back.
async fn write_batches(
    mut writer: PgConnection,
    replay_id: Uuid,
    dry_run: bool,
    mut batches: mpsc::Receiver<WriteBatch>,
) -> Result<PgConnection, ReplayError> {
    while let Some(batch) = batches.recv().await {
        let mut tx = writer.begin().await?;
        // Nothing here is served before the swap, and a replay that dies is run again.
        database::skip_flush_wait(&mut tx).await?;
        if !dry_run && !batch.rows.is_empty() {
            batch.rows.insert(&mut tx).await?;
        }
        if !batch.changes.is_empty() {
            replays::insert_changes(&mut tx, replay_id, &batch.changes).await?;
        }
        tx.commit().await?;
    }
    Ok(writer)
}

/// Swaps the rebuilt tables in and points the projector at the replay's last event, in one
/// transaction. Readers in flight finish on the old tables first; a swap that waits too long
/// for them gives up and tries again, so readers never queue behind it for long.
async fn swap(
    connection: &mut PgConnection,
    cover: &Cover,
    summary: &Summary,
) -> Result<(), ReplayError> {
    let deadline = Instant::now() + SWAP_PATIENCE;
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        match try_swap(connection, cover, summary).await {
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55P03") && Instant::now() < deadline =>
            {
                // Readers queued behind the waiting swap flow again while it pauses; the
                // rebuilt tables wait for the next attempt.
                tracing::info!(attempt, "replay swap waited too long for readers; retrying");
                let pause = Duration::from_millis(100 * u64::from(attempt.min(20)));
                tokio::time::sleep(pause).await;
            }
            other => return Ok(other?),
        }
    }
}

async fn try_swap(
    connection: &mut PgConnection,
    cover: &Cover,
    summary: &Summary,
) -> Result<(), sqlx::Error> {
    let mut tx = connection.begin().await?;
    database::lock_timeout(&mut tx, 1).await?;
    // The projector's batch holds this row while it writes views: wait for it, and keep the
    // next batch out until the new tables are in place.
    commit_order::checkpoint_on(&mut tx, true).await?;
    rebuild::swap_in_next(&mut tx).await?;
    commit_order::set(&mut tx, cover.last, cover.horizon_xid()).await?;
    // With the swap, or not at all: a replay that swapped is never taken for interrupted.
    let (events, members) = (to_i64(summary.events), to_i64(summary.members));
    replays::mark_succeeded(&mut *tx, summary.replay_id, events, members).await?;
    tx.commit().await
}
