//! What xAPI statements became on the ledger: `GET /v1/statement-mappings` is the review list
//! (statements refused by the rules, unreadable as facts, or waiting for their member or
//! activity), and `POST /v1/statement-mappings/remaps` maps the waiting ones again — which
//! also happens by itself when a member enrols or an activity is linked.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::MemberId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, ApiJson, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::feed::{self, FeedError, Remapped};
use crate::store::mappings::{self, Outcome, Waiting};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(remap))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One outcome; default: those to review (`refused`, `unreadable`, `unknown_member`,
    /// `unknown_activity`).
    outcome: Option<Outcome>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

/// One statement's mapping.
#[derive(Serialize, ToSchema)]
pub struct Listed {
    statement_id: Uuid,
    outcome: Outcome,
    member_id: Option<Uuid>,
    activity_id: Option<String>,
    reason: Option<String>,
    /// The sessions and completions it became (or, for a voiding, withdrew).
    facts: Vec<Uuid>,
    mapped_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MappingsPage {
    /// In the order the statements were stored.
    statement_mappings: Vec<Listed>,
    next_cursor: Option<i64>,
}

/// `GET /v1/statement-mappings?outcome=&limit=&cursor=`: the review list of statements whose
/// facts are not on the ledger, and why; oldest first.
#[utoipa::path(get, path = "/v1/statement-mappings", operation_id = "list_statement_mappings", tag = "xapi",
    params(ListQuery),
    responses(
        (status = 200, body = MappingsPage),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<MappingsPage>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    let after = query.cursor.unwrap_or(0);
    let page = mappings::page(state.ledger().pool(), query.outcome, after, limit).await?;
    access::log_read(
        &state,
        &caller,
        page.iter().filter_map(|m| m.member_id).collect(),
    )
    .await?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(|m| m.seq))
        .flatten();
    Ok(Json(MappingsPage {
        statement_mappings: page
            .into_iter()
            .map(|m| Listed {
                statement_id: m.statement_id,
                outcome: m.outcome,
                member_id: m.member_id,
                activity_id: m.activity_id,
                reason: m.reason,
                facts: m.facts,
                mapped_at: m.mapped_at,
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Remap {
    /// Only the statements waiting for this member.
    member_id: Option<MemberId>,
    /// Only the statements waiting for this activity.
    activity_id: Option<String>,
}

/// `POST /v1/statement-mappings/remaps`: maps again the statements waiting for a member or an
/// activity (or all waiting ones, with an empty body), each exactly once.
#[utoipa::path(post, path = "/v1/statement-mappings/remaps", operation_id = "remap_statements", tag = "xapi",
    request_body = Remap,
    responses(
        (status = 200, body = Remapped),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn remap(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Remap>,
) -> Result<Json<Remapped>, ApiError> {
    let which = match (body.member_id, body.activity_id) {
        (Some(member), None) => Waiting::Member(member.uuid()),
        (None, Some(activity)) => Waiting::Activity(activity),
        (None, None) => Waiting::All,
        (Some(_), Some(_)) => {
            return Err(ApiError::Malformed(
                "name member_id or activity_id, not both".to_owned(),
            ))
        }
    };
    let done = feed::remap(state.ledger(), &caller.metadata(), &which)
        .await
        .map_err(feed_error)?;
    Ok(Json(done))
}

/// Maps the statements waiting for a registration that just arrived. The registration stands
/// whatever happens here: a failure is logged, and the statements wait for the next remap.
pub async fn map_waiting(state: &AppState, caller: &Caller, which: Waiting) -> Remapped {
    match feed::remap(state.ledger(), &caller.metadata(), &which).await {
        Ok(done) => done,
        Err(error) => {
            tracing::warn!(%error, ?which, "statements waiting for a registration stay waiting");
            Remapped::default()
        }
    }
}

fn feed_error(error: FeedError) -> ApiError {
    match error {
        FeedError::Store(e) => e.into(),
        FeedError::Statements(e) => ApiError::Conflict(e.to_string()),
        FeedError::Contention => ApiError::Busy,
    }
}
