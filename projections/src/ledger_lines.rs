//! "What counted, and why?": a member's ledger as typed lines — every completion (credited or
//! not, and why) and every adjustment, each with where it stands in the log — folded from the
//! stream as it was at any moment, so an explanation shows what the system knew then.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rules::credit::{credit_completions, NotCreditedReason};
use studyledger_aggregates::rules::eligibility::QuarterJudgement;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::values::{Category, CourseId, Hours, Quarter};
use uuid::Uuid;

/// Where a recorded event stands in the log: position, recording time, and who recorded it
/// (the token's name, id and role; absent in events recorded before tokens existed).
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub token_id: Option<String>,
    pub role: Option<String>,
}

/// The member folded from its stream's events before sequence `before` (all of them for
/// `usize::MAX`), and the provenance of each event by sequence. `events` come in sequence
/// order, each with its sequence and provenance; one that cannot be read (`None`) is passed
/// over.
pub fn fold_history(
    events: impl IntoIterator<Item = (usize, Provenance, Option<MemberEvent>)>,
    before: usize,
) -> (Member, HashMap<usize, Provenance>) {
    let mut member = Member::default();
    let mut provenance = HashMap::new();
    for (sequence, at, event) in events.into_iter().take_while(|e| e.0 < before) {
        provenance.insert(sequence, at);
        match event {
            Some(event) => cqrs_es::Aggregate::apply(&mut member, event),
            None => member.pass_over(),
        }
    }
    (member, provenance)
}

/// What a line is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineFact {
    CourseCompletion {
        completion_id: Uuid,
        course_id: CourseId,
        /// The xAPI statement it came from; `null` when recorded through the JSON API.
        source_statement_id: Option<Uuid>,
        /// Rule 11: the statement that voided its source, once it did.
        withdrawn_by_statement_id: Option<Uuid>,
        withdrawn_at: Option<DateTime<Utc>>,
    },
    CreditAdjustment {
        adjustment_id: Uuid,
        /// Always `null`: an adjustment is about a category, not a course.
        course_id: Option<CourseId>,
        reason: String,
        appeal_id: Option<Uuid>,
    },
}

/// One line of a member's ledger.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerLine {
    pub sequence: usize,
    pub position: Option<i64>,
    pub recorded_at: Option<DateTime<Utc>>,
    /// Who recorded it: the token's name, id and role.
    pub recorded_by: Option<String>,
    pub recorded_by_token: Option<String>,
    pub recorded_by_role: Option<String>,
    /// When the fact happened: the completion's `completed_at`, the adjustment's `effective_at`.
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub fact: LineFact,
    pub category: Category,
    pub hours: Hours,
    pub credited: bool,
    pub not_credited_reason: Option<NotCreditedReason>,
    pub quarter: Quarter,
}

/// Every completion and adjustment of `member`, judged under `rulesets`, in sequence order.
pub fn ledger_lines(
    member: &Member,
    rulesets: &[Ruleset],
    tz: Tz,
    provenance: &HashMap<usize, Provenance>,
) -> Vec<LedgerLine> {
    let line = |sequence: usize,
                occurred_at,
                fact,
                category,
                hours,
                credited: Result<(), NotCreditedReason>,
                quarter| {
        let at = provenance.get(&sequence);
        LedgerLine {
            sequence,
            position: at.map(|p| p.position),
            recorded_at: at.map(|p| p.recorded_at),
            recorded_by: at.and_then(|p| p.actor.clone()),
            recorded_by_token: at.and_then(|p| p.token_id.clone()),
            recorded_by_role: at.and_then(|p| p.role.clone()),
            occurred_at,
            fact,
            category,
            hours,
            credited: credited == Ok(()),
            not_credited_reason: credited.err(),
            quarter,
        }
    };
    let completions = credit_completions(member.sessions(), member.completions(), rulesets, tz)
        .into_iter()
        .map(|outcome| {
            let completion = outcome.completion;
            let withdrawn = completion.withdrawn.as_ref();
            let fact = LineFact::CourseCompletion {
                completion_id: completion.completion_id,
                course_id: completion.course.course_id.clone(),
                source_statement_id: completion.source,
                withdrawn_by_statement_id: withdrawn.map(|w| w.voiding_statement),
                withdrawn_at: withdrawn.map(|w| w.withdrawn_at),
            };
            let course = &completion.course;
            let (category, hours) = (course.category, course.credit_hours);
            let (sequence, at) = (completion.sequence, completion.completed_at);
            line(
                sequence,
                at,
                fact,
                category,
                hours,
                outcome.credited,
                outcome.quarter,
            )
        });
    let adjustments = member.adjustments().iter().map(|adjustment| {
        let fact = LineFact::CreditAdjustment {
            adjustment_id: adjustment.adjustment_id,
            course_id: None,
            reason: adjustment.reason.to_string(),
            appeal_id: adjustment.appeal_id,
        };
        let quarter = Quarter::of_instant(adjustment.effective_at, tz);
        let (category, hours) = (adjustment.category, adjustment.hours);
        let (sequence, at) = (adjustment.sequence, adjustment.effective_at);
        // Rule 3: adjustments always count.
        line(sequence, at, fact, category, hours, Ok(()), quarter)
    });
    let mut lines: Vec<LedgerLine> = completions.chain(adjustments).collect();
    lines.sort_by_key(|l| l.sequence);
    lines
}

/// A judged quarter with the ledger lines that fall in it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedQuarter {
    #[serde(flatten)]
    pub judgement: QuarterJudgement,
    pub entries: Vec<LedgerLine>,
}

/// Each judged quarter with its lines.
pub fn explain(judged: &[QuarterJudgement], lines: &[LedgerLine]) -> Vec<ExplainedQuarter> {
    judged
        .iter()
        .map(|judgement| ExplainedQuarter {
            judgement: *judgement,
            entries: lines
                .iter()
                .filter(|l| l.quarter == judgement.quarter)
                .cloned()
                .collect(),
        })
        .collect()
}
