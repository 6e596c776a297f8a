//! xAPI statements feed the ledger. A batch of statements is stored, and each statement that
//! concerns the ledger becomes the same member command as the JSON API's — a completion, the
//! sessions of a study period, or the withdrawal of what a voided statement became (rule 11) —
//! decided by the member aggregate and appended **in the transaction that stores the
//! statement**, together with the statement's mapping (`xapi_mappings`). So a statement is
//! stored with its facts or not at all, and maps exactly once.
//!
//! A statement whose member or activity is not registered yet waits (`unknown_member`,
//! `unknown_activity`) and is mapped again when the registration arrives ([`remap`]); the
//! fact ids are derived from the statement (`studyledger_xapi::ledger`), so mapping it again
//! can never record a fact twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use rand::Rng;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use studyledger_aggregates::activity::{Activity, ActivityLink};
use studyledger_aggregates::course::Course;
use studyledger_aggregates::facts::CourseTerms;
use studyledger_aggregates::member::command::{RecordCompletion, RecordStudySession, Withdraw};
use studyledger_aggregates::member::{Clock, Member, MemberCommand, MemberEvent, MemberRejection};
use studyledger_aggregates::values::local_date;
use studyledger_xapi::attachments::Part;
use studyledger_xapi::ledger::{
    completion_id, read, session_id, split, CompletionReading, Reading, SessionReading, Unreadable,
};
use studyledger_xapi::validate::{self, Invalid};
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::store;
use crate::store::error::StoreError;
use crate::store::event_store::LedgerContext;
use crate::store::mappings::{self, Mapping, Outcome, Waiting};
use crate::store::record::Metadata;
use crate::store::statements::{self, Prepared, StatementsError};

/// How often a batch is tried again after losing a race for a member's stream.
const MAX_ATTEMPTS: u32 = 8;
/// Waiting statements mapped again per transaction.
const REMAP_PAGE: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Statements(#[from] StatementsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("too many concurrent changes to the same members; retry")]
    Contention,
}

impl From<sqlx::Error> for FeedError {
    fn from(error: sqlx::Error) -> Self {
        FeedError::Store(StoreError::Database(error))
    }
}

/// The `homePage` of the accounts that name the LRS's authorities (its tokens); members'
/// accounts are on `LEDGER_XAPI_HOMEPAGE`.
pub const AUTHORITY_HOMEPAGE: &str = "https://studyledger.invalid/";

/// The `authority` of the statements a token stores: the token, as an account.
pub fn authority(name: &str, token_id: &str) -> Value {
    json!({
        "objectType": "Agent",
        "name": name,
        "account": {"homePage": AUTHORITY_HOMEPAGE, "name": token_id},
    })
}

/// Validates a statement and sets what the LRS sets (`id`, `stored`, `authority`,
/// `timestamp`, `version`); its filter keys come with it.
pub fn prepare(
    value: Value,
    authority: &Value,
    stored: DateTime<Utc>,
) -> Result<Prepared, Invalid> {
    validate::statement(&value)?;
    let Value::Object(sent) = value else {
        return Err(Invalid {
            path: "statement".to_owned(),
            problem: "must be a JSON object".to_owned(),
        });
    };
    let kept = studyledger_xapi::stored(sent.clone(), stored, authority.clone());
    let id = studyledger_xapi::id_of(&kept).ok_or_else(|| Invalid {
        path: "id".to_owned(),
        problem: "not a UUID".to_owned(),
    })?;
    let verb_id = kept
        .get("verb")
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(Prepared {
        keys: studyledger_xapi::index::stored_keys(&kept),
        id,
        voids: studyledger_xapi::voids(&kept),
        sent,
        kept,
        verb_id,
        stored,
    })
}

/// Checks a prepared batch's attachments against the parts sent with it (their data, and
/// the signatures of signed statements), and answers the parts to keep.
pub fn with_attachments(batch: &[Prepared], parts: Vec<Part>) -> Result<Vec<Part>, Invalid> {
    let sent: Vec<&Map<String, Value>> = batch.iter().map(|s| &s.sent).collect();
    studyledger_xapi::attachments::check(&sent, parts)
}

