//! `/v1/orgs` and `/v1/orgs/{id}`: the organisation tree, one level at a time — the roots, and
//! a node with its path from the root and a page of its children — so that a national tree is
//! walked a node at a time (the dashboard's drill-down).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::organisation::{Move, OrganisationEvent};
use studyledger_aggregates::values::OrgId;
use studyledger_projections::sql::orgs::{children, names, node};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::access;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::streams;
use crate::store::tokens::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(roots))
        .routes(routes!(organisation))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChildrenQuery {
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The last organisation id of the page before.
    #[param(value_type = Option<OrgId>)]
    cursor: Option<OrgId>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgName {
    org_id: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Roots {
    orgs: Vec<OrgName>,
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgNode {
    org_id: String,
    name: String,
    parent_id: Option<String>,
    /// The first day nobody belongs to it, once closed.
    closed_on: Option<chrono::NaiveDate>,
    /// Where a merge sent its members.
    merged_into: Option<String>,
    /// Its moves under other parents, oldest first (the parent before the first is the one it
    /// was registered under). Empty for an organisation's administrator, who sees nothing
    /// above their subtree.
    moves: Vec<Move>,
    /// From the root (or, for an organisation's administrator, from the top of their
    /// subtree) down to the organisation itself.
    path: Vec<OrgName>,
    children: Vec<OrgName>,
    next_cursor: Option<String>,
}

/// A page of `(id, name)` pairs and where the next one starts.
fn page(rows: Vec<(String, String)>, limit: i64) -> (Vec<OrgName>, Option<String>) {
    let next = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|(id, _)| id.clone()))
        .flatten();
    let orgs = rows
        .into_iter()
        .map(|(org_id, name)| OrgName { org_id, name })
        .collect();
    (orgs, next)
}

/// `GET /v1/orgs`: the roots of the tree, in id order.
#[utoipa::path(get, path = "/v1/orgs", operation_id = "list_root_orgs", tag = "organisations",
    params(ChildrenQuery),
    responses((status = 200, body = Roots), doc::ReadRefusals),
    security(("bearer" = ["admin", "auditor"])))]
async fn roots(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChildrenQuery>,
) -> Result<Json<Roots>, ApiError> {
    let limit = page_limit(query.limit, 100, 500)?;
    let after = query.cursor.as_ref().map(OrgId::as_str);
    let rows = children(state.ledger().pool(), None, after, limit).await?;
    let (orgs, next_cursor) = page(rows, limit);
    Ok(Json(Roots { orgs, next_cursor }))
}

/// `GET /v1/orgs/{id}`: the organisation, its path from the root and a page of its children.
#[utoipa::path(get, path = "/v1/orgs/{org_id}", operation_id = "show_org", tag = "organisations",
    params(("org_id" = OrgId, Path), ChildrenQuery),
    responses((status = 200, body = OrgNode), doc::ReadRefusals),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn organisation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiQuery(query): ApiQuery<ChildrenQuery>,
) -> Result<Json<OrgNode>, ApiError> {
    let limit = page_limit(query.limit, 100, 500)?;
    access::organisation(&state, &caller, &org_id).await?;
    let pool = state.ledger().pool();
    let found = node(pool, org_id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organisation {org_id} is not registered")))?;
    let mut path = found.path.clone();
    if caller.role() == Role::OrgAdmin {
        // Above their subtree an administrator sees nothing, names included.
        let top = caller.principal.org.as_ref().map(OrgId::as_str);
        let start = path
            .iter()
            .position(|o| Some(o.as_str()) == top)
            .unwrap_or(0);
        path.drain(..start);
    }
    let moves = match caller.role() {
        Role::OrgAdmin => Vec::new(),
        _ => moves_of(&state, &org_id).await?,
    };
    let mut named = names(pool, &path).await?;
    named.sort_by_key(|(id, _)| path.iter().position(|p| p == id));
    let after = query.cursor.as_ref().map(OrgId::as_str);
    let rows = children(pool, Some(org_id.as_str()), after, limit).await?;
    let (children, next_cursor) = page(rows, limit);
    Ok(Json(OrgNode {
        org_id: found.org_id,
        name: found.name,
        parent_id: found.parent_id,
        closed_on: found.closed_on,
        merged_into: found.merged_into,
        moves,
        path: named
            .into_iter()
            .map(|(org_id, name)| OrgName { org_id, name })
            .collect(),
        children,
        next_cursor,
    }))
}

/// The organisation's moves, from its stream.
async fn moves_of(state: &AppState, org_id: &OrgId) -> Result<Vec<Move>, ApiError> {
    let events = streams::organisation_stream(state.ledger().pool(), org_id.as_str()).await?;
    Ok(events
        .into_iter()
        .filter_map(
            |(_, payload, _)| match serde_json::from_str(&payload).ok()? {
                OrganisationEvent::OrganisationMoved(to) => Some(to),
                _ => None,
            },
        )
        .collect())
}
