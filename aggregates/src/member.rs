//! The Member aggregate: one learner's ledger, the busiest stream in the system.
//!
//! `decide` is a plain function from state and command to events or a rejection; the cqrs-es
//! `Aggregate::handle` adapter only writes its events to the sink, and `apply` only moves state.
//! What a decision needs from outside the stream — the course's current terms, the clock, the
//! ledger's time zone — arrives inside the command, loaded by the caller.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::{
    organisation_on, Adjustment, Appeal, AppealOutcome, AppealStatus, Completion, CourseTerms,
    Enrolment, Resolution, StudySession, Transfer,
};
use crate::rejection::{Classify, RejectionKind};
use crate::rules::credit::{credit_completions, quarter_totals, QuarterTotals};
use crate::rules::eligibility::{all_ended, is_eligible, judge_quarter, Determination};
use crate::rules::rulesets::{latest_version, Ruleset};
use crate::rules::sessions::{
    check_completion_time, check_session_times, overlapping_session, session_minutes, TimeViolation,
};
use crate::values::{local_date, Category, CourseId, EvaluationId, Hours, OrgId, Quarter};
use std::collections::BTreeMap;

/// "Now" and the ledger's time zone, as the caller saw them when the command arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub tz: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MemberCommand {
    Enrol(Enrolment),
    RecordStudySession {
        session_id: Uuid,
        course: CourseTerms,
        started_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
        clock: Clock,
    },
    RecordCompletion {
        completion_id: Uuid,
        course: CourseTerms,
        completed_at: DateTime<Utc>,
        clock: Clock,
    },
    /// The organisation is known to exist (the caller checked).
    Transfer {
        transfer_id: Uuid,
        to_org_id: OrgId,
        effective_on: NaiveDate,
    },
    /// Rule 3: an administrator's correction. `hours` is signed and not zero.
    AdjustCredit {
        adjustment_id: Uuid,
        category: Category,
        hours: Hours,
        effective_at: DateTime<Utc>,
        reason: String,
        appeal_id: Option<Uuid>,
        clock: Clock,
    },
    /// Rule 9: contest the latest determination for an evaluation.
    FileAppeal {
        appeal_id: Uuid,
        evaluation_id: EvaluationId,
        reason: String,
        clock: Clock,
    },
    /// Rule 9: a reviewer's decision on an open appeal.
    ResolveAppeal {
        appeal_id: Uuid,
        outcome: AppealOutcome,
        note: String,
        clock: Clock,
    },
    /// Rule 8: decide eligibility for an evaluation under every ruleset published so far.
    DetermineEligibility {
        determination_id: Uuid,
        evaluation_id: EvaluationId,
        quarters: Vec<Quarter>,
        rulesets: Vec<Ruleset>,
        clock: Clock,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemberEvent {
    MemberEnrolled(Enrolment),
    StudySessionRecorded {
        session_id: Uuid,
        course_id: CourseId,
        started_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
        minutes: i64,
    },
    /// Carries the course's terms as they were when the completion was recorded (rule 2).
    CourseCompleted {
        completion_id: Uuid,
        course_id: CourseId,
        category: Category,
        credit_hours: Hours,
        min_study_minutes: u32,
        completed_at: DateTime<Utc>,
    },
    MemberTransferred {
        transfer_id: Uuid,
        to_org_id: OrgId,
        effective_on: NaiveDate,
    },
    EligibilityDetermined(Determination),
    CreditAdjusted {
        adjustment_id: Uuid,
        category: Category,
        hours: Hours,
        effective_at: DateTime<Utc>,
        reason: String,
        appeal_id: Option<Uuid>,
    },
    AppealFiled {
        appeal_id: Uuid,
        evaluation_id: EvaluationId,
        determination_id: Uuid,
        reason: String,
        filed_at: DateTime<Utc>,
    },
    AppealResolved {
        appeal_id: Uuid,
        outcome: AppealOutcome,
        note: String,
        resolved_at: DateTime<Utc>,
    },
}

impl DomainEvent for MemberEvent {
    fn event_type(&self) -> String {
        match self {
            MemberEvent::MemberEnrolled(_) => "MemberEnrolled",
            MemberEvent::StudySessionRecorded { .. } => "StudySessionRecorded",
            MemberEvent::CourseCompleted { .. } => "CourseCompleted",
            MemberEvent::MemberTransferred { .. } => "MemberTransferred",
            MemberEvent::EligibilityDetermined(_) => "EligibilityDetermined",
            MemberEvent::CreditAdjusted { .. } => "CreditAdjusted",
            MemberEvent::AppealFiled { .. } => "AppealFiled",
            MemberEvent::AppealResolved { .. } => "AppealResolved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRejection {
    #[error("the member is not enrolled")]
    NotEnrolled,
    #[error("the member is already enrolled with other details")]
    EnrolmentConflict,
    #[error("the member number and the name must not be empty")]
    IncompleteEnrolment,
    #[error("{kind} {id} is already recorded with other content")]
    IdReused { kind: &'static str, id: Uuid },
    #[error("the session overlaps session {other} of the same member")]
    SessionOverlaps { other: Uuid },
    #[error("invalid study session: {0}")]
    InvalidSession(TimeViolation),
    #[error("invalid course completion: {0}")]
    InvalidCompletion(TimeViolation),
    #[error("a transfer cannot take effect before the member's enrolment")]
    TransferBeforeEnrolment,
    #[error("the member already belongs to {0} on that day")]
    TransferToSameOrganisation(OrgId),
    #[error("quarter {0} of the evaluation has not ended yet")]
    EvaluationNotOver(Quarter),
    #[error("an adjustment changes at least one hundredth of a class hour, at most 1000 hours")]
    AdjustmentSize,
    #[error("a {0} needs a reason")]
    MissingReason(&'static str),
    #[error("invalid adjustment: {0}")]
    InvalidAdjustment(TimeViolation),
    #[error("appeal {0} is not one of this member's appeals")]
    UnknownAppeal(Uuid),
    #[error("there is no determination for evaluation {0} to appeal")]
    NothingToAppeal(EvaluationId),
    #[error("appeal {0} against the same determination is still open")]
    AppealAlreadyOpen(Uuid),
    #[error(
        "appeal {0} already heard this determination; only a new determination can be appealed"
    )]
    AlreadyHeard(Uuid),
    #[error("appeal {0} is already resolved")]
    AlreadyResolved(Uuid),
    #[error("appeal {0} contests a determination that a newer one superseded")]
    AppealSuperseded(Uuid),
    #[error("a resolution needs a note")]
    MissingNote,
    #[error("the member has no appeal {0}")]
    NoSuchAppeal(Uuid),
}

impl Classify for MemberRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            MemberRejection::NotEnrolled | MemberRejection::NoSuchAppeal(_) => {
                RejectionKind::NotFound
            }
            MemberRejection::EnrolmentConflict
            | MemberRejection::IdReused { .. }
            | MemberRejection::SessionOverlaps { .. }
            | MemberRejection::EvaluationNotOver(_)
            | MemberRejection::NothingToAppeal(_)
            | MemberRejection::AppealAlreadyOpen(_)
            | MemberRejection::AlreadyResolved(_)
            | MemberRejection::AlreadyHeard(_)
            | MemberRejection::AppealSuperseded(_) => RejectionKind::Conflict,
            MemberRejection::AdjustmentSize
            | MemberRejection::MissingReason(_)
            | MemberRejection::InvalidAdjustment(_)
            | MemberRejection::UnknownAppeal(_)
            | MemberRejection::MissingNote => RejectionKind::RuleViolation,
            MemberRejection::IncompleteEnrolment
            | MemberRejection::InvalidSession(_)
            | MemberRejection::InvalidCompletion(_)
            | MemberRejection::TransferBeforeEnrolment
            | MemberRejection::TransferToSameOrganisation(_) => RejectionKind::RuleViolation,
        }
    }
}

