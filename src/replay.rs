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
//!   second connection into tables of the schema `replay_next`, made `LIKE` the live ones.
//!   Memory holds one member and one write batch, whatever the store's size.
//! - **Swap:** one transaction locks the projector's checkpoint and the live tables, moves the
//!   live tables out and the new ones in, and sets the checkpoint. Readers hold their tables
//!   for a statement (or a roll-up's transaction), so they see the old views or the new ones,
//!   never a mix, and never a half-built table.
//! - **Failure:** a replay that fails or dies leaves the live views alone; the next replay
//!   drops what the last one left behind and starts again. One replay runs at a time (an
//!   advisory lock); a replay still marked running without holding it was interrupted.
//! - **Diff:** for each member and evaluation, the final recorded eligibility against the
//!   same quarters judged again under the replay's rules and the member's facts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, PgConnection, Row};
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::organisation::OrganisationEvent;
use studyledger_aggregates::rules::eligibility::{eligibility_change, EligibilityChange};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_projections::fold::MemberFold;
use studyledger_projections::store::{self as views, MemberRows};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::store::StoreError;

/// The advisory lock one replay per database holds ("REPLAY" in ASCII).
pub const REPLAY_LOCK_KEY: i64 = 0x5245_504c_4159;
/// Where a rebuild writes until the swap.
const NEXT: &str = "replay_next";
/// The view tables a replay rebuilds (the projector's checkpoint stays where it is).
const VIEW_TABLES: [&str; 5] = [
    "org_view",
    "member_view",
    "member_org_view",
    "member_quarter_view",
    "member_appeal_view",
];
/// Members per bulk write.
const MEMBERS_PER_WRITE: usize = 2_000;
/// Raw events per hand-over from the reader to the folder.
const EVENTS_PER_CHUNK: usize = 4_096;
/// How long a swap keeps trying to take the live tables from long readers (each try waits
/// at most a second, so readers queued behind it wait no longer than that).
const SWAP_PATIENCE: Duration = Duration::from_secs(600);
/// How often the replay's row shows its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(REPLAY_LOCK_KEY)
            .fetch_one(&mut lock)
            .await?;
        if locked {
            break;
        }
        let running: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM replays WHERE status = 'running')")
                .fetch_one(&mut lock)
                .await?;
        if running || std::time::Instant::now() >= deadline {
            return Err(ReplayError::AlreadyRunning);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The lock is ours: a replay still marked running died without finishing.
    sqlx::query(
        "UPDATE replays SET status = 'failed', error = 'interrupted', finished_at = now()
          WHERE status = 'running'",
    )
    .execute(&mut lock)
    .await?;
    let replay_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO replays (replay_id, dry_run, status, actor) VALUES ($1, $2, 'running', $3)",
    )
    .bind(replay_id)
    .bind(dry_run)
    .bind(actor)
    .execute(&mut lock)
    .await?;
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
            mark_succeeded(&mut *pool.acquire().await?, summary).await?;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%replay_id, %error, "replay failed");
            if !dry_run {
                // Best effort: the next replay drops it anyway.
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {NEXT} CASCADE"))
                    .execute(pool)
                    .await;
            }
            sqlx::query(
                "UPDATE replays SET status = 'failed', finished_at = now(), error = $2
                  WHERE replay_id = $1",
            )
            .bind(replay_id)
            .bind(error.to_string())
            .execute(pool)
            .await?;
        }
    }
    // Closing the connection releases the lock.
    let _ = lock.close().await;
    outcome
}

/// Records a replay as succeeded, with its final counts.
async fn mark_succeeded(
    connection: &mut PgConnection,
    summary: &Summary,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE public.replays SET status = 'succeeded', finished_at = now(),
                events_processed = $2, members_processed = $3
          WHERE replay_id = $1",
    )
    .bind(summary.replay_id)
    .bind(to_i64(summary.events))
    .bind(to_i64(summary.members))
    .execute(connection)
    .await?;
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The point in commit order a replay covers: events of transactions below `horizon`, the
/// last of them at `checkpoint`.
struct Cover {
    horizon: String,
    checkpoint: (String, i64),
}

