//! Rule 5: which versioned ruleset governs a quarter.
//!
//! Rules are data. The ledger publishes version 1 into an empty ledger; later versions are
//! published as events, and every derived figure says which version it used.

use serde::{Deserialize, Serialize};

use crate::values::{Hours, Quarter};

/// One published version of the quarterly rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    pub version: u32,
    pub effective_from: Quarter,
    pub required_hours: Hours,
    pub elective_hours: Hours,
    pub excess_required_counts_as_elective: bool,
    pub enforce_min_study_time: bool,
}

impl Ruleset {
    /// The origin's rules (8 required + 3 elective class hours a quarter), published as
    /// version 1 when the ledger is empty.
    pub fn version_1() -> Ruleset {
        Ruleset {
            version: 1,
            effective_from: Quarter::new(2000, 1)
                .unwrap_or_else(|| unreachable!("2000-Q1 is valid")),
            required_hours: Hours::whole(8),
            elective_hours: Hours::whole(3),
            excess_required_counts_as_elective: false,
            enforce_min_study_time: true,
        }
    }
}

/// The highest version among `rulesets`: the rules a decision or a fold made now knows.
pub fn latest_version(rulesets: &[Ruleset]) -> Option<u32> {
    rulesets.iter().map(|r| r.version).max()
}

/// The ruleset for a quarter: the greatest `effective_from <= quarter`, and on equal
/// `effective_from` the higher version. `None` only when no ruleset reaches back that far.
pub fn ruleset_for(quarter: Quarter, rulesets: &[Ruleset]) -> Option<&Ruleset> {
    rulesets
        .iter()
        .filter(|r| r.effective_from <= quarter)
        .max_by_key(|r| (r.effective_from, r.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(version: u32, from: &str, required: i64) -> Ruleset {
        Ruleset {
            version,
            effective_from: Quarter::parse(from).expect("quarter"),
            required_hours: Hours::whole(required),
            ..Ruleset::version_1()
        }
    }

    fn q(raw: &str) -> Quarter {
        Quarter::parse(raw).expect("quarter")
    }

    #[test]
    fn the_latest_effective_ruleset_governs_a_quarter() {
        let rulesets = [
            Ruleset::version_1(),
            ruleset(2, "2019-Q1", 10),
            ruleset(3, "2018-Q3", 9),
        ];
        assert_eq!(
            ruleset_for(q("2018-Q2"), &rulesets).map(|r| r.version),
            Some(1)
        );
        assert_eq!(
            ruleset_for(q("2018-Q3"), &rulesets).map(|r| r.version),
            Some(3)
        );
        assert_eq!(
            ruleset_for(q("2018-Q4"), &rulesets).map(|r| r.version),
            Some(3)
        );
        assert_eq!(
            ruleset_for(q("2019-Q1"), &rulesets).map(|r| r.version),
            Some(2)
        );
        assert_eq!(
            ruleset_for(q("1999-Q4"), &rulesets).map(|r| r.version),
            None
        );
    }

    #[test]
    fn on_equal_effective_from_the_higher_version_wins() {
        let rulesets = [ruleset(3, "2019-Q1", 10), ruleset(2, "2019-Q1", 12)];
        assert_eq!(
            ruleset_for(q("2020-Q1"), &rulesets).map(|r| r.version),
            Some(3)
        );
    }
}
