//! The Evaluation aggregate: a merit evaluation and the quarters it covers (rule 8).
//!
//! Determinations are recorded on each member's own stream (their basis is the member's
//! facts); the evaluation only fixes which quarters count.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::rejection::{Classify, RejectionKind};
use crate::values::{EvaluationId, Name, Quarter};

/// The most quarters one evaluation may cover (ten years).
pub const MAX_QUARTERS: usize = 40;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    pub evaluation_id: EvaluationId,
    pub name: Name,
    /// Sorted, without repeats.
    pub quarters: Vec<Quarter>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationCommand {
    Define(EvaluationRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EvaluationEvent {
    EvaluationDefined(EvaluationRecord),
}

impl DomainEvent for EvaluationEvent {
    fn event_type(&self) -> String {
        match self {
            EvaluationEvent::EvaluationDefined(_) => "EvaluationDefined".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationRejection {
    #[error("evaluation {0} is already defined with other details")]
    DefinedDifferently(EvaluationId),
    #[error("an evaluation covers between 1 and {MAX_QUARTERS} quarters")]
    QuarterCount,
    #[error("quarter {0} is listed twice")]
    RepeatedQuarter(Quarter),
}

impl Classify for EvaluationRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            EvaluationRejection::DefinedDifferently(_) => RejectionKind::Conflict,
            _ => RejectionKind::RuleViolation,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    record: Option<EvaluationRecord>,
}

impl Evaluation {
    pub fn record(&self) -> Option<&EvaluationRecord> {
        self.record.as_ref()
    }

    /// `record.quarters` may come in any order; they are kept sorted.
    pub fn decide(
        &self,
        command: &EvaluationCommand,
    ) -> Result<Vec<EvaluationEvent>, EvaluationRejection> {
        let EvaluationCommand::Define(record) = command;
        let mut record = record.clone();
        record.quarters.sort_unstable();
        if let Some(twice) = record.quarters.windows(2).find(|w| w[0] == w[1]) {
            return Err(EvaluationRejection::RepeatedQuarter(twice[0]));
        }
        match &self.record {
            Some(existing) if existing == &record => Ok(vec![]),
            Some(existing) => Err(EvaluationRejection::DefinedDifferently(
                existing.evaluation_id.clone(),
            )),
            None if record.quarters.is_empty() || record.quarters.len() > MAX_QUARTERS => {
                Err(EvaluationRejection::QuarterCount)
            }
            None => Ok(vec![EvaluationEvent::EvaluationDefined(record)]),
        }
    }
}

impl Aggregate for Evaluation {
    const TYPE: &'static str = "evaluation";
    type Command = EvaluationCommand;
    type Event = EvaluationEvent;
    type Error = EvaluationRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            EvaluationEvent::EvaluationDefined(record) => self.record = Some(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn record(quarters: &[&str]) -> EvaluationRecord {
        EvaluationRecord {
            evaluation_id: "2018-annual".parse().expect("slug"),
            name: "2018 年度评先评优".parse().expect("text"),
            quarters: quarters
                .iter()
                .map(|q| Quarter::parse(q).expect("quarter"))
                .collect(),
        }
    }

    #[test]
    fn an_evaluation_is_defined_once_with_its_quarters_sorted() {
        let sorted = record(&["2018-Q1", "2018-Q2"]);
        TestFramework::<Evaluation>::with(())
            .given_no_previous_events()
            .when(EvaluationCommand::Define(record(&["2018-Q2", "2018-Q1"])))
            .then_expect_events(vec![EvaluationEvent::EvaluationDefined(sorted.clone())]);
        TestFramework::<Evaluation>::with(())
            .given(vec![EvaluationEvent::EvaluationDefined(sorted.clone())])
            .when(EvaluationCommand::Define(record(&["2018-Q2", "2018-Q1"])))
            .then_expect_events(vec![]);
        TestFramework::<Evaluation>::with(())
            .given(vec![EvaluationEvent::EvaluationDefined(sorted.clone())])
            .when(EvaluationCommand::Define(record(&["2018-Q1"])))
            .then_expect_error(EvaluationRejection::DefinedDifferently(
                sorted.evaluation_id,
            ));
    }

    #[test]
    fn an_evaluation_needs_distinct_quarters() {
        let cases = [
            (record(&[]), EvaluationRejection::QuarterCount),
            (
                record(&["2018-Q1", "2018-Q1"]),
                EvaluationRejection::RepeatedQuarter(Quarter::parse("2018-Q1").expect("q")),
            ),
        ];
        for (command, rejection) in cases {
            TestFramework::<Evaluation>::with(())
                .given_no_previous_events()
                .when(EvaluationCommand::Define(command))
                .then_expect_error(rejection);
        }
    }
}
