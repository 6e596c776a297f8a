//! `POST /v1/members/{id}/credit-adjustments` (rule 3): an administrator adds or removes hours
//! in one category, with a reason, counted in the quarter of `effective_at`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::member::command::AdjustCredit;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{Category, Hours, MemberId, Quarter, Reason};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, ApiPath, Rfc3339};
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(adjust))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    adjustment_id: Uuid,
    #[schema(value_type = Category)]
    category: String,
    /// ± class hours, not 0, at most 1000, at most two decimals.
    #[schema(value_type = f64, minimum = -1000, maximum = 1000, multiple_of = 0.01)]
    hours: Box<RawValue>,
    effective_at: Rfc3339,
    #[schema(value_type = Reason)]
    reason: String,
    appeal_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Adjusted {
    member_id: MemberId,
    adjustment_id: Uuid,
    category: Category,
    hours: Hours,
    effective_at: DateTime<Utc>,
    quarter: Quarter,
    reason: String,
    appeal_id: Option<Uuid>,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/credit-adjustments` (rule 3).
#[utoipa::path(post, path = "/v1/members/{member_id}/credit-adjustments", tag = "appeals",
    params(("member_id" = MemberId, Path)),
    request_body = Adjust,
    responses(
        (status = 201, body = Adjusted),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn adjust(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<Adjust>,
) -> Result<Created<Adjusted>, ApiError> {
    let category = extract::category("category", &body.category)?;
    let hours = extract::hours("hours", &body.hours)?;
    access::member(&state, &caller, member_id).await?;
    let ledger = state.ledger();
    let adjustment_id = body.adjustment_id;
    let command = MemberCommand::AdjustCredit(AdjustCredit {
        adjustment_id,
        category,
        hours,
        effective_at: body.effective_at.0,
        reason: extract::text("reason", body.reason)?,
        appeal_id: body.appeal_id,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            m.adjustment(adjustment_id).map(|a| (a.sequence, a.clone()))
        })
        .await?;
    let adjustment = fact.value;
    Ok(Created(Adjusted {
        member_id,
        adjustment_id,
        category: adjustment.category,
        hours: adjustment.hours,
        effective_at: adjustment.effective_at,
        quarter: Quarter::of_instant(adjustment.effective_at, ledger.tz()),
        reason: adjustment.reason.into_string(),
        appeal_id: adjustment.appeal_id,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
