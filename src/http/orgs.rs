//! `POST /v1/orgs`: register a node of the organisation tree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::organisation::{Organisation, OrganisationCommand, OrganisationRecord};

use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, RequestMeta};
use crate::http::AppState;

#[derive(Deserialize)]
pub struct RegisterOrg {
    org_id: String,
    name: String,
    parent_id: Option<String>,
}

pub async fn register(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RegisterOrg>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let record = OrganisationRecord {
        org_id: extract::slug("org_id", &body.org_id)?,
        name: body.name,
        parent_id: body
            .parent_id
            .as_deref()
            .map(|p| extract::slug("parent_id", p))
            .transpose()?,
    };
    let ledger = state.ledger();
    if let Some(parent) = &record.parent_id {
        if parent != &record.org_id
            && ledger
                .read_immutable::<Organisation>(parent.as_str())
                .await?
                .record()
                .is_none()
        {
            return Err(ApiError::RuleViolation(format!(
                "parent organisation {parent} is not registered"
            )));
        }
    }
    let org_id = record.org_id.to_string();
    let executed = ledger
        .execute::<Organisation, _>(
            &org_id,
            OrganisationCommand::Register(record.clone()),
            &meta,
            |_| (),
        )
        .await?;
    let position = ledger
        .position_after::<Organisation>(&org_id, &executed.appended, 1)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "org_id": record.org_id,
            "name": record.name,
            "parent_id": record.parent_id,
            "position": position,
        })),
    ))
}
