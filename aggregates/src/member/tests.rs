//! Given/when/then tests of the member aggregate: every decision, and how applied facts read.
use super::command::{
    AdjustCredit, DetermineEligibility, FileAppeal, RecordCompletion, RecordStudySession,
    ResolveAppeal, SetAsideSkipped,
};
use super::*;
use crate::facts::{AppealOutcome, AppealStatus, CourseTerms, Enrolment};
use crate::rules::eligibility::Determination;
use crate::rules::rulesets::Ruleset;
use crate::rules::sessions::TimeViolation;
use crate::values::{Category, EvaluationId, Hours, Quarter};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

type MemberTest = TestFramework<Member>;

fn at(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2018, month, day, hour, minute, 0)
        .single()
        .expect("instant")
}

fn clock() -> Clock {
    Clock {
        now: at(12, 1, 0, 0),
        tz: chrono_tz::Asia::Shanghai,
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn enrolment() -> Enrolment {
    Enrolment {
        member_id: id(1),
        member_no: "M-0001".parse().expect("text"),
        name: "林晓".parse().expect("text"),
        org_id: "fz-branch-1".parse().expect("slug"),
        enrolled_on: NaiveDate::from_ymd_opt(2018, 3, 1).expect("date"),
    }
}

fn course() -> CourseTerms {
    CourseTerms {
        course_id: "party-history".parse().expect("slug"),
        category: Category::Required,
        credit_hours: Hours::from_hundredths(250),
        min_study_minutes: 60,
    }
}

fn record_session(n: u128, start: DateTime<Utc>, end: DateTime<Utc>) -> MemberCommand {
    MemberCommand::RecordStudySession(RecordStudySession {
        session_id: id(n),
        course: course(),
        started_at: start,
        ended_at: end,
        source: None,
        clock: clock(),
    })
}

fn session_recorded(n: u128, start: DateTime<Utc>, end: DateTime<Utc>) -> MemberEvent {
    MemberEvent::StudySessionRecorded {
        session_id: id(n),
        course_id: course().course_id,
        started_at: start,
        ended_at: end,
        minutes: (end - start).num_minutes(),
        source: None,
    }
}

fn record_completion(n: u128, when: DateTime<Utc>) -> MemberCommand {
    MemberCommand::RecordCompletion(RecordCompletion {
        completion_id: id(n),
        course: course(),
        completed_at: when,
        source: None,
        clock: clock(),
    })
}

#[test]
fn enrolling_records_the_member() {
    MemberTest::with(())
        .given_no_previous_events()
        .when(MemberCommand::Enrol(enrolment()))
        .then_expect_events(vec![MemberEvent::MemberEnrolled(enrolment())]);
}

#[test]
fn enrolling_again_with_the_same_details_records_nothing() {
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(MemberCommand::Enrol(enrolment()))
        .then_expect_events(vec![]);
}

#[test]
fn enrolling_again_with_other_details_is_a_conflict() {
    let mut other = enrolment();
    other.name = "王芳".parse().expect("text");
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(MemberCommand::Enrol(other))
        .then_expect_error(MemberRejection::EnrolmentConflict);
}

#[test]
fn a_session_for_a_member_not_enrolled_is_rejected() {
    MemberTest::with(())
        .given_no_previous_events()
        .when(record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0)))
        .then_expect_error(MemberRejection::NotEnrolled);
}

#[test]
fn a_valid_session_is_recorded_with_its_whole_minutes() {
    let start = at(5, 1, 9, 0);
    let end = start + chrono::Duration::seconds(59 * 60 + 59);
    let expected = MemberEvent::StudySessionRecorded {
        session_id: id(10),
        course_id: course().course_id,
        started_at: start,
        ended_at: end,
        minutes: 59,
        source: None,
    };
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(record_session(10, start, end))
        .then_expect_events(vec![expected]);
}

#[test]
fn a_touching_session_is_recorded() {
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
        ])
        .when(record_session(11, at(5, 1, 10, 0), at(5, 1, 11, 0)))
        .then_expect_events(vec![session_recorded(11, at(5, 1, 10, 0), at(5, 1, 11, 0))]);
}

#[test]
fn an_overlapping_session_is_rejected() {
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
            session_recorded(12, at(5, 1, 13, 0), at(5, 1, 14, 0)),
        ])
        .when(record_session(11, at(5, 1, 9, 30), at(5, 1, 10, 30)))
        .then_expect_error(MemberRejection::SessionOverlaps { other: id(10) });
}

#[test]
fn a_session_recorded_out_of_order_still_guards_against_overlap() {
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(12, at(5, 2, 9, 0), at(5, 2, 10, 0)),
            session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
        ])
        .when(record_session(11, at(5, 2, 8, 0), at(5, 2, 9, 1)))
        .then_expect_error(MemberRejection::SessionOverlaps { other: id(12) });
}

