//! What a member's ledger records: past-tense facts, each with everything needed to interpret
//! it later. The names and versions here are the only place an event type is spelled; the
//! serialised shape of these variants is the shape of every stored member event, forever.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::{AppealOutcome, Enrolment};
use crate::rules::eligibility::Determination;
use crate::values::{Category, CourseId, EvaluationId, Hours, MemberNo, Name, OrgId, Reason};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemberEvent {
    MemberEnrolled(Enrolment),
    StudySessionRecorded {
        session_id: Uuid,
        course_id: CourseId,
        started_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
        minutes: i64,
        /// The xAPI statement it came from (absent for the JSON API).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Uuid>,
    },
    /// Carries the course's terms as they were when the completion was recorded (rule 2).
    CourseCompleted {
        completion_id: Uuid,
        course_id: CourseId,
        category: Category,
        credit_hours: Hours,
        min_study_minutes: u32,
        completed_at: DateTime<Utc>,
        /// The xAPI statement it came from (absent for the JSON API).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<Uuid>,
    },
    MemberTransferred {
        transfer_id: Uuid,
        to_org_id: OrgId,
        effective_on: NaiveDate,
    },
    /// Who the member is, corrected: a new name, a new member number, or both.
    MemberCorrected {
        correction_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<Name>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_no: Option<MemberNo>,
        reason: Reason,
    },
    /// Rule 12: the member left; from `left_on` on they are away.
    MemberDeparted {
        departure_id: Uuid,
        left_on: NaiveDate,
        reason: Reason,
    },
    /// Rule 12: the member came back to `org_id` on `rejoined_on`.
    MemberRejoined {
        rejoining_id: Uuid,
        rejoined_on: NaiveDate,
        org_id: OrgId,
    },
    EligibilityDetermined(Determination),
    CreditAdjusted {
        adjustment_id: Uuid,
        category: Category,
        hours: Hours,
        effective_at: DateTime<Utc>,
        reason: Reason,
        appeal_id: Option<Uuid>,
    },
    AppealFiled {
        appeal_id: Uuid,
        evaluation_id: EvaluationId,
        determination_id: Uuid,
        reason: Reason,
        filed_at: DateTime<Utc>,
    },
    AppealResolved {
        appeal_id: Uuid,
        outcome: AppealOutcome,
        note: Reason,
        resolved_at: DateTime<Utc>,
    },
    /// Rule 11: a session or completion withdrawn because its source statement was voided.
    FactWithdrawn {
        fact_id: Uuid,
        voided_statement: Uuid,
        voiding_statement: Uuid,
        withdrawn_at: DateTime<Utc>,
    },
    /// An administrator set aside an event the ledger could not apply.
    SkippedEventSetAside {
        skipped_sequence: usize,
        note: Reason,
        set_aside_at: DateTime<Utc>,
    },
}

impl MemberEvent {
    /// The stable name of the event's type, as stored in `events.event_type`.
    pub const ENROLLED: &'static str = "MemberEnrolled";

    fn name(&self) -> &'static str {
        match self {
            MemberEvent::MemberEnrolled(_) => Self::ENROLLED,
            MemberEvent::StudySessionRecorded { .. } => "StudySessionRecorded",
            MemberEvent::CourseCompleted { .. } => "CourseCompleted",
            MemberEvent::MemberTransferred { .. } => "MemberTransferred",
            MemberEvent::MemberCorrected { .. } => "MemberCorrected",
            MemberEvent::MemberDeparted { .. } => "MemberDeparted",
            MemberEvent::MemberRejoined { .. } => "MemberRejoined",
            MemberEvent::EligibilityDetermined(_) => "EligibilityDetermined",
            MemberEvent::CreditAdjusted { .. } => "CreditAdjusted",
            MemberEvent::AppealFiled { .. } => "AppealFiled",
            MemberEvent::AppealResolved { .. } => "AppealResolved",
            MemberEvent::FactWithdrawn { .. } => "FactWithdrawn",
            MemberEvent::SkippedEventSetAside { .. } => "SkippedEventSetAside",
        }
    }
}

impl DomainEvent for MemberEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
