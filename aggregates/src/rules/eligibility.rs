//! Rules 6 and 8: how one quarter is judged, and eligibility for a merit evaluation.
//!
//! The views judge quarters with [`judge_quarter`], and a determination records what the same
//! function said for each quarter of the evaluation: one source of truth for both.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rules::credit::QuarterTotals;
use crate::rules::rulesets::{ruleset_for, Ruleset};
use crate::rules::status::{quarter_status, QuarterStatus};
use crate::rules::tenure::{Presence, Tenure};
use crate::values::{EvaluationId, Hours, Quarter};

/// A quarter as judged: status, totals, and the targets and ruleset version behind the status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterJudgement {
    pub quarter: Quarter,
    pub status: QuarterStatus,
    pub required_hours: Hours,
    pub elective_hours: Hours,
    pub required_target: Hours,
    pub elective_target: Hours,
    /// `None` only for a quarter before every published ruleset.
    pub ruleset_version: Option<u32>,
}

/// Rule 6 under the ruleset that governs `quarter` among `rulesets` (rule 5). A quarter no
/// ruleset reaches back to asks nothing of anybody: exempt, with no version.
pub fn judge_quarter(
    quarter: Quarter,
    totals: QuarterTotals,
    tenure: &Tenure,
    rulesets: &[Ruleset],
    today: NaiveDate,
) -> QuarterJudgement {
    let ruleset = ruleset_for(quarter, rulesets);
    let status = match (tenure.in_quarter(quarter), ruleset) {
        (Presence::Left, _) => QuarterStatus::Left,
        (_, None) => QuarterStatus::Exempt,
        (_, Some(r)) => quarter_status(quarter, &totals, r, tenure, today),
    };
    QuarterJudgement {
        quarter,
        status,
        required_hours: totals.required,
        elective_hours: totals.elective,
        required_target: ruleset.map_or(Hours::ZERO, |r| r.required_hours),
        elective_target: ruleset.map_or(Hours::ZERO, |r| r.elective_hours),
        ruleset_version: ruleset.map(|r| r.version),
    }
}

/// Rule 8's judgement of an evaluation's quarters from a member's credit per quarter: each
/// quarter under its own ruleset, and the outcome. `today` is the local date.
pub fn judge_evaluation(
    totals: &BTreeMap<Quarter, QuarterTotals>,
    quarters: &[Quarter],
    tenure: &Tenure,
    rulesets: &[Ruleset],
    today: NaiveDate,
) -> (bool, Vec<QuarterJudgement>) {
    let judged: Vec<QuarterJudgement> = quarters
        .iter()
        .map(|q| {
            let t = totals.get(q).copied().unwrap_or_default();
            judge_quarter(*q, t, tenure, rulesets, today)
        })
        .collect();
    (is_eligible(&judged), judged)
}

/// Rule 8: eligible iff at least one quarter is not exempt and none is non-compliant; a
/// quarter the member was away for is judged like an exempt one (rule 12).
pub fn is_eligible(quarters: &[QuarterJudgement]) -> bool {
    quarters
        .iter()
        .any(|q| !matches!(q.status, QuarterStatus::Exempt | QuarterStatus::Left))
        && quarters
            .iter()
            .all(|q| q.status != QuarterStatus::NonCompliant)
}

/// Whether every quarter of an evaluation has ended on `today` (a local date).
pub fn all_ended(quarters: &[Quarter], today: NaiveDate) -> bool {
    first_open_quarter(quarters, today).is_none()
}

/// The first quarter of an evaluation that has not ended on `today` (a local date).
pub fn first_open_quarter(quarters: &[Quarter], today: NaiveDate) -> Option<Quarter> {
    quarters.iter().find(|q| q.last_day() >= today).copied()
}

/// The recorded decision "eligible or not for an evaluation", with its basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Determination {
    pub determination_id: Uuid,
    pub evaluation_id: EvaluationId,
    pub eligible: bool,
    pub determined_at: DateTime<Utc>,
    /// The highest ruleset version known when it was decided.
    pub rules_version: u32,
    pub quarters: Vec<QuarterJudgement>,
}

