//! Pure folds from a member's facts to per-quarter compliance rows (rules 2, 4, 5 and 6).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rules::credit::{credit_completions, quarter_totals, QuarterTotals};
use studyledger_aggregates::rules::rulesets::{ruleset_for, Ruleset};
use studyledger_aggregates::rules::sessions::session_minutes;
use studyledger_aggregates::rules::status::{quarter_status, QuarterStatus};
use studyledger_aggregates::values::{Hours, Quarter};

/// A member's standing in one quarter, with the targets and the ruleset that judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarterCompliance {
    pub quarter: Quarter,
    pub status: QuarterStatus,
    pub required_hours: Hours,
    pub elective_hours: Hours,
    pub required_target: Hours,
    pub elective_target: Hours,
    pub study_minutes: i64,
    /// `None` only for a quarter before every published ruleset.
    pub ruleset_version: Option<u32>,
    /// Whether a newer ruleset applies than the one these figures were computed under. A fold
    /// always uses the current rulesets, so it is never stale; stored views can be.
    pub stale: bool,
}

/// A member's row for one quarter from its totals (rule 6). `judged_under` is the ruleset
/// version stored figures were computed under, if any: the row is stale when a different
/// ruleset governs the quarter now. `today` is the local date.
pub fn quarter_compliance(
    quarter: Quarter,
    totals: QuarterTotals,
    study_minutes: i64,
    enrolled_on: NaiveDate,
    rulesets: &[Ruleset],
    judged_under: Option<u32>,
    today: NaiveDate,
) -> QuarterCompliance {
    let governing = ruleset_for(quarter, rulesets);
    let stale = judged_under.is_some_and(|v| Some(v) != governing.map(|r| r.version));
    match governing {
        Some(ruleset) => QuarterCompliance {
            quarter,
            status: quarter_status(quarter, &totals, ruleset, enrolled_on, today),
            required_hours: totals.required,
            elective_hours: totals.elective,
            required_target: ruleset.required_hours,
            elective_target: ruleset.elective_hours,
            study_minutes,
            ruleset_version: judged_under.or(Some(ruleset.version)),
            stale,
        },
        // No rules reach back this far: nothing was asked of anybody.
        None => QuarterCompliance {
            quarter,
            status: QuarterStatus::Exempt,
            required_hours: totals.required,
            elective_hours: totals.elective,
            required_target: Hours::ZERO,
            elective_target: Hours::ZERO,
            study_minutes,
            ruleset_version: None,
            stale,
        },
    }
}

/// Everything the per-quarter rows need, computed once per member.
#[derive(Debug, Clone, Default)]
pub struct MemberFold {
    enrolled_on: Option<NaiveDate>,
    totals: BTreeMap<Quarter, QuarterTotals>,
    /// Session minutes per quarter of the session's local start date.
    minutes: BTreeMap<Quarter, i64>,
}

impl MemberFold {
    pub fn new(member: &Member, rulesets: &[Ruleset], tz: Tz) -> MemberFold {
        let outcomes = credit_completions(member.sessions(), member.completions(), rulesets, tz);
        let mut minutes: BTreeMap<Quarter, i64> = BTreeMap::new();
        for session in member.sessions() {
            *minutes
                .entry(Quarter::of_instant(session.started_at, tz))
                .or_default() += session_minutes(session.started_at, session.ended_at);
        }
        MemberFold {
            enrolled_on: member.enrolment().map(|e| e.enrolled_on),
            totals: quarter_totals(&outcomes),
            minutes,
        }
    }