#[test]
fn the_same_session_sent_twice_records_nothing_new() {
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
        ])
        .when(record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0)))
        .then_expect_events(vec![]);
}

#[test]
fn a_session_id_reused_with_other_times_is_a_conflict() {
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
        ])
        .when(record_session(10, at(5, 3, 9, 0), at(5, 3, 10, 0)))
        .then_expect_error(MemberRejection::IdReused {
            kind: "session",
            id: id(10),
        });
}

#[test]
fn sessions_that_break_the_time_rules_are_rejected() {
    let cases = [
        (
            at(5, 1, 10, 0),
            at(5, 1, 10, 0),
            TimeViolation::EndNotAfterStart,
        ),
        (
            at(5, 1, 8, 0),
            at(5, 1, 20, 1),
            TimeViolation::LongerThanTwelveHours,
        ),
        (
            at(11, 30, 23, 0),
            at(12, 1, 0, 6),
            TimeViolation::InTheFuture,
        ),
        (
            at(2, 28, 9, 0),
            at(2, 28, 10, 0),
            TimeViolation::BeforeEnrolment,
        ),
    ];
    for (start, end, violation) in cases {
        MemberTest::with(())
            .given(vec![MemberEvent::MemberEnrolled(enrolment())])
            .when(record_session(10, start, end))
            .then_expect_error(MemberRejection::InvalidSession(violation));
    }
}

#[test]
fn a_completion_carries_the_course_terms_of_its_recording() {
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(record_completion(20, at(5, 1, 12, 0)))
        .then_expect_events(vec![MemberEvent::CourseCompleted {
            completion_id: id(20),
            course_id: course().course_id,
            category: Category::Required,
            credit_hours: Hours::from_hundredths(250),
            min_study_minutes: 60,
            completed_at: at(5, 1, 12, 0),
            source: None,
        }]);
}

#[test]
fn a_second_completion_of_the_same_course_is_recorded_too() {
    let first = MemberEvent::CourseCompleted {
        completion_id: id(20),
        course_id: course().course_id,
        category: Category::Required,
        credit_hours: Hours::from_hundredths(250),
        min_study_minutes: 60,
        completed_at: at(5, 1, 12, 0),
        source: None,
    };
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment()), first])
        .when(record_completion(21, at(5, 2, 12, 0)))
        .then_expect_events(vec![MemberEvent::CourseCompleted {
            completion_id: id(21),
            course_id: course().course_id,
            category: Category::Required,
            credit_hours: Hours::from_hundredths(250),
            min_study_minutes: 60,
            completed_at: at(5, 2, 12, 0),
            source: None,
        }]);
}

#[test]
fn completions_in_the_future_or_before_enrolment_are_rejected() {
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(record_completion(20, at(12, 1, 0, 6)))
        .then_expect_error(MemberRejection::InvalidCompletion(
            TimeViolation::InTheFuture,
        ));
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(record_completion(20, at(2, 28, 15, 59)))
        .then_expect_error(MemberRejection::InvalidCompletion(
            TimeViolation::BeforeEnrolment,
        ));
}

#[test]
fn a_completion_id_reused_for_another_course_is_a_conflict() {
    let first = MemberEvent::CourseCompleted {
        completion_id: id(20),
        course_id: "other".parse().expect("slug"),
        category: Category::Elective,
        credit_hours: Hours::from_hundredths(100),
        min_study_minutes: 0,
        completed_at: at(5, 1, 12, 0),
        source: None,
    };
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment()), first])
        .when(record_completion(20, at(5, 1, 12, 0)))
        .then_expect_error(MemberRejection::IdReused {
            kind: "completion",
            id: id(20),
        });
}

#[test]
fn applied_facts_remember_their_sequence_and_stay_sorted() {
    let mut member = Member::default();
    member.apply(MemberEvent::MemberEnrolled(enrolment()));
    member.apply(session_recorded(12, at(5, 2, 9, 0), at(5, 2, 10, 0)));
    member.apply(session_recorded(10, at(5, 1, 9, 0), at(5, 1, 10, 0)));
    assert_eq!(member.version(), 3);
    let order: Vec<(Uuid, usize)> = member
        .sessions()
        .iter()
        .map(|s| (s.session_id, s.sequence))
        .collect();
    assert_eq!(order, [(id(10), 3), (id(12), 2)]);
}

fn transfer(n: u128, to: &str, on: (i32, u32, u32)) -> MemberCommand {
    MemberCommand::Transfer(command::Transfer {
        transfer_id: id(n),
        to_org_id: to.parse().expect("slug"),
        effective_on: NaiveDate::from_ymd_opt(on.0, on.1, on.2).expect("date"),
    })
}

fn transferred(n: u128, to: &str, on: (i32, u32, u32)) -> MemberEvent {
    MemberEvent::MemberTransferred {
        transfer_id: id(n),
        to_org_id: to.parse().expect("slug"),
        effective_on: NaiveDate::from_ymd_opt(on.0, on.1, on.2).expect("date"),
    }
}

