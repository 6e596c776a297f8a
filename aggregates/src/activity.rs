//! The Activity aggregate: the link from an xAPI activity IRI to the course its statements
//! credit. The stream's id is the IRI, so the event store's key makes the link unique — two
//! courses can never both claim one activity, whichever instance records them — and the link,
//! once made, never changes.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::rejection::{Classify, RejectionKind};
use crate::values::CourseId;

/// Which course an activity's statements are about, and whether a completion of it must also
/// report a pass (`result.success = true`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityLink {
    pub course_id: CourseId,
    pub pass_required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActivityCommand {
    /// The caller checked that the course exists.
    Link(ActivityLink),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActivityEvent {
    ActivityLinked(ActivityLink),
}

impl DomainEvent for ActivityEvent {
    fn event_type(&self) -> String {
        match self {
            ActivityEvent::ActivityLinked(_) => "ActivityLinked".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityRejection {
    #[error("the activity is already linked to course {0}")]
    LinkedElsewhere(CourseId),
    #[error("the activity is already linked to this course with pass_required = {0}")]
    LinkedDifferently(bool),
}

impl Classify for ActivityRejection {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Conflict
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    link: Option<ActivityLink>,
}

impl Activity {
    pub fn link(&self) -> Option<&ActivityLink> {
        self.link.as_ref()
    }

    pub fn decide(
        &self,
        command: &ActivityCommand,
    ) -> Result<Vec<ActivityEvent>, ActivityRejection> {
        let ActivityCommand::Link(link) = command;
        match &self.link {
            None => Ok(vec![ActivityEvent::ActivityLinked(link.clone())]),
            Some(existing) if existing == link => Ok(vec![]),
            Some(existing) if existing.course_id == link.course_id => {
                Err(ActivityRejection::LinkedDifferently(existing.pass_required))
            }
            Some(existing) => Err(ActivityRejection::LinkedElsewhere(
                existing.course_id.clone(),
            )),
        }
    }
}

impl Aggregate for Activity {
    const TYPE: &'static str = "activity";
    type Command = ActivityCommand;
    type Event = ActivityEvent;
    type Error = ActivityRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            ActivityEvent::ActivityLinked(link) => self.link = Some(link),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn link(course: &str, pass_required: bool) -> ActivityLink {
        ActivityLink {
            course_id: course.parse().expect("slug"),
            pass_required,
        }
    }

    #[test]
    fn an_activity_is_linked_once_and_a_resend_records_nothing() {
        TestFramework::<Activity>::with(())
            .given_no_previous_events()
            .when(ActivityCommand::Link(link("party-history", true)))
            .then_expect_events(vec![ActivityEvent::ActivityLinked(link(
                "party-history",
                true,
            ))]);
        TestFramework::<Activity>::with(())
            .given(vec![ActivityEvent::ActivityLinked(link(
                "party-history",
                true,
            ))])
            .when(ActivityCommand::Link(link("party-history", true)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_activity_linked_to_one_course_is_refused_to_another_or_other_terms() {
        TestFramework::<Activity>::with(())
            .given(vec![ActivityEvent::ActivityLinked(link(
                "party-history",
                true,
            ))])
            .when(ActivityCommand::Link(link("ethics", true)))
            .then_expect_error(ActivityRejection::LinkedElsewhere(
                "party-history".parse().expect("slug"),
            ));
        TestFramework::<Activity>::with(())
            .given(vec![ActivityEvent::ActivityLinked(link(
                "party-history",
                true,
            ))])
            .when(ActivityCommand::Link(link("party-history", false)))
            .then_expect_error(ActivityRejection::LinkedDifferently(true));
    }
}
