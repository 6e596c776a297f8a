//! Changes to an organisation of the tree: `POST /v1/orgs/{org_id}/renames` (roll-ups and lists
//! show the name of today; `GET /v1/orgs/{org_id}/names` shows every name and since when),
//! `POST /v1/orgs/{org_id}/closures` and `POST /v1/orgs/{org_id}/merges`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::organisation::{
    Closure, Organisation, OrganisationCommand, OrganisationEvent, Rename,
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
                OrganisationEvent::OrganisationClosed(_) => return None,
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
