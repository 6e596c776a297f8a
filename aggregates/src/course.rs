//! The Course aggregate: a catalog entry whose terms decide what a completion is worth.

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::facts::CourseTerms;
use crate::rejection::{Classify, RejectionKind};
use crate::values::{Category, CourseId, Hours, Name};

/// The most credit one course may carry.
pub const MAX_CREDIT_HOURS: Hours = Hours::whole(1000);
/// The longest minimum study time a course may ask for (a year of minutes).
pub const MAX_MIN_STUDY_MINUTES: u32 = 525_600;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseRecord {
    pub course_id: CourseId,
    pub title: Name,
    pub category: Category,
    pub credit_hours: Hours,
    pub min_study_minutes: u32,
}

impl CourseRecord {
    pub fn terms(&self) -> CourseTerms {
        CourseTerms {
            course_id: self.course_id.clone(),
            category: self.category,
            credit_hours: self.credit_hours,
            min_study_minutes: self.min_study_minutes,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CourseCommand {
    Register(CourseRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CourseEvent {
    CourseRegistered(CourseRecord),
}

impl DomainEvent for CourseEvent {
    fn event_type(&self) -> String {
        match self {
            CourseEvent::CourseRegistered(_) => "CourseRegistered".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CourseRejection {
    #[error("course {0} is already registered with other terms")]
    RegisteredDifferently(CourseId),
    #[error("credit hours must be more than 0 and at most 1000")]
    CreditOutOfRange,
    #[error("min_study_minutes must be at most 525600")]
    StudyMinutesOutOfRange,
}

impl Classify for CourseRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            CourseRejection::RegisteredDifferently(_) => RejectionKind::Conflict,
            _ => RejectionKind::RuleViolation,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Course {
    record: Option<CourseRecord>,
}

impl Course {
    pub fn record(&self) -> Option<&CourseRecord> {
        self.record.as_ref()
    }

    pub fn decide(&self, command: &CourseCommand) -> Result<Vec<CourseEvent>, CourseRejection> {
        let CourseCommand::Register(record) = command;
        match &self.record {
            Some(existing) if existing == record => Ok(vec![]),
            Some(existing) => Err(CourseRejection::RegisteredDifferently(
                existing.course_id.clone(),
            )),
            None if !record.credit_hours.is_positive()
                || record.credit_hours > MAX_CREDIT_HOURS =>
            {
                Err(CourseRejection::CreditOutOfRange)
            }
            None if record.min_study_minutes > MAX_MIN_STUDY_MINUTES => {
                Err(CourseRejection::StudyMinutesOutOfRange)
            }
            None => Ok(vec![CourseEvent::CourseRegistered(record.clone())]),
        }
    }
}

impl Aggregate for Course {
    const TYPE: &'static str = "course";
    type Command = CourseCommand;
    type Event = CourseEvent;
    type Error = CourseRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        match event {
            CourseEvent::CourseRegistered(record) => self.record = Some(record),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn record() -> CourseRecord {
        CourseRecord {
            course_id: "party-history".parse().expect("slug"),
            title: "党史学习".parse().expect("text"),
            category: Category::Required,
            credit_hours: Hours::from_hundredths(150),
            min_study_minutes: 45,
        }
    }

    #[test]
    fn registering_a_course_records_its_terms() {
        TestFramework::<Course>::with(())
            .given_no_previous_events()
            .when(CourseCommand::Register(record()))
            .then_expect_events(vec![CourseEvent::CourseRegistered(record())]);
    }

    #[test]
    fn registering_the_same_course_again_records_nothing() {
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(CourseCommand::Register(record()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn registering_a_course_id_with_other_terms_is_a_conflict() {
        let mut other = record();
        other.credit_hours = Hours::whole(3);
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(CourseCommand::Register(other))
            .then_expect_error(CourseRejection::RegisteredDifferently(record().course_id));
    }

    #[test]
    fn courses_without_credit_are_rejected() {
        let mut free = record();
        free.credit_hours = Hours::ZERO;
        TestFramework::<Course>::with(())
            .given_no_previous_events()
            .when(CourseCommand::Register(free))
            .then_expect_error(CourseRejection::CreditOutOfRange);
    }
}
