//! The Organisation aggregate: a node of the organisation tree.
//!
//! A parent must exist before its children (the caller checks, since that is another
//! aggregate), so the tree can never hold a cycle.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::rejection::{Classify, RejectionKind};
use crate::values::{Name, OrgId};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationRecord {
    pub org_id: OrgId,
    pub name: Name,
    pub parent_id: Option<OrgId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrganisationCommand {
    Register(OrganisationRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganisationEvent {
    OrganisationRegistered(OrganisationRecord),
}

impl DomainEvent for OrganisationEvent {
    fn event_type(&self) -> String {
        match self {
            OrganisationEvent::OrganisationRegistered(_) => "OrganisationRegistered".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganisationRejection {
    #[error("organisation {0} is already registered with other details")]
    RegisteredDifferently(OrgId),
    #[error("an organisation cannot be its own parent")]
    OwnParent,
}

impl Classify for OrganisationRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            OrganisationRejection::RegisteredDifferently(_) => RejectionKind::Conflict,
            _ => RejectionKind::RuleViolation,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    record: Option<OrganisationRecord>,
}

impl Organisation {
    pub fn record(&self) -> Option<&OrganisationRecord> {
        self.record.as_ref()
    }

    pub fn decide(
        &self,
        command: &OrganisationCommand,
    ) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        let OrganisationCommand::Register(record) = command;
        match &self.record {
            Some(existing) if existing == record => Ok(vec![]),
            Some(existing) => Err(OrganisationRejection::RegisteredDifferently(
                existing.org_id.clone(),
            )),
            None if record.parent_id.as_ref() == Some(&record.org_id) => {
                Err(OrganisationRejection::OwnParent)
            }
            None => Ok(vec![OrganisationEvent::OrganisationRegistered(
                record.clone(),
            )]),
        }
    }
}

impl Aggregate for Organisation {
    const TYPE: &'static str = "organisation";
    type Command = OrganisationCommand;
    type Event = OrganisationEvent;
    type Error = OrganisationRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrganisationEvent::OrganisationRegistered(record) => self.record = Some(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn record(id: &str, parent: Option<&str>) -> OrganisationRecord {
        OrganisationRecord {
            org_id: id.parse().expect("slug"),
            name: "福州市".parse().expect("text"),
            parent_id: parent.map(|p| p.parse().expect("slug")),
        }
    }

    #[test]
    fn registering_an_organisation_records_it_once() {
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Register(record("fz", None)))
            .then_expect_events(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))]);
        TestFramework::<Organisation>::with(())
            .given(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))])
            .when(OrganisationCommand::Register(record("fz", None)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_organisation_cannot_be_registered_twice_differently_or_under_itself() {
        TestFramework::<Organisation>::with(())
            .given(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))])
            .when(OrganisationCommand::Register(record("fz", Some("other"))))
            .then_expect_error(OrganisationRejection::RegisteredDifferently(
                "fz".parse().expect("slug"),
            ));
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Register(record("fz", Some("fz"))))
            .then_expect_error(OrganisationRejection::OwnParent);
    }
}