/// A member's state: every fact the rules need, in the order the rules read them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The sequence of the last applied event; each event's own sequence is its version.
    version: usize,
    enrolment: Option<Enrolment>,
    /// Sorted by start and pairwise disjoint.
    sessions: Vec<StudySession>,
    /// In the order recorded.
    completions: Vec<Completion>,
    /// In the order recorded.
    #[serde(default)]
    transfers: Vec<Transfer>,
    /// In the order recorded.
    #[serde(default)]
    determinations: Vec<Determination>,
    /// In the order recorded.
    #[serde(default)]
    adjustments: Vec<Adjustment>,
    /// In the order filed, each with its resolution once resolved.
    #[serde(default)]
    appeals: Vec<Appeal>,
}

impl Member {
    pub fn version(&self) -> usize {
        self.version
    }

    pub fn enrolment(&self) -> Option<&Enrolment> {
        self.enrolment.as_ref()
    }

    pub fn sessions(&self) -> &[StudySession] {
        &self.sessions
    }

    pub fn completions(&self) -> &[Completion] {
        &self.completions
    }

    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    pub fn transfer(&self, transfer_id: Uuid) -> Option<&Transfer> {
        self.transfers.iter().find(|t| t.transfer_id == transfer_id)
    }

    /// The organisation the member belongs to on a local date (rule 7).
    pub fn organisation_on(&self, day: NaiveDate) -> Option<&OrgId> {
        organisation_on(self.enrolment.as_ref()?, &self.transfers, day)
    }

    /// Every determination recorded, oldest first.
    pub fn determinations(&self) -> &[Determination] {
        &self.determinations
    }

    /// The latest determination for an evaluation: the one in force (rule 9).
    pub fn latest_determination(&self, evaluation_id: &EvaluationId) -> Option<&Determination> {
        self.determinations
            .iter()
            .rev()
            .find(|d| &d.evaluation_id == evaluation_id)
    }

    /// Rule 9's final recorded eligibility for an evaluation: the latest determination's
    /// outcome, inverted when its appeal was overturned; with the determination and its appeal.
    /// `None` when no determination exists.
    pub fn final_eligibility(
        &self,
        evaluation_id: &EvaluationId,
    ) -> Option<(bool, &Determination, Option<&Appeal>)> {
        let latest = self.latest_determination(evaluation_id)?;
        let appeal = self.appeal_against(latest.determination_id);
        let overturned = appeal
            .and_then(|a| a.resolution.as_ref())
            .is_some_and(|r| r.outcome == AppealOutcome::Overturned);
        Some((latest.eligible != overturned, latest, appeal))
    }

    /// The appeal against a determination: a determination is heard once (rule 9's "its
    /// appeal"), so this is the first and only one filed against it.
    pub fn appeal_against(&self, determination_id: Uuid) -> Option<&Appeal> {
        self.appeals
            .iter()
            .find(|a| a.determination_id == determination_id)
    }

    /// Where an appeal of this member stands.
    pub fn appeal_status(&self, appeal: &Appeal) -> AppealStatus {
        match &appeal.resolution {
            Some(r) if r.outcome == AppealOutcome::Upheld => AppealStatus::Upheld,
            Some(_) => AppealStatus::Overturned,
            None if self.waits_for_a_reviewer(appeal) => AppealStatus::Open,
            None => AppealStatus::Superseded,
        }
    }

    /// Unresolved, the one appeal of its determination, and that determination still in force.
    /// (Only ledgers written before a determination was heard once can hold a second appeal of
    /// a determination: it counts as superseded.)
    fn waits_for_a_reviewer(&self, appeal: &Appeal) -> bool {
        appeal.resolution.is_none()
            && self.contests_latest(appeal)
            && self
                .appeal_against(appeal.determination_id)
                .is_some_and(|first| first.appeal_id == appeal.appeal_id)
    }

    fn contests_latest(&self, appeal: &Appeal) -> bool {
        self.latest_determination(&appeal.evaluation_id)
            .is_some_and(|d| d.determination_id == appeal.determination_id)
    }

    pub fn adjustments(&self) -> &[Adjustment] {
        &self.adjustments
    }

    pub fn appeals(&self) -> &[Appeal] {
        &self.appeals
    }

    pub fn appeal(&self, appeal_id: Uuid) -> Option<&Appeal> {
        self.appeals.iter().find(|a| a.appeal_id == appeal_id)
    }

    /// Appeals waiting for a reviewer: unresolved, against the determination in force.
    pub fn open_appeals(&self) -> impl Iterator<Item = &Appeal> {
        self.appeals.iter().filter(|a| self.waits_for_a_reviewer(a))
    }

