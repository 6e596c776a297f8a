//! Rule 6: a member's status in a quarter — the 8 + 3 rule of the origin, as data.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::rules::credit::QuarterTotals;
use crate::rules::rulesets::Ruleset;
use crate::rules::tenure::{Presence, Tenure};
use crate::values::{Hours, Quarter};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarterStatus {
    Exempt,
    Compliant,
    InProgress,
    NonCompliant,
    /// Rule 12: away on the quarter's last day; judged like `exempt` by rule 8.
    Left,
}

impl QuarterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarterStatus::Exempt => "exempt",
            QuarterStatus::Compliant => "compliant",
            QuarterStatus::InProgress => "in_progress",
            QuarterStatus::NonCompliant => "non_compliant",
            QuarterStatus::Left => "left",
        }
    }
}

/// The elective hours that count against the elective target: the elective hours, plus the
/// required hours beyond the required target when the ruleset says so.
pub fn effective_elective(totals: &QuarterTotals, ruleset: &Ruleset) -> Hours {
    if ruleset.excess_required_counts_as_elective {
        let excess = totals
            .required
            .minus(ruleset.required_hours)
            .max(Hours::ZERO);
        totals.elective.plus(excess)
    } else {
        totals.elective
    }
}

/// The class hours a member still lacks to meet `ruleset` with `totals`: what is missing of
/// the required target plus what is missing of the elective one (counted as rule 6 counts it).
/// Zero exactly when the totals meet both targets. The lists of members behind are sorted by it.
pub fn shortfall(totals: &QuarterTotals, ruleset: &Ruleset) -> Hours {
    let required = ruleset
        .required_hours
        .minus(totals.required)
        .max(Hours::ZERO);
    let elective = ruleset
        .elective_hours
        .minus(effective_elective(totals, ruleset))
        .max(Hours::ZERO);
    required.plus(elective)
}