#[test]
fn a_transfer_is_recorded_once_and_moves_the_member_from_its_day_on() {
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
        .then_expect_events(vec![transferred(30, "fz-branch-2", (2018, 7, 1))]);
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            transferred(30, "fz-branch-2", (2018, 7, 1)),
        ])
        .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
        .then_expect_events(vec![]);
    let mut member = Member::default();
    member.apply(MemberEvent::MemberEnrolled(enrolment()));
    member.apply(transferred(30, "fz-branch-2", (2018, 7, 1)));
    member.apply(transferred(31, "fz-branch-3", (2018, 5, 1)));
    let on = |m, d| NaiveDate::from_ymd_opt(2018, m, d).expect("date");
    let org = |m, d| member.organisation_on(on(m, d)).map(ToString::to_string);
    assert_eq!(org(2, 28), None, "before enrolment");
    assert_eq!(org(3, 1).as_deref(), Some("fz-branch-1"));
    assert_eq!(
        org(5, 1).as_deref(),
        Some("fz-branch-3"),
        "a transfer recorded late still counts from its day"
    );
    assert_eq!(org(6, 30).as_deref(), Some("fz-branch-3"));
    assert_eq!(org(7, 1).as_deref(), Some("fz-branch-2"));
}

#[test]
fn transfers_that_make_no_sense_are_rejected() {
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(transfer(30, "fz-branch-2", (2018, 2, 28)))
        .then_expect_error(MemberRejection::TransferBeforeEnrolment);
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(transfer(30, "fz-branch-1", (2018, 7, 1)))
        .then_expect_error(MemberRejection::TransferToSameOrganisation(
            "fz-branch-1".parse().expect("slug"),
        ));
    MemberTest::with(())
        .given(vec![
            MemberEvent::MemberEnrolled(enrolment()),
            transferred(30, "fz-branch-2", (2018, 7, 1)),
        ])
        .when(transfer(30, "fz-branch-3", (2018, 7, 1)))
        .then_expect_error(MemberRejection::IdReused {
            kind: "transfer",
            id: id(30),
        });
    MemberTest::with(())
        .given_no_previous_events()
        .when(transfer(30, "fz-branch-2", (2018, 7, 1)))
        .then_expect_error(MemberRejection::NotEnrolled);
}

fn determine(n: u128, quarters: &[&str], now: DateTime<Utc>) -> MemberCommand {
    MemberCommand::DetermineEligibility(DetermineEligibility {
        determination_id: id(n),
        evaluation_id: "2018-q2".parse().expect("slug"),
        quarters: quarters
            .iter()
            .map(|q| Quarter::parse(q).expect("quarter"))
            .collect(),
        rulesets: vec![Ruleset::version_1()],
        skipped: vec![],
        clock: Clock { now, ..clock() },
    })
}

#[test]
fn a_determination_records_the_outcome_and_its_basis_once() {
    use crate::rules::status::QuarterStatus;
    // 2.5 required hours in 2018-Q2, far from the 8 + 3 of version 1.
    let given = vec![
        MemberEvent::MemberEnrolled(enrolment()),
        session_recorded(2, at(4, 2, 1, 0), at(4, 2, 2, 0)),
        MemberEvent::CourseCompleted {
            completion_id: id(3),
            course_id: course().course_id,
            category: Category::Required,
            credit_hours: Hours::from_hundredths(250),
            min_study_minutes: 60,
            completed_at: at(4, 2, 3, 0),
            source: None,
        },
    ];
    let now = at(7, 2, 0, 0);
    let mut member = Member::default();
    for event in given.clone() {
        member.apply(event);
    }
    let events = member
        .decide(&determine(9, &["2018-Q2"], now))
        .expect("decided");
    let [MemberEvent::EligibilityDetermined(d)] = events.as_slice() else {
        panic!("one determination expected, got {events:?}");
    };
    assert!(!d.eligible);
    assert_eq!(d.determined_at, now);
    assert_eq!(d.rules_version, 1);
    assert_eq!(d.quarters.len(), 1);
    assert_eq!(d.quarters[0].status, QuarterStatus::NonCompliant);
    assert_eq!(d.quarters[0].required_hours, Hours::from_hundredths(250));
    assert_eq!(d.quarters[0].required_target, Hours::whole(8));
    assert_eq!(d.quarters[0].ruleset_version, Some(1));

    let mut recorded = given.clone();
    recorded.push(events[0].clone());
    MemberTest::with(())
        .given(recorded.clone())
        .when(determine(9, &["2018-Q2"], at(8, 1, 0, 0)))
        .then_expect_events(vec![]);
    let mut other = determine(9, &["2018-Q2"], now);
    if let MemberCommand::DetermineEligibility(DetermineEligibility { evaluation_id, .. }) =
        &mut other
    {
        *evaluation_id = "2018-annual".parse().expect("slug");
    }
    MemberTest::with(())
        .given(recorded)
        .when(other)
        .then_expect_error(MemberRejection::IdReused {
            kind: "determination",
            id: id(9),
        });
}

