//! The DeterminationRun aggregate: one stream per `determination_id`, recording which
//! evaluation it decides and for whom, before any member is decided.
//!
//! Each member's `EligibilityDetermined` event is idempotent per `determination_id` on the
//! member's own stream, but only this stream can refuse, at once and for every instance, an id
//! reused for another evaluation or another set of members — before anything is recorded.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rejection::{Classify, RejectionKind};
use crate::values::{EvaluationId, OrgId};

/// Whose eligibility a determination decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every member counted in the organisation's subtree on the evaluation's last day.
    Organisation(OrgId),
    /// These members (sorted, without repeats).
    Members(Vec<Uuid>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeterminationRequest {
    pub determination_id: Uuid,
    pub evaluation_id: EvaluationId,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeterminationRunCommand {
    Request(DeterminationRequest),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeterminationRunEvent {
    DeterminationRequested(DeterminationRequest),
}

impl DomainEvent for DeterminationRunEvent {
    fn event_type(&self) -> String {
        match self {
            DeterminationRunEvent::DeterminationRequested(_) => "DeterminationRequested".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeterminationRunRejection {
    #[error("determination {0} was requested for another evaluation or other members")]
    RequestedDifferently(Uuid),
}

impl Classify for DeterminationRunRejection {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Conflict
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeterminationRun {
    request: Option<DeterminationRequest>,
}

impl DeterminationRun {
    pub fn request(&self) -> Option<&DeterminationRequest> {
        self.request.as_ref()
    }

    /// The same request again records nothing; another request under the same id is refused.
    pub fn decide(
        &self,
        command: &DeterminationRunCommand,
    ) -> Result<Vec<DeterminationRunEvent>, DeterminationRunRejection> {
        let DeterminationRunCommand::Request(request) = command;
        match &self.request {
            Some(recorded) if recorded == request => Ok(vec![]),
            Some(recorded) => Err(DeterminationRunRejection::RequestedDifferently(
                recorded.determination_id,
            )),
            None => Ok(vec![DeterminationRunEvent::DeterminationRequested(
                request.clone(),
            )]),
        }
    }
}

impl Aggregate for DeterminationRun {
    const TYPE: &'static str = "determination";
    type Command = DeterminationRunCommand;
    type Event = DeterminationRunEvent;
    type Error = DeterminationRunRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            DeterminationRunEvent::DeterminationRequested(request) => self.request = Some(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn request(evaluation: &str, scope: Scope) -> DeterminationRequest {
        DeterminationRequest {
            determination_id: Uuid::from_u128(7),
            evaluation_id: evaluation.parse().expect("slug"),
            scope,
        }
    }

    #[test]
    fn a_determination_id_serves_one_request_only() {
        let first = request(
            "2018-annual",
            Scope::Organisation("fz".parse().expect("slug")),
        );
        TestFramework::<DeterminationRun>::with(())
            .given_no_previous_events()
            .when(DeterminationRunCommand::Request(first.clone()))
            .then_expect_events(vec![DeterminationRunEvent::DeterminationRequested(
                first.clone(),
            )]);
        let given = vec![DeterminationRunEvent::DeterminationRequested(first.clone())];
        TestFramework::<DeterminationRun>::with(())
            .given(given.clone())
            .when(DeterminationRunCommand::Request(first))
            .then_expect_events(vec![]);
        for other in [
            request(
                "2019-annual",
                Scope::Organisation("fz".parse().expect("slug")),
            ),
            request("2018-annual", Scope::Members(vec![Uuid::from_u128(1)])),
        ] {
            TestFramework::<DeterminationRun>::with(())
                .given(given.clone())
                .when(DeterminationRunCommand::Request(other))
                .then_expect_error(DeterminationRunRejection::RequestedDifferently(
                    Uuid::from_u128(7),
                ));
        }
    }
}
