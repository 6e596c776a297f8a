//! The recorded facts of a member's ledger, as the rules read them.
//!
//! Each fact carries the event sequence that recorded it, so a derived figure can always point
//! back to the event it came from.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Category, CourseId, Hours, OrgId};

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
    pub member_no: String,
    pub name: String,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub completion_id: Uuid,
    pub course: CourseTerms,
    pub completed_at: DateTime<Utc>,
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

/// The organisation a member belongs to on `day`: the enrolment's until the transfer with the
/// latest `effective_on <= day` (on equal days, the one recorded last); `None` before enrolment.
pub fn organisation_on<'a>(
    enrolment: &'a Enrolment,
    transfers: &'a [Transfer],
    day: NaiveDate,
) -> Option<&'a OrgId> {
    if day < enrolment.enrolled_on {
        return None;
    }
    transfers
        .iter()
        .filter(|t| t.effective_on <= day)
        .max_by_key(|t| (t.effective_on, t.sequence))
        .map(|t| &t.to_org_id)
        .or(Some(&enrolment.org_id))
}
