//! Rule 12: a member leaves from a day on, and may come back later to an organisation.
//!
//! Stays and absences alternate: a departure follows the member's last move (the enrolment,
//! a transfer or a rejoining) and their last study fact; a rejoining follows the departure.
//! Neither may lie ahead of today, so "away on a day" never changes as the days pass.

use crate::member::command::{Depart, Rejoin};
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;
use crate::values::local_date;

pub(super) fn depart(
    member: &Member,
    command: &Depart,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    member.enrolled()?;
    let Depart {
        departure_id,
        left_on,
        reason,
        clock,
    } = command;
    if let Some(recorded) = member.departure(*departure_id) {
        return MemberRejection::unless_resent(
            recorded.left_on == *left_on && &recorded.reason == reason,
            "departure",
            *departure_id,
        );
    }
    if let Some(away) = member.tenure().and_then(|t| t.current_absence().copied()) {
        return Err(MemberRejection::AlreadyAway(away.left_on));
    }
    if *left_on > local_date(clock.now, clock.tz) {
        return Err(MemberRejection::DateAhead(*left_on));
    }
    let last_move = member
        .placements()
        .last()
        .map(|(day, _, _)| *day)
        .unwrap_or(*left_on);
    if *left_on <= last_move {
        return Err(MemberRejection::DepartureBeforeLastMove(last_move));
    }
    let day = |at| local_date(at, clock.tz);
    let studied_since = member
        .sessions()
        .iter()
        .filter(|s| day(s.ended_at) >= *left_on)
        .map(|s| s.session_id)
        .chain(
            member
                .completions()
                .iter()
                .filter(|c| c.withdrawn.is_none() && day(c.completed_at) >= *left_on)
                .map(|c| c.completion_id),
        )
        .next();
    if let Some(fact) = studied_since {
        return Err(MemberRejection::StudiedAfterDeparture(fact));
    }
    Ok(vec![MemberEvent::MemberDeparted {
        departure_id: *departure_id,
        left_on: *left_on,
        reason: reason.clone(),
    }])
}

pub(super) fn rejoin(
    member: &Member,
    command: &Rejoin,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    member.enrolled()?;
    let Rejoin {
        rejoining_id,
        rejoined_on,
        org_id,
        clock,
    } = command;
    if let Some(recorded) = member.rejoining(*rejoining_id) {
        return MemberRejection::unless_resent(
            recorded.rejoined_on == *rejoined_on && &recorded.org_id == org_id,
            "rejoining",
            *rejoining_id,
        );
    }
    let Some(away) = member.tenure().and_then(|t| t.current_absence().copied()) else {
        return Err(MemberRejection::NotAway);
    };
    if *rejoined_on <= away.left_on {
        return Err(MemberRejection::RejoiningBeforeDeparture(away.left_on));
    }
    if *rejoined_on > local_date(clock.now, clock.tz) {
        return Err(MemberRejection::DateAhead(*rejoined_on));
    }
    Ok(vec![MemberEvent::MemberRejoined {
        rejoining_id: *rejoining_id,
        rejoined_on: *rejoined_on,
        org_id: org_id.clone(),
    }])
}
