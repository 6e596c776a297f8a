//! Rule 9: a member appeals the latest determination for an evaluation (a determination is
//! heard once), and a reviewer upholds or overturns it while it is still in force.

use crate::member::command::{FileAppeal, ResolveAppeal};
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

pub(super) fn file(
    member: &Member,
    command: &FileAppeal,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    member.enrolled()?;
    let FileAppeal {
        appeal_id,
        evaluation_id,
        reason,
        clock,
    } = command;
    if let Some(recorded) = member.appeal(*appeal_id) {
        return MemberRejection::unless_resent(
            &recorded.evaluation_id == evaluation_id && &recorded.reason == reason,
            "appeal",
            *appeal_id,
        );
    }
    let hearings = member.hearings();
    let latest = hearings
        .latest(evaluation_id)
        .ok_or_else(|| MemberRejection::NothingToAppeal(evaluation_id.clone()))?;
    if let Some(earlier) = hearings.appeal_against(latest.determination_id) {
        return Err(if earlier.resolution.is_none() {
            MemberRejection::AppealAlreadyOpen(earlier.appeal_id)
        } else {
            MemberRejection::AlreadyHeard(earlier.appeal_id)
        });
    }
    Ok(vec![MemberEvent::AppealFiled {
        appeal_id: *appeal_id,
        evaluation_id: evaluation_id.clone(),
        determination_id: latest.determination_id,
        reason: reason.clone(),
        filed_at: clock.now,
    }])
}

pub(super) fn resolve(
    member: &Member,
    command: &ResolveAppeal,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    member.enrolled()?;
    let ResolveAppeal {
        appeal_id,
        outcome,
        note,
        clock,
    } = command;
    let appeal = member
        .appeal(*appeal_id)
        .ok_or(MemberRejection::NoSuchAppeal(*appeal_id))?;
    if let Some(resolution) = &appeal.resolution {
        return if resolution.outcome == *outcome && &resolution.note == note {
            Ok(vec![])
        } else {
            Err(MemberRejection::AlreadyResolved(*appeal_id))
        };
    }
    if !member.hearings().waits_for_a_reviewer(appeal) {
        return Err(MemberRejection::AppealSuperseded(*appeal_id));
    }
    Ok(vec![MemberEvent::AppealResolved {
        appeal_id: *appeal_id,
        outcome: *outcome,
        note: note.clone(),
        resolved_at: clock.now,
    }])
}
