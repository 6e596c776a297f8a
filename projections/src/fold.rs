//! Pure folds from a member's facts to per-quarter compliance rows (rules 2, 4, 5 and 6).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::eligibility::{judge_quarter, QuarterJudgement};
use studyledger_aggregates::rules::rulesets::{ruleset_for, Ruleset};
use studyledger_aggregates::rules::sessions::session_minutes;
use studyledger_aggregates::rules::status::{shortfall, QuarterStatus};
use studyledger_aggregates::rules::tenure::Tenure;
use studyledger_aggregates::values::{Hours, Quarter};

/// A member's standing in one quarter: the judgement (status, totals, targets, ruleset
/// version), the minutes studied, and whether a newer ruleset governs the quarter now.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarterCompliance {
    #[serde(flatten)]
    pub judgement: QuarterJudgement,
    pub study_minutes: i64,
    /// The class hours still missing to meet both targets (zero when compliant or exempt).
    #[serde(rename = "shortfall_hours")]
    pub shortfall: Hours,
    /// Whether the quarter was judged under other rules than the ones that govern it now. A
    /// fold always uses the current rulesets, so it is never stale; stored views can be.
    pub stale: bool,
}

/// The hours a quarter with `totals` lacks under the rulesets a member's rows know (`known`):
/// nothing for a quarter that asks nothing (exempt, or before every ruleset). The views keep it
/// with each place in the lists by status, and reads compute it the same way from the same
/// rows, so a list sorted by it is the list a read would sort.
pub fn quarter_shortfall(
    quarter: Quarter,
    totals: QuarterTotals,
    tenure: &Tenure,
    known: &[Ruleset],
) -> Hours {
    match ruleset_for(quarter, known) {
        Some(ruleset) if tenure.answerable_in(quarter) => shortfall(&totals, ruleset),
        _ => Hours::ZERO,
    }
}

/// A member's row for one quarter from its totals (rules 5 and 6). `rules_version` is the
/// highest ruleset version stored figures were computed under (`None`: computed now, under
/// every published ruleset). Stored figures are judged under the rules they were computed
/// with, and are stale when another ruleset governs the quarter now. `today` is the local date.
pub fn quarter_compliance(
    quarter: Quarter,
    totals: QuarterTotals,
    study_minutes: i64,
    tenure: &Tenure,
    rulesets: &[Ruleset],
    rules_version: Option<u32>,
    today: NaiveDate,
) -> QuarterCompliance {
    // Rulesets come in version order (each version published exceeds every earlier one).
    let known = match rules_version {
        Some(v) => &rulesets[..rulesets.partition_point(|r| r.version <= v)],
        None => rulesets,
    };
    let judgement = judge_quarter(quarter, totals, tenure, known, today);
    let governing = ruleset_for(quarter, rulesets).map(|r| r.version);
    let shortfall = match judgement.status {
        QuarterStatus::Exempt | QuarterStatus::Left => Hours::ZERO,
        _ => quarter_shortfall(quarter, totals, tenure, known),
    };
    QuarterCompliance {
        judgement,
        study_minutes,
        shortfall,
        stale: judgement.ruleset_version != governing
            || study_rule_moved_before(quarter, known, rulesets),
    }
}

/// Whether the study-time rule differs between two sets of rules in some quarter before
/// `quarter`. Rule 2 credits the earliest passing completion of a course, so a completion that
/// passes or fails differently in an earlier quarter can move a course's credit into or out of
/// a later one, whatever rules govern that later quarter. The rule only changes where some
/// ruleset takes effect, so those quarters are the ones to compare.
fn study_rule_moved_before(quarter: Quarter, before: &[Ruleset], now: &[Ruleset]) -> bool {
    let enforced = |q: Quarter, rulesets: &[Ruleset]| {
        ruleset_for(q, rulesets).is_none_or(|r| r.enforce_min_study_time)
    };
    now.iter()
        .map(|r| r.effective_from)
        .filter(|from| *from < quarter)
        .any(|from| enforced(from, before) != enforced(from, now))
}

/// Everything the per-quarter rows need, computed once per member.
#[derive(Debug, Clone, Default)]
pub struct MemberFold {
    tenure: Option<Tenure>,
    totals: BTreeMap<Quarter, QuarterTotals>,
    /// Session minutes per quarter of the session's local start date.
    minutes: BTreeMap<Quarter, i64>,
}