    /// The enrolment every command but the enrolment itself needs.
    fn enrolled(&self) -> Result<&Enrolment, MemberRejection> {
        self.enrolment.as_ref().ok_or(MemberRejection::NotEnrolled)
    }

    /// A command whose id is already recorded: the same content again is a resend and records
    /// nothing; other content under the same id is refused.
    fn resend(
        same: bool,
        kind: &'static str,
        id: Uuid,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        if same {
            Ok(vec![])
        } else {
            Err(MemberRejection::IdReused { kind, id })
        }
    }

    fn decide_adjustment(
        &self,
        adjustment: &Adjustment,
        clock: Clock,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        let enrolment = self.enrolled()?;
        if let Some(recorded) = self
            .adjustments
            .iter()
            .find(|a| a.adjustment_id == adjustment.adjustment_id)
        {
            let same = Adjustment {
                sequence: recorded.sequence,
                ..adjustment.clone()
            };
            return Self::resend(&same == recorded, "adjustment", adjustment.adjustment_id);
        }
        let size = adjustment.hours.hundredths().unsigned_abs();
        if size == 0 || size > Hours::whole(1000).hundredths().unsigned_abs() {
            return Err(MemberRejection::AdjustmentSize);
        }
        if adjustment.reason.trim().is_empty() {
            return Err(MemberRejection::MissingReason("credit adjustment"));
        }
        check_completion_time(
            adjustment.effective_at,
            enrolment.enrolled_on,
            clock.now,
            clock.tz,
        )
        .map_err(MemberRejection::InvalidAdjustment)?;
        if let Some(appeal_id) = adjustment.appeal_id {
            if self.appeal(appeal_id).is_none() {
                return Err(MemberRejection::UnknownAppeal(appeal_id));
            }
        }
        Ok(vec![MemberEvent::CreditAdjusted {
            adjustment_id: adjustment.adjustment_id,
            category: adjustment.category,
            hours: adjustment.hours,
            effective_at: adjustment.effective_at,
            reason: adjustment.reason.clone(),
            appeal_id: adjustment.appeal_id,
        }])
    }

    fn decide_appeal(
        &self,
        appeal_id: Uuid,
        evaluation_id: &EvaluationId,
        reason: &str,
        clock: Clock,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        self.enrolled()?;
        if let Some(recorded) = self.appeal(appeal_id) {
            return Self::resend(
                &recorded.evaluation_id == evaluation_id && recorded.reason == reason,
                "appeal",
                appeal_id,
            );
        }
        if reason.trim().is_empty() {
            return Err(MemberRejection::MissingReason("appeal"));
        }
        let latest = self
            .latest_determination(evaluation_id)
            .ok_or_else(|| MemberRejection::NothingToAppeal(evaluation_id.clone()))?;
        if let Some(earlier) = self.appeal_against(latest.determination_id) {
            return Err(if earlier.resolution.is_none() {
                MemberRejection::AppealAlreadyOpen(earlier.appeal_id)
            } else {
                MemberRejection::AlreadyHeard(earlier.appeal_id)
            });
        }
        Ok(vec![MemberEvent::AppealFiled {
            appeal_id,
            evaluation_id: evaluation_id.clone(),
            determination_id: latest.determination_id,
            reason: reason.to_owned(),
            filed_at: clock.now,
        }])
    }

    fn decide_resolution(
        &self,
        appeal_id: Uuid,
        outcome: AppealOutcome,
        note: &str,
        clock: Clock,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        self.enrolled()?;
        let appeal = self
            .appeal(appeal_id)
            .ok_or(MemberRejection::NoSuchAppeal(appeal_id))?;
        if let Some(resolution) = &appeal.resolution {
            return if resolution.outcome == outcome && resolution.note == note {
                Ok(vec![])
            } else {
                Err(MemberRejection::AlreadyResolved(appeal_id))
            };
        }
        if note.trim().is_empty() {
            return Err(MemberRejection::MissingNote);
        }
        if !self.waits_for_a_reviewer(appeal) {
            return Err(MemberRejection::AppealSuperseded(appeal_id));
        }
        Ok(vec![MemberEvent::AppealResolved {
            appeal_id,
            outcome,
            note: note.to_owned(),
            resolved_at: clock.now,
        }])
    }

    /// Rules 2, 3 and 4: the class hours per quarter under `rulesets` — credited completions
    /// and adjustments, by category.
    pub fn quarter_totals(&self, rulesets: &[Ruleset], tz: Tz) -> BTreeMap<Quarter, QuarterTotals> {
        let mut totals = quarter_totals(&credit_completions(
            &self.sessions,
            &self.completions,
            rulesets,
            tz,
        ));
        for adjustment in &self.adjustments {
            totals
                .entry(Quarter::of_instant(adjustment.effective_at, tz))
                .or_default()
                .add(adjustment.category, adjustment.hours);
        }
        totals
    }

    /// Rule 8 on the member's facts as they stand: each quarter judged under its own ruleset
    /// among `rulesets`, and the outcome. `None` when the member is not enrolled.
    pub fn eligibility(
        &self,
        quarters: &[Quarter],
        rulesets: &[Ruleset],
        clock: Clock,
    ) -> Option<(bool, Vec<crate::rules::eligibility::QuarterJudgement>)> {
        self.eligibility_on(
            &self.quarter_totals(rulesets, clock.tz),
            quarters,
            rulesets,
            clock,
        )
    }

    /// Rule 8 on quarter totals already computed under the same `rulesets` (by
    /// `quarter_totals`), for callers that judge several evaluations of one member.
    pub fn eligibility_on(
        &self,
        totals: &BTreeMap<Quarter, QuarterTotals>,
        quarters: &[Quarter],
        rulesets: &[Ruleset],
        clock: Clock,
    ) -> Option<(bool, Vec<crate::rules::eligibility::QuarterJudgement>)> {
        let enrolled_on = self.enrolment.as_ref()?.enrolled_on;
        let today = local_date(clock.now, clock.tz);
        let judged: Vec<_> = quarters
            .iter()
            .map(|q| {
                let t = totals.get(q).copied().unwrap_or_default();
                judge_quarter(*q, t, enrolled_on, rulesets, today)
            })
            .collect();
        Some((is_eligible(&judged), judged))
    }

