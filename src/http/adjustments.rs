//! `POST /v1/members/{id}/credit-adjustments` (rule 3): an administrator adds or removes hours
//! in one category, with a reason, counted in the quarter of `effective_at`.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::member::command::AdjustCredit;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{Category, Hours, MemberId, Quarter};
use uuid::Uuid;

use crate::http::answer::Created;
use crate::http::error::ApiError;
use crate::http::extract::{self, Admin, ApiJson, ApiPath, Rfc3339};
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/members/{member_id}/credit-adjustments", post(adjust))
}

#[derive(Deserialize)]
pub struct Adjust {
    adjustment_id: Uuid,
    category: String,
    hours: Box<RawValue>,
    effective_at: Rfc3339,
    reason: String,
    appeal_id: Option<Uuid>,
}

#[derive(Serialize)]
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

async fn adjust(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<MemberId>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<Adjust>,
) -> Result<Created<Adjusted>, ApiError> {
    let category = extract::category("category", &body.category)?;
    let hours = extract::hours("hours", &body.hours)?;
    let ledger = state.ledger();
    let adjustment_id = body.adjustment_id;
    let command = MemberCommand::AdjustCredit(AdjustCredit {
        adjustment_id,
        category,
        hours,
        effective_at: body.effective_at.0,
        reason: body.reason,
        appeal_id: body.appeal_id,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &meta, |m| {
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
        reason: adjustment.reason,
        appeal_id: adjustment.appeal_id,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
