//! Rule 7: a transfer moves the member to another organisation from a local date on.

use crate::member::command::Transfer;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

pub(super) fn decide(
    member: &Member,
    command: &Transfer,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let enrolment = member.enrolled()?;
    let Transfer {
        transfer_id,
        to_org_id,
        effective_on,
    } = command;
    if let Some(recorded) = member.transfer(*transfer_id) {
        return MemberRejection::unless_resent(
            &recorded.to_org_id == to_org_id && recorded.effective_on == *effective_on,
            "transfer",
            *transfer_id,
        );
    }
    if *effective_on < enrolment.enrolled_on {
        return Err(MemberRejection::TransferBeforeEnrolment);
    }
    if let Some(away) = member
        .tenure()
        .and_then(|t| t.away_between(*effective_on, *effective_on).copied())
    {
        return Err(MemberRejection::TransferWhileAway(away.left_on));
    }
    if member.organisation_on(*effective_on) == Some(to_org_id) {
        return Err(MemberRejection::TransferToSameOrganisation(
            to_org_id.clone(),
        ));
    }
    Ok(vec![MemberEvent::MemberTransferred {
        transfer_id: *transfer_id,
        to_org_id: to_org_id.clone(),
        effective_on: *effective_on,
    }])
}
