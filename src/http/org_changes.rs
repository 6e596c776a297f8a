//! Changes to an organisation of the tree: `POST /v1/orgs/{org_id}/renames`. Roll-ups and lists
//! show the name of today; `GET /v1/orgs/{org_id}/names` shows every name and since when.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::organisation::{
    Organisation, OrganisationCommand, OrganisationEvent, Rename,
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
use crate::http::extract::{text, ApiJson, ApiPath};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::streams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rename))
        .routes(routes!(names))
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
