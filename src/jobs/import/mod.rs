//! Bulk import of history: enrolments, study sessions, course completions and xAPI statements
//! from a CSV or NDJSON file, every row through the same rules as the API, exactly once.
//!
//! The file is parsed on a thread of its own ([`rows`]) and handed on in batches. Each batch's
//! member rows are split by member among [`WORKERS`] workers, each with a connection and a
//! bounded cache of members of its own, so that PostgreSQL appends on several cores at once
//! and a member's rows stay in file order on one worker. A worker decides its share of a batch
//! on the members' aggregates (loaded in one statement when not cached) and appends the
//! share's events in one statement, with their hash-chain links computed here, in one
//! transaction with the share's counts and refused rows. A share that loses a race for a
//! member's next sequence is decided again on fresh state. Rows carry client ids
//! (`session_id`, `completion_id`, `member_id`), so importing a file again records nothing new:
//! each row is an exact resend. xAPI statements go through the Learning Record Store's own
//! path (`feed`), one by one, once the rows before them are committed, so each is stored and
//! mapped like any statement sent.

pub mod rows;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use lru::LruCache;
use serde_json::Value;
use sqlx::PgConnection;
use studyledger_aggregates::course::Course;
use studyledger_aggregates::member::command::{RecordCompletion, RecordStudySession};
use studyledger_aggregates::member::{Clock, Member, MemberCommand, MemberEvent};
use studyledger_aggregates::organisation::Organisation;
use studyledger_aggregates::values::{local_date, CourseId, OrgId};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::jobs::feed::{self, FeedError};
use crate::ledger::Ledger;
use crate::store::error::StoreError;
use crate::store::event_store::LedgerContext;
use crate::store::imports::{self, Counts, ImportRecord};
use crate::store::record::Metadata;
use crate::store::statements::StatementsError;
use crate::store::{member_numbers, organisations};
use crate::JobError;
use rows::{Format, Parsed, Row};

/// Rows per batch, split among the workers: one transaction and one INSERT of events each.
pub const BATCH: usize = 5_000;
/// Workers appending at once, each on its own connection (measured on two cores: one and a
/// half times one worker's rate, and a fourth added nothing; see the README's import figures).
pub const WORKERS: usize = 3;
/// Members kept between batches, over all workers (a file of one organisation's history
/// touches each member many times; a national one is bounded all the same).
const MEMBER_CACHE: usize = 100_000;
/// How often a share is decided again after losing a race for a member's stream.
const MAX_ATTEMPTS: u32 = 8;

/// Who imports: the token (or the command line), recorded in every event's metadata and the
/// statements' `authority`.
#[derive(Debug, Clone)]
pub struct Importer {
    pub metadata: Metadata,
}

/// Imports `reader` as `format` under `import_id` (recorded first, so `GET /v1/imports/{id}`
/// shows its progress); `progress` hears of the rows of each committed share. Answers the
/// import's record; an import that cannot go on is recorded as failed, with everything
/// committed before it.
pub async fn run(
    ledger: &Arc<Ledger>,
    importer: &Importer,
    import_id: Uuid,
    format: Format,
    reader: Box<dyn Read + Send>,
    progress: impl Fn(u64),
) -> Result<ImportRecord, JobError> {
    let (tx, rx) = mpsc::channel::<Vec<Parsed>>(2);
    let parser = tokio::task::spawn_blocking(move || rows::parse(reader, format, BATCH, &tx));
    let job = Arc::new(Job {
        ledger: Arc::clone(ledger),
        importer: importer.clone(),
        import_id,
        authority: feed::authority(&importer.metadata.actor, &importer.metadata.token_id),
        stopped: AtomicBool::new(false),
    });
    let mut failure = job.import(rx, &progress).await.err().map(|e| e.to_string());
    if failure.is_none() {
        failure = match parser.await {
            Ok(Ok(_)) => None,
            Ok(Err(error)) => Some(error),
            Err(panic) => Some(format!("the parser stopped: {panic}")),
        };
    }
    imports::finish(ledger.pool(), import_id, failure.as_deref()).await?;
    let record = imports::get(ledger.pool(), import_id).await?;
    record.ok_or_else(|| "the import's record vanished".into())
}

/// Why a batch could not be imported (its rows are not committed).
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("members changed under the import too often; import the file again")]
    Contention,
    #[error("an import worker stopped")]
    Stopped,
    #[error("an import worker failed: {0}")]
    Panicked(String),
}

