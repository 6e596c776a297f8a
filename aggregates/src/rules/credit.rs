//! Rules 2, 3 and 4: which completions earn credit, and the per-quarter totals they add up to
//! with the administrators' adjustments.
//!
//! Credit is derived, never stored: a session reported late or a new ruleset can change which
//! completion counts, so the rule runs over all of a member's facts every time.

use std::collections::{BTreeMap, HashMap};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::facts::{Adjustment, Completion, StudySession};
use crate::rules::rulesets::{ruleset_for, Ruleset};
use crate::rules::sessions::session_minutes;
use crate::values::{Category, CourseId, Hours, Quarter};

/// Why a recorded completion earns no credit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotCreditedReason {
    InsufficientStudyTime,
    DuplicateCompletion,
    /// Rule 11: its source statement was voided.
    Withdrawn,
}

impl NotCreditedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NotCreditedReason::InsufficientStudyTime => "insufficient_study_time",
            NotCreditedReason::DuplicateCompletion => "duplicate_completion",
            NotCreditedReason::Withdrawn => "withdrawn",
        }
    }
}

/// The verdict on one completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionOutcome<'a> {
    pub completion: &'a Completion,
    pub quarter: Quarter,
    pub credited: Result<(), NotCreditedReason>,
}

impl CompletionOutcome<'_> {
    pub fn is_credited(&self) -> bool {
        self.credited.is_ok()
    }
}

/// Minutes studied on a course in sessions that ended no later than `until`.
fn minutes_before(sessions: &[&StudySession], until: chrono::DateTime<chrono::Utc>) -> i64 {
    sessions
        .iter()
        .filter(|s| s.ended_at <= until)
        .map(|s| session_minutes(s.started_at, s.ended_at))
        .sum()
}

/// Rules 2 and 11 over all of a member's facts. `completions` are in the order they were
/// recorded; the outcomes come back in the same order. A withdrawn completion earns nothing
/// and is no candidate, so rule 2 picks among the others (`sessions` hold no withdrawn one).
///
/// Each completion is judged under the ruleset of its own quarter. When no ruleset reaches
/// back to that quarter, the study-time rule is enforced (the stricter reading).
pub fn credit_completions<'a>(
    sessions: &[StudySession],
    completions: &'a [Completion],
    rulesets: &[Ruleset],
    tz: Tz,
) -> Vec<CompletionOutcome<'a>> {
    let mut sessions_by_course: HashMap<&CourseId, Vec<&StudySession>> = HashMap::new();
    for session in sessions {
        sessions_by_course
            .entry(&session.course_id)
            .or_default()
            .push(session);
    }

    let passes_study_time: Vec<bool> = completions
        .iter()
        .map(|c| {
            let quarter = Quarter::of_instant(c.completed_at, tz);
            let enforced = ruleset_for(quarter, rulesets).is_none_or(|r| r.enforce_min_study_time);
            if !enforced {
                return true;
            }
            let studied = sessions_by_course
                .get(&c.course.course_id)
                .map_or(0, |s| minutes_before(s, c.completed_at));
            studied >= i64::from(c.course.min_study_minutes)
        })
        .collect();

    // Per course, the earliest passing completion (ties: recorded first) is the credited one.
    let mut credited_index: HashMap<&CourseId, usize> = HashMap::new();
    for (index, completion) in completions.iter().enumerate() {
        if !passes_study_time[index] || completion.withdrawn.is_some() {
            continue;
        }
        credited_index
            .entry(&completion.course.course_id)
            .and_modify(|best| {
                if completion.completed_at < completions[*best].completed_at {
                    *best = index;
                }
            })
            .or_insert(index);
    }

    completions
        .iter()
        .enumerate()
        .map(|(index, completion)| {
            let credited = if credited_index.get(&completion.course.course_id) == Some(&index) {
                Ok(())
            } else if completion.withdrawn.is_some() {
                Err(NotCreditedReason::Withdrawn)
            } else if !passes_study_time[index] {
                Err(NotCreditedReason::InsufficientStudyTime)
            } else {
                Err(NotCreditedReason::DuplicateCompletion)
            };
            CompletionOutcome {
                completion,
                quarter: Quarter::of_instant(completion.completed_at, tz),
                credited,
            }
        })
        .collect()
}