impl MemberFold {
    pub fn new(member: &Member, rulesets: &[Ruleset], tz: Tz) -> MemberFold {
        let mut minutes: BTreeMap<Quarter, i64> = BTreeMap::new();
        for session in member.sessions() {
            *minutes
                .entry(Quarter::of_instant(session.started_at, tz))
                .or_default() += session_minutes(session.started_at, session.ended_at);
        }
        MemberFold {
            tenure: member.tenure(),
            totals: member.quarter_totals(rulesets, tz),
            minutes,
        }
    }

    /// Credit per quarter (rules 2 to 4), as folded.
    pub fn totals(&self) -> &BTreeMap<Quarter, QuarterTotals> {
        &self.totals
    }

    /// Rule 12's record of the member's stays and absences; `None` when not enrolled.
    pub fn tenure(&self) -> Option<&Tenure> {
        self.tenure.as_ref()
    }

    /// The quarters with any credit or study, and those of rejoinings (exempt when the
    /// rejoining falls after their first day, so never judged as a member without figures),
    /// each with its totals and minutes.
    pub fn active_quarters(&self) -> Vec<(Quarter, QuarterTotals, i64)> {
        let rejoined = self.tenure.iter().flat_map(Tenure::rejoining_quarters);
        let mut quarters: Vec<Quarter> = self
            .totals
            .keys()
            .chain(self.minutes.keys())
            .copied()
            .chain(rejoined)
            .collect();
        quarters.sort_unstable();
        quarters.dedup();
        quarters
            .into_iter()
            .map(|q| {
                (
                    q,
                    self.totals.get(&q).copied().unwrap_or_default(),
                    self.minutes.get(&q).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Credited class hours over the member's whole history.
    pub fn lifetime_totals(&self) -> QuarterTotals {
        let mut lifetime = QuarterTotals::default();
        for totals in self.totals.values() {
            lifetime.required = lifetime.required.plus(totals.required);
            lifetime.elective = lifetime.elective.plus(totals.elective);
        }
        lifetime
    }

    /// The row for one quarter, judged under that quarter's ruleset; `today` is the local date.
    pub fn quarter(
        &self,
        quarter: Quarter,
        rulesets: &[Ruleset],
        today: NaiveDate,
    ) -> QuarterCompliance {
        quarter_compliance(
            quarter,
            self.totals.get(&quarter).copied().unwrap_or_default(),
            self.minutes.get(&quarter).copied().unwrap_or(0),
            self.tenure
                .as_ref()
                .unwrap_or(&Tenure::since(NaiveDate::MAX)),
            rulesets,
            None,
            today,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use cqrs_es::Aggregate;
    use studyledger_aggregates::facts::Enrolment;
    use studyledger_aggregates::member::MemberEvent;
    use studyledger_aggregates::rules::status::QuarterStatus;
    use studyledger_aggregates::values::{Category, Hours};
    use uuid::Uuid;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("instant")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn member(enrolled_on: NaiveDate, events: Vec<MemberEvent>) -> Member {
        let mut member = Member::default();
        member.apply(MemberEvent::MemberEnrolled(Enrolment {
            member_id: Uuid::from_u128(1),
            member_no: "M1".parse().expect("text"),
            name: "陈静".parse().expect("text"),
            org_id: "org".parse().expect("slug"),
            enrolled_on,
        }));
        for event in events {
            member.apply(event);
        }
        member
    }

    fn completed(
        n: u128,
        course: &str,
        category: Category,
        hundredths: i64,
        when: DateTime<Utc>,
    ) -> MemberEvent {
        MemberEvent::CourseCompleted {
            completion_id: Uuid::from_u128(n),
            course_id: course.parse().expect("slug"),
            category,
            credit_hours: Hours::from_hundredths(hundredths),
            min_study_minutes: 0,
            completed_at: when,
            source: None,
        }
    }

    #[test]
    fn each_quarter_is_judged_by_its_totals_its_dates_and_its_ruleset() {
        let m = member(
            date(2018, 2, 10),
            vec![
                completed(1, "r1", Category::Required, 800, at(2018, 5, 1, 3)),
                completed(2, "e1", Category::Elective, 300, at(2018, 5, 2, 3)),
                MemberEvent::StudySessionRecorded {
                    session_id: Uuid::from_u128(3),
                    course_id: "r1".parse().expect("slug"),
                    started_at: at(2018, 4, 30, 1),
                    ended_at: at(2018, 4, 30, 3),
                    minutes: 120,
                    source: None,
                },
            ],
        );
        let rulesets = [Ruleset::version_1()];
        let fold = MemberFold::new(&m, &rulesets, TZ);
        let today = date(2018, 8, 15);
        let rows: Vec<QuarterCompliance> = Quarter::parse("2018-Q1")
            .expect("quarter")
            .through(Quarter::of_date(today))
            .map(|q| fold.quarter(q, &rulesets, today))
            .collect();
        let summary: Vec<(String, QuarterStatus, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.judgement.quarter.to_string(),
                    r.judgement.status,
                    r.study_minutes,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("2018-Q1".to_owned(), QuarterStatus::Exempt, 0),
                ("2018-Q2".to_owned(), QuarterStatus::Compliant, 120),
                ("2018-Q3".to_owned(), QuarterStatus::InProgress, 0),
            ]
        );
        assert_eq!(rows[1].judgement.required_target, Hours::whole(8));
        assert_eq!(rows[1].judgement.ruleset_version, Some(1));
        assert_eq!(fold.lifetime_totals().total(), Hours::whole(11));
    }

    #[test]
    fn a_quarter_before_every_ruleset_is_exempt_and_says_so() {
        let m = member(date(1999, 1, 1), vec![]);
        let rulesets = [Ruleset::version_1()];
        let fold = MemberFold::new(&m, &rulesets, TZ);
        let row = fold.quarter(
            Quarter::parse("1999-Q3").expect("q"),
            &rulesets,
            date(2020, 1, 1),
        );
        assert_eq!(row.judgement.status, QuarterStatus::Exempt);
        assert_eq!(row.judgement.ruleset_version, None);
    }

    #[test]
    fn stored_figures_are_judged_under_their_own_rules_and_stale_under_newer_ones() {
        let q3 = Quarter::parse("2018-Q3").expect("q");
        let stricter = Ruleset {
            version: 2,
            effective_from: q3,
            required_hours: Hours::whole(10),
            ..Ruleset::version_1()
        };
        let rulesets = [Ruleset::version_1(), stricter];
        let totals = QuarterTotals {
            required: Hours::whole(8),
            elective: Hours::whole(3),
        };
        let enrolled = date(2018, 1, 1);
        let today = date(2020, 1, 1);
        let row = |q: Quarter, v: Option<u32>| {
            quarter_compliance(q, totals, 0, &Tenure::since(enrolled), &rulesets, v, today)
        };
        let old = row(q3, Some(1));
        assert_eq!(old.judgement.status, QuarterStatus::Compliant);
        assert_eq!(old.judgement.ruleset_version, Some(1));
        assert!(old.stale);
        let now = row(q3, Some(2));
        assert_eq!(now.judgement.status, QuarterStatus::NonCompliant);
        assert_eq!(now.judgement.required_target, Hours::whole(10));
        assert!(!now.stale);
        assert_eq!(row(q3, None), now, "a fold uses every ruleset");
        let q2 = Quarter::parse("2018-Q2").expect("q");
        assert!(
            !row(q2, Some(1)).stale,
            "version 2 does not reach back to 2018-Q2"
        );
    }

    #[test]
    fn a_study_time_rule_changed_earlier_makes_later_quarters_stale_too() {
        // A course completed without study in 2018-Q2 and again, after study, in 2018-Q4:
        // switching the study-time rule off for 2018-Q2 moves the course's credit from Q4 to
        // Q2, though the rules governing Q4 did not change.
        // Version 2 (from 2018-Q3) keeps the study-time rule; version 3, published later but
        // effective earlier, lifts it for 2018-Q2 only.
        let from_q3 = Ruleset {
            version: 2,
            effective_from: Quarter::parse("2018-Q3").expect("q"),
            ..Ruleset::version_1()
        };
        let relaxed_q2 = Ruleset {
            version: 3,
            effective_from: Quarter::parse("2018-Q2").expect("q"),
            enforce_min_study_time: false,
            ..Ruleset::version_1()
        };
        let rulesets = [Ruleset::version_1(), from_q3, relaxed_q2];
        let row = |q: &str, v: Option<u32>| {
            quarter_compliance(
                Quarter::parse(q).expect("q"),
                QuarterTotals::default(),
                0,
                &Tenure::since(date(2018, 1, 1)),
                &rulesets,
                v,
                date(2020, 1, 1),
            )
        };
        assert!(!row("2018-Q1", Some(2)).stale);
        assert!(row("2018-Q2", Some(2)).stale);
        let q4 = row("2018-Q4", Some(2));
        assert_eq!(
            q4.judgement.ruleset_version,
            Some(2),
            "the same rules govern 2018-Q4"
        );
        assert!(
            q4.stale,
            "2018-Q4 may have lost the course's credit to 2018-Q2"
        );
        assert!(!row("2018-Q4", Some(3)).stale);
        assert!(!row("2018-Q4", None).stale);
    }
}
