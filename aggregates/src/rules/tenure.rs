//! Rule 12: members who leave and rejoin. A member's tenure is their enrolment date and the
//! periods they were away — from a departure's `left_on` until the next rejoining's
//! `rejoined_on` (or for good). Every judgement of a quarter asks the tenure how the member
//! stood in it: away on its last day (`left`), or present since some day (exempt when that
//! day is after the quarter's first, rule 6).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::values::Quarter;

/// A period away: from `left_on` (the first day away) until `rejoined_on` (the first day
/// back), or for good while `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Away {
    pub left_on: NaiveDate,
    pub rejoined_on: Option<NaiveDate>,
}

impl Away {
    fn covers(&self, day: NaiveDate) -> bool {
        self.left_on <= day && self.rejoined_on.is_none_or(|back| day < back)
    }
}

/// When a member belonged: enrolled on a day, away in some periods (sorted, disjoint, each
/// starting after the previous one ended; only the last may be open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenure {
    pub enrolled_on: NaiveDate,
    pub away: Vec<Away>,
}

/// How a member stood in a quarter (rule 12 before rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Away on the quarter's last day, after the enrolment: the quarter is `left`.
    Left,
    /// Present on the quarter's last day since this day (the enrolment or the last
    /// rejoining), or not enrolled yet (then the enrolment day, after the quarter).
    Since(NaiveDate),
}

impl Tenure {
    /// A member who never left.
    pub fn since(enrolled_on: NaiveDate) -> Tenure {
        Tenure {
            enrolled_on,
            away: Vec::new(),
        }
    }

    /// Whether the member is away on `day`.
    pub fn away_on(&self, day: NaiveDate) -> bool {
        self.away.iter().any(|a| a.covers(day))
    }

    /// The period away that some day in `[first, last]` falls in, if any.
    pub fn away_between(&self, first: NaiveDate, last: NaiveDate) -> Option<&Away> {
        self.away
            .iter()
            .find(|a| a.left_on <= last && a.rejoined_on.is_none_or(|back| first < back))
    }

    /// The open period away, while the member has not come back.
    pub fn current_absence(&self) -> Option<&Away> {
        self.away.last().filter(|a| a.rejoined_on.is_none())
    }

    /// The day the member last (re)joined on or before `day`.
    pub fn joined_by(&self, day: NaiveDate) -> NaiveDate {
        self.away
            .iter()
            .filter_map(|a| a.rejoined_on)
            .filter(|back| *back <= day)
            .max()
            .unwrap_or(self.enrolled_on)
    }

    /// How the member stood in `quarter`, judged on its last day.
    pub fn in_quarter(&self, quarter: Quarter) -> Presence {
        let last = quarter.last_day();
        if last < self.enrolled_on {
            Presence::Since(self.enrolled_on)
        } else if self.away_on(last) {
            Presence::Left
        } else {
            Presence::Since(self.joined_by(last))
        }
    }

    /// Whether `quarter` asks anything of the member: present on its last day since its
    /// first day or earlier (neither `left` nor exempt by rules 6 and 12).
    pub fn answerable_in(&self, quarter: Quarter) -> bool {
        matches!(self.in_quarter(quarter), Presence::Since(day) if day <= quarter.first_day())
    }

    /// The quarters of the rejoinings: each is exempt when the rejoining falls after its first
    /// day, and counted under the organisation rejoined, so it has figures of its own.
    pub fn rejoining_quarters(&self) -> impl Iterator<Item = Quarter> + '_ {
        self.away
            .iter()
            .filter_map(|a| a.rejoined_on)
            .map(Quarter::of_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn q(raw: &str) -> Quarter {
        Quarter::parse(raw).expect("quarter")
    }

    fn tenure() -> Tenure {
        Tenure {
            enrolled_on: date(2018, 1, 1),
            away: vec![
                Away {
                    left_on: date(2018, 5, 10),
                    rejoined_on: Some(date(2018, 11, 3)),
                },
                Away {
                    left_on: date(2019, 4, 1),
                    rejoined_on: None,
                },
            ],
        }
    }

    #[test]
    fn a_quarter_whose_last_day_falls_while_away_is_left() {
        let t = tenure();
        assert_eq!(
            t.in_quarter(q("2018-Q1")),
            Presence::Since(date(2018, 1, 1))
        );
        assert_eq!(t.in_quarter(q("2018-Q2")), Presence::Left, "left in May");
        assert_eq!(t.in_quarter(q("2018-Q3")), Presence::Left);
        assert_eq!(
            t.in_quarter(q("2018-Q4")),
            Presence::Since(date(2018, 11, 3)),
            "back before its last day: present, since the rejoining"
        );
        assert!(
            !t.answerable_in(q("2018-Q4")),
            "rejoined after the first day"
        );
        assert!(t.answerable_in(q("2019-Q1")));
        assert_eq!(
            t.in_quarter(q("2019-Q1")),
            Presence::Since(date(2018, 11, 3))
        );
        assert_eq!(
            t.in_quarter(q("2019-Q2")),
            Presence::Left,
            "left on its first day"
        );
        assert_eq!(t.in_quarter(q("2030-Q1")), Presence::Left, "still away");
        assert_eq!(
            t.in_quarter(q("2017-Q4")),
            Presence::Since(date(2018, 1, 1)),
            "before the enrolment: not left"
        );
    }

    #[test]
    fn days_away_run_from_the_departure_to_the_day_before_the_rejoining() {
        let t = tenure();
        assert!(!t.away_on(date(2018, 5, 9)));
        assert!(t.away_on(date(2018, 5, 10)));
        assert!(t.away_on(date(2018, 11, 2)));
        assert!(!t.away_on(date(2018, 11, 3)));
        assert!(t.away_on(date(2019, 4, 1)));
        assert_eq!(
            t.away_between(date(2018, 5, 8), date(2018, 5, 10))
                .map(|a| a.left_on),
            Some(date(2018, 5, 10))
        );
        assert_eq!(t.away_between(date(2018, 11, 3), date(2019, 3, 31)), None);
        assert_eq!(
            t.current_absence().map(|a| a.left_on),
            Some(date(2019, 4, 1))
        );
        assert_eq!(t.joined_by(date(2030, 1, 1)), date(2018, 11, 3));
        let quarters: Vec<Quarter> = t.rejoining_quarters().collect();
        assert_eq!(quarters, vec![q("2018-Q4")]);
    }
}
