//! Rule 1: a study session is recorded when its times are valid and it overlaps no other
//! session of the member.

use crate::member::command::RecordStudySession;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;
use crate::rules::sessions::{check_session_times, overlapping_session, session_minutes};

pub(super) fn decide(
    member: &Member,
    command: &RecordStudySession,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let enrolment = member.enrolled()?;
    let RecordStudySession {
        session_id,
        course,
        started_at,
        ended_at,
        source,
        clock,
    } = command;
    if let Some(recorded) = member.session(*session_id) {
        return MemberRejection::unless_resent(
            recorded.course_id == course.course_id
                && recorded.started_at == *started_at
                && recorded.ended_at == *ended_at,
            "session",
            *session_id,
        );
    }
    check_session_times(
        *started_at,
        *ended_at,
        enrolment.enrolled_on,
        clock.now,
        clock.tz,
    )
    .map_err(MemberRejection::InvalidSession)?;
    member
        .check_present(*started_at, *ended_at, clock.tz)
        .map_err(MemberRejection::InvalidSession)?;
    if let Some(other) = overlapping_session(member.sessions(), *started_at, *ended_at) {
        return Err(MemberRejection::SessionOverlaps {
            other: other.session_id,
        });
    }
    Ok(vec![MemberEvent::StudySessionRecorded {
        session_id: *session_id,
        course_id: course.course_id.clone(),
        started_at: *started_at,
        ended_at: *ended_at,
        minutes: session_minutes(*started_at, *ended_at),
        source: *source,
    }])
}