/// How long a replay waits for the transactions open when it starts to end.
const COVER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything committed before the replay was asked: every transaction that was open then, in
/// this database, must end first (transactions of other databases on the server cannot write
/// these events, so they are not waited for). Then the replay covers the transactions below the
/// snapshot's `xmax` of that moment — all final. After `COVER_WAIT`, it settles for what is
/// final (below `pg_snapshot_xmin`), says so in the log, and the projector applies the rest.
async fn cover(connection: &mut PgConnection) -> Result<Cover, sqlx::Error> {
    let (asked, open): (String, Vec<String>) = sqlx::query_as(
        "SELECT pg_snapshot_xmax(s)::text, array(SELECT x::text FROM pg_snapshot_xip(s) x)
           FROM pg_current_snapshot() s",
    )
    .fetch_one(&mut *connection)
    .await?;
    let deadline = std::time::Instant::now() + COVER_WAIT;
    let horizon = loop {
        // Still running, and not known to belong to another database.
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[]) x
              WHERE pg_xact_status(x::xid8) = 'in progress'
                AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                 WHERE a.backend_xid::text = (x::numeric % 4294967296)::text
                                   AND a.datname <> current_database())",
        )
        .bind(&open)
        .fetch_one(&mut *connection)
        .await?;
        if running == 0 {
            break asked;
        }
        if std::time::Instant::now() >= deadline {
            let horizon: String =
                sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                    .fetch_one(&mut *connection)
                    .await?;
            tracing::warn!(
                horizon,
                asked,
                "a transaction open since before the replay still runs; the replay covers the \
                 events committed before it, and the projector applies the rest"
            );
            break horizon;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let last: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, position FROM events
          WHERE transaction_id < $1::text::xid8
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .bind(&horizon)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(Cover {
        horizon,
        checkpoint: last.unwrap_or_else(|| ("0".to_owned(), 0)),
    })
}

/// One change of rule 10's work list.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    member_id: Uuid,
    evaluation_id: String,
    determination_id: Uuid,
    change: EligibilityChange,
}

/// What the folder hands the writer.
struct WriteBatch {
    rows: MemberRows,
    changes: Vec<ChangeRow>,
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
    let cover = cover(&mut reader).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_type = 'member' AND transaction_id < $1::text::xid8",
    )
    .bind(&cover.horizon)
    .fetch_one(&mut reader)
    .await?;
    sqlx::query("UPDATE replays SET events_total = $2, rules_version = $3 WHERE replay_id = $1")
        .bind(replay_id)
        .bind(total)
        .bind(i32::try_from(rules_version).unwrap_or(i32::MAX))
        .execute(pool)
        .await?;
    report(Report::Total(u64::try_from(total).unwrap_or(0)));

    let mut writer = pool.acquire().await?.detach();
    // "does not exist, skipping" and the like are expected here, not news.
    sqlx::query("SET client_min_messages TO warning")
        .execute(&mut writer)
        .await?;
    if !dry_run {
        prepare_tables(&mut writer, &mut reader, &cover).await?;
    }
    let (batches, received) = mpsc::channel::<WriteBatch>(2);
    let writing = tokio::spawn(write_batches(writer, replay_id, dry_run, received));
    let folded = fold_members(
        ledger, reader, replay_id, dry_run, &rulesets, &cover, &batches, report,
    )
    .await;
    drop(batches);
    // The writer's own error first: when it fails, the folder only sees it stop.
    let mut writer = writing
        .await
        .map_err(|_| ReplayError::Stopped("writer"))??;
    let (events, members, changes) = folded?;
    let summary = Summary {
        replay_id,
        dry_run,
        events,
        members,
        changes,
        rules_version,
    };
    if !dry_run {
        finish_tables(&mut writer).await?;
        swap(&mut writer, &cover, &summary).await?;
    }
    let _ = writer.close().await;
    Ok(summary)
}

/// Creates the new tables and fills the organisation tree (small, in commit order: parents
/// before children).
async fn prepare_tables(
    writer: &mut PgConnection,
    reader: &mut PgConnection,
    cover: &Cover,
) -> Result<(), ReplayError> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {NEXT} CASCADE"))
        .execute(&mut *writer)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {NEXT}"))
        .execute(&mut *writer)
        .await?;
    for table in VIEW_TABLES {
        // Columns, defaults and checks now; the primary key too (the member rows are upserted
        // on it); the other indexes after the bulk load, under the live tables' names.
        sqlx::query(&format!(
            "CREATE TABLE {NEXT}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *writer)
        .await?;
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = format('public.%I', $1::text)::regclass AND contype IN ('p', 'u')",
        )
        .bind(table)
        .fetch_all(&mut *writer)
        .await?;
        for (name, definition) in keys {
            sqlx::query(&format!(
                "ALTER TABLE {NEXT}.{table} ADD CONSTRAINT {name} {definition}"
            ))
            .execute(&mut *writer)
            .await?;
        }
    }
    // From here on this connection writes the new tables; the change list is qualified.
    sqlx::query(&format!("SET search_path TO {NEXT}"))
        .execute(&mut *writer)
        .await?;
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events
          WHERE aggregate_type = 'organisation' AND transaction_id < $1::text::xid8
          ORDER BY transaction_id, position",
    )
    .bind(&cover.horizon)
    .fetch_all(&mut *reader)
    .await?;
    for payload in payloads {
        let OrganisationEvent::OrganisationRegistered(record) = serde_json::from_str(&payload)?;
        views::upsert_organisation(writer, &record).await?;
    }
    Ok(())
}

