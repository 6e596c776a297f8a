//! One error type for every handler, and one table that turns it into an HTTP answer:
//! `application/problem+json` (RFC 9457) with `type`, `title`, `status` and `detail`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use studyledger_aggregates::rejection::{Classify, RejectionKind};

use crate::jobs::replay::ReplayError;
use crate::ledger::closures::TreeError;
use crate::ledger::CommandError;
use crate::store::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("this request needs a valid bearer token (Authorization: Bearer <token>)")]
    Unauthorized,
    /// Out of the caller's role or scope: one answer whatever the reason, so that it never
    /// tells whether the thing asked for exists.
    #[error("this token may not do this")]
    Forbidden,
    /// The caller is in scope, but a rule of duties stands in the way; the reason is theirs.
    #[error("{0}")]
    Duties(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` or `If-None-Match` does not hold for the resource as it stands.
    #[error("the resource does not meet If-Match / If-None-Match")]
    PreconditionFailed,
    #[error("the request body is larger than this route takes (64 KiB; an import 8 GiB)")]
    TooLarge,
    #[error("the body must be JSON, sent with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("{0}")]
    RuleViolation(String),
    #[error("too many concurrent changes to the same record; retry shortly")]
    Busy,
    #[error(
        "the database is unavailable (restarting, or failing over to its standby); a command \
         answered so may or may not have been recorded: resend it with the same client ids \
         (session, completion, statement ids), which records it once and answers as the \
         first time"
    )]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The table: variant → status, problem type and title.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::Duties(_) => (
                StatusCode::FORBIDDEN,
                "separation-of-duties",
                "Separation of duties",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflict with recorded facts",
            ),
            ApiError::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::RuleViolation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "rule-violation",
                "Rule violation",
            ),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "contention", "Busy"),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// A domain refusal, classified by the domain.
    pub fn rejected(rejection: &(impl Classify + std::fmt::Display)) -> ApiError {
        let detail = rejection.to_string();
        match rejection.kind() {
            RejectionKind::NotFound => ApiError::NotFound(detail),
            RejectionKind::Conflict => ApiError::Conflict(detail),
            RejectionKind::RuleViolation => ApiError::RuleViolation(detail),
        }
    }
}

/// The body of every error answer (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `/problems/<kind>`: `malformed-request`, `unauthorized`, `forbidden`, `not-found`,
    /// `conflict`, `payload-too-large`, `rule-violation`, `contention`, `unavailable`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// A problem+json answer for any status, also used by the middleware's own refusals.
pub fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = Problem {
        kind: format!("/problems/{kind}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        let mut response = problem(status, kind, title, &self.to_string());
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            ApiError::Unavailable
        } else {
            tracing::error!(%error, "store error");
            ApiError::Internal
        }
    }
}

impl<E: std::error::Error + Classify> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(rejection) => ApiError::rejected(&rejection),
            CommandError::Contention => ApiError::Busy,
            CommandError::Store(store) => store.into(),
            CommandError::Vanished => ApiError::Internal,
        }
    }
}

impl From<TreeError> for ApiError {
    fn from(error: TreeError) -> Self {
        match error {
            TreeError::Command(command) => command.into(),
            TreeError::Occupied { .. }
            | TreeError::OpenChildren { .. }
            | TreeError::TransferRefused { .. } => ApiError::Conflict(error.to_string()),
            TreeError::BeforeEarlierMove { .. } => ApiError::Conflict(error.to_string()),
            TreeError::IntoOwnSubtree { .. }
            | TreeError::IntoUnknown(_)
            | TreeError::UnderOwnSubtree { .. }
            | TreeError::ParentUnknown(_)
            | TreeError::AheadOfQuarter(_) => ApiError::RuleViolation(error.to_string()),
            TreeError::ViewsBehind => ApiError::Busy,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl From<ReplayError> for ApiError {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::AlreadyRunning => {
                ApiError::Conflict("a replay is already running".to_owned())
            }
            ReplayError::Database(e) => e.into(),
            ReplayError::Store(e) => e.into(),
            ReplayError::Corrupt(_) | ReplayError::Stopped(_) => ApiError::Internal,
        }
    }
}
