//! Rule 2's recording checks: a completion names a known course (the caller loaded its terms),
//! does not lie in the future and not before enrolment. Whether it earns credit is decided when
//! it is read, by `rules::credit`, since later facts and rules can change that.

use crate::member::command::RecordCompletion;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;
use crate::rules::sessions::check_completion_time;

pub(super) fn decide(
    member: &Member,
    command: &RecordCompletion,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let enrolment = member.enrolled()?;
    let RecordCompletion {
        completion_id,
        course,
        completed_at,
        source,
        clock,
    } = command;
    if let Some(recorded) = member.completion(*completion_id) {
        return MemberRejection::unless_resent(
            recorded.course.course_id == course.course_id && recorded.completed_at == *completed_at,
            "completion",
            *completion_id,
        );
    }
    check_completion_time(*completed_at, enrolment.enrolled_on, clock.now, clock.tz)
        .map_err(MemberRejection::InvalidCompletion)?;
    member
        .check_present(*completed_at, *completed_at, clock.tz)
        .map_err(MemberRejection::InvalidCompletion)?;
    // The course's terms as they are now travel with the event (rule 2).
    Ok(vec![MemberEvent::CourseCompleted {
        completion_id: *completion_id,
        course_id: course.course_id.clone(),
        category: course.category,
        credit_hours: course.credit_hours,
        min_study_minutes: course.min_study_minutes,
        completed_at: *completed_at,
        source: *source,
    }])
}