/// Builds the live tables' other indexes on the new tables, under the same names (index names
/// are per schema), and gathers their statistics.
async fn finish_tables(writer: &mut PgConnection) -> Result<(), ReplayError> {
    for table in VIEW_TABLES {
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
              WHERE i.indrelid = format('public.%I', $1::text)::regclass
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        )
        .bind(table)
        .fetch_all(&mut *writer)
        .await?;
        for definition in indexes {
            let on_live = format!(" ON public.{table} ");
            let on_next = format!(" ON {NEXT}.{table} ");
            sqlx::query(&definition.replacen(&on_live, &on_next, 1))
                .execute(&mut *writer)
                .await?;
        }
        sqlx::query(&format!("ANALYZE {NEXT}.{table}"))
            .execute(&mut *writer)
            .await?;
    }
    Ok(())
}

/// Streams member events in member order and folds them one member at a time; answers
/// (events, members, changes).
#[allow(clippy::too_many_arguments)]
async fn fold_members(
    ledger: &Ledger,
    mut reader: PgConnection,
    replay_id: Uuid,
    dry_run: bool,
    rulesets: &[Ruleset],
    cover: &Cover,
    batches: &mpsc::Sender<WriteBatch>,
    report: &(impl Fn(Report) + Send + Sync),
) -> Result<(u64, u64, u64), ReplayError> {
    let (chunks, mut incoming) = mpsc::channel::<Vec<(String, String)>>(4);
    let horizon = cover.horizon.clone();
    // The reader runs beside the folder, so reading and folding overlap.
    let reading = tokio::spawn(async move {
        let mut rows = sqlx::query(
            "SELECT aggregate_id, payload::text FROM events
              WHERE aggregate_type = 'member' AND transaction_id < $1::text::xid8
              ORDER BY aggregate_id, sequence",
        )
        .bind(&horizon)
        .fetch(&mut reader);
        let mut chunk = Vec::with_capacity(EVENTS_PER_CHUNK);
        while let Some(row) = rows.try_next().await? {
            chunk.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
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
        Ok::<(), sqlx::Error>(())
    });

    let mut folder = Folder {
        ledger,
        rulesets,
        dry_run,
        rows: MemberRows::default(),
        changes: Vec::new(),
        members: 0,
        changes_total: 0,
    };
    let mut current: Option<(String, Member)> = None;
    let mut events: u64 = 0;
    let mut last_progress = Instant::now();
    while let Some(chunk) = incoming.recv().await {
        let n = chunk.len() as u64;
        for (member_id, payload) in chunk {
            let event: MemberEvent = serde_json::from_str(&payload)?;
            match &mut current {
                Some((id, member)) if *id == member_id => member.apply(event),
                _ => {
                    if let Some((id, member)) = current.take() {
                        folder.finish(&id, &member, batches).await?;
                    }
                    let mut member = Member::default();
                    member.apply(event);
                    current = Some((member_id, member));
                }
            }
        }
        events += n;
        report(Report::Advanced(n));
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            sqlx::query(
                "UPDATE replays SET events_processed = $2, members_processed = $3
                  WHERE replay_id = $1",
            )
            .bind(replay_id)
            .bind(to_i64(events))
            .bind(to_i64(folder.members))
            .execute(ledger.pool())
            .await?;
        }
    }
    reading
        .await
        .map_err(|_| ReplayError::Stopped("reader"))??;
    if let Some((id, member)) = current.take() {
        folder.finish(&id, &member, batches).await?;
    }
    folder.flush(batches).await?;
    Ok((events, folder.members, folder.changes_total))
}

struct Folder<'a> {
    ledger: &'a Ledger,
    rulesets: &'a [Ruleset],
    dry_run: bool,
    rows: MemberRows,
    changes: Vec<ChangeRow>,
    members: u64,
    changes_total: u64,
}