#[test]
fn eligibility_is_decided_only_once_every_quarter_has_ended() {
    let q2 = Quarter::parse("2018-Q2").expect("quarter");
    // 2018-06-30T20:00Z is already 2018-07-01 in Shanghai: Q2 has ended there.
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(determine(9, &["2018-Q2"], at(6, 30, 15, 0)))
        .then_expect_error(MemberRejection::EvaluationNotOver(q2));
    let mut member = Member::default();
    member.apply(MemberEvent::MemberEnrolled(enrolment()));
    let decided = member
        .decide(&determine(9, &["2018-Q2"], at(6, 30, 20, 0)))
        .expect("Q2 has ended in Shanghai");
    assert!(
        matches!(
            decided.as_slice(),
            [MemberEvent::EligibilityDetermined(d)]
                if d.determination_id == id(9)
                    && !d.eligible
                    && d.quarters.len() == 1
                    && d.quarters[0].quarter == q2
                    && d.quarters[0].status == crate::rules::status::QuarterStatus::NonCompliant
        ),
        "{decided:?}"
    );
    MemberTest::with(())
        .given_no_previous_events()
        .when(determine(9, &["2018-Q1"], at(7, 1, 0, 0)))
        .then_expect_error(MemberRejection::NotEnrolled);
}

fn determined(n: u128, eligible: bool) -> MemberEvent {
    MemberEvent::EligibilityDetermined(Determination {
        determination_id: id(n),
        evaluation_id: "2018-q2".parse().expect("slug"),
        eligible,
        determined_at: at(7, 2, 0, 0),
        rules_version: 1,
        quarters: vec![],
    })
}

fn filed(n: u128, determination: u128) -> MemberEvent {
    MemberEvent::AppealFiled {
        appeal_id: id(n),
        evaluation_id: "2018-q2".parse().expect("slug"),
        determination_id: id(determination),
        reason: "r".parse().expect("text"),
        filed_at: at(7, 3, 0, 0),
    }
}

fn resolved(n: u128, outcome: AppealOutcome) -> MemberEvent {
    MemberEvent::AppealResolved {
        appeal_id: id(n),
        outcome,
        note: "n".parse().expect("text"),
        resolved_at: at(7, 4, 0, 0),
    }
}

fn file_appeal(n: u128) -> MemberCommand {
    MemberCommand::FileAppeal(FileAppeal {
        appeal_id: id(n),
        evaluation_id: "2018-q2".parse().expect("slug"),
        reason: "r".parse().expect("text"),
        clock: clock(),
    })
}

fn resolve_appeal(n: u128, outcome: AppealOutcome) -> MemberCommand {
    MemberCommand::ResolveAppeal(ResolveAppeal {
        appeal_id: id(n),
        outcome,
        note: "n".parse().expect("text"),
        clock: clock(),
    })
}

/// Appeals waiting for a reviewer.
fn open_appeals(member: &Member) -> usize {
    member
        .appeals()
        .iter()
        .filter(|a| member.appeal_status(a) == AppealStatus::Open)
        .count()
}

fn member_from(events: Vec<MemberEvent>) -> Member {
    let mut member = Member::default();
    for event in events {
        member.apply(event);
    }
    member
}

#[test]
fn the_final_eligibility_follows_the_latest_determination_and_its_appeal() {
    let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
    let base = vec![
        MemberEvent::MemberEnrolled(enrolment()),
        determined(10, false),
    ];
    let final_of = |events: Vec<MemberEvent>| {
        member_from(events).final_eligibility(&evaluation).map(|f| {
            (
                f.eligible,
                f.determination.determination_id,
                f.appeal.map(|a| a.appeal_id),
            )
        })
    };
    assert_eq!(final_of(base.clone()), Some((false, id(10), None)));
    let mut open = base.clone();
    open.push(filed(20, 10));
    assert_eq!(final_of(open.clone()), Some((false, id(10), Some(id(20)))));
    let mut upheld = open.clone();
    upheld.push(resolved(20, AppealOutcome::Upheld));
    assert_eq!(final_of(upheld).map(|f| f.0), Some(false));
    let mut overturned = open.clone();
    overturned.push(resolved(20, AppealOutcome::Overturned));
    assert_eq!(final_of(overturned.clone()).map(|f| f.0), Some(true));
    // A new determination supersedes the old one and its appeal.
    overturned.push(determined(11, false));
    assert_eq!(final_of(overturned), Some((false, id(11), None)));
    // An appeal open against a superseded determination is no longer open.
    open.push(determined(11, true));
    assert_eq!(open_appeals(&member_from(open)), 0);
}

