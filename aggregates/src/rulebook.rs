//! The RuleBook aggregate: the single stream of published rulesets (rule 5).
//!
//! Publishing never edits history: a new version is appended, and every view says which
//! version it used.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::rejection::{Classify, RejectionKind};
use crate::rules::rulesets::{latest_version, Ruleset};
use crate::values::Hours;

/// The id of the one RuleBook stream.
pub const RULEBOOK_ID: &str = "rulebook";

#[derive(Debug, Clone, PartialEq)]
pub enum RuleBookCommand {
    Publish(Ruleset),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RuleBookEvent {
    RulesetPublished(Ruleset),
}

impl DomainEvent for RuleBookEvent {
    fn event_type(&self) -> String {
        match self {
            RuleBookEvent::RulesetPublished(_) => "RulesetPublished".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleBookRejection {
    #[error("version {proposed} does not exceed the latest published version {latest}")]
    VersionNotNewer { proposed: u32, latest: u32 },
    #[error("targets must be between 0 and 1000 class hours")]
    TargetOutOfRange,
    #[error("a version is a whole number from 1 to {MAX_VERSION}")]
    VersionOutOfRange,
}

/// The highest version a ruleset may have (views keep versions in a 32-bit integer).
pub const MAX_VERSION: u32 = i32::MAX as u32;

impl Classify for RuleBookRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            RuleBookRejection::VersionNotNewer { .. } => RejectionKind::Conflict,
            RuleBookRejection::TargetOutOfRange | RuleBookRejection::VersionOutOfRange => {
                RejectionKind::RuleViolation
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleBook {
    rulesets: Vec<Ruleset>,
}

impl RuleBook {
    /// Every published ruleset, in publication order.
    pub fn rulesets(&self) -> &[Ruleset] {
        &self.rulesets
    }

    pub fn decide(
        &self,
        command: &RuleBookCommand,
    ) -> Result<Vec<RuleBookEvent>, RuleBookRejection> {
        let RuleBookCommand::Publish(ruleset) = command;
        if self.rulesets.contains(ruleset) {
            return Ok(vec![]);
        }
        if ruleset.version == 0 || ruleset.version > MAX_VERSION {
            return Err(RuleBookRejection::VersionOutOfRange);
        }
        let in_range = |h: Hours| h >= Hours::ZERO && h <= Hours::whole(1000);
        if !in_range(ruleset.required_hours) || !in_range(ruleset.elective_hours) {
            return Err(RuleBookRejection::TargetOutOfRange);
        }
        if let Some(latest) = latest_version(&self.rulesets) {
            if ruleset.version <= latest {
                return Err(RuleBookRejection::VersionNotNewer {
                    proposed: ruleset.version,
                    latest,
                });
            }
        }
        Ok(vec![RuleBookEvent::RulesetPublished(ruleset.clone())])
    }
}

impl Aggregate for RuleBook {
    const TYPE: &'static str = "rulebook";
    type Command = RuleBookCommand;
    type Event = RuleBookEvent;
    type Error = RuleBookRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            RuleBookEvent::RulesetPublished(ruleset) => self.rulesets.push(ruleset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn version_1_is_published_once() {
        TestFramework::<RuleBook>::with(())
            .given_no_previous_events()
            .when(RuleBookCommand::Publish(Ruleset::version_1()))
            .then_expect_events(vec![RuleBookEvent::RulesetPublished(Ruleset::version_1())]);
        TestFramework::<RuleBook>::with(())
            .given(vec![RuleBookEvent::RulesetPublished(Ruleset::version_1())])
            .when(RuleBookCommand::Publish(Ruleset::version_1()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_version_must_exceed_every_earlier_one() {
        let mut same_version = Ruleset::version_1();
        same_version.required_hours = Hours::whole(10);
        TestFramework::<RuleBook>::with(())
            .given(vec![RuleBookEvent::RulesetPublished(Ruleset::version_1())])
            .when(RuleBookCommand::Publish(same_version))
            .then_expect_error(RuleBookRejection::VersionNotNewer {
                proposed: 1,
                latest: 1,
            });
    }

    #[test]
    fn versions_and_targets_must_lie_in_range() {
        for (version, required, rejection) in [
            (0, 8, RuleBookRejection::VersionOutOfRange),
            (MAX_VERSION + 1, 8, RuleBookRejection::VersionOutOfRange),
            (2, 1001, RuleBookRejection::TargetOutOfRange),
        ] {
            let ruleset = Ruleset {
                version,
                required_hours: Hours::whole(required),
                ..Ruleset::version_1()
            };
            TestFramework::<RuleBook>::with(())
                .given(vec![RuleBookEvent::RulesetPublished(Ruleset::version_1())])
                .when(RuleBookCommand::Publish(ruleset))
                .then_expect_error(rejection);
        }
    }
}