impl Folder<'_> {
    /// A member's stream has ended: its view rows, and its changes of eligibility.
    async fn finish(
        &mut self,
        member_id: &str,
        member: &Member,
        batches: &mpsc::Sender<WriteBatch>,
    ) -> Result<(), ReplayError> {
        self.members += 1;
        // Credit is folded once, for the view rows and for every evaluation judged.
        let fold = MemberFold::new(member, self.rulesets, self.ledger.tz());
        if !self.dry_run {
            self.rows.add(member, &fold, self.rulesets);
        }
        let changes = eligibility_changes(member, &fold, self.rulesets, self.ledger.clock());
        if let Ok(member_id) = Uuid::parse_str(member_id) {
            self.changes_total += changes.len() as u64;
            self.changes.extend(changes.into_iter().map(
                |(evaluation_id, determination_id, change)| ChangeRow {
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
    clock: studyledger_aggregates::member::Clock,
) -> Vec<(String, Uuid, EligibilityChange)> {
    let mut evaluations: Vec<&studyledger_aggregates::values::EvaluationId> = member
        .determinations()
        .iter()
        .map(|d| &d.evaluation_id)
        .collect();
    evaluations.sort_unstable();
    evaluations.dedup();
    evaluations
        .into_iter()
        .filter_map(|evaluation_id| {
            let (recorded, latest, _) = member.final_eligibility(evaluation_id)?;
            let quarters: Vec<_> = latest.quarters.iter().map(|q| q.quarter).collect();
            let (_, now) = member.eligibility_on(fold.totals(), &quarters, rulesets, clock)?;
            let change = eligibility_change(recorded, &latest.quarters, &now)?;
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
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        if !dry_run && !batch.rows.is_empty() {
            batch.rows.insert(&mut tx).await?;
        }
        if !batch.changes.is_empty() {
            insert_changes(&mut tx, replay_id, &batch.changes).await?;
        }
        tx.commit().await?;
    }
    Ok(writer)
}

async fn insert_changes(
    tx: &mut PgConnection,
    replay_id: Uuid,
    changes: &[ChangeRow],
) -> Result<(), sqlx::Error> {
    let member_ids: Vec<Uuid> = changes.iter().map(|c| c.member_id).collect();
    let evaluation_ids: Vec<&str> = changes.iter().map(|c| c.evaluation_id.as_str()).collect();
    let determination_ids: Vec<Uuid> = changes.iter().map(|c| c.determination_id).collect();
    let recorded: Vec<bool> = changes.iter().map(|c| c.change.recorded_eligible).collect();
    let now: Vec<bool> = changes.iter().map(|c| c.change.eligible_now).collect();
    let quarters: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| {
            json!(c
                .change
                .quarters_changed
                .iter()
                .map(|(before, after)| json!({
                    "quarter": before.quarter,
                    "recorded_status": before.status,
                    "status_now": after.status,
                    "recorded_ruleset_version": before.ruleset_version,
                    "ruleset_version_now": after.ruleset_version,
                }))
                .collect::<Vec<_>>())
        })
        .collect();
    sqlx::query(
        "INSERT INTO public.replay_changes
                (replay_id, member_id, evaluation_id, determination_id, recorded_eligible,
                 eligible_now, quarters_changed)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::bool[], $6::bool[],
                                  $7::jsonb[])",
    )
    .bind(replay_id)
    .bind(&member_ids)
    .bind(&evaluation_ids)
    .bind(&determination_ids)
    .bind(&recorded)
    .bind(&now)
    .bind(&quarters)
    .execute(tx)
    .await?;
    Ok(())
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
    sqlx::query("SET LOCAL lock_timeout = '1s'")
        .execute(&mut *tx)
        .await?;
    // The projector's batch holds this row while it writes views: wait for it, and keep the
    // next batch out until the new tables are in place.
    sqlx::query("SELECT 1 FROM public.projector_checkpoints WHERE projector = 'views' FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    let live: Vec<String> = VIEW_TABLES.iter().map(|t| format!("public.{t}")).collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        live.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DROP SCHEMA IF EXISTS replay_old CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE SCHEMA replay_old")
        .execute(&mut *tx)
        .await?;
    for table in VIEW_TABLES {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA replay_old"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {NEXT}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DROP SCHEMA replay_old CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {NEXT}"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE public.projector_checkpoints
            SET transaction_id = $1::text::xid8, position = $2, updated_at = now()
          WHERE projector = 'views'",
    )
    .bind(&cover.checkpoint.0)
    .bind(cover.checkpoint.1)
    .execute(&mut *tx)
    .await?;
    // With the swap, or not at all: a replay that swapped is never taken for interrupted.
    mark_succeeded(&mut tx, summary).await?;
    tx.commit().await
}

/// `studyledger replay [--dry-run]`: runs a replay in this process, with a progress bar on a
/// terminal (plain lines otherwise), and prints its summary as JSON.
pub async fn run_cli(args: crate::config::ReplayArgs) -> Result<(), crate::JobError> {
    let ledger = crate::serve::prepare_ledger(&args.database, &args.ledger).await?;
    let started = start(&ledger, args.dry_run, "operator").await?;
    let replay_id = started.replay_id;
    eprintln!(
        "replay {replay_id}{}",
        if args.dry_run { " (dry run)" } else { "" }
    );
    let progress: std::sync::OnceLock<crate::progress::Progress> = std::sync::OnceLock::new();
    let summary = run(ledger, started, |report| match report {
        Report::Total(total) => {
            let _ = progress.set(crate::progress::Progress::new("replay", total));
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
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "{} change(s) of eligibility: GET /v1/replays/{replay_id} (JSON) or \
         /v1/replays/{replay_id}/changes.csv",
        summary.changes
    );
    Ok(())
}