/// Rules 12 and 6. `today` is the local date in the ledger's time zone.
pub fn quarter_status(
    quarter: Quarter,
    totals: &QuarterTotals,
    ruleset: &Ruleset,
    tenure: &Tenure,
    today: NaiveDate,
) -> QuarterStatus {
    let joined = match tenure.in_quarter(quarter) {
        Presence::Left => return QuarterStatus::Left,
        Presence::Since(day) => day,
    };
    if joined > quarter.first_day() {
        QuarterStatus::Exempt
    } else if totals.required >= ruleset.required_hours
        && effective_elective(totals, ruleset) >= ruleset.elective_hours
    {
        QuarterStatus::Compliant
    } else if today <= quarter.last_day() {
        QuarterStatus::InProgress
    } else {
        QuarterStatus::NonCompliant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn totals(required: i64, elective: i64) -> QuarterTotals {
        QuarterTotals {
            required: Hours::from_hundredths(required),
            elective: Hours::from_hundredths(elective),
        }
    }

    fn q2() -> Quarter {
        Quarter::parse("2018-Q2").expect("quarter")
    }

    #[test]
    fn eight_required_and_three_elective_hours_make_a_quarter_compliant() {
        let v1 = Ruleset::version_1();
        let after = date(2018, 7, 1);
        let enrolled = date(2018, 1, 1);
        assert_eq!(
            quarter_status(
                q2(),
                &totals(800, 300),
                &v1,
                &Tenure::since(enrolled),
                after
            ),
            QuarterStatus::Compliant
        );
        assert_eq!(
            quarter_status(
                q2(),
                &totals(799, 300),
                &v1,
                &Tenure::since(enrolled),
                after
            ),
            QuarterStatus::NonCompliant
        );
        assert_eq!(
            quarter_status(
                q2(),
                &totals(800, 299),
                &v1,
                &Tenure::since(enrolled),
                after
            ),
            QuarterStatus::NonCompliant
        );
    }

    #[test]
    fn the_shortfall_is_what_is_missing_of_each_target_and_nothing_once_both_are_met() {
        let v1 = Ruleset::version_1();
        let short = |required, elective| shortfall(&totals(required, elective), &v1).hundredths();
        assert_eq!(short(0, 0), 1100);
        assert_eq!(short(800, 0), 300);
        assert_eq!(short(250, 125), 725);
        assert_eq!(short(800, 300), 0);
        // Extra elective hours do not make up for missing required ones.
        assert_eq!(short(0, 2000), 800);
        let generous = Ruleset {
            excess_required_counts_as_elective: true,
            ..Ruleset::version_1()
        };
        assert_eq!(shortfall(&totals(1000, 0), &generous).hundredths(), 100);
        assert_eq!(shortfall(&totals(1100, 0), &generous).hundredths(), 0);
        assert_eq!(shortfall(&totals(1000, 0), &v1).hundredths(), 300);
    }

    #[test]
    fn a_short_quarter_is_in_progress_until_its_last_day_has_passed() {
        let v1 = Ruleset::version_1();
        let enrolled = date(2018, 1, 1);
        assert_eq!(
            quarter_status(
                q2(),
                &totals(0, 0),
                &v1,
                &Tenure::since(enrolled),
                date(2018, 6, 30)
            ),
            QuarterStatus::InProgress
        );
        assert_eq!(
            quarter_status(
                q2(),
                &totals(0, 0),
                &v1,
                &Tenure::since(enrolled),
                date(2018, 7, 1)
            ),
            QuarterStatus::NonCompliant
        );
    }

    #[test]
    fn a_member_enrolled_after_the_first_day_is_exempt_for_that_quarter() {
        let v1 = Ruleset::version_1();
        let today = date(2019, 1, 1);
        assert_eq!(
            quarter_status(
                q2(),
                &totals(0, 0),
                &v1,
                &Tenure::since(date(2018, 4, 2)),
                today
            ),
            QuarterStatus::Exempt
        );
        assert_eq!(
            quarter_status(
                q2(),
                &totals(0, 0),
                &v1,
                &Tenure::since(date(2018, 4, 1)),
                today
            ),
            QuarterStatus::NonCompliant,
            "enrolled on the first day: not exempt"
        );
        assert_eq!(
            quarter_status(
                q2(),
                &totals(900, 900),
                &v1,
                &Tenure::since(date(2018, 5, 1)),
                today
            ),
            QuarterStatus::Exempt,
            "exemption comes first, whatever the hours"
        );
    }

    #[test]
    fn a_member_away_on_the_last_day_has_left_whatever_the_hours() {
        let v1 = Ruleset::version_1();
        let tenure = Tenure {
            enrolled_on: date(2018, 1, 1),
            away: vec![crate::rules::tenure::Away {
                left_on: date(2018, 6, 30),
                rejoined_on: Some(date(2018, 8, 2)),
            }],
        };
        let today = date(2019, 1, 1);
        let q3 = Quarter::parse("2018-Q3").expect("quarter");
        assert_eq!(
            quarter_status(q2(), &totals(900, 900), &v1, &tenure, today),
            QuarterStatus::Left
        );
        assert_eq!(
            quarter_status(q3, &totals(0, 0), &v1, &tenure, today),
            QuarterStatus::Exempt,
            "rejoined after the first day"
        );
        let q1 = Quarter::parse("2018-Q1").expect("quarter");
        assert_eq!(
            quarter_status(q1, &totals(0, 0), &v1, &tenure, today),
            QuarterStatus::NonCompliant
        );
    }

    #[test]
    fn excess_required_hours_count_as_elective_only_when_the_ruleset_says_so() {
        let v1 = Ruleset::version_1();
        let generous = Ruleset {
            version: 2,
            excess_required_counts_as_elective: true,
            ..Ruleset::version_1()
        };
        let today = date(2019, 1, 1);
        let enrolled = date(2018, 1, 1);
        let t = totals(1000, 100);
        assert_eq!(
            quarter_status(q2(), &t, &v1, &Tenure::since(enrolled), today),
            QuarterStatus::NonCompliant
        );
        assert_eq!(
            quarter_status(q2(), &t, &generous, &Tenure::since(enrolled), today),
            QuarterStatus::Compliant
        );
        assert_eq!(
            effective_elective(&t, &generous),
            Hours::from_hundredths(300)
        );
        assert_eq!(
            effective_elective(&totals(500, 100), &generous),
            Hours::from_hundredths(100),
            "a shortfall in required hours adds nothing"
        );
    }
}
