//! The recorded facts of a member's ledger, as the rules read them.
//!
//! Each fact carries the event sequence that recorded it, so a derived figure can always point
//! back to the event it came from.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Category, CourseId, Hours, MemberNo, Name, OrgId, Reason};

/// A course's terms as they were when a fact about it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseTerms {
    pub course_id: CourseId,
    pub category: Category,
    pub credit_hours: Hours,
    pub min_study_minutes: u32,
}

/// Who the member is and where they started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub member_id: Uuid,
    pub member_no: MemberNo,
    pub name: Name,
    pub org_id: OrgId,
    pub enrolled_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudySession {
    pub session_id: Uuid,
    pub course_id: CourseId,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub sequence: usize,
    /// The xAPI statement it came from; `None` for the JSON API and imports of rows.
    #[serde(default)]
    pub source: Option<Uuid>,
    /// Rule 11: the withdrawal that took it back, once withdrawn.
    #[serde(default)]
    pub withdrawn: Option<Withdrawal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub completion_id: Uuid,
    pub course: CourseTerms,
    pub completed_at: DateTime<Utc>,
    pub sequence: usize,
    /// The xAPI statement it came from; `None` for the JSON API and imports of rows.
    #[serde(default)]
    pub source: Option<Uuid>,
    /// Rule 11: the withdrawal that took it back, once withdrawn.
    #[serde(default)]
    pub withdrawn: Option<Withdrawal>,
}

/// Rule 11: a session or completion taken back because the statement it came from was voided.
/// From then on the fact counts for nothing; what was read before still shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The voided statement (the fact's source).
    pub voided_statement: Uuid,
    /// The statement that voided it.
    pub voiding_statement: Uuid,
    pub withdrawn_at: DateTime<Utc>,
    /// The sequence of the event that recorded the withdrawal.
    pub sequence: usize,
}

/// A correction of who the member is: a new name, a new member number, or both (`None`:
/// unchanged). The enrolment stays as recorded; the member's current details are the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub correction_id: Uuid,
    pub name: Option<Name>,
    pub member_no: Option<MemberNo>,
    pub reason: Reason,
    pub sequence: usize,
}

/// Rule 12: the member left on a local date (the first day away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    pub departure_id: Uuid,
    pub left_on: NaiveDate,
    pub reason: Reason,
    pub sequence: usize,
}

/// Rule 12: the member came back on a local date, to an organisation (rule 7 from that day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejoining {
    pub rejoining_id: Uuid,
    pub rejoined_on: NaiveDate,
    pub org_id: OrgId,
    pub sequence: usize,
}

/// A move to another organisation from a local date on (rule 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub transfer_id: Uuid,
    pub to_org_id: OrgId,
    pub effective_on: NaiveDate,
    pub sequence: usize,
}

/// An administrator's correction of a member's credit (rule 3): ± hours in one category, in
/// the quarter of `effective_at`. Corrections are new facts; nothing is ever edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub adjustment_id: Uuid,
    pub category: crate::values::Category,
    pub hours: Hours,
    pub effective_at: DateTime<Utc>,
    pub reason: Reason,
    /// The appeal it answers, if any.
    pub appeal_id: Option<Uuid>,
    pub sequence: usize,
}

/// An administrator's decision that the ledger goes on without an event it could not apply
/// (one the projector skipped): the record is complete again, with the reason on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The skipped event's sequence.
    pub skipped_sequence: usize,
    pub note: Reason,
    pub set_aside_at: DateTime<Utc>,
    /// The sequence of the event that recorded the decision.
    pub sequence: usize,
}

/// How a reviewer resolved an appeal (rule 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AppealOutcome {
    /// The determination stands.
    Upheld,
    /// The determination's outcome is inverted.
    Overturned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub outcome: AppealOutcome,
    pub note: Reason,
    pub resolved_at: DateTime<Utc>,
    pub sequence: usize,
}

/// A member contesting a determination (rule 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appeal {
    pub appeal_id: Uuid,
    pub evaluation_id: crate::values::EvaluationId,
    /// The determination contested: the latest for the evaluation when the appeal was filed.
    pub determination_id: Uuid,
    pub reason: Reason,
    pub filed_at: DateTime<Utc>,
    pub sequence: usize,
    pub resolution: Option<Resolution>,
}

/// Where an appeal stands: waiting for a reviewer, resolved, or left unheard because a newer
/// determination superseded the one it contests.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealStatus {
    Open,
    Upheld,
    Overturned,
    Superseded,
}

impl AppealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealStatus::Open => "open",
            AppealStatus::Upheld => "upheld",
            AppealStatus::Overturned => "overturned",
            AppealStatus::Superseded => "superseded",
        }
    }
}