/// Class hours of one quarter, per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterTotals {
    pub required: Hours,
    pub elective: Hours,
}

impl QuarterTotals {
    pub fn add(&mut self, category: Category, hours: Hours) {
        match category {
            Category::Required => self.required = self.required.plus(hours),
            Category::Elective => self.elective = self.elective.plus(hours),
        }
    }

    pub fn total(&self) -> Hours {
        self.required.plus(self.elective)
    }
}

/// Rules 2 to 4 over all of a member's facts: per quarter, the credited completions and the
/// adjustments (which always count, in the quarter of their `effective_at`), by category.
pub fn credit_by_quarter(
    sessions: &[StudySession],
    completions: &[Completion],
    adjustments: &[Adjustment],
    rulesets: &[Ruleset],
    tz: Tz,
) -> BTreeMap<Quarter, QuarterTotals> {
    let mut totals = quarter_totals(&credit_completions(sessions, completions, rulesets, tz));
    for adjustment in adjustments {
        totals
            .entry(Quarter::of_instant(adjustment.effective_at, tz))
            .or_default()
            .add(adjustment.category, adjustment.hours);
    }
    totals
}

/// Rule 4: per quarter, the credited completions by category.
pub fn quarter_totals(outcomes: &[CompletionOutcome<'_>]) -> BTreeMap<Quarter, QuarterTotals> {
    let mut totals: BTreeMap<Quarter, QuarterTotals> = BTreeMap::new();
    for outcome in outcomes.iter().filter(|o| o.is_credited()) {
        let course = &outcome.completion.course;
        totals
            .entry(outcome.quarter)
            .or_default()
            .add(course.category, course.credit_hours);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::CourseTerms;
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn at(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2018, month, day, hour, 0, 0)
            .single()
            .expect("instant")
    }

    fn course(id: &str, category: Category, hundredths: i64, min_minutes: u32) -> CourseTerms {
        CourseTerms {
            course_id: CourseId::parse(id).expect("slug"),
            category,
            credit_hours: Hours::from_hundredths(hundredths),
            min_study_minutes: min_minutes,
        }
    }

    fn completion(course: &CourseTerms, at: DateTime<Utc>, sequence: usize) -> Completion {
        Completion {
            completion_id: Uuid::new_v4(),
            course: course.clone(),
            completed_at: at,
            sequence,
            source: None,
            withdrawn: None,
        }
    }

    fn session(course: &CourseTerms, start: DateTime<Utc>, hours: i64) -> StudySession {
        StudySession {
            session_id: Uuid::new_v4(),
            course_id: course.course_id.clone(),
            started_at: start,
            ended_at: start + chrono::Duration::hours(hours),
            sequence: 1,
            source: None,
            withdrawn: None,
        }
    }

    fn verdicts(outcomes: &[CompletionOutcome<'_>]) -> Vec<Result<(), NotCreditedReason>> {
        outcomes.iter().map(|o| o.credited).collect()
    }

    #[test]
    fn a_withdrawn_completion_earns_nothing_and_the_next_qualifying_one_is_credited() {
        let party = course("party-history", Category::Required, 200, 0);
        let mut first = completion(&party, at(5, 3, 2), 2);
        first.withdrawn = Some(crate::facts::Withdrawal {
            voided_statement: Uuid::from_u128(7),
            voiding_statement: Uuid::from_u128(8),
            withdrawn_at: at(6, 1, 0),
            sequence: 4,
        });
        let completions = vec![first, completion(&party, at(5, 10, 2), 3)];
        let outcomes = credit_completions(&[], &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(
            verdicts(&outcomes),
            [Err(NotCreditedReason::Withdrawn), Ok(())]
        );
    }

    #[test]
    fn the_earliest_completion_of_a_course_is_credited_and_later_ones_are_duplicates() {
        let party = course("party-history", Category::Required, 200, 0);
        let completions = vec![
            completion(&party, at(5, 10, 2), 2),
            completion(&party, at(5, 3, 2), 3),
            completion(&party, at(5, 3, 2), 4),
        ];
        let outcomes = credit_completions(&[], &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(
            verdicts(&outcomes),
            [
                Err(NotCreditedReason::DuplicateCompletion),
                Ok(()),
                Err(NotCreditedReason::DuplicateCompletion)
            ],
            "earliest completed_at wins; on a tie the one recorded first"
        );
    }

    #[test]
    fn a_completion_without_enough_study_time_is_not_credited_and_a_later_one_with_it_is() {
        let ethics = course("ethics", Category::Elective, 150, 90);
        let sessions = vec![
            session(&ethics, at(5, 1, 1), 1),
            session(&ethics, at(5, 4, 1), 1),
        ];
        let completions = vec![
            completion(&ethics, at(5, 2, 0), 3),
            completion(&ethics, at(5, 5, 0), 4),
        ];
        let outcomes = credit_completions(&sessions, &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(
            verdicts(&outcomes),
            [Err(NotCreditedReason::InsufficientStudyTime), Ok(())],
            "60 minutes before the first completion, 120 before the second"
        );
    }

    #[test]
    fn an_earlier_completion_reported_later_without_study_time_is_insufficient_not_duplicate() {
        let ethics = course("ethics", Category::Elective, 150, 60);
        let sessions = vec![session(&ethics, at(5, 3, 1), 1)];
        let completions = vec![
            completion(&ethics, at(5, 5, 0), 2),
            // Recorded later, completed earlier, before any study: it cannot be credited, and
            // it does not displace the credited one.
            completion(&ethics, at(5, 1, 0), 3),
        ];
        let outcomes = credit_completions(&sessions, &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(
            verdicts(&outcomes),
            [Ok(()), Err(NotCreditedReason::InsufficientStudyTime)]
        );
    }

    #[test]
    fn a_session_ending_exactly_at_completion_counts() {
        let ethics = course("ethics", Category::Elective, 150, 60);
        let sessions = vec![session(&ethics, at(5, 1, 1), 1)];
        let completions = vec![completion(&ethics, at(5, 1, 2), 2)];
        let outcomes = credit_completions(&sessions, &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(verdicts(&outcomes), [Ok(())]);
    }

    #[test]
    fn sessions_on_other_courses_do_not_count_towards_study_time() {
        let ethics = course("ethics", Category::Elective, 150, 60);
        let other = course("other", Category::Elective, 150, 0);
        let sessions = vec![session(&other, at(5, 1, 1), 3)];
        let completions = vec![completion(&ethics, at(5, 2, 0), 2)];
        let outcomes = credit_completions(&sessions, &completions, &[Ruleset::version_1()], TZ);
        assert_eq!(
            verdicts(&outcomes),
            [Err(NotCreditedReason::InsufficientStudyTime)]
        );
    }

    #[test]
    fn study_time_is_not_checked_when_the_ruleset_does_not_enforce_it() {
        let ethics = course("ethics", Category::Elective, 150, 60);
        let relaxed = Ruleset {
            version: 2,
            enforce_min_study_time: false,
            ..Ruleset::version_1()
        };
        let completions = vec![completion(&ethics, at(5, 2, 0), 2)];
        let outcomes = credit_completions(&[], &completions, &[Ruleset::version_1(), relaxed], TZ);
        assert_eq!(verdicts(&outcomes), [Ok(())]);
    }

    #[test]
    fn totals_are_per_quarter_of_the_local_completion_date_and_exact() {
        let required = course("req", Category::Required, 133, 0);
        let required_2 = course("req-2", Category::Required, 267, 0);
        let elective = course("elec", Category::Elective, 1, 0);
        let completions = vec![
            completion(&required, at(6, 30, 12), 1),
            // 20:00Z on June 30 is July 1 in Shanghai: 2018-Q3.
            completion(&required_2, at(6, 30, 20), 2),
            completion(&elective, at(6, 1, 0), 3),
        ];
        let outcomes = credit_completions(&[], &completions, &[Ruleset::version_1()], TZ);
        let totals = quarter_totals(&outcomes);
        let q2 = totals[&Quarter::parse("2018-Q2").expect("quarter")];
        let q3 = totals[&Quarter::parse("2018-Q3").expect("quarter")];
        assert_eq!(q2.required, Hours::from_hundredths(133));
        assert_eq!(q2.elective, Hours::from_hundredths(1));
        assert_eq!(q3.required, Hours::from_hundredths(267));
        assert_eq!(q2.total().plus(q3.total()), Hours::from_hundredths(401));
    }
}