#[test]
fn appeals_need_a_determination_and_wait_their_turn() {
    let file = file_appeal;
    MemberTest::with(())
        .given(vec![MemberEvent::MemberEnrolled(enrolment())])
        .when(file(20))
        .then_expect_error(MemberRejection::NothingToAppeal(
            "2018-q2".parse().expect("slug"),
        ));
    let mut given = vec![
        MemberEvent::MemberEnrolled(enrolment()),
        determined(10, false),
    ];
    let member = member_from(given.clone());
    let events = member.decide(&file(20)).expect("filed");
    given.extend(events);
    MemberTest::with(())
        .given(given.clone())
        .when(file(21))
        .then_expect_error(MemberRejection::AppealAlreadyOpen(id(20)));
    MemberTest::with(())
        .given(given)
        .when(resolve_appeal(99, AppealOutcome::Upheld))
        .then_expect_error(MemberRejection::NoSuchAppeal(id(99)));
}

#[test]
fn a_second_appeal_of_one_determination_in_an_older_ledger_changes_nothing() {
    let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
    let given = vec![
        MemberEvent::MemberEnrolled(enrolment()),
        determined(10, false),
        filed(20, 10),
        resolved(20, AppealOutcome::Overturned),
        filed(21, 10),
    ];
    let member = member_from(given.clone());
    assert_eq!(
        member
            .final_eligibility(&evaluation)
            .map(|f| (f.eligible, f.appeal.map(|a| a.appeal_id))),
        Some((true, Some(id(20))))
    );
    assert_eq!(
        member.appeal(id(21)).map(|a| member.appeal_status(a)),
        Some(AppealStatus::Superseded)
    );
    assert_eq!(open_appeals(&member), 0);
    MemberTest::with(())
        .given(given)
        .when(resolve_appeal(21, AppealOutcome::Upheld))
        .then_expect_error(MemberRejection::AppealSuperseded(id(21)));
}

#[test]
fn a_determination_is_heard_once_and_a_new_one_can_be_appealed_again() {
    let evaluation: EvaluationId = "2018-q2".parse().expect("slug");
    let file = file_appeal;
    let mut given = vec![
        MemberEvent::MemberEnrolled(enrolment()),
        determined(10, false),
    ];
    given.extend(member_from(given.clone()).decide(&file(20)).expect("filed"));
    let resolve = resolve_appeal(20, AppealOutcome::Overturned);
    given.extend(
        member_from(given.clone())
            .decide(&resolve)
            .expect("resolved"),
    );
    let heard = member_from(given.clone());
    assert_eq!(
        heard.final_eligibility(&evaluation).map(|f| f.eligible),
        Some(true)
    );
    assert_eq!(
        heard.appeal(id(20)).map(|a| heard.appeal_status(a)),
        Some(AppealStatus::Overturned)
    );
    // A second appeal against the same determination would undo the overturn: refused.
    MemberTest::with(())
        .given(given.clone())
        .when(file(21))
        .then_expect_error(MemberRejection::AlreadyHeard(id(20)));
    // A new determination supersedes the appeal's outcome and can be appealed.
    given.push(determined(11, false));
    let redetermined = member_from(given.clone());
    assert_eq!(
        redetermined
            .final_eligibility(&evaluation)
            .map(|f| f.eligible),
        Some(false)
    );
    let events = redetermined.decide(&file(21)).expect("a new appeal");
    assert!(matches!(
        events.as_slice(),
        [MemberEvent::AppealFiled { determination_id, .. }] if *determination_id == id(11)
    ));
}

#[test]
fn adjustments_count_in_the_quarter_of_their_effective_time() {
    let adjusted = |n: u128, category, hundredths, when| MemberEvent::CreditAdjusted {
        adjustment_id: id(n),
        category,
        hours: Hours::from_hundredths(hundredths),
        effective_at: when,
        reason: "r".parse().expect("text"),
        appeal_id: None,
    };
    let member = member_from(vec![
        MemberEvent::MemberEnrolled(enrolment()),
        adjusted(1, Category::Required, 800, at(5, 1, 0, 0)),
        adjusted(2, Category::Required, -150, at(5, 2, 0, 0)),
        // 2018-06-30T20:00Z is 2018-07-01 in Shanghai: the third quarter.
        adjusted(3, Category::Elective, 300, at(6, 30, 20, 0)),
    ]);
    let totals = member.quarter_totals(&[Ruleset::version_1()], chrono_tz::Asia::Shanghai);
    let q = |raw: &str| Quarter::parse(raw).expect("quarter");
    assert_eq!(totals[&q("2018-Q2")].required, Hours::from_hundredths(650));
    assert_eq!(totals[&q("2018-Q2")].elective, Hours::ZERO);
    assert_eq!(totals[&q("2018-Q3")].elective, Hours::whole(3));
    let zero = MemberCommand::AdjustCredit(AdjustCredit {
        adjustment_id: id(9),
        category: Category::Required,
        hours: Hours::ZERO,
        effective_at: at(5, 1, 0, 0),
        reason: "r".parse().expect("text"),
        appeal_id: None,
        clock: clock(),
    });
    assert_eq!(member.decide(&zero), Err(MemberRejection::AdjustmentSize));
}

