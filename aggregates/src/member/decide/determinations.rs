//! Rule 8: a determination records, once every quarter of the evaluation has ended, whether
//! the member is eligible, with its basis: each quarter's status, totals, targets and ruleset.

use crate::member::command::DetermineEligibility;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;
use crate::rules::eligibility::{first_open_quarter, Determination};
use crate::rules::rulesets::latest_version;
use crate::values::local_date;

pub(super) fn decide(
    member: &Member,
    command: &DetermineEligibility,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let DetermineEligibility {
        determination_id,
        evaluation_id,
        quarters,
        rulesets,
        skipped,
        clock,
    } = command;
    if let Some(recorded) = member.determination(*determination_id) {
        return MemberRejection::unless_resent(
            &recorded.evaluation_id == evaluation_id,
            "determination",
            *determination_id,
        );
    }
    let open = member.open_skips(skipped);
    if !open.is_empty() {
        return Err(MemberRejection::RecordIncomplete(open));
    }
    let today = local_date(clock.now, clock.tz);
    if let Some(open) = first_open_quarter(quarters, today) {
        return Err(MemberRejection::EvaluationNotOver(open));
    }
    let (eligible, judged) = member
        .eligibility(quarters, rulesets, *clock)
        .ok_or(MemberRejection::NotEnrolled)?;
    Ok(vec![MemberEvent::EligibilityDetermined(Determination {
        determination_id: *determination_id,
        evaluation_id: evaluation_id.clone(),
        eligible,
        determined_at: clock.now,
        rules_version: latest_version(rulesets).unwrap_or(0),
        quarters: judged,
    })])
}