impl From<sqlx::Error> for BatchError {
    fn from(error: sqlx::Error) -> Self {
        BatchError::Store(StoreError::Database(error))
    }
}

/// One import: who, under which id.
struct Job {
    ledger: Arc<Ledger>,
    importer: Importer,
    import_id: Uuid,
    authority: Value,
    /// Set by a worker that fails, so that the others and the dispatcher stop at their next
    /// share or batch rather than commit what comes after it.
    stopped: AtomicBool,
}

/// A worker's share of a batch: its rows, the catalog they are decided against, and whom to
/// tell once they are committed.
struct Share {
    rows: Vec<Parsed>,
    catalog: Arc<Catalog>,
    committed: oneshot::Sender<()>,
}

/// The courses a batch names, read for each batch as they stand (terms change from a day on
/// and courses retire), and whether the organisations its enrolments name exist (read once
/// per import).
#[derive(Default, Clone)]
struct Catalog {
    courses: HashMap<CourseId, Option<Course>>,
    organisations: HashMap<OrgId, bool>,
}

/// A worker, a task of its own (so that its deciding runs beside the others' on another
/// core): its share of the members, kept between batches.
struct Worker {
    job: Arc<Job>,
    members: LruCache<String, LedgerContext<Member>>,
}

/// What deciding a share's rows came to, before it is committed.
#[derive(Default)]
struct Decided {
    events: HashMap<String, Vec<MemberEvent>>,
    counts: Counts,
    refusals: Vec<(u64, String)>,
    /// The member numbers the share's enrolments take, with their members.
    claims: (Vec<String>, Vec<Uuid>),
}

/// The worker whose share a row is: by its member, so a member's rows stay in order on one.
fn worker_of(parsed: &Parsed) -> usize {
    let member = parsed.row.as_ref().ok().and_then(Row::member_id);
    member.map_or(0, |id| (id.as_u128() % WORKERS as u128) as usize)
}

impl Job {
    /// Hands the batches' member rows to the workers and imports their statements, each once
    /// the rows before it are committed; ends when the batches do or anything fails.
    async fn import(
        self: &Arc<Self>,
        mut batches: mpsc::Receiver<Vec<Parsed>>,
        progress: &impl Fn(u64),
    ) -> Result<(), BatchError> {
        let (counted, mut committed_rows) = mpsc::unbounded_channel::<u64>();
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let (queue, shares) = mpsc::channel::<Share>(1);
            queues.push(queue);
            let cache = NonZeroUsize::new(MEMBER_CACHE / WORKERS).unwrap_or(NonZeroUsize::MIN);
            let worker = Worker {
                job: Arc::clone(self),
                members: LruCache::new(cache),
            };
            workers.push(tokio::spawn(worker.run(shares, counted.clone())));
        }
        drop(counted);
        // Ends once every worker has: when the queues close, or one fails.
        let report = async {
            while let Some(rows) = committed_rows.recv().await {
                progress(rows);
            }
        };
        let dispatch = async move {
            let mut queues = Queues {
                pending: queues.iter().map(|_| None).collect(),
                queues,
            };
            let mut catalog = Catalog::default();
            while let Some(batch) = batches.recv().await {
                if self.stopped.load(Ordering::Relaxed) {
                    return Err(BatchError::Stopped);
                }
                self.dispatch(batch, &mut queues, &mut catalog, progress)
                    .await?;
            }
            Ok::<(), BatchError>(())
        };
        let (dispatched, ()) = tokio::join!(dispatch, report);
        // A worker's own failure says more than the dispatcher's finding it stopped.
        for worker in workers {
            worker
                .await
                .map_err(|e| BatchError::Panicked(e.to_string()))??;
        }
        dispatched
    }

    /// Hands a batch's member rows to the workers, and then imports its statements once every
    /// row before them is committed. Enrolments claim member numbers, so a batch with any waits
    /// for the rows before it, and of two members claiming one number in it, the later one's
    /// rows wait for the earlier one's: the earlier line takes the number, as if one worker
    /// imported the file.
    async fn dispatch(
        &self,
        batch: Vec<Parsed>,
        queues: &mut Queues,
        catalog: &mut Catalog,
        progress: &impl Fn(u64),
    ) -> Result<(), BatchError> {
        let (statements, mut rows): (Vec<Parsed>, Vec<Parsed>) = batch
            .into_iter()
            .partition(|p| matches!(p.row, Ok(Row::Statement(_))));
        catalog.read(&self.ledger, &rows).await?;
        let catalog = Arc::new(catalog.clone());
        if rows.iter().any(|p| matches!(p.row, Ok(Row::Enrol(_)))) {
            queues.settle().await?;
        }
        while !rows.is_empty() {
            let (now, later) = defer_contested(rows);
            queues.share_out(now, &catalog).await?;
            if !later.is_empty() {
                queues.settle().await?;
            }
            rows = later;
        }
        if !statements.is_empty() {
            queues.settle().await?;
            self.import_statements(statements, progress).await?;
        }
        Ok(())
    }
}