    fn decide_determination(
        &self,
        determination_id: Uuid,
        evaluation_id: &EvaluationId,
        quarters: &[Quarter],
        rulesets: &[Ruleset],
        clock: Clock,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        if let Some(recorded) = self
            .determinations
            .iter()
            .find(|d| d.determination_id == determination_id)
        {
            return Self::resend(
                &recorded.evaluation_id == evaluation_id,
                "determination",
                determination_id,
            );
        }
        let today = local_date(clock.now, clock.tz);
        if !all_ended(quarters, today) {
            let open = quarters.iter().find(|q| q.last_day() >= today).copied();
            return Err(MemberRejection::EvaluationNotOver(
                open.unwrap_or_else(|| Quarter::of_date(today)),
            ));
        }
        let (eligible, judged) = self
            .eligibility(quarters, rulesets, clock)
            .ok_or(MemberRejection::NotEnrolled)?;
        Ok(vec![MemberEvent::EligibilityDetermined(Determination {
            determination_id,
            evaluation_id: evaluation_id.clone(),
            eligible,
            determined_at: clock.now,
            rules_version: latest_version(rulesets).unwrap_or(0),
            quarters: judged,
        })])
    }

    pub fn session(&self, session_id: Uuid) -> Option<&StudySession> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }

    pub fn completion(&self, completion_id: Uuid) -> Option<&Completion> {
        self.completions
            .iter()
            .find(|c| c.completion_id == completion_id)
    }

    /// Rule 1 and the recording checks of rule 2. An exact resend decides no events.
    pub fn decide(&self, command: &MemberCommand) -> Result<Vec<MemberEvent>, MemberRejection> {
        match command {
            MemberCommand::Enrol(enrolment) => self.decide_enrolment(enrolment),
            MemberCommand::Transfer {
                transfer_id,
                to_org_id,
                effective_on,
            } => self.decide_transfer(*transfer_id, to_org_id, *effective_on),
            MemberCommand::AdjustCredit {
                adjustment_id,
                category,
                hours,
                effective_at,
                reason,
                appeal_id,
                clock,
            } => self.decide_adjustment(
                &Adjustment {
                    adjustment_id: *adjustment_id,
                    category: *category,
                    hours: *hours,
                    effective_at: *effective_at,
                    reason: reason.clone(),
                    appeal_id: *appeal_id,
                    sequence: 0,
                },
                *clock,
            ),
            MemberCommand::FileAppeal {
                appeal_id,
                evaluation_id,
                reason,
                clock,
            } => self.decide_appeal(*appeal_id, evaluation_id, reason, *clock),
            MemberCommand::ResolveAppeal {
                appeal_id,
                outcome,
                note,
                clock,
            } => self.decide_resolution(*appeal_id, *outcome, note, *clock),
            MemberCommand::DetermineEligibility {
                determination_id,
                evaluation_id,
                quarters,
                rulesets,
                clock,
            } => self.decide_determination(
                *determination_id,
                evaluation_id,
                quarters,
                rulesets,
                *clock,
            ),
            MemberCommand::RecordStudySession {
                session_id,
                course,
                started_at,
                ended_at,
                clock,
            } => {
                let enrolment = self.enrolled()?;
                if let Some(recorded) = self.session(*session_id) {
                    return Self::resend(
                        recorded.course_id == course.course_id
                            && recorded.started_at == *started_at
                            && recorded.ended_at == *ended_at,
                        "session",
                        *session_id,
                    );
                }
                check_session_times(
                    *started_at,
                    *ended_at,
                    enrolment.enrolled_on,
                    clock.now,
                    clock.tz,
                )
                .map_err(MemberRejection::InvalidSession)?;
                if let Some(other) = overlapping_session(&self.sessions, *started_at, *ended_at) {
                    return Err(MemberRejection::SessionOverlaps {
                        other: other.session_id,
                    });
                }
                Ok(vec![MemberEvent::StudySessionRecorded {
                    session_id: *session_id,
                    course_id: course.course_id.clone(),
                    started_at: *started_at,
                    ended_at: *ended_at,
                    minutes: session_minutes(*started_at, *ended_at),
                }])
            }
            MemberCommand::RecordCompletion {
                completion_id,
                course,
                completed_at,
                clock,
            } => {
                let enrolment = self.enrolled()?;
                if let Some(recorded) = self.completion(*completion_id) {
                    return Self::resend(
                        recorded.course.course_id == course.course_id
                            && recorded.completed_at == *completed_at,
                        "completion",
                        *completion_id,
                    );
                }
                check_completion_time(*completed_at, enrolment.enrolled_on, clock.now, clock.tz)
                    .map_err(MemberRejection::InvalidCompletion)?;
                Ok(vec![MemberEvent::CourseCompleted {
                    completion_id: *completion_id,
                    course_id: course.course_id.clone(),
                    category: course.category,
                    credit_hours: course.credit_hours,
                    min_study_minutes: course.min_study_minutes,
                    completed_at: *completed_at,
                }])
            }
        }
    }

    fn decide_transfer(
        &self,
        transfer_id: Uuid,
        to_org_id: &OrgId,
        effective_on: NaiveDate,
    ) -> Result<Vec<MemberEvent>, MemberRejection> {
        let enrolment = self.enrolled()?;
        if let Some(recorded) = self.transfer(transfer_id) {
            return Self::resend(
                &recorded.to_org_id == to_org_id && recorded.effective_on == effective_on,
                "transfer",
                transfer_id,
            );
        }
        if effective_on < enrolment.enrolled_on {
            return Err(MemberRejection::TransferBeforeEnrolment);
        }
        if self.organisation_on(effective_on) == Some(to_org_id) {
            return Err(MemberRejection::TransferToSameOrganisation(
                to_org_id.clone(),
            ));
        }
        Ok(vec![MemberEvent::MemberTransferred {
            transfer_id,
            to_org_id: to_org_id.clone(),
            effective_on,
        }])
    }

    fn decide_enrolment(&self, enrolment: &Enrolment) -> Result<Vec<MemberEvent>, MemberRejection> {
        match &self.enrolment {
            Some(existing) if existing == enrolment => Ok(vec![]),
            Some(_) => Err(MemberRejection::EnrolmentConflict),
            None if enrolment.member_no.trim().is_empty() || enrolment.name.trim().is_empty() => {
                Err(MemberRejection::IncompleteEnrolment)
            }
            None => Ok(vec![MemberEvent::MemberEnrolled(enrolment.clone())]),
        }
    }
}