fn set_aside(skipped_sequence: usize, note: &str, skipped: Vec<usize>) -> MemberCommand {
    MemberCommand::SetAsideSkipped(SetAsideSkipped {
        skipped_sequence,
        note: note.parse().expect("text"),
        skipped,
        clock: clock(),
    })
}

#[test]
fn a_passed_over_event_keeps_the_stream_numbering_and_blocks_determinations_until_set_aside() {
    let mut member = Member::default();
    member.apply(MemberEvent::MemberEnrolled(enrolment()));
    member.pass_over();
    member.apply(session_recorded(1, at(5, 1, 9, 0), at(5, 1, 10, 0)));
    assert_eq!(member.version(), 3);
    assert_eq!(member.passed_over(), &[2]);
    assert_eq!(
        member.sessions()[0].sequence,
        3,
        "facts keep the store's sequences"
    );
    let now = at(8, 1, 0, 0);
    assert_eq!(
        member.decide(&determine(9, &["2018-Q2"], now)),
        Err(MemberRejection::RecordIncomplete(vec![2]))
    );
    assert_eq!(
        member.decide(&set_aside(3, "not skipped", vec![])),
        Err(MemberRejection::NoSkippedEvent(3))
    );
    let events = member
        .decide(&set_aside(2, "名字含有空字符，已人工核对", vec![]))
        .expect("set aside");
    for event in events {
        member.apply(event);
    }
    assert!(member.open_skips(&[]).is_empty());
    assert!(member.decide(&determine(9, &["2018-Q2"], now)).is_ok());
    assert_eq!(
        member.decide(&set_aside(2, "名字含有空字符，已人工核对", vec![])),
        Ok(vec![]),
        "the same decision again records nothing"
    );
    assert_eq!(
        member.decide(&set_aside(2, "another note", vec![])),
        Err(MemberRejection::AlreadySetAside(2))
    );
}

#[test]
fn events_another_reader_skipped_block_determinations_too() {
    let member = member_from(vec![
        MemberEvent::MemberEnrolled(enrolment()),
        session_recorded(1, at(5, 1, 9, 0), at(5, 1, 10, 0)),
    ]);
    let mut command = determine(9, &["2018-Q2"], at(8, 1, 0, 0));
    if let MemberCommand::DetermineEligibility(determination) = &mut command {
        determination.skipped = vec![2];
    }
    assert_eq!(
        member.decide(&command),
        Err(MemberRejection::RecordIncomplete(vec![2]))
    );
    assert!(member.decide(&set_aside(2, "checked", vec![2])).is_ok());
}

fn from_statement(command: MemberCommand, statement: u128) -> MemberCommand {
    match command {
        MemberCommand::RecordStudySession(mut c) => {
            c.source = Some(id(statement));
            MemberCommand::RecordStudySession(c)
        }
        MemberCommand::RecordCompletion(mut c) => {
            c.source = Some(id(statement));
            MemberCommand::RecordCompletion(c)
        }
        other => other,
    }
}

fn withdraw(voided: u128) -> MemberCommand {
    MemberCommand::Withdraw(super::command::Withdraw {
        voided: id(voided),
        voiding: id(voided + 1000),
        clock: clock(),
    })
}

/// The member after `commands`, each decided on the state the ones before left.
fn after(commands: Vec<MemberCommand>) -> Member {
    let mut member = Member::default();
    member.apply(MemberEvent::MemberEnrolled(enrolment()));
    for command in commands {
        let events = member.decide(&command).expect("accepted");
        for event in events {
            member.apply(event);
        }
    }
    member
}