/// The workers' queues, with the last share handed to each that is not yet known to be
/// committed (a worker commits its shares in order, so that one stands for all before it).
struct Queues {
    queues: Vec<mpsc::Sender<Share>>,
    pending: Vec<Option<oneshot::Receiver<()>>>,
}

impl Queues {
    /// Hands each worker its share of `rows`.
    async fn share_out(
        &mut self,
        rows: Vec<Parsed>,
        catalog: &Arc<Catalog>,
    ) -> Result<(), BatchError> {
        let mut shares: Vec<Vec<Parsed>> = (0..self.queues.len()).map(|_| Vec::new()).collect();
        for parsed in rows {
            shares[worker_of(&parsed)].push(parsed);
        }
        for ((queue, pending), rows) in self.queues.iter().zip(&mut self.pending).zip(shares) {
            if rows.is_empty() {
                continue;
            }
            let (done, ack) = oneshot::channel();
            let share = Share {
                rows,
                catalog: Arc::clone(catalog),
                committed: done,
            };
            queue.send(share).await.map_err(|_| BatchError::Stopped)?;
            *pending = Some(ack);
        }
        Ok(())
    }

    /// Waits until every share handed out so far is committed.
    async fn settle(&mut self) -> Result<(), BatchError> {
        for pending in &mut self.pending {
            if let Some(ack) = pending.take() {
                ack.await.map_err(|_| BatchError::Stopped)?;
            }
        }
        Ok(())
    }
}

/// Splits rows into those that can be decided now and those that must wait for them: an
/// enrolment whose member number an earlier enrolment of another member in `rows` claims,
/// and every later row of a member that waits.
fn defer_contested(rows: Vec<Parsed>) -> (Vec<Parsed>, Vec<Parsed>) {
    let mut claims: HashMap<String, Uuid> = HashMap::new();
    let mut waiting: HashSet<Uuid> = HashSet::new();
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for parsed in rows {
        let member = parsed.row.as_ref().ok().and_then(Row::member_id);
        let contested = match &parsed.row {
            Ok(Row::Enrol(e)) => {
                *claims.entry(e.member_no.to_string()).or_insert(e.member_id) != e.member_id
            }
            _ => false,
        };
        match member {
            Some(member) if contested || waiting.contains(&member) => {
                waiting.insert(member);
                later.push(parsed);
            }
            _ => now.push(parsed),
        }
    }
    (now, later)
}