/// How a recorded determination compares with the same decision taken again now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityChange {
    pub recorded_eligible: bool,
    pub eligible_now: bool,
    /// Quarters whose status differs, each as (recorded, now).
    pub quarters_changed: Vec<(QuarterJudgement, QuarterJudgement)>,
}

/// The change between a recorded outcome and `now` (the same quarters judged again), or
/// `None` when the outcome is the same. `recorded_eligible` is the final recorded outcome.
pub fn eligibility_change(
    recorded_eligible: bool,
    recorded: &[QuarterJudgement],
    now: &[QuarterJudgement],
) -> Option<EligibilityChange> {
    let eligible_now = is_eligible(now);
    if eligible_now == recorded_eligible {
        return None;
    }
    let quarters_changed = recorded
        .iter()
        .zip(now)
        .filter(|(before, after)| before.status != after.status)
        .map(|(before, after)| (*before, *after))
        .collect();
    Some(EligibilityChange {
        recorded_eligible,
        eligible_now,
        quarters_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Quarter {
        Quarter::parse(raw).expect("quarter")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn totals(required: i64, elective: i64) -> QuarterTotals {
        QuarterTotals {
            required: Hours::whole(required),
            elective: Hours::whole(elective),
        }
    }

    fn judged(raw: &str, t: QuarterTotals, enrolled_on: NaiveDate) -> QuarterJudgement {
        judge_quarter(
            q(raw),
            t,
            &Tenure::since(enrolled_on),
            &[Ruleset::version_1()],
            date(2020, 1, 1),
        )
    }

    #[test]
    fn eligible_needs_one_judged_quarter_and_no_failed_one() {
        let enrolled = date(2018, 1, 1);
        let pass = judged("2018-Q1", totals(8, 3), enrolled);
        let fail = judged("2018-Q2", totals(8, 2), enrolled);
        let exempt = judged("2018-Q1", totals(0, 0), date(2018, 2, 1));
        assert_eq!(pass.status, QuarterStatus::Compliant);
        assert_eq!(fail.status, QuarterStatus::NonCompliant);
        assert_eq!(exempt.status, QuarterStatus::Exempt);
        assert!(is_eligible(&[pass]));
        assert!(is_eligible(&[exempt, pass]));
        assert!(!is_eligible(&[pass, fail]));
        assert!(!is_eligible(&[exempt]), "nothing was asked: not eligible");
        assert!(!is_eligible(&[]));
        let left = QuarterJudgement {
            status: QuarterStatus::Left,
            ..fail
        };
        assert!(!is_eligible(&[left]), "away throughout: nothing was asked");
        assert!(is_eligible(&[left, pass]), "left is judged like exempt");
    }

    #[test]
    fn a_quarter_before_every_ruleset_is_exempt_without_a_version() {
        let j = judged("1999-Q4", totals(0, 0), date(1999, 1, 1));
        assert_eq!(j.status, QuarterStatus::Exempt);
        assert_eq!(j.ruleset_version, None);
        assert_eq!(j.required_target, Hours::ZERO);
    }

    #[test]
    fn an_evaluation_can_be_decided_only_after_its_last_quarter() {
        let quarters = [q("2018-Q3"), q("2018-Q4")];
        assert!(!all_ended(&quarters, date(2018, 12, 31)));
        assert!(all_ended(&quarters, date(2019, 1, 1)));
    }

    #[test]
    fn a_change_names_the_quarters_whose_status_moved() {
        let enrolled = date(2018, 1, 1);
        let before = [
            judged("2018-Q1", totals(8, 3), enrolled),
            judged("2018-Q2", totals(8, 2), enrolled),
        ];
        let after = [before[0], judged("2018-Q2", totals(8, 3), enrolled)];
        let change = eligibility_change(false, &before, &after).expect("a change");
        assert!(change.eligible_now);
        assert_eq!(change.quarters_changed.len(), 1);
        assert_eq!(change.quarters_changed[0].0.quarter, q("2018-Q2"));
        assert_eq!(eligibility_change(true, &before, &after), None);
    }
}
