//! The edge: raw request text becomes domain values here or the request is refused with a
//! problem+json answer. Bodies, queries and paths deserialize straight into domain types
//! (`MemberId`, `OrgId`, `Quarter`, UUIDs, [`Rfc3339`] instants) — anything they cannot hold is
//! a 400 — and the few values whose refusal is a rule violation (422) rather than malformed
//! input are parsed by the functions below: class hours, and dates outside the ledger's years.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use studyledger_aggregates::values::{Category, Hours};
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::record::Metadata;

/// A JSON body. Any content type is read as JSON; syntax errors, wrong types and missing
/// fields are 400, a body over the limit is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::Malformed(rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::Malformed(format!("invalid JSON body: {e}")))
    }
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

/// Who is asking and under which request id: what goes into event metadata.
pub struct RequestMeta(pub Metadata);

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let actor = match (token, state.admin_token()) {
            (Some(token), Some(admin)) if token == admin => "admin",
            _ => "anonymous",
        };
        Ok(RequestMeta(Metadata {
            actor: actor.to_owned(),
            request_id,
            recorded_at: Utc::now(),
        }))
    }
}

/// The metadata of a request only administrators may make: publishing rules, defining
/// evaluations, determining eligibility, replaying. When `LEDGER_ADMIN_TOKEN` is set, the
/// request must carry it as a bearer token (401 without a token, 403 with another one); when
/// it is unset the ledger runs open, as on a developer's machine.
pub struct Admin(pub Metadata);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let RequestMeta(meta) = RequestMeta::from_request_parts(parts, state).await?;
        if state.admin_token().is_some() && meta.actor != "admin" {
            let has_token = parts.headers.contains_key(header::AUTHORIZATION);
            return Err(if has_token {
                ApiError::Forbidden
            } else {
                ApiError::Unauthorized
            });
        }
        Ok(Admin(meta))
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