impl Aggregate for Member {
    const TYPE: &'static str = "member";
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        let sequence = self.version;
        match event {
            MemberEvent::MemberEnrolled(enrolment) => self.enrolment = Some(enrolment),
            MemberEvent::StudySessionRecorded {
                session_id,
                course_id,
                started_at,
                ended_at,
                minutes: _,
            } => {
                let at = self.sessions.partition_point(|s| s.started_at < started_at);
                self.sessions.insert(
                    at,
                    StudySession {
                        session_id,
                        course_id,
                        started_at,
                        ended_at,
                        sequence,
                    },
                );
            }
            MemberEvent::CourseCompleted {
                completion_id,
                course_id,
                category,
                credit_hours,
                min_study_minutes,
                completed_at,
            } => self.completions.push(Completion {
                completion_id,
                course: CourseTerms {
                    course_id,
                    category,
                    credit_hours,
                    min_study_minutes,
                },
                completed_at,
                sequence,
            }),
            MemberEvent::MemberTransferred {
                transfer_id,
                to_org_id,
                effective_on,
            } => self.transfers.push(Transfer {
                transfer_id,
                to_org_id,
                effective_on,
                sequence,
            }),
            MemberEvent::EligibilityDetermined(determination) => {
                self.determinations.push(determination)
            }
            MemberEvent::CreditAdjusted {
                adjustment_id,
                category,
                hours,
                effective_at,
                reason,
                appeal_id,
            } => self.adjustments.push(Adjustment {
                adjustment_id,
                category,
                hours,
                effective_at,
                reason,
                appeal_id,
                sequence,
            }),
            MemberEvent::AppealFiled {
                appeal_id,
                evaluation_id,
                determination_id,
                reason,
                filed_at,
            } => self.appeals.push(Appeal {
                appeal_id,
                evaluation_id,
                determination_id,
                reason,
                filed_at,
                sequence,
                resolution: None,
            }),
            MemberEvent::AppealResolved {
                appeal_id,
                outcome,
                note,
                resolved_at,
            } => {
                if let Some(appeal) = self.appeals.iter_mut().find(|a| a.appeal_id == appeal_id) {
                    appeal.resolution = Some(Resolution {
                        outcome,
                        note,
                        resolved_at,
                        sequence,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type MemberTest = TestFramework<Member>;

    fn at(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2018, month, day, hour, minute, 0)
            .single()
            .expect("instant")
    }

    fn clock() -> Clock {
        Clock {
            now: at(12, 1, 0, 0),
            tz: chrono_tz::Asia::Shanghai,
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn enrolment() -> Enrolment {
        Enrolment {
            member_id: id(1),
            member_no: "M-0001".to_owned(),
            name: "林晓".to_owned(),
            org_id: "fz-branch-1".parse().expect("slug"),
            enrolled_on: NaiveDate::from_ymd_opt(2018, 3, 1).expect("date"),
        }
    }

    fn course() -> CourseTerms {
        CourseTerms {
            course_id: "party-history".parse().expect("slug"),
            category: Category::Required,
            credit_hours: Hours::from_hundredths(250),
            min_study_minutes: 60,
        }
    }

    fn record_session(n: u128, start: DateTime<Utc>, end: DateTime<Utc>) -> MemberCommand {
        MemberCommand::RecordStudySession {
            session_id: id(n),
            course: course(),
            started_at: start,
            ended_at: end,
            clock: clock(),
        }
    }

    fn session_recorded(n: u128, start: DateTime<Utc>, end: DateTime<Utc>) -> MemberEvent {
        MemberEvent::StudySessionRecorded {
            session_id: id(n),
            course_id: course().course_id,
            started_at: start,
            ended_at: end,
            minutes: (end - start).num_minutes(),
        }
    }

    fn record_completion(n: u128, when: DateTime<Utc>) -> MemberCommand {
        MemberCommand::RecordCompletion {
            completion_id: id(n),
            course: course(),
            completed_at: when,
            clock: clock(),
        }
    }

    #[test]
    fn enrolling_records_the_member() {
        MemberTest::with(())
            .given_no_previous_events()
            .when(MemberCommand::Enrol(enrolment()))
            .then_expect_events(vec![MemberEvent::MemberEnrolled(enrolment())]);
    }

    #[test]
    fn enrolling_again_with_the_same_details_records_nothing() {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(MemberCommand::Enrol(enrolment()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn enrolling_again_with_other_details_is_a_conflict() {
        let mut other = enrolment();
        other.name = "王芳".to_owned();
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(MemberCommand::Enrol(other))
            .then_expect_error(MemberRejection::EnrolmentConflict);
    }

    #[test]
    fn an_enrolment_without_a_name_is_rejected() {
        let mut nameless = enrolment();
        nameless.name = "  ".to_owned();
        MemberTest::with(())
            .given_no_previous_events()
            .when(MemberCommand::Enrol(nameless))
            .then_expect_error(MemberRejection::IncompleteEnrolment);
    }

    #[test]
    fn a_session_for_a_member_not_enrolled_is_rejected() {
        MemberTest::with(())
            .given_no_previous_events()
            .when(record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0)))
            .then_expect_error(MemberRejection::NotEnrolled);
    }

    #[test]
    fn a_valid_session_is_recorded_with_its_whole_minutes() {
        let start = at(5, 1, 9, 0);
        let end = start + chrono::Duration::seconds(59 * 60 + 59);
        let expected = MemberEvent::StudySessionRecorded {
            session_id: id(10),
            course_id: course().course_id,
            started_at: start,
            ended_at: end,
            minutes: 59,
        };
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(record_session(10, start, end))
            .then_expect_events(vec![expected]);
    }

    #[test]
    fn a_touching_session_is_recorded() {
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
            ])
            .when(record_session(11, at(5, 1, 10, 0), at(5, 1, 11, 0)))
            .then_expect_events(vec![session_recorded(11, at(5, 1, 10, 0), at(5, 1, 11, 0))]);
    }

    #[test]
    fn an_overlapping_session_is_rejected() {
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
                session_recorded(12, at(5, 1, 13, 0), at(5, 1, 14, 0)),
            ])
            .when(record_session(11, at(5, 1, 9, 30), at(5, 1, 10, 30)))
            .then_expect_error(MemberRejection::SessionOverlaps { other: id(10) });
    }

    #[test]
    fn a_session_recorded_out_of_order_still_guards_against_overlap() {
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                session_recorded(12, at(5, 2, 9, 0), at(5, 2, 10, 0)),
                session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
            ])
            .when(record_session(11, at(5, 2, 8, 0), at(5, 2, 9, 1)))
            .then_expect_error(MemberRejection::SessionOverlaps { other: id(12) });
    }

    #[test]
    fn the_same_session_sent_twice_records_nothing_new() {
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
            ])
            .when(record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_session_id_reused_with_other_times_is_a_conflict() {
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
            ])
            .when(record_session(10, at(5, 3, 9, 0), at(5, 3, 10, 0)))
            .then_expect_error(MemberRejection::IdReused {
                kind: "session",
                id: id(10),
            });
    }

    #[test]
    fn sessions_that_break_the_time_rules_are_rejected() {
        let cases = [
            (
                at(5, 1, 10, 0),
                at(5, 1, 10, 0),
                TimeViolation::EndNotAfterStart,
            ),
            (
                at(5, 1, 8, 0),
                at(5, 1, 20, 1),
                TimeViolation::LongerThanTwelveHours,
            ),
            (
                at(11, 30, 23, 0),
                at(12, 1, 0, 6),
                TimeViolation::InTheFuture,
            ),
            (
                at(2, 28, 9, 0),
                at(2, 28, 10, 0),
                TimeViolation::BeforeEnrolment,
            ),
        ];
        for (start, end, violation) in cases {
            MemberTest::with(())
                .given(vec![MemberEvent::MemberEnrolled(enrolment())])
                .when(record_session(10, start, end))
                .then_expect_error(MemberRejection::InvalidSession(violation));
        }
    }

    #[test]
    fn a_completion_carries_the_course_terms_of_its_recording() {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(record_completion(20, at(5, 1, 12, 0)))
            .then_expect_events(vec![MemberEvent::CourseCompleted {
                completion_id: id(20),
                course_id: course().course_id,
                category: Category::Required,
                credit_hours: Hours::from_hundredths(250),
                min_study_minutes: 60,
                completed_at: at(5, 1, 12, 0),
            }]);
    }

    #[test]
    fn a_second_completion_of_the_same_course_is_recorded_too() {
        let first = MemberEvent::CourseCompleted {
            completion_id: id(20),
            course_id: course().course_id,
            category: Category::Required,
            credit_hours: Hours::from_hundredths(250),
            min_study_minutes: 60,
            completed_at: at(5, 1, 12, 0),
        };
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment()), first])
            .when(record_completion(21, at(5, 2, 12, 0)))
            .then_expect_events(vec![MemberEvent::CourseCompleted {
                completion_id: id(21),
                course_id: course().course_id,
                category: Category::Required,
                credit_hours: Hours::from_hundredths(250),
                min_study_minutes: 60,
                completed_at: at(5, 2, 12, 0),
            }]);
    }

    #[test]
    fn completions_in_the_future_or_before_enrolment_are_rejected() {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(record_completion(20, at(12, 1, 0, 6)))
            .then_expect_error(MemberRejection::InvalidCompletion(
                TimeViolation::InTheFuture,
            ));
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(record_completion(20, at(2, 28, 15, 59)))
            .then_expect_error(MemberRejection::InvalidCompletion(
                TimeViolation::BeforeEnrolment,
            ));
    }

    #[test]
    fn a_completion_id_reused_for_another_course_is_a_conflict() {
        let first = MemberEvent::CourseCompleted {
            completion_id: id(20),
            course_id: "other".parse().expect("slug"),
            category: Category::Elective,
            credit_hours: Hours::from_hundredths(100),
            min_study_minutes: 0,
            completed_at: at(5, 1, 12, 0),
        };
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment()), first])
            .when(record_completion(20, at(5, 1, 12, 0)))
            .then_expect_error(MemberRejection::IdReused {
                kind: "completion",
                id: id(20),
            });
    }

    #[test]
    fn applied_facts_remember_their_sequence_and_stay_sorted() {
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(enrolment()));
        member.apply(session_recorded(12, at(5, 2, 9, 0), at(5, 2, 10, 0)));
        member.apply(session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)));
        assert_eq!(member.version(), 3);
        let order: Vec<(Uuid, usize)> = member
            .sessions()
            .iter()
            .map(|s| (s.session_id, s.sequence))
            .collect();
        assert_eq!(order, [(id(10), 3), (id(12), 2)]);
    }

    fn transfer(n: u128, to: &str, on: (i32, u32, u32)) -> MemberCommand {
        MemberCommand::Transfer {
            transfer_id: id(n),
            to_org_id: to.parse().expect("slug"),
            effective_on: NaiveDate::from_ymd_opt(on.0, on.1, on.2).expect("date"),
        }
    }

    fn transferred(n: u128, to: &str, on: (i32, u32, u32)) -> MemberEvent {
        MemberEvent::MemberTransferred {
            transfer_id: id(n),
            to_org_id: to.parse().expect("slug"),
            effective_on: NaiveDate::from_ymd_opt(on.0, on.1, on.2).expect("date"),
        }
    }

    #[test]
    fn a_transfer_is_recorded_once_and_moves_the_member_from_its_day_on() {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
            .then_expect_events(vec![transferred(30, "fz-branch-2", (2018, 7, 1))]);
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                transferred(30, "fz-branch-2", (2018, 7, 1)),
            ])
            .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
            .then_expect_events(vec![]);
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(enrolment()));
        member.apply(transferred(30, "fz-branch-2", (2018, 7, 1)));
        member.apply(transferred(31, "fz-branch-3", (2018, 5, 1)));
        let on = |m, d| NaiveDate::from_ymd_opt(2018, m, d).expect("date");
        let org = |m, d| member.organisation_on(on(m, d)).map(ToString::to_string);
        assert_eq!(org(2, 28), None, "before enrolment");
        assert_eq!(org(3, 1).as_deref(), Some("fz-branch-1"));
        assert_eq!(
            org(5, 1).as_deref(),
            Some("fz-branch-3"),
            "a transfer recorded late still counts from its day"
        );
        assert_eq!(org(6, 30).as_deref(), Some("fz-branch-3"));
        assert_eq!(org(7, 1).as_deref(), Some("fz-branch-2"));
    }

    #[test]
    fn transfers_that_make_no_sense_are_rejected() {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(transfer(30, "fz-branch-2", (2018, 2, 28)))
            .then_expect_error(MemberRejection::TransferBeforeEnrolment);
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(transfer(30, "fz-branch-1", (2018, 7, 1)))
            .then_expect_error(MemberRejection::TransferToSameOrganisation(
                "fz-branch-1".parse().expect("slug"),
            ));
        MemberTest::with(())
            .given(vec![
                MemberEvent::MemberEnrolled(enrolment()),
                transferred(30, "fz-branch-2", (2018, 7, 1)),
            ])
            .when(transfer(30, "fz-branch-3", (2018, 7, 1)))
            .then_expect_error(MemberRejection::IdReused {
                kind: "transfer",
                id: id(30),
            });
        MemberTest::with(())
            .given_no_previous_events()
            .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
            .then_expect_error(MemberRejection::NotEnrolled);
    }

    fn determine(n: u128, quarters: &[&str], now: DateTime<Utc>) -> MemberCommand {
        MemberCommand::DetermineEligibility {
            determination_id: id(n),
            evaluation_id: "2018-q2".parse().expect("slug"),
            quarters: quarters
                .iter()
                .map(|q| Quarter::parse(q).expect("quarter"))
                .collect(),
            rulesets: vec![Ruleset::version_1()],
            clock: Clock { now, ..clock() },
        }
    }

    #[test]
    fn a_determination_records_the_outcome_and_its_basis_once() {
        use crate::rules::status::QuarterStatus;
        // 2.5 required hours in 2018-Q2, far from the 8 + 3 of version 1.
        let given = vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(2, at(4, 2, 1, 0), at(4, 2, 2, 0)),
            MemberEvent::CourseCompleted {
                completion_id: id(3),
                course_id: course().course_id,
                category: Category::Required,
                credit_hours: Hours::from_hundredths(250),
                min_study_minutes: 60,
                completed_at: at(4, 2, 3, 0),
            },
        ];
        let now = at(7, 2, 0, 0);
        let mut member = Member::default();
        for event in given.clone() {
            member.apply(event);
        }
        let events = member
            .decide(&determine(9, &["2018-Q2"], now))
            .expect("decided");
        let [MemberEvent::EligibilityDetermined(d)] = events.as_slice() else {
            panic!("one determination expected, got {events:?}");
        };
        assert!(!d.eligible);
        assert_eq!(d.determined_at, now);
        assert_eq!(d.rules_version, 1);
        assert_eq!(d.quarters.len(), 1);
        assert_eq!(d.quarters[0].status, QuarterStatus::NonCompliant);
        assert_eq!(d.quarters[0].required_hours, Hours::from_hundredths(250));
        assert_eq!(d.quarters[0].required_target, Hours::whole(8));
        assert_eq!(d.quarters[0].ruleset_version, Some(1));

        let mut recorded = given.clone();
        recorded.push(events[0].clone());
        MemberTest::with(())
            .given(recorded.clone())
            .when(determine(9, &["2018-Q2"], at(8, 1, 0, 0)))
            .then_expect_events(vec![]);
        let mut other = determine(9, &["2018-Q2"], now);
        if let MemberCommand::DetermineEligibility { evaluation_id, .. } = &mut other {
            *evaluation_id = "2018-annual".parse().expect("slug");
        }
        MemberTest::with(())
            .given(recorded)
            .when(other)
            .then_expect_error(MemberRejection::IdReused {
                kind: "determination",
                id: id(9),
            });
    }

    #[test]
    fn eligibility_is_decided_only_once_every_quarter_has_ended() {
        let q2 = Quarter::parse("2018-Q2").expect("quarter");
        // 2018-06-30T20:00Z is already 2018-07-01 in Shanghai: Q2 has ended there.
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(determine(9, &["2018-Q2"], at(6, 30, 15, 0)))
            .then_expect_error(MemberRejection::EvaluationNotOver(q2));
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(enrolment()));
        let decided = member
            .decide(&determine(9, &["2018-Q2"], at(6, 30, 20, 0)))
            .expect("Q2 has ended in Shanghai");
        assert!(
            matches!(
                decided.as_slice(),
                [MemberEvent::EligibilityDetermined(d)]
                    if d.determination_id == id(9)
                        && !d.eligible
                        && d.quarters.len() == 1
                        && d.quarters[0].quarter == q2
                        && d.quarters[0].status == crate::rules::status::QuarterStatus::NonCompliant
            ),
            "{decided:?}"
        );
        MemberTest::with(())
            .given_no_previous_events()
            .when(determine(9, &["2018-Q1"], at(7, 1, 0, 0)))
            .then_expect_error(MemberRejection::NotEnrolled);
    }

    fn determined(n: u128, eligible: bool) -> MemberEvent {
        MemberEvent::EligibilityDetermined(Determination {
            determination_id: id(n),
            evaluation_id: "2018-q2".parse().expect("slug"),
            eligible,
            determined_at: at(7, 2, 0, 0),
            rules_version: 1,
            quarters: vec![],
        })
    }

    fn filed(n: u128, determination: u128) -> MemberEvent {
        MemberEvent::AppealFiled {
            appeal_id: id(n),
            evaluation_id: "2018-q2".parse().expect("slug"),
            determination_id: id(determination),
            reason: "r".to_owned(),
            filed_at: at(7, 3, 0, 0),
        }
    }

    fn resolved(n: u128, outcome: AppealOutcome) -> MemberEvent {
        MemberEvent::AppealResolved {
            appeal_id: id(n),
            outcome,
            note: "n".to_owned(),
            resolved_at: at(7, 4, 0, 0),
        }
    }

    fn file_appeal(n: u128) -> MemberCommand {
        MemberCommand::FileAppeal {
            appeal_id: id(n),
            evaluation_id: "2018-q2".parse().expect("slug"),
            reason: "r".to_owned(),
            clock: clock(),
        }
    }

    fn resolve_appeal(n: u128, outcome: AppealOutcome) -> MemberCommand {
        MemberCommand::ResolveAppeal {
            appeal_id: id(n),
            outcome,
            note: "n".to_owned(),
            clock: clock(),
        }
    }

    fn member_from(events: Vec<MemberEvent>) -> Member {
        let mut member = Member::default();
        for event in events {
            member.apply(event);
        }
        member
    }

    #[test]
    fn the_final_eligibility_follows_the_latest_determination_and_its_appeal() {
        let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
        let base = vec![
            MemberEvent::MemberEnrolled(enrolment()),
            determined(10, false),
        ];
        let final_of = |events: Vec<MemberEvent>| {
            member_from(events)
                .final_eligibility(&evaluation)
                .map(|(eligible, d, a)| (eligible, d.determination_id, a.map(|a| a.appeal_id)))
        };
        assert_eq!(final_of(base.clone()), Some((false, id(10), None)));
        let mut open = base.clone();
        open.push(filed(20, 10));
        assert_eq!(final_of(open.clone()), Some((false, id(10), Some(id(20)))));
        let mut upheld = open.clone();
        upheld.push(resolved(20, AppealOutcome::Upheld));
        assert_eq!(final_of(upheld).map(|f| f.0), Some(false));
        let mut overturned = open.clone();
        overturned.push(resolved(20, AppealOutcome::Overturned));
        assert_eq!(final_of(overturned.clone()).map(|f| f.0), Some(true));
        // A new determination supersedes the old one and its appeal.
        overturned.push(determined(11, false));
        assert_eq!(final_of(overturned), Some((false, id(11), None)));
        // An appeal open against a superseded determination is no longer open.
        open.push(determined(11, true));
        assert_eq!(member_from(open).open_appeals().count(), 0);
    }

    #[test]
    fn appeals_need_a_determination_and_wait_their_turn() {
        let file = file_appeal;
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(file(20))
            .then_expect_error(MemberRejection::NothingToAppeal(
                "2018-q2".parse().expect("slug"),
            ));
        let mut given = vec![
            MemberEvent::MemberEnrolled(enrolment()),
            determined(10, false),
        ];
        let member = member_from(given.clone());
        let events = member.decide(&file(20)).expect("filed");
        given.extend(events);
        MemberTest::with(())
            .given(given.clone())
            .when(file(21))
            .then_expect_error(MemberRejection::AppealAlreadyOpen(id(20)));
        MemberTest::with(())
            .given(given)
            .when(resolve_appeal(99, AppealOutcome::Upheld))
            .then_expect_error(MemberRejection::NoSuchAppeal(id(99)));
    }

    #[test]
    fn a_second_appeal_of_one_determination_in_an_older_ledger_changes_nothing() {
        let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
        let given = vec![
            MemberEvent::MemberEnrolled(enrolment()),
            determined(10, false),
            filed(20, 10),
            resolved(20, AppealOutcome::Overturned),
            filed(21, 10),
        ];
        let member = member_from(given.clone());
        assert_eq!(
            member
                .final_eligibility(&evaluation)
                .map(|(eligible, _, appeal)| (eligible, appeal.map(|a| a.appeal_id))),
            Some((true, Some(id(20))))
        );
        assert_eq!(
            member.appeal(id(21)).map(|a| member.appeal_status(a)),
            Some(AppealStatus::Superseded)
        );
        assert_eq!(member.open_appeals().count(), 0);
        MemberTest::with(())
            .given(given)
            .when(resolve_appeal(21, AppealOutcome::Upheld))
            .then_expect_error(MemberRejection::AppealSuperseded(id(21)));
    }

    #[test]
    fn a_determination_is_heard_once_and_a_new_one_can_be_appealed_again() {
        let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
        let file = file_appeal;
        let mut given = vec![
            MemberEvent::MemberEnrolled(enrolment()),
            determined(10, false),
        ];
        given.extend(member_from(given.clone()).decide(&file(20)).expect("filed"));
        let resolve = resolve_appeal(20, AppealOutcome::Overturned);
        given.extend(
            member_from(given.clone())
                .decide(&resolve)
                .expect("resolved"),
        );
        let heard = member_from(given.clone());
        assert_eq!(
            heard.final_eligibility(&evaluation).map(|f| f.0),
            Some(true)
        );
        assert_eq!(
            heard.appeal(id(20)).map(|a| heard.appeal_status(a)),
            Some(AppealStatus::Overturned)
        );
        // A second appeal against the same determination would undo the overturn: refused.
        MemberTest::with(())
            .given(given.clone())
            .when(file(21))
            .then_expect_error(MemberRejection::AlreadyHeard(id(20)));
        // A new determination supersedes the appeal's outcome and can be appealed.
        given.push(determined(11, false));
        let redetermined = member_from(given.clone());
        assert_eq!(
            redetermined.final_eligibility(&evaluation).map(|f| f.0),
            Some(false)
        );
        let events = redetermined.decide(&file(21)).expect("a new appeal");
        assert!(matches!(
            events.as_slice(),
            [MemberEvent::AppealFiled { determination_id, .. }] if *determination_id == id(11)
        ));
    }

    #[test]
    fn adjustments_count_in_the_quarter_of_their_effective_time() {
        let adjusted = |n: u128, category, hundredths, when| MemberEvent::CreditAdjusted {
            adjustment_id: id(n),
            category,
            hours: Hours::from_hundredths(hundredths),
            effective_at: when,
            reason: "r".to_owned(),
            appeal_id: None,
        };
        let member = member_from(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            adjusted(1, Category::Required, 800, at(5, 1, 0, 0)),
            adjusted(2, Category::Required, -150, at(5, 2, 0, 0)),
            // 2018-06-30T20:00Z is 2018-07-01 in Shanghai: the third quarter.
            adjusted(3, Category::Elective, 300, at(6, 30, 20, 0)),
        ]);
        let totals = member.quarter_totals(&[Ruleset::version_1()], chrono_tz::Asia::Shanghai);
        let q = |raw: &str| Quarter::parse(raw).expect("quarter");
        assert_eq!(totals[&q("2018-Q2")].required, Hours::from_hundredths(650));
        assert_eq!(totals[&q("2018-Q2")].elective, Hours::ZERO);
        assert_eq!(totals[&q("2018-Q3")].elective, Hours::whole(3));
        let zero = MemberCommand::AdjustCredit {
            adjustment_id: id(9),
            category: Category::Required,
            hours: Hours::ZERO,
            effective_at: at(5, 1, 0, 0),
            reason: "r".to_owned(),
            appeal_id: None,
            clock: clock(),
        };
        assert_eq!(member.decide(&zero), Err(MemberRejection::AdjustmentSize));
    }
}