    /// The quarters with any credit or study, each with its totals and minutes.
    pub fn active_quarters(&self) -> Vec<(Quarter, QuarterTotals, i64)> {
        let mut quarters: Vec<Quarter> = self
            .totals
            .keys()
            .chain(self.minutes.keys())
            .copied()
            .collect();
        quarters.sort_unstable();
        quarters.dedup();
        quarters
            .into_iter()
            .map(|q| {
                (
                    q,
                    self.totals.get(&q).copied().unwrap_or_default(),
                    self.minutes.get(&q).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Credited class hours over the member's whole history.
    pub fn lifetime_totals(&self) -> QuarterTotals {
        let mut lifetime = QuarterTotals::default();
        for totals in self.totals.values() {
            lifetime.required = lifetime.required.plus(totals.required);
            lifetime.elective = lifetime.elective.plus(totals.elective);
        }
        lifetime
    }

    /// The row for one quarter, judged under that quarter's ruleset; `today` is the local date.
    pub fn quarter(
        &self,
        quarter: Quarter,
        rulesets: &[Ruleset],
        today: NaiveDate,
    ) -> QuarterCompliance {
        quarter_compliance(
            quarter,
            self.totals.get(&quarter).copied().unwrap_or_default(),
            self.minutes.get(&quarter).copied().unwrap_or(0),
            self.enrolled_on.unwrap_or(NaiveDate::MAX),
            rulesets,
            None,
            today,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use cqrs_es::Aggregate;
    use studyledger_aggregates::facts::Enrolment;
    use studyledger_aggregates::member::MemberEvent;
    use studyledger_aggregates::values::Category;
    use uuid::Uuid;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("instant")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn member(enrolled_on: NaiveDate, events: Vec<MemberEvent>) -> Member {
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(Enrolment {
            member_id: Uuid::from_u128(1),
            member_no: "M1".to_owned(),
            name: "陈静".to_owned(),
            org_id: "org".parse().expect("slug"),
            enrolled_on,
        }));
        for event in events {
            member.apply(event);
        }
        member
    }

    fn completed(
        n: u128,
        course: &str,
        category: Category,
        hundredths: i64,
        when: DateTime<Utc>,
    ) -> MemberEvent {
        MemberEvent::CourseCompleted {
            completion_id: Uuid::from_u128(n),
            course_id: course.parse().expect("slug"),
            category,
            credit_hours: Hours::from_hundredths(hundredths),
            min_study_minutes: 0,
            completed_at: when,
        }
    }

    #[test]
    fn each_quarter_is_judged_by_its_totals_its_dates_and_its_ruleset() {
        let m = member(
            date(2018, 2, 10),
            vec![
                completed(1, "r1", Category::Required, 800, at(2018, 5, 1, 3)),
                completed(2, "e1", Category::Elective, 300, at(2018, 5, 2, 3)),
                MemberEvent::StudySessionRecorded {
                    session_id: Uuid::from_u128(3),
                    course_id: "r1".parse().expect("slug"),
                    started_at: at(2018, 4, 30, 1),
                    ended_at: at(2018, 4, 30, 3),
                    minutes: 120,
                },
            ],
        );
        let rulesets = [Ruleset::version_1()];
        let fold = MemberFold::new(&m, &rulesets, TZ);
        let today = date(2018, 8, 15);
        let rows: Vec<QuarterCompliance> = Quarter::parse("2018-Q1")
            .expect("quarter")
            .through(Quarter::of_date(today))
            .map(|q| fold.quarter(q, &rulesets, today))
            .collect();
        let summary: Vec<(String, QuarterStatus, i64)> = rows
            .iter()
            .map(|r| (r.quarter.to_string(), r.status, r.study_minutes))
            .collect();
        assert_eq!(
            summary,
            [
                ("2018-Q1".to_owned(), QuarterStatus::Exempt, 0),
                ("2018-Q2".to_owned(), QuarterStatus::Compliant, 120),
                ("2018-Q3".to_owned(), QuarterStatus::InProgress, 0),
            ]
        );
        assert_eq!(rows[1].required_target, Hours::whole(8));
        assert_eq!(rows[1].ruleset_version, Some(1));
        assert_eq!(fold.lifetime_totals().total(), Hours::whole(11));
    }

    #[test]
    fn a_quarter_before_every_ruleset_is_exempt_and_says_so() {
        let m = member(date(1999, 1, 1), vec![]);
        let rulesets = [Ruleset::version_1()];
        let fold = MemberFold::new(&m, &rulesets, TZ);
        let row = fold.quarter(
            Quarter::parse("1999-Q3").expect("q"),
            &rulesets,
            date(2020, 1, 1),
        );
        assert_eq!(row.status, QuarterStatus::Exempt);
        assert_eq!(row.ruleset_version, None);
    }
}
