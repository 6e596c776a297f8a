//! An organisation's quarter at a glance (rule 7): how many of the members counted there are
//! compliant, non-compliant, in progress or exempt, the hours they earned, and the two ratios.
//! A pure tally of judged quarter rows; which members count is the SQL's `members_of`.

use serde::Serialize;
use studyledger_aggregates::rules::membership::{compliance_rate, hours_per_member};
use studyledger_aggregates::rules::status::QuarterStatus;
use studyledger_aggregates::values::Hours;

use crate::fold::QuarterCompliance;

/// The figures of a roll-up, as answered.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RollUp {
    pub members: u64,
    pub compliant: u64,
    pub non_compliant: u64,
    pub in_progress: u64,
    pub exempt: u64,
    /// `compliant / (compliant + non_compliant)`, `null` when that is 0.
    pub compliance_rate: Option<f64>,
    pub credit_hours_total: Hours,
    /// `credit_hours_total / members`, `null` without members.
    pub credit_hours_per_member: Option<Hours>,
    /// Members whose quarter was judged under other rules than those in force.
    pub stale: u64,
}

impl RollUp {
    /// Counts one member's judged quarter; a quarter the member was away for counts nothing
    /// (rule 12).
    pub fn add(&mut self, row: &QuarterCompliance) {
        let judgement = &row.judgement;
        if judgement.status == QuarterStatus::Left {
            return;
        }
        self.members += 1;
        match judgement.status {
            QuarterStatus::Compliant => self.compliant += 1,
            QuarterStatus::NonCompliant => self.non_compliant += 1,
            QuarterStatus::InProgress => self.in_progress += 1,
            QuarterStatus::Exempt => self.exempt += 1,
            QuarterStatus::Left => {}
        }
        self.stale += u64::from(row.stale);
        self.credit_hours_total = self
            .credit_hours_total
            .plus(judgement.required_hours)
            .plus(judgement.elective_hours);
        self.finish();
    }

    /// The two ratios, from the counts and the total.
    pub fn finish(&mut self) {
        self.compliance_rate = compliance_rate(self.compliant, self.non_compliant);
        self.credit_hours_per_member = hours_per_member(self.credit_hours_total, self.members);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use studyledger_aggregates::rules::credit::QuarterTotals;
    use studyledger_aggregates::rules::rulesets::Ruleset;
    use studyledger_aggregates::rules::tenure::Tenure;
    use studyledger_aggregates::values::Quarter;

    use crate::fold::quarter_compliance;

    fn row(required: i64, elective: i64, enrolled: (i32, u32, u32)) -> QuarterCompliance {
        quarter_compliance(
            Quarter::parse("2018-Q2").expect("quarter"),
            QuarterTotals {
                required: Hours::whole(required),
                elective: Hours::whole(elective),
            },
            0,
            &Tenure::since(
                NaiveDate::from_ymd_opt(enrolled.0, enrolled.1, enrolled.2).expect("date"),
            ),
            &[Ruleset::version_1()],
            None,
            NaiveDate::from_ymd_opt(2019, 1, 1).expect("date"),
        )
    }

    #[test]
    fn a_roll_up_counts_each_status_and_divides_only_by_the_judged() {
        let mut rollup = RollUp::default();
        assert_eq!(rollup.compliance_rate, None);
        for r in [
            row(8, 3, (2018, 1, 1)),
            row(8, 2, (2018, 1, 1)),
            row(1, 0, (2018, 1, 1)),
            row(9, 9, (2018, 5, 1)),
        ] {
            rollup.add(&r);
        }
        assert_eq!(
            (
                rollup.members,
                rollup.compliant,
                rollup.non_compliant,
                rollup.exempt
            ),
            (4, 1, 2, 1)
        );
        assert_eq!(rollup.compliance_rate, Some(0.3333));
        assert_eq!(rollup.credit_hours_total, Hours::whole(40));
        assert_eq!(rollup.credit_hours_per_member, Some(Hours::whole(10)));
    }
}