#[test]
fn voiding_a_statement_withdraws_every_fact_recorded_from_it_once() {
    let start = at(5, 1, 9, 0);
    let member = after(vec![
        from_statement(record_session(10, start, at(5, 1, 10, 0)), 70),
        from_statement(record_session(11, at(5, 1, 10, 0), at(5, 1, 11, 0)), 70),
        from_statement(record_completion(20, at(5, 1, 11, 0)), 71),
    ]);
    let events = member.decide(&withdraw(70)).expect("accepted");
    let withdrawn: Vec<Uuid> = events
        .iter()
        .map(|e| match e {
            MemberEvent::FactWithdrawn { fact_id, .. } => *fact_id,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        withdrawn,
        [id(10), id(11)],
        "both sessions, not the completion"
    );

    let member = after(vec![
        from_statement(record_session(10, start, at(5, 1, 10, 0)), 70),
        withdraw(70),
    ]);
    assert!(member.decide(&withdraw(70)).expect("accepted").is_empty());
    assert!(member.sessions().is_empty());
    assert_eq!(member.withdrawn_sessions().len(), 1);
    // Its id stays taken: a resend is still a resend.
    let resent = from_statement(record_session(10, start, at(5, 1, 10, 0)), 70);
    assert!(member.decide(&resent).expect("a resend").is_empty());
    // A withdrawn session overlaps nothing.
    let overlapping = record_session(12, at(5, 1, 9, 30), at(5, 1, 10, 30));
    assert_eq!(member.decide(&overlapping).expect("accepted").len(), 1);
}

#[test]
fn a_withdrawn_completion_stops_counting_and_the_next_one_is_credited() {
    let session = record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0));
    let first = from_statement(record_completion(20, at(5, 1, 11, 0)), 71);
    let second = from_statement(record_completion(21, at(5, 20, 11, 0)), 72);
    let rulesets = [Ruleset::version_1()];
    let tz = chrono_tz::Asia::Shanghai;
    let q2: Quarter = "2018-Q2".parse().expect("quarter");

    let before = after(vec![session.clone(), first.clone(), second.clone()]);
    let totals = before.quarter_totals(&rulesets, tz);
    assert_eq!(totals[&q2].required, Hours::from_hundredths(250));
    let credited_before: Vec<Uuid> = crate::rules::credit::credit_completions(
        before.sessions(),
        before.completions(),
        &rulesets,
        tz,
    )
    .iter()
    .filter(|o| o.is_credited())
    .map(|o| o.completion.completion_id)
    .collect();
    assert_eq!(credited_before, [id(20)]);

    let withdrawn = after(vec![session, first, second, withdraw(71)]);
    let outcomes = crate::rules::credit::credit_completions(
        withdrawn.sessions(),
        withdrawn.completions(),
        &rulesets,
        tz,
    );
    let verdicts: Vec<(Uuid, bool)> = outcomes
        .iter()
        .map(|o| (o.completion.completion_id, o.is_credited()))
        .collect();
    assert_eq!(verdicts, [(id(20), false), (id(21), true)]);
    assert_eq!(
        withdrawn.quarter_totals(&rulesets, tz)[&q2].required,
        Hours::from_hundredths(250),
        "the same hours, now from the second completion"
    );
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2018, m, d).expect("date")
}

fn depart(n: u128, left_on: NaiveDate) -> MemberCommand {
    MemberCommand::Depart(command::Depart {
        departure_id: id(n),
        left_on,
        reason: "调离".parse().expect("text"),
        clock: clock(),
    })
}

fn departed(n: u128, left_on: NaiveDate) -> MemberEvent {
    MemberEvent::MemberDeparted {
        departure_id: id(n),
        left_on,
        reason: "调离".parse().expect("text"),
    }
}

fn rejoin(n: u128, rejoined_on: NaiveDate) -> MemberCommand {
    MemberCommand::Rejoin(command::Rejoin {
        rejoining_id: id(n),
        rejoined_on,
        org_id: "fz-branch-2".parse().expect("slug"),
        clock: clock(),
    })
}

fn rejoined(n: u128, rejoined_on: NaiveDate) -> MemberEvent {
    MemberEvent::MemberRejoined {
        rejoining_id: id(n),
        rejoined_on,
        org_id: "fz-branch-2".parse().expect("slug"),
    }
}

#[test]
fn a_departure_and_a_rejoining_alternate_and_each_is_recorded_once() {
    let enrolled = || MemberEvent::MemberEnrolled(enrolment());
    MemberTest::with(())
        .given(vec![enrolled()])
        .when(depart(40, date(6, 1)))
        .then_expect_events(vec![departed(40, date(6, 1))]);
    MemberTest::with(())
        .given(vec![enrolled(), departed(40, date(6, 1))])
        .when(depart(40, date(6, 1)))
        .then_expect_events(vec![]);
    MemberTest::with(())
        .given(vec![enrolled(), departed(40, date(6, 1))])
        .when(depart(41, date(7, 1)))
        .then_expect_error(MemberRejection::AlreadyAway(date(6, 1)));
    MemberTest::with(())
        .given(vec![enrolled(), departed(40, date(6, 1))])
        .when(rejoin(50, date(8, 10)))
        .then_expect_events(vec![rejoined(50, date(8, 10))]);
    MemberTest::with(())
        .given(vec![enrolled()])
        .when(rejoin(50, date(8, 10)))
        .then_expect_error(MemberRejection::NotAway);
    MemberTest::with(())
        .given(vec![enrolled(), departed(40, date(6, 1))])
        .when(rejoin(50, date(6, 1)))
        .then_expect_error(MemberRejection::RejoiningBeforeDeparture(date(6, 1)));
    MemberTest::with(())
        .given(vec![enrolled()])
        .when(depart(40, date(12, 2)))
        .then_expect_error(MemberRejection::DateAhead(date(12, 2)));
    MemberTest::with(())
        .given(vec![
            enrolled(),
            transferred(30, "fz-branch-2", (2018, 7, 1)),
        ])
        .when(depart(40, date(7, 1)))
        .then_expect_error(MemberRejection::DepartureBeforeLastMove(date(7, 1)));
    MemberTest::with(())
        .given(vec![
            enrolled(),
            session_recorded(10, at(6, 2, 1, 0), at(6, 2, 2, 0)),
        ])
        .when(depart(40, date(6, 2)))
        .then_expect_error(MemberRejection::StudiedAfterDeparture(id(10)));
}

