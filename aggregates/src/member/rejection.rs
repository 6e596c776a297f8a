//! Why the member aggregate refuses a command, and what kind of refusal each one is.

use uuid::Uuid;

use crate::rejection::{Classify, RejectionKind};
use crate::rules::sessions::TimeViolation;
use crate::values::{EvaluationId, OrgId, Quarter};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRejection {
    #[error("the member is not enrolled")]
    NotEnrolled,
    #[error("the member is already enrolled with other details")]
    EnrolmentConflict,
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
    #[error("the correction changes nothing: give a new name or a new member_no")]
    NothingToCorrect,
    #[error("member_no {0} is held by another member")]
    MemberNoHeld(crate::values::MemberNo),
    /// Held by the caller: the organisation the command places the member in is closed.
    #[error("organisation {0} is closed: it takes no new members, transfers or rejoinings")]
    OrganisationClosed(OrgId),
    #[error("a transfer cannot take effect while the member is away (rule 12: left on {0})")]
    TransferWhileAway(chrono::NaiveDate),
    #[error("the member has been away since {0}; record a rejoining first")]
    AlreadyAway(chrono::NaiveDate),
    #[error("the member is not away: there is nothing to rejoin from")]
    NotAway,
    #[error("{0} lies ahead of today: departures and rejoinings are recorded once they happen")]
    DateAhead(chrono::NaiveDate),
    #[error(
        "left_on must fall after the member's last move (enrolment, transfer or rejoining) on {0}"
    )]
    DepartureBeforeLastMove(chrono::NaiveDate),
    #[error(
        "the member has study recorded on or after left_on ({0}); a departure starts after \
         the member's last session or completion"
    )]
    StudiedAfterDeparture(Uuid),
    #[error("rejoined_on must fall after the departure on {0}")]
    RejoiningBeforeDeparture(chrono::NaiveDate),
    #[error("quarter {0} of the evaluation has not ended yet")]
    EvaluationNotOver(Quarter),
    #[error("an adjustment changes at least one hundredth of a class hour, at most 1000 hours")]
    AdjustmentSize,
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
    #[error(
        "the member's record holds events the ledger could not apply (sequences {}); \
         determinations wait until an administrator sets them aside",
        list(.0)
    )]
    RecordIncomplete(Vec<usize>),
    #[error("the member has no skipped event at sequence {0}")]
    NoSkippedEvent(usize),
    #[error("the skipped event at sequence {0} is already set aside with another note")]
    AlreadySetAside(usize),
    #[error("the member has no appeal {0}")]
    NoSuchAppeal(Uuid),
}

fn list(sequences: &[usize]) -> String {
    let listed: Vec<String> = sequences.iter().map(usize::to_string).collect();
    listed.join(", ")
}

impl MemberRejection {
    /// A command whose id is already recorded: the same content again is a resend and records
    /// nothing; other content under the same id is refused.
    pub(crate) fn unless_resent<E>(
        same: bool,
        kind: &'static str,
        id: Uuid,
    ) -> Result<Vec<E>, MemberRejection> {
        if same {
            Ok(vec![])
        } else {
            Err(MemberRejection::IdReused { kind, id })
        }
    }
}

impl Classify for MemberRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            MemberRejection::NotEnrolled
            | MemberRejection::NoSuchAppeal(_)
            | MemberRejection::NoSkippedEvent(_) => RejectionKind::NotFound,
            MemberRejection::EnrolmentConflict
            | MemberRejection::IdReused { .. }
            | MemberRejection::SessionOverlaps { .. }
            | MemberRejection::EvaluationNotOver(_)
            | MemberRejection::NothingToAppeal(_)
            | MemberRejection::AppealAlreadyOpen(_)
            | MemberRejection::AlreadyResolved(_)
            | MemberRejection::AlreadyHeard(_)
            | MemberRejection::AppealSuperseded(_)
            | MemberRejection::RecordIncomplete(_)
            | MemberRejection::AlreadySetAside(_)
            | MemberRejection::AlreadyAway(_)
            | MemberRejection::NotAway
            | MemberRejection::MemberNoHeld(_)
            | MemberRejection::OrganisationClosed(_)
            | MemberRejection::StudiedAfterDeparture(_) => RejectionKind::Conflict,
            MemberRejection::AdjustmentSize
            | MemberRejection::InvalidAdjustment(_)
            | MemberRejection::UnknownAppeal(_)
            | MemberRejection::InvalidSession(_)
            | MemberRejection::InvalidCompletion(_)
            | MemberRejection::TransferBeforeEnrolment
            | MemberRejection::TransferToSameOrganisation(_)
            | MemberRejection::TransferWhileAway(_)
            | MemberRejection::DateAhead(_)
            | MemberRejection::NothingToCorrect
            | MemberRejection::DepartureBeforeLastMove(_)
            | MemberRejection::RejoiningBeforeDeparture(_) => RejectionKind::RuleViolation,
        }
    }
}
