//! Value types of the ledger's vocabulary (DESIGN §2), each of which can only hold a valid value.
//!
//! Input is parsed into these types once, at the edge; everything behind the edge can rely on
//! them. Class hours are integer hundredths so that sums are exact; quarters are computed from the
//! local date in the ledger's time zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod text;

pub use text::{MemberNo, Name, Reason, TextError};

/// Why a raw value could not become a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a valid identifier: use 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit")]
    Slug(String),
    #[error("`{0}` is not a quarter: use YYYY-Qn with n from 1 to 4")]
    Quarter(String),
    #[error("{0} has more than two decimals: class hours are kept in hundredths")]
    HoursPrecision(String),
    #[error("{0} is outside the range of class hours this ledger accepts")]
    HoursRange(String),
    #[error("`{0}` is not a category: use `required` or `elective`")]
    Category(String),
    #[error("`{0}` is not a UUID")]
    Uuid(String),
}

/// Class hours (学时), held exactly as integer hundredths.
///
/// JSON shows them as numbers with at most two decimals. Parsing a JSON number accepts exactly
/// the values that have at most two decimals: IEEE division is correctly rounded, so
/// `hundredths as f64 / 100.0` is the very double a JSON parser produces for that decimal text,
/// and any number with a third non-zero decimal maps to a different double.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hours(i64);

impl Hours {
    pub const ZERO: Hours = Hours(0);
    /// Largest magnitude accepted anywhere (a million hours): far beyond any real credit, and
    /// small enough that sums over billions of events cannot overflow an i64 of hundredths.
    const LIMIT_HUNDREDTHS: i64 = 100_000_000;

    pub const fn from_hundredths(hundredths: i64) -> Hours {
        Hours(hundredths)
    }

    pub const fn whole(hours: i64) -> Hours {
        Hours(hours * 100)
    }

    /// Hundredths within the range the ledger accepts.
    pub fn try_from_hundredths(hundredths: i64) -> Result<Hours, ValueError> {
        if hundredths.unsigned_abs() > Self::LIMIT_HUNDREDTHS.unsigned_abs() {
            Err(ValueError::HoursRange(Hours(hundredths).to_string()))
        } else {
            Ok(Hours(hundredths))
        }
    }

    pub const fn hundredths(self) -> i64 {
        self.0
    }

    /// Parses a JSON number, rejecting more than two decimals and absurd magnitudes.
    pub fn from_json_number(value: f64) -> Result<Hours, ValueError> {
        if !value.is_finite() || value.abs() > (Self::LIMIT_HUNDREDTHS / 100) as f64 {
            return Err(ValueError::HoursRange(value.to_string()));
        }
        let hundredths = (value * 100.0).round();
        if hundredths / 100.0 != value {
            return Err(ValueError::HoursPrecision(value.to_string()));
        }
        // In range by the check above, so the cast is exact.
        Ok(Hours(hundredths as i64))
    }

    pub fn as_json_number(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Saturating: a sum can only saturate far beyond anything a real ledger holds.
    pub fn plus(self, other: Hours) -> Hours {
        Hours(self.0.saturating_add(other.0))
    }

    pub fn minus(self, other: Hours) -> Hours {
        Hours(self.0.saturating_sub(other.0))
    }

    pub fn max(self, other: Hours) -> Hours {
        Hours(self.0.max(other.0))
    }
}

impl std::iter::Sum for Hours {
    fn sum<I: Iterator<Item = Hours>>(iter: I) -> Hours {
        iter.fold(Hours::ZERO, Hours::plus)
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Hours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_json_number())
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Hours::from_json_number(value).map_err(serde::de::Error::custom)
    }
}

/// A slug identifier (`org_id`, `course_id`, `evaluation_id`): `[a-z0-9][a-z0-9_-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

pub type OrgId = Slug;
pub type CourseId = Slug;
pub type EvaluationId = Slug;

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, ValueError> {
        let bytes = raw.as_bytes();
        let head_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let tail_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if head_ok && tail_ok && bytes.len() <= 64 {
            Ok(Slug(raw.to_owned()))
        } else {
            Err(ValueError::Slug(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Slug {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slug::parse(s)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Slug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A member's id: a UUID the client chose when it enrolled the member. It names the member's
/// stream, and it is the natural key every member table is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MemberId(uuid::Uuid);

impl MemberId {
    pub const fn new(id: uuid::Uuid) -> MemberId {
        MemberId(id)
    }

    pub const fn uuid(self) -> uuid::Uuid {
        self.0
    }

    pub fn parse(raw: &str) -> Result<MemberId, ValueError> {
        uuid::Uuid::parse_str(raw)
            .map(MemberId)
            .map_err(|_| ValueError::Uuid(raw.chars().take(80).collect()))
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MemberId {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemberId::parse(s)
    }
}

impl<'de> Deserialize<'de> for MemberId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        MemberId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Course category: the two kinds of class hours a quarter asks for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Required,
    Elective,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Required => "required",
            Category::Elective => "elective",
        }
    }
}

impl FromStr for Category {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Category::Required),
            "elective" => Ok(Category::Elective),
            other => Err(ValueError::Category(other.chars().take(40).collect())),
        }
    }
}

