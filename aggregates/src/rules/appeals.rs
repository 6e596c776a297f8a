//! Rule 9: a member's appeals against determinations, and the final eligibility they lead to.
//!
//! A determination is heard once: its appeal is the first one filed against it. The final
//! eligibility for an evaluation is the latest determination's outcome, inverted when its
//! appeal was overturned; a newer determination supersedes earlier ones and their appeals.
//! The aggregate decides with these functions, and the views and answers read with them.

use uuid::Uuid;

use crate::facts::{Appeal, AppealOutcome, AppealStatus};
use crate::rules::eligibility::Determination;
use crate::values::EvaluationId;

/// A member's determinations and appeals, in the order recorded.
#[derive(Debug, Clone, Copy)]
pub struct Hearings<'a> {
    pub determinations: &'a [Determination],
    pub appeals: &'a [Appeal],
}

/// The final eligibility for an evaluation, with what it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinalEligibility<'a> {
    pub eligible: bool,
    /// The determination in force: the latest for the evaluation.
    pub determination: &'a Determination,
    /// Its appeal, if one was filed.
    pub appeal: Option<&'a Appeal>,
}

impl<'a> Hearings<'a> {
    /// The latest determination for an evaluation: the one in force.
    pub fn latest(&self, evaluation_id: &EvaluationId) -> Option<&'a Determination> {
        self.determinations
            .iter()
            .rev()
            .find(|d| &d.evaluation_id == evaluation_id)
    }

    /// The appeal against a determination: the first and only one filed against it.
    pub fn appeal_against(&self, determination_id: Uuid) -> Option<&'a Appeal> {
        self.appeals
            .iter()
            .find(|a| a.determination_id == determination_id)
    }

    /// The latest determination's outcome, inverted when its appeal was overturned; `None`
    /// when no determination exists.
    pub fn final_eligibility(&self, evaluation_id: &EvaluationId) -> Option<FinalEligibility<'a>> {
        let determination = self.latest(evaluation_id)?;
        let appeal = self.appeal_against(determination.determination_id);
        let overturned = appeal
            .and_then(|a| a.resolution.as_ref())
            .is_some_and(|r| r.outcome == AppealOutcome::Overturned);
        Some(FinalEligibility {
            eligible: determination.eligible != overturned,
            determination,
            appeal,
        })
    }

    /// Where an appeal stands.
    pub fn status(&self, appeal: &Appeal) -> AppealStatus {
        match &appeal.resolution {
            Some(r) if r.outcome == AppealOutcome::Upheld => AppealStatus::Upheld,
            Some(_) => AppealStatus::Overturned,
            None if self.waits_for_a_reviewer(appeal) => AppealStatus::Open,
            None => AppealStatus::Superseded,
        }
    }

    /// Unresolved, the one appeal of its determination, and that determination still in force.
    /// (Only ledgers written before a determination was heard once can hold a second appeal of
    /// a determination: it counts as superseded.)
    pub fn waits_for_a_reviewer(&self, appeal: &Appeal) -> bool {
        appeal.resolution.is_none()
            && self
                .latest(&appeal.evaluation_id)
                .is_some_and(|d| d.determination_id == appeal.determination_id)
            && self
                .appeal_against(appeal.determination_id)
                .is_some_and(|first| first.appeal_id == appeal.appeal_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Resolution;
    use chrono::{TimeZone, Utc};

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn evaluation() -> EvaluationId {
        "2018-q2".parse().expect("slug")
    }

    fn determination(n: u128, eligible: bool) -> Determination {
        Determination {
            determination_id: id(n),
            evaluation_id: evaluation(),
            eligible,
            determined_at: Utc
                .with_ymd_and_hms(2018, 7, 2, 0, 0, 0)
                .single()
                .expect("t"),
            rules_version: 1,
            quarters: vec![],
        }
    }

    fn appeal(n: u128, against: u128, outcome: Option<AppealOutcome>) -> Appeal {
        let at = Utc
            .with_ymd_and_hms(2018, 7, 3, 0, 0, 0)
            .single()
            .expect("t");
        Appeal {
            appeal_id: id(n),
            evaluation_id: evaluation(),
            determination_id: id(against),
            reason: "r".parse().expect("text"),
            filed_at: at,
            sequence: 3,
            resolution: outcome.map(|outcome| Resolution {
                outcome,
                note: "n".parse().expect("text"),
                resolved_at: at,
                sequence: 4,
            }),
        }
    }

    #[test]
    fn an_overturned_appeal_inverts_the_determination_in_force_only() {
        let determinations = [determination(10, false)];
        let appeals = [appeal(20, 10, Some(AppealOutcome::Overturned))];
        let hearings = Hearings {
            determinations: &determinations,
            appeals: &appeals,
        };
        let found = hearings.final_eligibility(&evaluation()).expect("decided");
        assert!(found.eligible);
        assert_eq!(hearings.status(&appeals[0]), AppealStatus::Overturned);

        let determinations = [determination(10, false), determination(11, false)];
        let hearings = Hearings {
            determinations: &determinations,
            appeals: &appeals,
        };
        let found = hearings.final_eligibility(&evaluation()).expect("decided");
        assert_eq!((found.eligible, found.appeal), (false, None), "superseded");
    }

    #[test]
    fn an_open_appeal_against_a_superseded_determination_is_superseded() {
        let determinations = [determination(10, false), determination(11, true)];
        let appeals = [appeal(20, 10, None)];
        let hearings = Hearings {
            determinations: &determinations,
            appeals: &appeals,
        };
        assert!(!hearings.waits_for_a_reviewer(&appeals[0]));
        assert_eq!(hearings.status(&appeals[0]), AppealStatus::Superseded);
        assert!(Hearings {
            determinations: &determinations[..1],
            appeals: &appeals
        }
        .waits_for_a_reviewer(&appeals[0]));
    }
}
