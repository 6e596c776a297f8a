//! A correction of who the member is: a new name or member number, recorded as an event (the
//! enrolment is never edited). Whether a new number is free is the caller's to hold: member
//! numbers are unique across streams, which no single stream can see.

use crate::member::command::Correct;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

pub(super) fn decide(
    member: &Member,
    command: &Correct,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    member.enrolled()?;
    let Correct {
        correction_id,
        name,
        member_no,
        reason,
    } = command;
    if let Some(recorded) = member.correction(*correction_id) {
        return MemberRejection::unless_resent(
            &recorded.name == name
                && &recorded.member_no == member_no
                && &recorded.reason == reason,
            "correction",
            *correction_id,
        );
    }
    let renamed = name.as_ref().filter(|n| Some(*n) != member.name());
    let renumbered = member_no
        .as_ref()
        .filter(|n| Some(*n) != member.member_no());
    if renamed.is_none() && renumbered.is_none() {
        return Err(MemberRejection::NothingToCorrect);
    }
    Ok(vec![MemberEvent::MemberCorrected {
        correction_id: *correction_id,
        name: name.clone(),
        member_no: member_no.clone(),
        reason: reason.clone(),
    }])
}