/// A calendar quarter `YYYY-Qn` of the ledger's local calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    /// 1 to 4.
    number: u8,
}

impl Quarter {
    pub fn new(year: i32, number: u8) -> Option<Quarter> {
        ((1..=4).contains(&number) && (1..=9999).contains(&year))
            .then_some(Quarter { year, number })
    }

    pub fn parse(raw: &str) -> Result<Quarter, ValueError> {
        let invalid = || ValueError::Quarter(raw.chars().take(40).collect());
        let (year, number) = raw.split_once("-Q").ok_or_else(invalid)?;
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || number.len() != 1 || !digits(year) || !digits(number) {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let number: u8 = number.parse().map_err(|_| invalid())?;
        Quarter::new(year, number).ok_or_else(invalid)
    }

    /// The quarter holding a local calendar date.
    pub fn of_date(date: NaiveDate) -> Quarter {
        Quarter {
            year: date.year(),
            // month0 is 0..=11, so the quotient is 0..=3.
            number: (date.month0() / 3) as u8 + 1,
        }
    }

    /// The quarter of an instant, read in the ledger's time zone.
    pub fn of_instant(instant: DateTime<Utc>, tz: Tz) -> Quarter {
        Quarter::of_date(local_date(instant, tz))
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn number(self) -> u8 {
        self.number
    }

    pub fn first_day(self) -> NaiveDate {
        let month = u32::from(self.number - 1) * 3 + 1;
        NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or(NaiveDate::MAX)
    }

    pub fn next(self) -> Quarter {
        if self.number == 4 {
            Quarter {
                year: self.year + 1,
                number: 1,
            }
        } else {
            Quarter {
                year: self.year,
                number: self.number + 1,
            }
        }
    }

    pub fn previous(self) -> Quarter {
        if self.number == 1 {
            Quarter {
                year: self.year - 1,
                number: 4,
            }
        } else {
            Quarter {
                year: self.year,
                number: self.number - 1,
            }
        }
    }

    /// Every quarter from `self` to `last`, both included (empty when `last` comes first).
    pub fn through(self, last: Quarter) -> impl Iterator<Item = Quarter> {
        std::iter::successors(Some(self), |q| Some(q.next())).take_while(move |q| *q <= last)
    }
}

/// The local calendar date of an instant in the ledger's time zone.
pub fn local_date(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.number)
    }
}

impl FromStr for Quarter {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quarter::parse(s)
    }
}

