//! `GET /v1/members/{id}/compliance`: a member's quarterly standing from the views — one
//! quarter, or every quarter since enrolment — judged under the rules known when the rows
//! were folded, and saying so when newer rules govern a quarter (`stale`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::{local_date, MemberId, Quarter};
use studyledger_projections::fold::QuarterCompliance;
use studyledger_projections::sql::members;

use crate::http::answer::FromViews;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/members/{member_id}/compliance", get(compliance))
}

#[derive(Deserialize)]
pub struct ComplianceQuery {
    quarter: Option<Quarter>,
    min_position: Option<i64>,
}

#[derive(Serialize)]
pub struct OneQuarter {
    member_id: MemberId,
    #[serde(flatten)]
    quarter: QuarterCompliance,
}

#[derive(Serialize)]
pub struct AllQuarters {
    member_id: MemberId,
    quarters: Vec<QuarterCompliance>,
}

async fn compliance(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiQuery(query): ApiQuery<ComplianceQuery>,
) -> Result<Response, ApiError> {
    let caught_up = consistency::wait_for_views(&state, query.min_position).await?;
    let ledger = state.ledger();
    let Some((member, stored)) = members::member(ledger.pool(), member_id.uuid()).await? else {
        // Perhaps enrolled a moment ago, and the views have not caught up: say so.
        let answer = ApiError::NotFound(format!("member {member_id} is not enrolled"));
        return Ok(FromViews { answer, caught_up }.into_response());
    };
    let rulesets = ledger.rulesets().await?;
    let today = local_date(Utc::now(), ledger.tz());
    let row =
        |q: Quarter| member.judge(q, stored.iter().find(|s| s.quarter == q), &rulesets, today);
    let answer = match query.quarter {
        Some(quarter) => Json(OneQuarter {
            member_id,
            quarter: row(quarter),
        })
        .into_response(),
        None => Json(AllQuarters {
            member_id,
            quarters: Quarter::of_date(member.enrolled_on)
                .through(Quarter::of_date(today))
                .map(row)
                .collect(),
        })
        .into_response(),
    };
    Ok(FromViews { answer, caught_up }.into_response())
}
