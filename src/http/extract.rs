//! The edge: raw request text becomes domain values here or the request is refused with a
//! problem+json answer (who is calling is `auth::Caller`). Bodies, queries and paths deserialize straight into domain types
//! (`MemberId`, `OrgId`, `Quarter`, UUIDs, [`Rfc3339`] instants) — anything they cannot hold is
//! a 400 — and the few values whose refusal is a rule violation (422) rather than malformed
//! input are parsed by the functions below: class hours, and dates outside the ledger's years.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use studyledger_aggregates::values::text::Text;
use studyledger_aggregates::values::{Category, Hours};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::http::error::ApiError;

/// A JSON body, sent as `application/json` (else 415). Syntax errors, wrong types, missing
/// fields and malformed ids are 400; a field the body type does not have is 422 (bodies deny
/// unknown fields: a misspelt optional field must not be silently dropped); a body over the
/// limit is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = body_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(body_error)
    }
}

/// A request's whole body, within the route's limit (413 beyond).
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::Malformed(rejection.body_text())
        }
    })
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn body_error(error: serde_json::Error) -> ApiError {
    // serde words the refusal of `deny_unknown_fields` itself: "unknown field `x`, expected
    // one of …". It is the only data error that names a field the type does not have.
    let message = error.to_string();
    if message.starts_with("unknown field") {
        ApiError::RuleViolation(format!("the body has an {message}"))
    } else {
        ApiError::Malformed(format!("invalid JSON body: {message}"))
    }
}

/// Text from a body field under the rules of its value type (`Name`, `MemberNo`, `Reason`);
/// text it cannot hold is a rule violation (422) that names the field.
pub fn text<const MAX: usize, const LINES: bool>(
    field: &str,
    raw: String,
) -> Result<Text<MAX, LINES>, ApiError> {
    Text::parse(raw).map_err(|e| ApiError::RuleViolation(format!("{field} {e}")))
}

/// A query string; anything it cannot hold is 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::Malformed(e.body_text()))
    }
}

/// Path segments as domain ids (`ApiPath<MemberId>`, `ApiPath<(MemberId, EvaluationId)>`); a
/// segment that is not one is a 400 like any other malformed id.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::Malformed(e.body_text()))
    }
}

/// An instant written in RFC 3339, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| Rfc3339(t.with_timezone(&Utc)))
            .map_err(|_| serde::de::Error::custom(format!("`{raw}` is not an RFC 3339 instant")))
    }
}

impl PartialSchema for Rfc3339 {
    fn schema() -> RefOr<Schema> {
        formatted(KnownFormat::DateTime, "an RFC 3339 instant")
    }
}
impl ToSchema for Rfc3339 {}

fn formatted(format: KnownFormat, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .description(Some(description))
        .into()
}

/// A calendar date written exactly `YYYY-MM-DD`. Whether the ledger can hold it is checked
/// with [`CalendarDate::within_ledger_years`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarDate(NaiveDate);

impl<'de> Deserialize<'de> for CalendarDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let shape_ok = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        shape_ok
            .then(|| NaiveDate::parse_from_str(&raw, "%Y-%m-%d").ok())
            .flatten()
            .map(CalendarDate)
            .ok_or_else(|| serde::de::Error::custom(format!("`{raw}` is not a date YYYY-MM-DD")))
    }
}

impl PartialSchema for CalendarDate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some("^(?:19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$"))
            .description(Some("a date YYYY-MM-DD, in the years 1900–2999"))
            .into()
    }
}
impl ToSchema for CalendarDate {}

impl CalendarDate {
    /// The date, when it lies in the years the ledger holds (1900–2999); else a rule violation.
    pub fn within_ledger_years(self, field: &str) -> Result<NaiveDate, ApiError> {
        if (1900..=2999).contains(&self.0.year()) {
            Ok(self.0)
        } else {
            Err(ApiError::RuleViolation(format!(
                "{field} must lie between the years 1900 and 2999"
            )))
        }
    }
}

/// A course's minimum study minutes: absent is 0; a negative or huge number is a rule
/// violation (422) (the course checks the upper bound).
pub fn study_minutes(field: &str, minutes: Option<i64>) -> Result<u32, ApiError> {
    u32::try_from(minutes.unwrap_or(0))
        .map_err(|_| ApiError::RuleViolation(format!("{field} must be a whole number from 0")))
}

/// A course category; another word is a rule violation (422).
pub fn category(field: &str, raw: &str) -> Result<Category, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::RuleViolation(format!("{field}: {e}")))
}

/// Class hours from the JSON number exactly as written: more than two decimals is a rule
/// violation (422), judged on the decimal text, not on a binary float.
pub fn hours(field: &str, raw: &RawValue) -> Result<Hours, ApiError> {
    let text = raw.get();
    let is_number = text
        .bytes()
        .next()
        .is_some_and(|b| b == b'-' || b.is_ascii_digit());
    if !is_number {
        return Err(ApiError::Malformed(format!("{field} must be a number")));
    }
    let out_of_range = || ApiError::RuleViolation(format!("{field}: {text} is out of range"));
    let value = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    }
    .map_err(|_| out_of_range())?
    .normalize();
    if value.scale() > 2 {
        return Err(ApiError::RuleViolation(format!(
            "{field}: {text} has more than two decimals; class hours are kept in hundredths"
        )));
    }
    let hundredths = value
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|h| h.to_i64())
        .ok_or_else(out_of_range)?;
    Hours::try_from_hundredths(hundredths).map_err(|_| out_of_range())
}

/// A page size within `1..=max` (`default` when absent).
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Malformed(format!(
            "limit must be between 1 and {max}"
        )))
    }
}
