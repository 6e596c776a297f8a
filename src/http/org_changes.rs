//! Changes to an organisation of the tree: `POST /v1/orgs/{org_id}/renames` (roll-ups and lists
//! show the name of today; `GET /v1/orgs/{org_id}/names` shows every name and since when),
//! `POST /v1/orgs/{org_id}/closures`, `POST /v1/orgs/{org_id}/merges` and
//! `POST /v1/orgs/{org_id}/moves`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::organisation::{
    Closure, Move, Organisation, OrganisationCommand, OrganisationEvent, Rename,
};
use studyledger_aggregates::values::{Name, OrgId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson, ApiPath, CalendarDate};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::streams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rename))
        .routes(routes!(names))
        .routes(routes!(close))
        .routes(routes!(merge))
        .routes(routes!(move_under))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseOrg {
    /// The client's id of this closing: a resend records nothing.
    closure_id: Uuid,
    /// The first day nobody belongs to the organisation.
    #[schema(value_type = String, format = Date)]
    closed_on: CalendarDate,
    reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeOrg {
    /// The client's id of this merge: a resend transfers nobody twice and records nothing new.
    merge_id: Uuid,
    /// Where the members go.
    into_org_id: OrgId,
    /// The first day they belong there, and the organisation's closing day.
    #[schema(value_type = String, format = Date)]
    merged_on: CalendarDate,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgClosed {
    org_id: OrgId,
    closure_id: Uuid,
    closed_on: NaiveDate,
    reason: String,
    merged_into: Option<OrgId>,
    /// Members a merge transferred by this request (0 for a closing, or a resend).
    transferred: usize,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/orgs/{org_id}/closures`: the organisation closes from `closed_on` on. Refused
/// (409) while anyone belongs to it on that day or later, or a child of it is open; once
/// closed, it takes no new members, transfers, rejoinings or children (409).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/closures", tag = "organisations",
    params(("org_id" = OrgId, Path)),
    request_body = CloseOrg,
    responses(
        (status = 201, body = OrgClosed),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn close(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiJson(body): ApiJson<CloseOrg>,
) -> Result<Created<OrgClosed>, ApiError> {
    let closure = Closure {
        closure_id: body.closure_id,
        closed_on: body.closed_on.within_ledger_years("closed_on")?,
        reason: text("reason", body.reason)?,
        merged_into: None,
    };
    closing(&state, &caller, org_id, closure).await
}

/// `POST /v1/orgs/{org_id}/merges`: everyone who belongs to the organisation on `merged_on`
/// or later is transferred to `into_org_id` from that day (or from the day they arrive, when
/// later), then the organisation closes on `merged_on`. Refused while a child of it is open.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/merges", tag = "organisations",
    params(("org_id" = OrgId, Path)),
    request_body = MergeOrg,
    responses(
        (status = 201, body = OrgClosed),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiJson(body): ApiJson<MergeOrg>,
) -> Result<Created<OrgClosed>, ApiError> {
    let closure = Closure {
        closure_id: body.merge_id,
        closed_on: body.merged_on.within_ledger_years("merged_on")?,
        reason: text("reason", body.reason)?,
        merged_into: Some(body.into_org_id),
    };
    closing(&state, &caller, org_id, closure).await
}

async fn closing(
    state: &AppState,
    caller: &Caller,
    org_id: OrgId,
    closure: Closure,
) -> Result<Created<OrgClosed>, ApiError> {
    let closed = state
        .ledger()
        .close_organisation(&org_id, closure.clone(), &caller.metadata())
        .await?;
    Ok(Created(OrgClosed {
        org_id,
        closure_id: closure.closure_id,
        closed_on: closure.closed_on,
        reason: closure.reason.to_string(),
        merged_into: closure.merged_into,
        transferred: closed.transferred,
        sequence: closed.fact.sequence,
        position: closed.fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveOrg {
    /// The client's id of this move: a resend records nothing.
    move_id: Uuid,
    /// The organisation the subtree lies under from `moved_on` on.
    parent_id: OrgId,
    /// A quarter's first day, no later than the current quarter's.
    #[schema(value_type = String, format = Date)]
    moved_on: CalendarDate,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgMoved {
    org_id: OrgId,
    #[serde(flatten)]
    to: Move,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/orgs/{org_id}/moves`: the organisation, with its whole subtree, lies under
/// `parent_id` from `moved_on` (a quarter's first day, no later than the current quarter's)
/// on. Roll-ups and lists of quarters before it keep counting members where they belonged
/// then (rule 7); from that quarter on they count under the new parent. Refused when the new
/// parent is unknown or lies inside the subtree (422), is closed, or when a move of the
/// subtree or above the new parent takes effect after `moved_on` (409).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/moves", tag = "organisations",
    params(("org_id" = OrgId, Path)),
    request_body = MoveOrg,
    responses(
        (status = 201, body = OrgMoved),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn move_under(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiJson(body): ApiJson<MoveOrg>,
) -> Result<Created<OrgMoved>, ApiError> {
    let to = Move {
        move_id: body.move_id,
        parent_id: body.parent_id,
        moved_on: body.moved_on.within_ledger_years("moved_on")?,
        reason: text("reason", body.reason)?,
    };
    let fact = state
        .ledger()
        .move_organisation(&org_id, to.clone(), &caller.metadata())
        .await?;
    Ok(Created(OrgMoved {
        org_id,
        to,
        sequence: fact.sequence,
        position: fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameOrg {
    /// The client's id of this rename: a resend records nothing.
    rename_id: Uuid,
    #[schema(value_type = Name)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgRenamed {
    org_id: OrgId,
    rename_id: Uuid,
    name: Name,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/orgs/{org_id}/renames`: the organisation's name from now on.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/renames", tag = "organisations",
    params(("org_id" = OrgId, Path)),
    request_body = RenameOrg,
    responses(
        (status = 201, body = OrgRenamed),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiJson(body): ApiJson<RenameOrg>,
) -> Result<Created<OrgRenamed>, ApiError> {
    let rename = Rename {
        rename_id: body.rename_id,
        name: text("name", body.name)?,
    };
    let command = OrganisationCommand::Rename(rename.clone());
    let fact = state
        .ledger()
        .record::<Organisation, _>(org_id.as_str(), command, &caller.metadata(), |org| {
            org.renames()
                .find(|(_, r)| r.rename_id == rename.rename_id)
                .map(|(sequence, _)| (sequence, ()))
        })
        .await?;
    Ok(Created(OrgRenamed {
        org_id,
        rename_id: rename.rename_id,
        name: rename.name,
        sequence: fact.sequence,
        position: fact.position,
    }))
}

/// A name the organisation held, from when it was recorded.
#[derive(Serialize, ToSchema)]
pub struct OrgName {
    name: Name,
    since: DateTime<Utc>,
    sequence: usize,
}

/// `GET /v1/orgs/{org_id}/names`: every name of the organisation, oldest first, each since
/// the moment the ledger recorded it (the registration, then each rename).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/names", tag = "organisations",
    params(("org_id" = OrgId, Path)),
    responses(
        (status = 200, body = Vec<OrgName>),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn names(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
) -> Result<Json<Vec<OrgName>>, ApiError> {
    access::organisation(&state, &caller, &org_id).await?;
    let events = streams::organisation_stream(state.ledger().pool(), org_id.as_str()).await?;
    let names: Vec<OrgName> = events
        .into_iter()
        .filter_map(|(sequence, payload, since)| {
            let name = match serde_json::from_str(&payload).ok()? {
                OrganisationEvent::OrganisationRegistered(record) => record.name,
                OrganisationEvent::OrganisationRenamed(rename) => rename.name,
                OrganisationEvent::OrganisationClosed(_)
                | OrganisationEvent::OrganisationMoved(_) => return None,
            };
            Some(OrgName {
                name,
                since,
                sequence: usize::try_from(sequence).ok()?,
            })
        })
        .collect();
    if names.is_empty() {
        return Err(ApiError::NotFound(format!(
            "organisation {org_id} is not registered"
        )));
    }
    Ok(Json(names))
}
