//! Enrolment: the first event of every member stream.

use crate::facts::Enrolment;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

pub(super) fn decide(
    member: &Member,
    enrolment: &Enrolment,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    match member.enrolment() {
        Some(existing) if existing == enrolment => Ok(vec![]),
        Some(_) => Err(MemberRejection::EnrolmentConflict),
        None => Ok(vec![MemberEvent::MemberEnrolled(enrolment.clone())]),
    }
}