#[test]
fn while_away_study_and_transfers_are_refused_and_the_member_belongs_nowhere() {
    let given = || {
        vec![
            MemberEvent::MemberEnrolled(enrolment()),
            departed(40, date(6, 1)),
            rejoined(50, date(8, 10)),
        ]
    };
    MemberTest::with(())
        .given(given())
        .when(record_session(10, at(7, 1, 1, 0), at(7, 1, 2, 0)))
        .then_expect_error(MemberRejection::InvalidSession(TimeViolation::WhileAway {
            left_on: date(6, 1),
        }));
    // 8 August 23:30 in Shanghai is the 9th: still away.
    MemberTest::with(())
        .given(given())
        .when(record_completion(11, at(8, 9, 15, 30)))
        .then_expect_error(MemberRejection::InvalidCompletion(
            TimeViolation::WhileAway {
                left_on: date(6, 1),
            },
        ));
    MemberTest::with(())
        .given(given())
        .when(transfer(30, "fz-branch-3", (2018, 7, 1)))
        .then_expect_error(MemberRejection::TransferWhileAway(date(6, 1)));
    MemberTest::with(())
        .given(given())
        .when(record_session(10, at(8, 10, 1, 0), at(8, 10, 2, 0)))
        .then_expect_events(vec![session_recorded(10, at(8, 10, 1, 0), at(8, 10, 2, 0))]);
    let mut member = Member::default();
    for event in given() {
        member.apply(event);
    }
    let org = |d| member.organisation_on(d).map(ToString::to_string);
    assert_eq!(org(date(5, 31)).as_deref(), Some("fz-branch-1"));
    assert_eq!(org(date(6, 1)), None, "away");
    assert_eq!(org(date(8, 10)).as_deref(), Some("fz-branch-2"));
    assert_eq!(
        member
            .home_organisation(date(7, 1))
            .map(ToString::to_string)
            .as_deref(),
        Some("fz-branch-1"),
        "while away, answered for where they were last"
    );
}

/// A member with a live session, a withdrawn session and a live and a withdrawn completion.
fn member_with_every_kind_of_fact() -> Member {
    after(vec![
        record_session(10, at(5, 1, 9, 0), at(5, 1, 10, 0)),
        from_statement(record_session(11, at(5, 2, 9, 0), at(5, 2, 10, 0)), 70),
        from_statement(record_completion(20, at(5, 2, 11, 0)), 71),
        record_completion(21, at(5, 3, 11, 0)),
        withdraw(70),
        withdraw(71),
    ])
}

#[test]
fn a_snapshot_reads_back_as_the_same_state() {
    let member = member_with_every_kind_of_fact();
    assert_eq!(
        (
            member.sessions().len(),
            member.withdrawn_sessions().len(),
            member.completions().len()
        ),
        (1, 1, 2)
    );
    assert!(member.completions().iter().any(|c| c.withdrawn.is_some()));
    let snapshot = serde_json::to_string(&member).expect("serialises");
    let read: Member = serde_json::from_str(&snapshot).expect("deserialises");
    assert_eq!(read, member);
}

#[test]
fn a_snapshot_writes_facts_as_arrays_and_refuses_other_layouts() {
    let member = member_with_every_kind_of_fact();
    let snapshot = serde_json::to_value(&member).expect("serialises");
    assert_eq!(snapshot["layout"], 2);
    let session = &snapshot["sessions"][0];
    assert_eq!(session[0], json!(id(10)));
    assert_eq!(session[2], json!("2018-05-01T09:00:00Z"));
    assert!(snapshot["completions"][0][1].is_array(), "{snapshot}");
    // The same facts as objects (the layout before) take about twice the bytes.
    let objects = serde_json::to_string(&json!({
        "sessions": member.sessions(),
        "completions": member.completions(),
    }))
    .expect("objects");
    let arrays = serde_json::to_string(&json!({
        "sessions": snapshot["sessions"],
        "completions": snapshot["completions"],
    }))
    .expect("arrays");
    assert!(
        arrays.len() * 10 < objects.len() * 7,
        "{arrays} / {objects}"
    );
    // A snapshot of another layout is refused, so the store rebuilds from the events.
    let mut other = snapshot.clone();
    other["layout"] = json!(1);
    assert!(serde_json::from_value::<Member>(other).is_err());
    let mut unmarked = snapshot.clone();
    unmarked.as_object_mut().expect("object").remove("layout");
    assert!(serde_json::from_value::<Member>(unmarked).is_err());
    let mut objects = snapshot;
    objects["sessions"] = json!(member.sessions());
    assert!(serde_json::from_value::<Member>(objects).is_err());
}