/// Which of the parts each statement inserted came with (its own attachments' data).
fn carried<'p>(
    batch: &[Prepared],
    inserted: &[(Uuid, i64)],
    parts: &'p [Part],
) -> Vec<(Uuid, &'p Part)> {
    let inserted: HashSet<Uuid> = inserted.iter().map(|(id, _)| *id).collect();
    let mut seen: HashSet<(Uuid, &str)> = HashSet::new();
    let mut links = Vec::new();
    for statement in batch.iter().filter(|s| inserted.contains(&s.id)) {
        for (sha2, _) in studyledger_xapi::attached(&statement.sent) {
            let Ok(at) = parts.binary_search_by(|part| part.sha2.cmp(&sha2)) else {
                continue;
            };
            let part = &parts[at];
            if seen.insert((statement.id, part.sha2.as_str())) {
                links.push((statement.id, part));
            }
        }
    }
    links
}

/// A statement read for the ledger: `Ok(None)` when it means nothing to it.
type Read = Result<Option<Reading>, Unreadable>;

/// Stores a batch of statements and records what they mean for the ledger, all in one
/// transaction (see the module's documentation).
pub async fn store_statements(
    ledger: &Ledger,
    metadata: &Metadata,
    token_id: &str,
    batch: &[Prepared],
    attachments: &[Part],
) -> Result<(), FeedError> {
    let readings: Vec<Read> = batch
        .iter()
        .map(|s| read(&s.kept, ledger.xapi_homepage()))
        .collect();
    let lookups = Lookups::load(ledger, &readings).await?;
    let voided: Vec<Uuid> = readings.iter().filter_map(voided_by).collect();
    let mut members = members_of(&readings);
    members.extend(mappings::members_of(ledger.pool(), &voided).await?);
    let member_ids: Vec<String> = members.iter().map(Uuid::to_string).collect();
    let _locks = ledger.lock_members(&member_ids).await;
    retrying(|| async {
        let mut tx = ledger.pool().begin().await?;
        store::attachments::keep_on(&mut tx, attachments).await?;
        let inserted = statements::store_on(&mut tx, token_id, batch).await?;
        let links = carried(batch, &inserted, attachments);
        store::attachments::link_on(&mut tx, &links).await?;
        let mut mapper = Mapper::new(ledger, &lookups, metadata);
        for (id, seq) in inserted {
            let Some(at) = batch.iter().position(|s| s.id == id) else {
                continue;
            };
            mapper.map(&mut tx, id, seq, &readings[at]).await?;
        }
        tx.commit().await?;
        mapper.keep_members();
        Ok(())
    })
    .await
}

/// What a remap did: statements examined, and how many of them are now recorded, refused or
/// still waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Remapped {
    pub examined: u64,
    pub recorded: u64,
    pub refused: u64,
    pub waiting: u64,
}

/// Maps again the statements waiting for a member or an activity (or all of them), a page per
/// transaction. Each is locked while it is mapped, so two remaps never map one statement twice.
pub async fn remap(
    ledger: &Ledger,
    metadata: &Metadata,
    which: &Waiting,
) -> Result<Remapped, FeedError> {
    let mut done = Remapped::default();
    let mut after = 0;
    loop {
        let page = mappings::waiting(ledger.pool(), which, after, REMAP_PAGE).await?;
        let Some(&(last, _, _)) = page.last() else {
            return Ok(done);
        };
        let readings: Vec<Read> = page
            .iter()
            .map(|(_, _, s)| read(s, ledger.xapi_homepage()))
            .collect();
        let lookups = Lookups::load(ledger, &readings).await?;
        let member_ids: Vec<String> = members_of(&readings).iter().map(Uuid::to_string).collect();
        let _locks = ledger.lock_members(&member_ids).await;
        let outcomes = retrying(|| async {
            let mut tx = ledger.pool().begin().await?;
            let ids: Vec<Uuid> = page.iter().map(|(_, id, _)| *id).collect();
            let still = mappings::lock_still_waiting(&mut tx, &ids).await?;
            let mut mapper = Mapper::new(ledger, &lookups, metadata);
            let mut outcomes = Vec::new();
            for (at, (seq, id, _)) in page.iter().enumerate() {
                if still.contains(id) {
                    outcomes.push(mapper.map(&mut tx, *id, *seq, &readings[at]).await?);
                }
            }
            tx.commit().await?;
            mapper.keep_members();
            Ok(outcomes)
        })
        .await?;
        for outcome in outcomes.into_iter().flatten() {
            done.examined += 1;
            match outcome {
                Outcome::Recorded => done.recorded += 1,
                Outcome::Refused | Outcome::Unreadable => done.refused += 1,
                o if o.is_waiting() => done.waiting += 1,
                _ => {}
            }
        }
        if i64::try_from(page.len()).unwrap_or(i64::MAX) < REMAP_PAGE {
            return Ok(done);
        }
        after = last;
    }
}

