//! `GET /v1/members/{id}/compliance`: a member's quarterly standing from the views — one
//! quarter, or every quarter since enrolment — judged under the rules known when the rows
//! were folded, and saying so when newer rules govern a quarter (`stale`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::{local_date, MemberId, Quarter};
use studyledger_projections::fold::QuarterCompliance;
use studyledger_projections::sql::members;

use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::access;
use crate::http::answer::FromViews;
use crate::http::auth::Caller;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::skipped_events;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(compliance))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// One quarter (`YYYY-Qn`); without it, every quarter since enrolment.
    #[param(value_type = Option<String>)]
    quarter: Option<Quarter>,
    /// Wait (up to 2 s) until the views hold the event at this position.
    min_position: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OneQuarter {
    member_id: MemberId,
    #[serde(flatten)]
    quarter: QuarterCompliance,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AllQuarters {
    member_id: MemberId,
    quarters: Vec<QuarterCompliance>,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

/// `GET /v1/members/{id}/compliance[?quarter=]`: one quarter (`OneQuarter`), or every quarter
/// since enrolment (`AllQuarters`); `x-views-behind: true` when the views had not caught up.
#[utoipa::path(get, path = "/v1/members/{member_id}/compliance", operation_id = "member_compliance", tag = "members",
    params(("member_id" = MemberId, Path), ComplianceQuery),
    responses(
        (status = 200, body = OneQuarter, description = "one quarter, or `{member_id, quarters[]}` (AllQuarters) without `quarter`"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiQuery(query): ApiQuery<ComplianceQuery>,
) -> Result<Response, ApiError> {
    access::member(&state, &caller, member_id).await?;
    let views = consistency::views(&state, query.min_position).await?;
    let caught_up = views.caught_up;
    let ledger = state.ledger();
    let Some((member, stored)) = members::member(&views.pool, member_id.uuid()).await? else {
        // Perhaps enrolled a moment ago, and the views have not caught up: say so.
        let answer = ApiError::NotFound(format!("member {member_id} is not enrolled"));
        return Ok(FromViews { answer, caught_up }.into_response());
    };
    let rulesets = ledger.rulesets().await?;
    let today = local_date(Utc::now(), ledger.tz());
    let row =
        |q: Quarter| member.judge(q, stored.iter().find(|s| s.quarter == q), &rulesets, today);
    access::log_read(&state, &caller, vec![member_id.uuid()]).await?;
    let incomplete = skipped_events::incomplete(&state, member_id).await?;
    let answer = match query.quarter {
        Some(quarter) => Json(OneQuarter {
            member_id,
            quarter: row(quarter),
            incomplete,
        })
        .into_response(),
        None => Json(AllQuarters {
            member_id,
            quarters: Quarter::of_date(member.enrolled_on)
                .through(Quarter::of_date(today))
                .map(row)
                .collect(),
            incomplete,
        })
        .into_response(),
    };
    Ok(FromViews { answer, caught_up }.into_response())
}