impl Serialize for Quarter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quarter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Quarter::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// How the value types read in the service's OpenAPI document (behind the `openapi` feature:
/// a description of the JSON, not a dependency of the domain's logic).
#[cfg(feature = "openapi")]
mod schemas {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Hours, MemberId, Quarter, Slug};

    fn string(pattern: Option<&str>, description: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(pattern)
            .description(Some(description))
            .into()
    }

    impl PartialSchema for Hours {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .multiple_of(Some(0.01))
                .description(Some("class hours (学时), at most two decimals"))
                .into()
        }
    }
    impl ToSchema for Hours {}

    impl PartialSchema for Slug {
        fn schema() -> RefOr<Schema> {
            string(
                Some("^[a-z0-9][a-z0-9_-]{0,63}$"),
                "an identifier: org_id, course_id or evaluation_id",
            )
        }
    }
    impl ToSchema for Slug {}

    impl PartialSchema for Quarter {
        fn schema() -> RefOr<Schema> {
            string(
                Some("^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-Q[1-4]$"),
                "a quarter of the ledger's local calendar",
            )
        }
    }
    impl ToSchema for Quarter {}

    impl PartialSchema for MemberId {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .description(Some("a member's id, chosen by the client at enrolment"))
                .into()
        }
    }
    impl ToSchema for MemberId {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn hundredths_out_of_range_are_refused_at_both_ends_of_i64() {
        for hundredths in [i64::MIN, i64::MIN + 1, i64::MAX, 100_000_001, -100_000_001] {
            assert!(
                Hours::try_from_hundredths(hundredths).is_err(),
                "{hundredths}"
            );
        }
        for hundredths in [100_000_000, -100_000_000, 0] {
            assert_eq!(
                Hours::try_from_hundredths(hundredths).map(Hours::hundredths),
                Ok(hundredths)
            );
        }
    }

    #[test]
    fn the_quarter_before_crosses_the_year_and_undoes_next() {
        let q = |y, n| Quarter::new(y, n).expect("a quarter");
        assert_eq!(q(2025, 1).previous(), q(2024, 4));
        assert_eq!(q(2025, 3).previous(), q(2025, 2));
        for (y, n) in [(2024, 1), (2024, 2), (2024, 3), (2024, 4)] {
            assert_eq!(q(y, n).next().previous(), q(y, n));
            assert_eq!(
                q(y, n).previous().last_day() + chrono::Days::new(1),
                q(y, n).first_day()
            );
        }
    }

    #[test]
    fn hours_accept_two_decimals_and_sum_exactly() {
        let parts = [0.1, 0.2, 0.29, 1.01, 2.5];
        let total: Hours = parts
            .iter()
            .map(|v| Hours::from_json_number(*v).expect("two decimals"))
            .sum();
        assert_eq!(total, Hours::from_hundredths(410));
        assert_eq!(total.to_string(), "4.10");
        assert_eq!(serde_json::to_string(&total).expect("serialise"), "4.1");
    }

    #[test]
    fn hours_with_three_decimals_are_rejected() {
        for value in [1.005, 0.001, 2.125, 0.333] {
            assert!(
                matches!(
                    Hours::from_json_number(value),
                    Err(ValueError::HoursPrecision(_))
                ),
                "{value} must be rejected"
            );
        }
        assert!(Hours::from_json_number(f64::NAN).is_err());
        assert!(Hours::from_json_number(1e12).is_err());
        let parsed: Result<Hours, _> = serde_json::from_str("1.234");
        assert!(parsed.is_err());
        let parsed: Hours = serde_json::from_str("-1.25").expect("two decimals");
        assert_eq!(parsed, Hours::from_hundredths(-125));
    }

    #[test]
    fn every_hundredth_up_to_a_thousand_hours_round_trips_through_json() {
        for hundredths in 0..100_000 {
            let hours = Hours::from_hundredths(hundredths);
            let text = serde_json::to_string(&hours).expect("serialise");
            let back: Hours = serde_json::from_str(&text).expect("parse");
            assert_eq!(back, hours, "{text}");
        }
    }

    #[test]
    fn slugs_follow_the_pattern() {
        assert!(Slug::parse("a").is_ok());
        assert!(Slug::parse("org-1_b").is_ok());
        assert!(Slug::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "-a", "_a", "A", "a b", "ä", &"a".repeat(65)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quarters_parse_and_print() {
        let q = Quarter::parse("2018-Q3").expect("valid");
        assert_eq!(q.to_string(), "2018-Q3");
        assert_eq!(
            q.first_day(),
            NaiveDate::from_ymd_opt(2018, 7, 1).expect("date")
        );
        assert_eq!(
            q.last_day(),
            NaiveDate::from_ymd_opt(2018, 9, 30).expect("date")
        );
        assert_eq!(
            Quarter::parse("2018-Q4").expect("valid").next().to_string(),
            "2019-Q1"
        );
        for bad in [
            "2018-Q0", "2018-Q5", "18-Q1", "2018Q1", "2018-q1", "2018-Q12", "+018-Q1", "2018-Q+",
        ] {
            assert!(Quarter::parse(bad).is_err(), "{bad}");
        }
        let all: Vec<String> = Quarter::parse("2018-Q3")
            .expect("valid")
            .through(Quarter::parse("2019-Q2").expect("valid"))
            .map(|q| q.to_string())
            .collect();
        assert_eq!(all, ["2018-Q3", "2018-Q4", "2019-Q1", "2019-Q2"]);
    }

    #[test]
    fn quarter_of_an_instant_uses_the_ledger_time_zone() {
        let instant = Utc
            .with_ymd_and_hms(2018, 6, 30, 20, 0, 0)
            .single()
            .expect("instant");
        assert_eq!(
            Quarter::of_instant(instant, chrono_tz::Asia::Shanghai).to_string(),
            "2018-Q3"
        );
        assert_eq!(
            Quarter::of_instant(instant, chrono_tz::UTC).to_string(),
            "2018-Q2"
        );
        let just_before = Utc
            .with_ymd_and_hms(2018, 6, 30, 15, 59, 59)
            .single()
            .expect("instant");
        assert_eq!(
            Quarter::of_instant(just_before, chrono_tz::Asia::Shanghai).to_string(),
            "2018-Q2"
        );
    }
}
