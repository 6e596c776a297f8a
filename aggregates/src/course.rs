//! The Course aggregate: a catalog entry whose terms decide what a completion is worth. Terms
//! change from a day on and a course is retired from a day on; a completion takes the terms in
//! force on its day and keeps them (rule 2), and none is accepted once the course is retired.

use chrono::NaiveDate;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::facts::CourseTerms;
use crate::rejection::{Classify, RejectionKind};
use crate::values::{Category, CourseId, Hours, Name, Reason};

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

/// New terms for completions from `effective_from` on (a day in the ledger's time zone).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsChange {
    pub effective_from: NaiveDate,
    pub title: Name,
    pub category: Category,
    pub credit_hours: Hours,
    pub min_study_minutes: u32,
}

/// A course withdrawn: no completion from `retired_from` on (a day in the ledger's time zone).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    pub retired_from: NaiveDate,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CourseCommand {
    Register(CourseRecord),
    /// `today` is the ledger's local date: terms change from today on, never for days past.
    ChangeTerms {
        change: TermsChange,
        today: NaiveDate,
    },
    /// As for terms, a course is retired from today on at the earliest.
    Retire {
        retirement: Retirement,
        today: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CourseEvent {
    CourseRegistered(CourseRecord),
    CourseTermsChanged(TermsChange),
    CourseRetired(Retirement),
}

impl DomainEvent for CourseEvent {
    fn event_type(&self) -> String {
        match self {
            CourseEvent::CourseRegistered(_) => "CourseRegistered".to_owned(),
            CourseEvent::CourseTermsChanged(_) => "CourseTermsChanged".to_owned(),
            CourseEvent::CourseRetired(_) => "CourseRetired".to_owned(),
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
    #[error("the course is not registered")]
    NotRegistered,
    #[error("a change takes effect from today ({0}) or later")]
    InThePast(NaiveDate),
    #[error("course {0} already has terms from {1} on: new terms must start after them")]
    NotAfterLastTerms(CourseId, NaiveDate),
    #[error("course {0} is retired from {1}")]
    Retired(CourseId, NaiveDate),
    #[error("course {0} takes new terms from {1}: retire it after that day")]
    TermsAfterRetirement(CourseId, NaiveDate),
    #[error("course {0} is already retired from {1}")]
    RetiredDifferently(CourseId, NaiveDate),
}

impl Classify for CourseRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            CourseRejection::RegisteredDifferently(_) | CourseRejection::RetiredDifferently(..) => {
                RejectionKind::Conflict
            }
            CourseRejection::NotRegistered => RejectionKind::NotFound,
            _ => RejectionKind::RuleViolation,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Course {
    record: Option<CourseRecord>,
    /// Later terms, in the order of their days, with the sequence of their events.
    #[serde(default)]
    changes: Vec<(usize, TermsChange)>,
    #[serde(default)]
    retired: Option<(usize, Retirement)>,
    /// Events applied: the sequence of the last.
    #[serde(default)]
    applied: usize,
}

/// The credit and minimum study time a course may carry.
fn check_terms(credit_hours: Hours, min_study_minutes: u32) -> Result<(), CourseRejection> {
    if !credit_hours.is_positive() || credit_hours > MAX_CREDIT_HOURS {
        Err(CourseRejection::CreditOutOfRange)
    } else if min_study_minutes > MAX_MIN_STUDY_MINUTES {
        Err(CourseRejection::StudyMinutesOutOfRange)
    } else {
        Ok(())
    }
}

impl Course {
    pub fn record(&self) -> Option<&CourseRecord> {
        self.record.as_ref()
    }

    /// The terms that took effect after registration, in the order of their days, each with
    /// the sequence of its event.
    pub fn changes(&self) -> impl Iterator<Item = (usize, &TermsChange)> {
        self.changes
            .iter()
            .map(|(sequence, change)| (*sequence, change))
    }

    /// The retirement and the sequence of its event.
    pub fn retirement(&self) -> Option<(usize, &Retirement)> {
        self.retired.as_ref().map(|(sequence, r)| (*sequence, r))
    }

    /// An event of the stream passed over (one no current type can read): counted, so that
    /// the sequences of later events stay right.
    pub fn pass_over(&mut self) {
        self.applied += 1;
    }

    fn retired(&self) -> Option<&Retirement> {
        self.retired.as_ref().map(|(_, r)| r)
    }

    /// The terms a completion on `day` (the ledger's local date) is recorded with: the last
    /// that took effect by then (rule 2: the completion keeps them); refused from the day the
    /// course is retired.
    pub fn terms_on(&self, day: NaiveDate) -> Result<CourseTerms, CourseRejection> {
        let record = self.registered()?;
        if let Some(retired) = self.retired().filter(|r| r.retired_from <= day) {
            return Err(CourseRejection::Retired(
                record.course_id.clone(),
                retired.retired_from,
            ));
        }
        let mut terms = record.terms();
        let changes = self.changes.iter().map(|(_, change)| change);
        if let Some(change) = changes.rev().find(|c| c.effective_from <= day) {
            terms.category = change.category;
            terms.credit_hours = change.credit_hours;
            terms.min_study_minutes = change.min_study_minutes;
        }
        Ok(terms)
    }

    fn registered(&self) -> Result<&CourseRecord, CourseRejection> {
        self.record.as_ref().ok_or(CourseRejection::NotRegistered)
    }

    pub fn decide(&self, command: &CourseCommand) -> Result<Vec<CourseEvent>, CourseRejection> {
        match command {
            CourseCommand::Register(record) => self.register(record),
            CourseCommand::ChangeTerms { change, today } => self.change_terms(change, *today),
            CourseCommand::Retire { retirement, today } => self.retire(retirement, *today),
        }
    }

    fn change_terms(
        &self,
        change: &TermsChange,
        today: NaiveDate,
    ) -> Result<Vec<CourseEvent>, CourseRejection> {
        let record = self.registered()?;
        if self.changes.iter().any(|(_, c)| c == change) {
            return Ok(vec![]);
        }
        if change.effective_from < today {
            return Err(CourseRejection::InThePast(today));
        }
        if let Some((_, last)) = self.changes.last() {
            if change.effective_from <= last.effective_from {
                return Err(CourseRejection::NotAfterLastTerms(
                    record.course_id.clone(),
                    last.effective_from,
                ));
            }
        }
        if let Some(retired) = self.retired() {
            if change.effective_from >= retired.retired_from {
                return Err(CourseRejection::Retired(
                    record.course_id.clone(),
                    retired.retired_from,
                ));
            }
        }
        check_terms(change.credit_hours, change.min_study_minutes)?;
        Ok(vec![CourseEvent::CourseTermsChanged(change.clone())])
    }

    fn retire(
        &self,
        retirement: &Retirement,
        today: NaiveDate,
    ) -> Result<Vec<CourseEvent>, CourseRejection> {
        let record = self.registered()?;
        match self.retired() {
            Some(retired) if retired == retirement => return Ok(vec![]),
            Some(retired) => {
                return Err(CourseRejection::RetiredDifferently(
                    record.course_id.clone(),
                    retired.retired_from,
                ))
            }
            None => {}
        }
        if retirement.retired_from < today {
            return Err(CourseRejection::InThePast(today));
        }
        if let Some((_, last)) = self.changes.last() {
            if last.effective_from >= retirement.retired_from {
                return Err(CourseRejection::TermsAfterRetirement(
                    record.course_id.clone(),
                    last.effective_from,
                ));
            }
        }
        Ok(vec![CourseEvent::CourseRetired(retirement.clone())])
    }

    fn register(&self, record: &CourseRecord) -> Result<Vec<CourseEvent>, CourseRejection> {
        match &self.record {
            Some(existing) if existing == record => Ok(vec![]),
            Some(existing) => Err(CourseRejection::RegisteredDifferently(
                existing.course_id.clone(),
            )),
            None => {
                check_terms(record.credit_hours, record.min_study_minutes)?;
                Ok(vec![CourseEvent::CourseRegistered(record.clone())])
            }
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
        self.applied += 1;
        match event {
            CourseEvent::CourseRegistered(record) => self.record = Some(record),
            CourseEvent::CourseTermsChanged(change) => self.changes.push((self.applied, change)),
            CourseEvent::CourseRetired(retirement) => {
                self.retired = Some((self.applied, retirement))
            }
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

    fn day(raw: &str) -> NaiveDate {
        raw.parse().expect("a date")
    }

    fn change(from: &str, hours: i64) -> TermsChange {
        TermsChange {
            effective_from: day(from),
            title: "党史学习（新版）".parse().expect("text"),
            category: Category::Elective,
            credit_hours: Hours::whole(hours),
            min_study_minutes: 90,
        }
    }

    fn retirement(from: &str) -> Retirement {
        Retirement {
            retired_from: day(from),
            reason: "课程下线".parse().expect("text"),
        }
    }

    fn course(events: Vec<CourseEvent>) -> Course {
        let mut course = Course::default();
        for event in events {
            course.apply(event);
        }
        course
    }

    #[test]
    fn a_completion_takes_the_terms_in_force_on_its_day_until_the_course_is_retired() {
        let course = course(vec![
            CourseEvent::CourseRegistered(record()),
            CourseEvent::CourseTermsChanged(change("2026-04-01", 4)),
            CourseEvent::CourseRetired(retirement("2026-10-01")),
        ]);
        let before = course.terms_on(day("2026-03-31")).expect("terms");
        assert_eq!(before, record().terms());
        let after = course.terms_on(day("2026-04-01")).expect("terms");
        assert_eq!(
            (after.category, after.credit_hours, after.min_study_minutes),
            (Category::Elective, Hours::whole(4), 90)
        );
        assert_eq!(
            course.terms_on(day("2026-10-01")),
            Err(CourseRejection::Retired(
                record().course_id,
                day("2026-10-01")
            ))
        );
        assert_eq!(
            Course::default().terms_on(day("2026-01-01")),
            Err(CourseRejection::NotRegistered)
        );
    }

    #[test]
    fn terms_change_from_today_on_in_order_and_the_same_change_twice_records_nothing() {
        let today = day("2026-03-01");
        let when = |change: TermsChange| CourseCommand::ChangeTerms { change, today };
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(when(change("2026-04-01", 4)))
            .then_expect_events(vec![CourseEvent::CourseTermsChanged(change(
                "2026-04-01",
                4,
            ))]);
        let changed = vec![
            CourseEvent::CourseRegistered(record()),
            CourseEvent::CourseTermsChanged(change("2026-04-01", 4)),
        ];
        TestFramework::<Course>::with(())
            .given(changed.clone())
            .when(when(change("2026-04-01", 4)))
            .then_expect_events(vec![]);
        TestFramework::<Course>::with(())
            .given(changed.clone())
            .when(when(change("2026-04-01", 5)))
            .then_expect_error(CourseRejection::NotAfterLastTerms(
                record().course_id,
                day("2026-04-01"),
            ));
        TestFramework::<Course>::with(())
            .given(changed)
            .when(when(change("2026-02-28", 5)))
            .then_expect_error(CourseRejection::InThePast(today));
        TestFramework::<Course>::with(())
            .given_no_previous_events()
            .when(when(change("2026-04-01", 4)))
            .then_expect_error(CourseRejection::NotRegistered);
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(when(change("2026-04-01", 0)))
            .then_expect_error(CourseRejection::CreditOutOfRange);
    }

    #[test]
    fn a_course_is_retired_once_and_takes_no_terms_from_then_on() {
        let today = day("2026-03-01");
        let retire = |from: &str| CourseCommand::Retire {
            retirement: retirement(from),
            today,
        };
        let retired = vec![
            CourseEvent::CourseRegistered(record()),
            CourseEvent::CourseRetired(retirement("2026-07-01")),
        ];
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(retire("2026-07-01"))
            .then_expect_events(vec![CourseEvent::CourseRetired(retirement("2026-07-01"))]);
        TestFramework::<Course>::with(())
            .given(retired.clone())
            .when(retire("2026-07-01"))
            .then_expect_events(vec![]);
        TestFramework::<Course>::with(())
            .given(retired.clone())
            .when(retire("2026-08-01"))
            .then_expect_error(CourseRejection::RetiredDifferently(
                record().course_id,
                day("2026-07-01"),
            ));
        TestFramework::<Course>::with(())
            .given(vec![CourseEvent::CourseRegistered(record())])
            .when(retire("2026-02-01"))
            .then_expect_error(CourseRejection::InThePast(today));
        TestFramework::<Course>::with(())
            .given(vec![
                CourseEvent::CourseRegistered(record()),
                CourseEvent::CourseTermsChanged(change("2026-07-01", 4)),
            ])
            .when(retire("2026-07-01"))
            .then_expect_error(CourseRejection::TermsAfterRetirement(
                record().course_id,
                day("2026-07-01"),
            ));
        TestFramework::<Course>::with(())
            .given(retired)
            .when(CourseCommand::ChangeTerms {
                change: change("2026-07-01", 4),
                today,
            })
            .then_expect_error(CourseRejection::Retired(
                record().course_id,
                day("2026-07-01"),
            ));
    }

    #[test]
    fn an_event_passed_over_still_counts_in_the_sequences_of_later_ones() {
        let mut course = course(vec![CourseEvent::CourseRegistered(record())]);
        course.pass_over();
        course.apply(CourseEvent::CourseTermsChanged(change("2026-04-01", 4)));
        course.apply(CourseEvent::CourseRetired(retirement("2026-10-01")));
        assert_eq!(
            course.changes().map(|(s, _)| s).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(course.retirement().map(|(s, _)| s), Some(4));
    }
}
