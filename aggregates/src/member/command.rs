//! What can be asked of a member's ledger. Everything a decision needs from outside the
//! stream — the course's current terms, the clock, the ledger's time zone, the rulesets — is
//! loaded by the caller and travels in the command.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::facts::{AppealOutcome, CourseTerms, Enrolment};
use crate::rules::rulesets::Ruleset;
use crate::values::{Category, EvaluationId, Hours, MemberNo, Name, OrgId, Quarter, Reason};

/// "Now" and the ledger's time zone, as the caller saw them when the command arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub tz: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MemberCommand {
    Enrol(Enrolment),
    RecordStudySession(RecordStudySession),
    RecordCompletion(RecordCompletion),
    Transfer(Transfer),
    Correct(Correct),
    Depart(Depart),
    Rejoin(Rejoin),
    AdjustCredit(AdjustCredit),
    FileAppeal(FileAppeal),
    ResolveAppeal(ResolveAppeal),
    DetermineEligibility(DetermineEligibility),
    SetAsideSkipped(SetAsideSkipped),
    Withdraw(Withdraw),
}

/// Rule 1: a study session of a registered course.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordStudySession {
    pub session_id: Uuid,
    pub course: CourseTerms,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// The xAPI statement it comes from, if any.
    pub source: Option<Uuid>,
    pub clock: Clock,
}

/// Rule 2: the app reports a completed course.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordCompletion {
    pub completion_id: Uuid,
    pub course: CourseTerms,
    pub completed_at: DateTime<Utc>,
    /// The xAPI statement it comes from, if any.
    pub source: Option<Uuid>,
    pub clock: Clock,
}

/// Rule 11: statement `voided` was voided by `voiding`; every session and completion that came
/// from it is withdrawn (none is an exact resend: nothing to withdraw).
#[derive(Debug, Clone, PartialEq)]
pub struct Withdraw {
    pub voided: Uuid,
    pub voiding: Uuid,
    pub clock: Clock,
}

/// Rule 7: a move to another organisation, known to exist (the caller checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub transfer_id: Uuid,
    pub to_org_id: OrgId,
    pub effective_on: NaiveDate,
}

/// A correction of the member's name or number (at least one). A new number must be free: the
/// caller holds its claim (`member_numbers`) in the transaction that records the correction.
#[derive(Debug, Clone, PartialEq)]
pub struct Correct {
    pub correction_id: Uuid,
    pub name: Option<Name>,
    pub member_no: Option<MemberNo>,
    pub reason: Reason,
}

/// Rule 12: the member leaves from a local date on (the first day away).
#[derive(Debug, Clone, PartialEq)]
pub struct Depart {
    pub departure_id: Uuid,
    pub left_on: NaiveDate,
    pub reason: Reason,
    pub clock: Clock,
}

/// Rule 12: the member comes back, to an organisation known to exist (the caller checked).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejoin {
    pub rejoining_id: Uuid,
    pub rejoined_on: NaiveDate,
    pub org_id: OrgId,
    pub clock: Clock,
}

/// Rule 3: an administrator's correction. `hours` is signed and not zero.
#[derive(Debug, Clone, PartialEq)]
pub struct AdjustCredit {
    pub adjustment_id: Uuid,
    pub category: Category,
    pub hours: Hours,
    pub effective_at: DateTime<Utc>,
    pub reason: Reason,
    pub appeal_id: Option<Uuid>,
    pub clock: Clock,
}

/// Rule 9: contest the latest determination for an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct FileAppeal {
    pub appeal_id: Uuid,
    pub evaluation_id: EvaluationId,
    pub reason: Reason,
    pub clock: Clock,
}

/// Rule 9: a reviewer's decision on an open appeal.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolveAppeal {
    pub appeal_id: Uuid,
    pub outcome: AppealOutcome,
    pub note: Reason,
    pub clock: Clock,
}

/// Rule 8: decide eligibility for an evaluation under every ruleset published so far.
#[derive(Debug, Clone, PartialEq)]
pub struct DetermineEligibility {
    pub determination_id: Uuid,
    pub evaluation_id: EvaluationId,
    pub quarters: Vec<Quarter>,
    pub rulesets: Vec<Ruleset>,
    /// Sequences of the member's events the projector skipped (its listing): with any of them
    /// not set aside, the record is incomplete and no determination is made.
    pub skipped: Vec<usize>,
    pub clock: Clock,
}

/// An administrator sets aside an event the ledger could not apply: the record goes on
/// without it. `skipped` is the projector's listing for the member, as for determinations.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAsideSkipped {
    pub skipped_sequence: usize,
    pub note: Reason,
    pub skipped: Vec<usize>,
    pub clock: Clock,
}
