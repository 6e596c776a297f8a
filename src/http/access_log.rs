//! `GET /v1/access-log`: who read whose record — for auditors, and for a member about their
//! own record.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::MemberId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, ApiQuery, Rfc3339};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::access_log::{self, Filter};
use crate::store::tokens::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(entries))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    /// Reads of this member's record (a member must give their own id).
    #[param(value_type = Option<String>, format = Uuid)]
    member_id: Option<MemberId>,
    /// Reads by this token.
    token_id: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<Rfc3339>,
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<Rfc3339>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Entry {
    entry_id: i64,
    read_at: DateTime<Utc>,
    /// Who read: the token's id, role and name.
    token_id: String,
    role: String,
    name: String,
    route: String,
    request_id: String,
    member_ids: Vec<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Entries {
    entries: Vec<Entry>,
    next_cursor: Option<i64>,
}

/// `GET /v1/access-log?member_id=&token_id=&since=&until=`: recorded reads, newest first.
#[utoipa::path(get, path = "/v1/access-log", tag = "audit",
    params(AccessLogQuery),
    responses(
        (status = 200, body = Entries),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin", "auditor", "member"])))]
async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AccessLogQuery>,
) -> Result<Json<Entries>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    if caller.role() == Role::Member
        && !query
            .member_id
            .is_some_and(|m| caller.principal.is_member(m))
    {
        return Err(ApiError::Forbidden);
    }
    let filter = Filter {
        member_id: query.member_id.map(MemberId::uuid),
        token_id: query.token_id,
        since: query.since.map(|t| t.0),
        until: query.until.map(|t| t.0),
        before: query.cursor,
    };
    let found = access_log::entries(state.ledger().pool(), &filter, limit).await?;
    let next_cursor = (i64::try_from(found.len()).unwrap_or(0) == limit)
        .then(|| found.last().map(|e| e.entry_id))
        .flatten();
    Ok(Json(Entries {
        entries: found
            .into_iter()
            .map(|e| Entry {
                entry_id: e.entry_id,
                read_at: e.read_at,
                token_id: e.token_id,
                role: e.role,
                name: e.name,
                route: e.route,
                request_id: e.request_id,
                member_ids: e.member_ids,
            })
            .collect(),
        next_cursor,
    }))
}
