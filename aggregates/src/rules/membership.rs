//! Rule 7: where a member belongs on a day, which day a quarter's roll-up counts members on,
//! and the two ratios a roll-up reports.
//!
//! The projections count members per organisation subtree with these functions; the member
//! aggregate answers "where do I belong today" with the same one.

use chrono::NaiveDate;

use crate::values::{Hours, OrgId, Quarter};

/// The organisation a member belongs to on `day`, from their placements as (day, sequence,
/// organisation) — the enrolment (sequence 1), each transfer and each rejoining: the one with
/// the latest day on or before `day` (on equal days, the one recorded last); `None` before
/// the enrolment. Rule 12's periods away are the caller's to cut out.
pub fn organisation_on<'a>(
    placements: &[(NaiveDate, usize, &'a OrgId)],
    day: NaiveDate,
) -> Option<&'a OrgId> {
    placements
        .iter()
        .filter(|(from, _, _)| *from <= day)
        .max_by_key(|(from, sequence, _)| (*from, *sequence))
        .map(|(_, _, org)| *org)
}

/// The day a quarter's roll-up counts members on: the quarter's last day, or today for the
/// current quarter (and a future one). `today` is the local date.
pub fn counting_day(quarter: Quarter, today: NaiveDate) -> NaiveDate {
    quarter.last_day().min(today)
}

/// `compliant / (compliant + non_compliant)`, rounded to four decimals for display (never
/// stored); `None` when nobody was judged either way.
pub fn compliance_rate(compliant: u64, non_compliant: u64) -> Option<f64> {
    let judged = compliant + non_compliant;
    (judged > 0).then(|| (compliant as f64 / judged as f64 * 10_000.0).round() / 10_000.0)
}

/// `credit_hours_total / members`, exactly, rounded half up to the hundredth; `None` without
/// members.
pub fn hours_per_member(total: Hours, members: u64) -> Option<Hours> {
    let members = i128::from(members);
    (members > 0).then(|| {
        let total = i128::from(total.hundredths());
        let rounded = (2 * total + members * total.signum()) / (2 * members);
        Hours::from_hundredths(i64::try_from(rounded).unwrap_or(i64::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, m, d).expect("date")
    }

    fn org(slug: &str) -> OrgId {
        slug.parse().expect("slug")
    }

    #[test]
    fn a_member_belongs_to_the_latest_transfer_on_or_before_the_day() {
        let orgs = [
            org("fz-branch-1"),
            org("fz-branch-2"),
            org("fz-branch-3"),
            org("fz-branch-4"),
        ];
        // The enrolment, then transfers recorded out of order: the one dated May still
        // counts from May.
        let placements = [
            (date(3, 1), 1, &orgs[0]),
            (date(7, 1), 2, &orgs[1]),
            (date(5, 1), 3, &orgs[2]),
            (date(7, 1), 4, &orgs[3]),
        ];
        let on = |d| organisation_on(&placements, d).map(ToString::to_string);
        assert_eq!(on(date(2, 28)), None, "before enrolment");
        assert_eq!(on(date(3, 1)).as_deref(), Some("fz-branch-1"));
        assert_eq!(on(date(5, 1)).as_deref(), Some("fz-branch-3"));
        assert_eq!(
            on(date(7, 1)).as_deref(),
            Some("fz-branch-4"),
            "on equal days, the transfer recorded last"
        );
    }

    #[test]
    fn members_are_counted_on_the_last_day_or_today_for_the_current_quarter() {
        let q2 = Quarter::parse("2018-Q2").expect("quarter");
        assert_eq!(counting_day(q2, date(12, 1)), date(6, 30));
        assert_eq!(counting_day(q2, date(5, 10)), date(5, 10));
    }

    #[test]
    fn ratios_are_null_without_a_denominator_and_rounded_otherwise() {
        assert_eq!(compliance_rate(0, 0), None);
        assert_eq!(compliance_rate(2, 1), Some(0.6667));
        assert_eq!(hours_per_member(Hours::whole(10), 0), None);
        assert_eq!(
            hours_per_member(Hours::whole(10), 3),
            Some(Hours::from_hundredths(333))
        );
        assert_eq!(
            hours_per_member(Hours::from_hundredths(5), 2),
            Some(Hours::from_hundredths(3)),
            "half a hundredth rounds up"
        );
        assert_eq!(
            hours_per_member(Hours::from_hundredths(-5), 2),
            Some(Hours::from_hundredths(-3))
        );
    }
}
