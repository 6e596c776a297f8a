//! `/v1/verifications`: auditors recompute the hash chains over HTTP, as `studyledger verify`
//! does — a background job whose row says how far it got and which links are broken.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::MemberId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::answer::Accepted;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::verify;
use crate::store::verifications;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(show))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Only this member's stream; every stream without it.
    member_id: Option<MemberId>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = VerificationStarted)]
pub struct Started {
    verification_id: Uuid,
    status: &'static str,
}

/// `POST /v1/verifications`: 202 with the verification's id and `Location`.
#[utoipa::path(post, path = "/v1/verifications", operation_id = "start_verification", tag = "audit",
    request_body = Verify,
    responses(
        (status = 202, body = Started, description = "started; follow `Location`"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 413, response = doc::TooLarge),
        (status = 415, response = doc::UnsupportedType),
        (status = 422, response = doc::RuleViolation),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Verify>,
) -> Result<Response, ApiError> {
    let pool = state.ledger().pool().clone();
    let member = body.member_id.map(MemberId::uuid);
    let verification_id = verify::start(pool, member, &caller.principal.token_id).await?;
    let answer = Started {
        verification_id,
        status: "running",
    };
    Ok(Accepted {
        answer,
        location: format!("/v1/verifications/{verification_id}"),
    }
    .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct BrokenLink {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationAnswer {
    verification_id: Uuid,
    member_id: Option<Uuid>,
    /// `running`, `succeeded` (whatever it found) or `failed` (it could not finish).
    status: String,
    events_total: i64,
    events_checked: i64,
    broken_links: Vec<BrokenLink>,
    requested_by: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

/// `GET /v1/verifications/{id}`: how far it got, and every broken link it found.
#[utoipa::path(get, path = "/v1/verifications/{verification_id}", operation_id = "show_verification", tag = "audit",
    params(("verification_id" = Uuid, Path)),
    responses(
        (status = 200, body = VerificationAnswer),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn show(
    State(state): State<AppState>,
    ApiPath(verification_id): ApiPath<Uuid>,
) -> Result<Json<VerificationAnswer>, ApiError> {
    let found = verifications::verification(state.ledger().pool(), verification_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no verification {verification_id}")))?;
    Ok(Json(VerificationAnswer {
        verification_id: found.verification_id,
        member_id: found.member_id,
        status: found.status,
        events_total: found.events_total,
        events_checked: found.events_checked,
        broken_links: found
            .broken_links
            .0
            .into_iter()
            .map(|b| BrokenLink {
                aggregate_type: b.aggregate_type,
                aggregate_id: b.aggregate_id,
                sequence: b.sequence,
            })
            .collect(),
        requested_by: found.requested_by,
        started_at: found.started_at,
        finished_at: found.finished_at,
        error: found.error,
    }))
}
