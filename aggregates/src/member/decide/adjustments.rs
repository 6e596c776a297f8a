//! Rule 3: an administrator's credit adjustment — a correction recorded as a new fact, with a
//! reason, in one category, within ±1000 hours and held to a completion's time rules.

use crate::member::command::AdjustCredit;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;
use crate::rules::sessions::check_completion_time;
use crate::values::Hours;

/// The largest correction one adjustment may make.
const MAX_ADJUSTMENT: Hours = Hours::whole(1000);

pub(super) fn decide(
    member: &Member,
    command: &AdjustCredit,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let enrolment = member.enrolled()?;
    if let Some(recorded) = member.adjustment(command.adjustment_id) {
        let same = recorded.category == command.category
            && recorded.hours == command.hours
            && recorded.effective_at == command.effective_at
            && recorded.reason == command.reason
            && recorded.appeal_id == command.appeal_id;
        return MemberRejection::unless_resent(same, "adjustment", command.adjustment_id);
    }
    let size = command.hours.hundredths().unsigned_abs();
    if size == 0 || size > MAX_ADJUSTMENT.hundredths().unsigned_abs() {
        return Err(MemberRejection::AdjustmentSize);
    }
    let clock = command.clock;
    check_completion_time(
        command.effective_at,
        enrolment.enrolled_on,
        clock.now,
        clock.tz,
    )
    .map_err(MemberRejection::InvalidAdjustment)?;
    if let Some(appeal_id) = command.appeal_id {
        if member.appeal(appeal_id).is_none() {
            return Err(MemberRejection::UnknownAppeal(appeal_id));
        }
    }
    Ok(vec![MemberEvent::CreditAdjusted {
        adjustment_id: command.adjustment_id,
        category: command.category,
        hours: command.hours,
        effective_at: command.effective_at,
        reason: command.reason.clone(),
        appeal_id: command.appeal_id,
    }])
}
