//! Rule 1: what makes a study session valid, and how many minutes it is worth.
//!
//! Also the time checks of rule 2 for completions, which share the clock-skew allowance and
//! the enrolment boundary with sessions.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::facts::StudySession;
use crate::values::local_date;

/// The longest session the ledger accepts.
pub const MAX_SESSION: Duration = Duration::hours(12);
/// How far in the future an app's clock may place an instant.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Whole minutes between start and end, rounded down.
pub fn session_minutes(started_at: DateTime<Utc>, ended_at: DateTime<Utc>) -> i64 {
    (ended_at - started_at).num_minutes().max(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeViolation {
    #[error("it must end after it starts")]
    EndNotAfterStart,
    #[error("a session may last at most 12 hours")]
    LongerThanTwelveHours,
    #[error("it lies in the future (more than 5 minutes of clock skew)")]
    InTheFuture,
    #[error("it lies before the member's enrolment date (local date)")]
    BeforeEnrolment,
    #[error(
        "it lies in a period when the member had left (rule 12: from {left_on} until they rejoin)"
    )]
    WhileAway { left_on: chrono::NaiveDate },
}

/// The checks of rule 1 that need no other session: order, length, future, enrolment.
pub fn check_session_times(
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    enrolled_on: NaiveDate,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<(), TimeViolation> {
    if ended_at <= started_at {
        return Err(TimeViolation::EndNotAfterStart);
    }
    if ended_at - started_at > MAX_SESSION {
        return Err(TimeViolation::LongerThanTwelveHours);
    }
    if ended_at > now + CLOCK_SKEW {
        return Err(TimeViolation::InTheFuture);
    }
    if local_date(started_at, tz) < enrolled_on {
        return Err(TimeViolation::BeforeEnrolment);
    }
    Ok(())
}

/// The time checks of rule 2 for a completion: not in the future, not before enrolment.
pub fn check_completion_time(
    completed_at: DateTime<Utc>,
    enrolled_on: NaiveDate,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<(), TimeViolation> {
    if completed_at > now + CLOCK_SKEW {
        return Err(TimeViolation::InTheFuture);
    }
    if local_date(completed_at, tz) < enrolled_on {
        return Err(TimeViolation::BeforeEnrolment);
    }
    Ok(())
}

/// The recorded session that `[started_at, ended_at)` would overlap, if any.
///
/// `sessions` is sorted by start and pairwise disjoint (the ledger never records an overlap),
/// so their ends are sorted too: only the last session starting before `ended_at` can reach
/// past `started_at`. Touching ends are not an overlap.
pub fn overlapping_session(
    sessions: &[StudySession],
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
) -> Option<&StudySession> {
    let starting_before_end = sessions.partition_point(|s| s.started_at < ended_at);
    let candidate = sessions[..starting_before_end].last()?;
    (candidate.ended_at > started_at).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    use crate::values::Slug;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2018, 5, 2, h, m, 0)
            .single()
            .expect("instant")
    }

    fn session(start: DateTime<Utc>, end: DateTime<Utc>) -> StudySession {
        StudySession {
            session_id: Uuid::new_v4(),
            course_id: Slug::parse("c").expect("slug"),
            started_at: start,
            ended_at: end,
            sequence: 1,
            source: None,
            withdrawn: None,
        }
    }

    fn enrolled() -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, 1, 1).expect("date")
    }

    #[test]
    fn minutes_are_whole_and_rounded_down() {
        assert_eq!(session_minutes(at(9, 0), at(9, 59)), 59);
        let almost = at(10, 0) - Duration::seconds(1);
        assert_eq!(session_minutes(at(9, 0), almost), 59);
        assert_eq!(
            session_minutes(at(9, 0), at(10, 0) + Duration::seconds(59)),
            60
        );
    }

    #[test]
    fn session_times_are_checked_in_order() {
        let tz = chrono_tz::Asia::Shanghai;
        let now = at(20, 0);
        assert_eq!(
            check_session_times(at(9, 0), at(10, 0), enrolled(), now, tz),
            Ok(())
        );
        assert_eq!(
            check_session_times(at(9, 0), at(9, 0), enrolled(), now, tz),
            Err(TimeViolation::EndNotAfterStart)
        );
        assert_eq!(
            check_session_times(at(10, 0), at(9, 0), enrolled(), now, tz),
            Err(TimeViolation::EndNotAfterStart)
        );
        assert_eq!(
            check_session_times(at(7, 0), at(19, 0), enrolled(), now, tz),
            Ok(()),
            "exactly twelve hours is allowed"
        );
        assert_eq!(
            check_session_times(at(7, 0), at(19, 1), enrolled(), now, tz),
            Err(TimeViolation::LongerThanTwelveHours)
        );
        assert_eq!(
            check_session_times(at(19, 0), at(20, 5), enrolled(), now, tz),
            Ok(()),
            "five minutes of clock skew"
        );
        assert_eq!(
            check_session_times(at(19, 0), at(20, 6), enrolled(), now, tz),
            Err(TimeViolation::InTheFuture)
        );
        let enrolled_may_2 = NaiveDate::from_ymd_opt(2018, 5, 2).expect("date");
        assert_eq!(
            check_session_times(at(9, 0), at(10, 0), enrolled_may_2, now, tz),
            Ok(())
        );
        let enrolled_may_3 = NaiveDate::from_ymd_opt(2018, 5, 3).expect("date");
        assert_eq!(
            check_session_times(at(9, 0), at(10, 0), enrolled_may_3, now, tz),
            Err(TimeViolation::BeforeEnrolment)
        );
        // 16:30Z on May 2 is already May 3 in Shanghai.
        assert_eq!(
            check_session_times(at(16, 30), at(17, 0), enrolled_may_3, now, tz),
            Ok(())
        );
    }

    #[test]
    fn completion_times_are_checked() {
        let tz = chrono_tz::Asia::Shanghai;
        let now = at(20, 0);
        assert_eq!(
            check_completion_time(at(20, 5), enrolled(), now, tz),
            Ok(())
        );
        assert_eq!(
            check_completion_time(at(20, 6), enrolled(), now, tz),
            Err(TimeViolation::InTheFuture)
        );
        let later = NaiveDate::from_ymd_opt(2018, 6, 1).expect("date");
        assert_eq!(
            check_completion_time(at(9, 0), later, now, tz),
            Err(TimeViolation::BeforeEnrolment)
        );
    }

    #[test]
    fn touching_sessions_do_not_overlap_but_intersecting_ones_do() {
        let recorded = vec![session(at(9, 0), at(10, 0)), session(at(12, 0), at(13, 0))];
        assert!(overlapping_session(&recorded, at(10, 0), at(11, 0)).is_none());
        assert!(overlapping_session(&recorded, at(8, 0), at(9, 0)).is_none());
        assert!(overlapping_session(&recorded, at(11, 0), at(12, 0)).is_none());
        assert!(overlapping_session(&recorded, at(13, 0), at(14, 0)).is_none());
        assert_eq!(
            overlapping_session(&recorded, at(9, 59), at(10, 30)).map(|s| s.started_at),
            Some(at(9, 0))
        );
        assert_eq!(
            overlapping_session(&recorded, at(8, 0), at(14, 0)).map(|s| s.started_at),
            Some(at(12, 0)),
            "a session covering several is an overlap"
        );
        assert!(overlapping_session(&recorded, at(12, 15), at(12, 45)).is_some());
        assert!(overlapping_session(&[], at(9, 0), at(10, 0)).is_none());
    }
}
