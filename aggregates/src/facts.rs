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