impl Catalog {
    /// The batch's courses as they stand now, and its organisations not read before.
    async fn read(&mut self, ledger: &Ledger, rows: &[Parsed]) -> Result<(), StoreError> {
        self.courses.clear();
        for parsed in rows {
            match &parsed.row {
                Ok(Row::Session { course_id, .. } | Row::Completion { course_id, .. })
                    if !self.courses.contains_key(course_id) =>
                {
                    let (course, _) = ledger.read::<Course>(course_id.as_str()).await?;
                    let registered = course.record().is_some().then_some(course);
                    self.courses.insert(course_id.clone(), registered);
                }
                Ok(Row::Enrol(enrolment))
                    if !self.organisations.contains_key(&enrolment.org_id) =>
                {
                    let org = ledger
                        .read_immutable::<Organisation>(enrolment.org_id.as_str())
                        .await?;
                    self.organisations
                        .insert(enrolment.org_id.clone(), org.record().is_some());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Worker {
    /// Imports the shares handed to this worker, in order, counting each one's rows to
    /// `committed` once it is.
    async fn run(
        mut self,
        mut shares: mpsc::Receiver<Share>,
        committed: mpsc::UnboundedSender<u64>,
    ) -> Result<(), BatchError> {
        while let Some(share) = shares.recv().await {
            if self.job.stopped.load(Ordering::Relaxed) {
                // Another worker failed: the import ends with its error.
                return Ok(());
            }
            if let Err(error) = self.import(&share.rows, &share.catalog).await {
                self.job.stopped.store(true, Ordering::Relaxed);
                return Err(error);
            }
            let _ = committed.send(share.rows.len() as u64);
            // The dispatcher waits for this only before statements; it may have moved on.
            let _ = share.committed.send(());
        }
        Ok(())
    }

    /// Commits a share, deciding it again on fresh state while it loses races for members.
    async fn import(&mut self, rows: &[Parsed], catalog: &Catalog) -> Result<(), BatchError> {
        for attempt in 0..MAX_ATTEMPTS {
            match self.commit_rows(rows, catalog).await {
                Err(BatchError::Store(StoreError::Conflict)) => {
                    tracing::debug!(attempt, "an import share lost a race; deciding again");
                    tokio::time::sleep(Duration::from_millis(5 << attempt.min(6))).await;
                }
                outcome => return outcome,
            }
        }
        Err(BatchError::Contention)
    }

    /// Decides the share's rows and commits their events, counts and refusals in one
    /// transaction; the members go back to the cache only once committed.
    async fn commit_rows(&mut self, rows: &[Parsed], catalog: &Catalog) -> Result<(), BatchError> {
        let job = Arc::clone(&self.job);
        let ledger = &*job.ledger;
        let mut tx = ledger.pool().begin().await?;
        let mut members = self.members_of(&mut tx, rows).await?;
        let numbers: Vec<String> = rows
            .iter()
            .filter_map(|p| match &p.row {
                Ok(Row::Enrol(enrolment)) => Some(enrolment.member_no.to_string()),
                _ => None,
            })
            .collect();
        let mut held = member_numbers::holders(&mut tx, &numbers).await?;
        // The enrolments' organisations stay open until this batch commits.
        let orgs: Vec<&str> = rows
            .iter()
            .filter_map(|p| match &p.row {
                Ok(Row::Enrol(enrolment)) => Some(enrolment.org_id.as_str()),
                _ => None,
            })
            .collect();
        let closed: HashSet<String> = organisations::share(&mut tx, &orgs)
            .await?
            .into_iter()
            .collect();
        let decided = decide(ledger, catalog, &mut members, rows, &mut held, &closed).await;
        let metadata = Metadata {
            recorded_at: chrono::Utc::now(),
            ..self.job.importer.metadata.clone()
        };
        let mut appends: Vec<(&mut LedgerContext<Member>, Vec<MemberEvent>)> = Vec::new();
        let mut events = decided.events;
        for (id, context) in &mut members {
            if let Some(decided) = events.remove(id) {
                appends.push((context, decided));
            }
        }
        ledger
            .append_members_on(&mut tx, &mut appends, &metadata)
            .await?;
        drop(appends);
        let (numbers, holders) = &decided.claims;
        if !member_numbers::claim_all(&mut tx, numbers, holders).await? {
            // Another writer claimed one of them since it was read: decided again.
            return Err(BatchError::Store(StoreError::Conflict));
        }
        let import_id = self.job.import_id;
        imports::count(&mut tx, import_id, decided.counts, &decided.refusals).await?;
        tx.commit().await?;
        for (id, context) in members {
            if context.sequence > 0 {
                self.members.put(id, context);
            }
        }
        Ok(())
    }

    /// The rows' members: from the cache (taken out of it), else loaded in one statement;
    /// members with no events yet start empty.
    async fn members_of(
        &mut self,
        tx: &mut PgConnection,
        rows: &[Parsed],
    ) -> Result<HashMap<String, LedgerContext<Member>>, StoreError> {
        let mut members = HashMap::new();
        let mut missing = Vec::new();
        for id in rows.iter().filter_map(|p| p.row.as_ref().ok()?.member_id()) {
            let id = id.to_string();
            if members.contains_key(&id) || missing.contains(&id) {
                continue;
            }
            match self.members.pop(&id) {
                Some(context) => {
                    members.insert(id, context);
                }
                None => missing.push(id),
            }
        }
        let through = vec![i64::MAX; missing.len()];
        for context in self
            .job
            .ledger
            .load_members_on(tx, &missing, &through)
            .await?
        {
            members.insert(context.aggregate_id.clone(), context);
        }
        for id in missing {
            members.entry(id.clone()).or_insert_with(|| LedgerContext {
                aggregate_id: id,
                aggregate: Member::default(),
                sequence: 0,
                snapshot: 0,
                stale_snapshot: false,
                link: None,
            });
        }
        Ok(members)
    }
}

/// Each row decided in file order on its member as the rows before left it.
async fn decide(
    ledger: &Ledger,
    catalog: &Catalog,
    members: &mut HashMap<String, LedgerContext<Member>>,
    rows: &[Parsed],
    held: &mut HashMap<String, Uuid>,
    closed: &HashSet<String>,
) -> Decided {
    let clock = ledger.clock();
    let mut decided = Decided::default();
    for parsed in rows {
        decided.counts.read += 1;
        let command = parsed
            .row
            .clone()
            .and_then(|row| catalog.command(row, clock));
        let (member_id, command) = match command {
            Ok(found) => found,
            Err(reason) => {
                decided.counts.refused += 1;
                decided.refusals.push((parsed.line, reason));
                continue;
            }
        };
        let Some(context) = members.get_mut(&member_id) else {
            continue;
        };
        // Member numbers are unique among members: one held by another is refused.
        // An enrolment of a member enrolled already is the aggregate's to judge (a resend,
        // or a conflict): it claims nothing.
        let number = match &command {
            MemberCommand::Enrol(e) if context.aggregate.enrolment().is_none() => {
                Some((e.member_no.to_string(), e.member_id))
            }
            _ => None,
        };
        if let MemberCommand::Enrol(e) = &command {
            if number.is_some() && closed.contains(e.org_id.as_str()) {
                decided.counts.refused += 1;
                decided
                    .refusals
                    .push((parsed.line, format!("organisation {} is closed", e.org_id)));
                continue;
            }
        }
        if let Some((no, id)) = &number {
            if held.get(no).is_some_and(|holder| holder != id) {
                decided.counts.refused += 1;
                decided.refusals.push((
                    parsed.line,
                    format!("member_no {no} is held by another member"),
                ));
                continue;
            }
        }
        let sink = EventSink::<Member>::default();
        match context.aggregate.handle(command, &(), &sink).await {
            Ok(()) => {
                let events = sink.collect().await;
                if events.is_empty() {
                    decided.counts.unchanged += 1;
                } else {
                    if let Some((no, id)) = number {
                        held.insert(no.clone(), id);
                        decided.claims.0.push(no);
                        decided.claims.1.push(id);
                    }
                    decided.counts.recorded += 1;
                    decided.events.entry(member_id).or_default().extend(events);
                }
            }
            Err(rejection) => {
                decided.counts.refused += 1;
                decided.refusals.push((parsed.line, rejection.to_string()));
            }
        }
    }
    decided
}

impl Catalog {
    /// The member command a row is, checked against the catalog as the API checks it.
    fn command(&self, row: Row, clock: Clock) -> Result<(String, MemberCommand), String> {
        let course = |course_id: &CourseId| {
            self.courses
                .get(course_id)
                .and_then(Option::as_ref)
                .ok_or_else(|| format!("course {course_id} is not registered"))
        };
        // A session only names its course; a completion takes the terms of its day.
        let terms = |course_id: &CourseId| {
            course(course_id)?
                .record()
                .map(|r| r.terms())
                .ok_or_else(|| format!("course {course_id} is not registered"))
        };
        let terms_on = |course_id: &CourseId, at: chrono::DateTime<chrono::Utc>| {
            course(course_id)?
                .terms_on(local_date(at, clock.tz))
                .map_err(|rejection| rejection.to_string())
        };
        Ok(match row {
            Row::Enrol(enrolment) => {
                if self.organisations.get(&enrolment.org_id) != Some(&true) {
                    return Err(format!(
                        "organisation {} is not registered",
                        enrolment.org_id
                    ));
                }
                (
                    enrolment.member_id.to_string(),
                    MemberCommand::Enrol(enrolment),
                )
            }
            Row::Session {
                member_id,
                session_id,
                course_id,
                started_at,
                ended_at,
            } => (
                member_id.to_string(),
                MemberCommand::RecordStudySession(RecordStudySession {
                    session_id,
                    course: terms(&course_id)?,
                    started_at,
                    ended_at,
                    source: None,
                    clock,
                }),
            ),
            Row::Completion {
                member_id,
                completion_id,
                course_id,
                completed_at,
            } => (
                member_id.to_string(),
                MemberCommand::RecordCompletion(RecordCompletion {
                    completion_id,
                    course: terms_on(&course_id, completed_at)?,
                    completed_at,
                    source: None,
                    clock,
                }),
            ),
            Row::Statement(_) => return Err("a statement is not a member row".to_owned()),
        })
    }
}

impl Job {
    /// The batch's statements, each stored and mapped as if sent to `/xapi/statements`; one
    /// the LRS refuses is a refused row.
    async fn import_statements(
        &self,
        statements: Vec<Parsed>,
        progress: &impl Fn(u64),
    ) -> Result<(), BatchError> {
        let mut counts = Counts::default();
        let mut refusals = Vec::new();
        let stored = chrono::Utc::now();
        for parsed in statements {
            counts.read += 1;
            let Ok(Row::Statement(value)) = parsed.row else {
                continue;
            };
            // A file carries no attachments' data: a statement whose attachment has no
            // `fileUrl` (or that is signed) is refused, as `/xapi/statements` refuses it.
            let prepared = feed::prepare(value, &self.authority, stored).and_then(|statement| {
                feed::with_attachments(std::slice::from_ref(&statement), Vec::new())
                    .map(|_| statement)
            });
            let outcome = match prepared {
                Ok(statement) => {
                    let batch = [statement];
                    let metadata = &self.importer.metadata;
                    feed::store_statements(&self.ledger, metadata, &metadata.token_id, &batch, &[])
                        .await
                        .map_err(|e| match e {
                            FeedError::Statements(StatementsError::Database(e)) => {
                                Err(BatchError::from(e))
                            }
                            FeedError::Store(e) => Err(BatchError::Store(e)),
                            FeedError::Contention => Err(BatchError::Contention),
                            refused @ FeedError::Statements(_) => Ok(refused.to_string()),
                        })
                }
                Err(invalid) => Err(Ok(format!("invalid statement: {invalid}"))),
            };
            match outcome {
                Ok(()) => counts.recorded += 1,
                Err(Ok(reason)) => {
                    counts.refused += 1;
                    refusals.push((parsed.line, reason));
                }
                Err(Err(error)) => return Err(error),
            }
        }
        let read = counts.read;
        let mut tx = self.ledger.pool().begin().await?;
        imports::count(&mut tx, self.import_id, counts, &refusals).await?;
        tx.commit().await?;
        progress(u64::try_from(read).unwrap_or(0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(csv: &str) -> Vec<Parsed> {
        let (tx, mut rx) = mpsc::channel(8);
        rows::parse(csv.as_bytes(), Format::Csv, BATCH, &tx).expect("parsed");
        drop(tx);
        let mut rows = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            rows.extend(batch);
        }
        rows
    }

    #[test]
    fn a_later_claimant_of_a_member_number_waits_with_its_later_rows_and_no_other() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let csv = format!(
            "kind,member_id,member_no,name,org_id,enrolled_on,session_id,course_id,started_at,ended_at\n\
             enrolment,{a},N-1,甲,fz,2019-01-01,,,,\n\
             enrolment,{b},N-1,乙,fz,2019-01-01,,,,\n\
             session,{b},,,,,{},party,2019-01-02T01:00:00Z,2019-01-02T01:30:00Z\n\
             enrolment,{c},N-1,丙,fz,2019-01-01,,,,\n\
             session,{a},,,,,{},party,2019-01-02T01:00:00Z,2019-01-02T01:30:00Z\n\
             enrolment,{a},N-1,甲,fz,2019-01-01,,,,\n",
            Uuid::new_v4(),
            Uuid::new_v4()
        );
        let lines = |rows: &[Parsed]| rows.iter().map(|p| p.line).collect::<Vec<_>>();
        let rows = rows_of(&csv);
        assert!(rows.iter().all(|p| p.row.is_ok()), "{rows:?}");
        let (now, later) = defer_contested(rows);
        // The first claimant and its own rows (a resend of its enrolment too) go now; the
        // other claimants, and the session after b's enrolment, wait.
        assert_eq!(lines(&now), [2, 6, 7]);
        assert_eq!(lines(&later), [3, 4, 5]);
        // Among those that waited, the next claimant goes first, and so on.
        let (now, later) = defer_contested(later);
        assert_eq!(lines(&now), [3, 4]);
        assert_eq!(lines(&later), [5]);
    }
}