/// Runs `attempt` until no other writer took a member's next sequence under it, a bounded
/// number of times with jitter (each attempt is a transaction of its own, rolled back whole).
async fn retrying<T, F, Fut>(attempt: F) -> Result<T, FeedError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, FeedError>>,
{
    for round in 0..MAX_ATTEMPTS {
        match attempt().await {
            Err(FeedError::Store(StoreError::Conflict)) => {
                let ceiling = 5u64 << round.min(6);
                let pause = rand::rng().random_range(1..=ceiling);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
    Err(FeedError::Contention)
}

fn voided_by(reading: &Read) -> Option<Uuid> {
    match reading {
        Ok(Some(Reading::Voiding { voided })) => Some(*voided),
        _ => None,
    }
}

/// The members the readings are about, sorted and once each.
fn members_of(readings: &[Read]) -> Vec<Uuid> {
    let mut members: Vec<Uuid> = readings
        .iter()
        .filter_map(|r| match r {
            Ok(Some(Reading::Completion(c))) => Some(c.member_id),
            Ok(Some(Reading::Session(s))) => Some(s.member_id),
            _ => None,
        })
        .collect();
    members.sort_unstable();
    members.dedup();
    members
}

/// The activities' links and their courses, read before the transaction: a link never changes
/// once made; a course is read as it stands (its terms change from a day on, and it may be
/// retired), and a completion takes the terms of its day.
struct Lookups {
    courses: HashMap<String, (ActivityLink, Course)>,
}

impl Lookups {
    async fn load(ledger: &Ledger, readings: &[Read]) -> Result<Lookups, StoreError> {
        let mut courses = HashMap::new();
        for reading in readings {
            let activity = match reading {
                Ok(Some(Reading::Completion(c))) => &c.activity_id,
                Ok(Some(Reading::Session(s))) => &s.activity_id,
                _ => continue,
            };
            if courses.contains_key(activity) {
                continue;
            }
            // A link never changes once made: linked activities come from the cache (an
            // unlinked one is read again each time: the cache keeps no empty stream).
            let linked = ledger.read_immutable::<Activity>(activity).await?;
            let Some(link) = linked.link() else {
                continue;
            };
            let (course, _) = ledger.read::<Course>(link.course_id.as_str()).await?;
            if course.record().is_some() {
                courses.insert(activity.clone(), (link.clone(), course));
            }
        }
        Ok(Lookups { courses })
    }
}

/// Maps statements inside one transaction, keeping the members it decided on.
struct Mapper<'a> {
    ledger: &'a Ledger,
    lookups: &'a Lookups,
    metadata: &'a Metadata,
    clock: Clock,
    members: HashMap<Uuid, LedgerContext<Member>>,
}

/// What one statement became, before it is written as a mapping.
struct Mapped {
    outcome: Outcome,
    member_id: Option<Uuid>,
    activity_id: Option<String>,
    reason: Option<String>,
    facts: Vec<Uuid>,
}

impl Mapped {
    fn new(outcome: Outcome, member_id: Option<Uuid>, activity_id: &str) -> Mapped {
        Mapped {
            outcome,
            member_id,
            activity_id: Some(activity_id.to_owned()),
            reason: None,
            facts: Vec::new(),
        }
    }

    fn because(mut self, reason: impl ToString) -> Mapped {
        self.reason = Some(reason.to_string());
        self
    }
}

impl<'a> Mapper<'a> {
    fn new(ledger: &'a Ledger, lookups: &'a Lookups, metadata: &'a Metadata) -> Mapper<'a> {
        Mapper {
            ledger,
            lookups,
            metadata,
            clock: ledger.clock(),
            members: HashMap::new(),
        }
    }

    /// Hands the members decided on back to the command path's cache, once committed.
    fn keep_members(self) {
        for (_, context) in self.members {
            self.ledger.keep(context);
        }
    }

    /// Maps one statement and writes its mapping; answers the outcome (none for a statement
    /// that means nothing to the ledger).
    async fn map(
        &mut self,
        tx: &mut PgConnection,
        statement_id: Uuid,
        seq: i64,
        reading: &Read,
    ) -> Result<Option<Outcome>, FeedError> {
        let mapped = match reading {
            Ok(None) => None,
            // An actor who is no member's account is listed with the unknown members (a
            // remap can still map it); anything else unreadable stays so.
            Err(why) => Some(Mapped {
                outcome: match why {
                    Unreadable::NotAMember { .. } => Outcome::UnknownMember,
                    _ => Outcome::Unreadable,
                },
                member_id: None,
                activity_id: None,
                reason: Some(why.to_string()),
                facts: Vec::new(),
            }),
            Ok(Some(Reading::Voiding { voided })) => self.void(tx, statement_id, *voided).await?,
            Ok(Some(Reading::Completion(c))) => Some(self.complete(tx, statement_id, c).await?),
            Ok(Some(Reading::Session(s))) => Some(self.study(tx, statement_id, s).await?),
        };
        let Some(mapped) = mapped else {
            return Ok(None);
        };
        let outcome = mapped.outcome;
        let mapping = Mapping {
            statement_id,
            seq,
            outcome,
            member_id: mapped.member_id,
            activity_id: mapped.activity_id,
            reason: mapped.reason,
            facts: mapped.facts,
            mapped_at: self.clock.now,
        };
        mappings::write(tx, std::slice::from_ref(&mapping)).await?;
        Ok(Some(outcome))
    }

    /// The member's state for a command in this transaction; `None` when not enrolled.
    async fn member(
        &mut self,
        member_id: Uuid,
    ) -> Result<Option<&mut LedgerContext<Member>>, StoreError> {
        if !self.members.contains_key(&member_id) {
            let context = self.ledger.take::<Member>(&member_id.to_string()).await?;
            self.members.insert(member_id, context);
        }
        Ok(self
            .members
            .get_mut(&member_id)
            .filter(|c| c.aggregate.enrolment().is_some()))
    }

    /// The course an activity is linked to, or why the statement waits.
    fn course_of(&self, activity_id: &str) -> Option<&(ActivityLink, Course)> {
        self.lookups.courses.get(activity_id)
    }

    /// Decides `commands` on the member in order and appends what they decided; all or
    /// nothing: the first refusal leaves the member as it was.
    async fn decide(
        &mut self,
        tx: &mut PgConnection,
        member_id: Uuid,
        commands: Vec<MemberCommand>,
    ) -> Result<Result<(), MemberRejection>, StoreError> {
        let ledger = self.ledger;
        let metadata = self.metadata.clone();
        let Some(context) = self.member(member_id).await? else {
            return Ok(Err(MemberRejection::NotEnrolled));
        };
        let before = context.aggregate.clone();
        let mut events: Vec<MemberEvent> = Vec::new();
        for command in commands {
            let sink = EventSink::<Member>::default();
            if let Err(rejection) = context.aggregate.handle(command, &(), &sink).await {
                context.aggregate = before;
                return Ok(Err(rejection));
            }
            events.extend(sink.collect().await);
        }
        ledger.append_on(tx, &events, context, &metadata).await?;
        Ok(Ok(()))
    }

    async fn complete(
        &mut self,
        tx: &mut PgConnection,
        statement_id: Uuid,
        reading: &CompletionReading,
    ) -> Result<Mapped, FeedError> {
        let member_id = Some(reading.member_id);
        let Some((link, course)) = self.course_of(&reading.activity_id).cloned() else {
            return Ok(Mapped::new(
                Outcome::UnknownActivity,
                member_id,
                &reading.activity_id,
            ));
        };
        let mapped = |outcome| Mapped::new(outcome, member_id, &reading.activity_id);
        let terms = match course.terms_on(local_date(reading.completed_at, self.clock.tz)) {
            Ok(terms) => terms,
            Err(rejection) => return Ok(mapped(Outcome::Refused).because(rejection.to_string())),
        };
        if link.pass_required && reading.success != Some(true) {
            return Ok(mapped(Outcome::Refused).because(format!(
                "course {} needs a pass: result.success must be true",
                terms.course_id
            )));
        }
        let id = completion_id(
            reading.member_id,
            terms.course_id.as_str(),
            reading.registration,
        );
        let command = MemberCommand::RecordCompletion(RecordCompletion {
            completion_id: id,
            course: terms,
            completed_at: reading.completed_at,
            source: Some(statement_id),
            clock: self.clock,
        });
        Ok(
            match self.decide(tx, reading.member_id, vec![command]).await? {
                Ok(()) => Mapped {
                    facts: vec![id],
                    ..mapped(Outcome::Recorded)
                },
                Err(rejection) => refusal(mapped, rejection),
            },
        )
    }

    async fn study(
        &mut self,
        tx: &mut PgConnection,
        statement_id: Uuid,
        reading: &SessionReading,
    ) -> Result<Mapped, FeedError> {
        let member_id = Some(reading.member_id);
        let mapped = |outcome| Mapped::new(outcome, member_id, &reading.activity_id);
        let Some(terms) = self
            .course_of(&reading.activity_id)
            .and_then(|(_, course)| course.record())
            .map(|record| record.terms())
        else {
            return Ok(mapped(Outcome::UnknownActivity));
        };
        let cuts: Vec<DateTime<Utc>> = match self.member(reading.member_id).await? {
            Some(context) => completions_of(&context.aggregate, &terms),
            None => Vec::new(),
        };
        let parts = split(reading.started_at, reading.ended_at, &cuts);
        let ids: Vec<Uuid> = (0..parts.len())
            .map(|part| {
                session_id(
                    reading.member_id,
                    statement_id,
                    reading.cmi5_session.as_deref(),
                    part,
                )
            })
            .collect();
        let commands = parts
            .iter()
            .zip(&ids)
            .map(|((started_at, ended_at), id)| {
                MemberCommand::RecordStudySession(RecordStudySession {
                    session_id: *id,
                    course: terms.clone(),
                    started_at: *started_at,
                    ended_at: *ended_at,
                    source: Some(statement_id),
                    clock: self.clock,
                })
            })
            .collect();
        Ok(match self.decide(tx, reading.member_id, commands).await? {
            Ok(()) => Mapped {
                facts: ids,
                ..mapped(Outcome::Recorded)
            },
            Err(rejection) => refusal(mapped, rejection),
        })
    }

    /// Rule 11: the facts the voided statement became are withdrawn; a statement that was
    /// waiting or refused is only marked voided, so it never maps.
    async fn void(
        &mut self,
        tx: &mut PgConnection,
        statement_id: Uuid,
        voided: Uuid,
    ) -> Result<Option<Mapped>, FeedError> {
        let Some(mut target) = mappings::lock(tx, voided).await? else {
            return Ok(None);
        };
        let mut withdrawal = Mapped {
            outcome: Outcome::Withdrawal,
            member_id: target.member_id,
            activity_id: target.activity_id.clone(),
            reason: None,
            facts: Vec::new(),
        };
        match (target.outcome, target.member_id) {
            (Outcome::Recorded, Some(member_id)) => {
                let command = MemberCommand::Withdraw(Withdraw {
                    voided,
                    voiding: statement_id,
                    clock: self.clock,
                });
                if let Err(rejection) = self.decide(tx, member_id, vec![command]).await? {
                    // Withdrawing decides nothing but which facts came from the statement.
                    tracing::error!(%rejection, %voided, "a withdrawal was refused");
                    return Err(FeedError::Contention);
                }
                withdrawal.facts = target.facts.clone();
                target.outcome = Outcome::Withdrawn;
            }
            (Outcome::Withdrawn | Outcome::Voided | Outcome::Withdrawal, _) => return Ok(None),
            _ => {
                withdrawal.reason = Some("nothing had been recorded from it".to_owned());
                target.outcome = Outcome::Voided;
            }
        }
        target.mapped_at = self.clock.now;
        mappings::write(tx, std::slice::from_ref(&target)).await?;
        Ok(Some(withdrawal))
    }
}

/// The instants of the member's standing completions of a course: where a session of it is
/// cut, so that the part before each completion counts towards it (rule 2).
fn completions_of(member: &Member, course: &CourseTerms) -> Vec<DateTime<Utc>> {
    member
        .completions()
        .iter()
        .filter(|c| c.course.course_id == course.course_id && c.withdrawn.is_none())
        .map(|c| c.completed_at)
        .collect()
}

/// A refusal of the rules, as the review list shows it; a member not enrolled waits.
fn refusal(mapped: impl Fn(Outcome) -> Mapped, rejection: MemberRejection) -> Mapped {
    match rejection {
        MemberRejection::NotEnrolled => mapped(Outcome::UnknownMember),
        MemberRejection::IdReused {
            kind: "completion", ..
        } => mapped(Outcome::Refused).because(
            "a completion of this course in this registration is already recorded with another time",
        ),
        MemberRejection::IdReused { kind: "session", .. } => mapped(Outcome::Refused)
            .because("this cmi5 session is already recorded with other times"),
        other => mapped(Outcome::Refused).because(other),
    }
}
