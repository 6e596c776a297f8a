//! `/xapi/activities` and `/xapi/agents`: what the Learning Record Store knows of an activity
//! (its definition merged from the statements about it) and of an agent (a Person object
//! of its identifiers and name), xAPI 2.0 part 3, §2.4–2.5.

use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use studyledger_xapi::{definition, validate};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;

use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::http::xapi::{agent_param, versioned};
use crate::store::statements;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activity))
        .routes(routes!(person))
        .layer(axum::middleware::from_fn(versioned))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// The activity's IRI.
    #[serde(rename = "activityId")]
    #[param(rename = "activityId")]
    activity_id: String,
}

/// How many of the newest statements about an activity its definition is merged from: the
/// read stays one bounded range of the key index however busy the activity is, and a
/// definition older than that many statements has had its chance to be restated.
const DEFINITIONS_READ: i64 = 50;

/// `GET /xapi/activities`: the activity with the definitions the newest statements about it
/// gave, merged (`definition::merged`: names and descriptions per language, the rest from the
/// newest); only its id when no statement defined it.
#[utoipa::path(get, path = "/xapi/activities", operation_id = "xapi_get_activity", tag = "xapi",
    params(ActivityParams),
    responses(
        (status = 200, description = "an Activity object"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["ingest", "admin", "auditor"])))]
async fn activity(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ActivityParams>,
) -> Result<Json<Value>, ApiError> {
    let id = params.activity_id;
    if !validate::is_iri(&id) {
        return Err(ApiError::Malformed("activityId must be an IRI".to_owned()));
    }
    let key = format!("activity:{id}");
    let mut definitions =
        statements::definitions_with_key(state.ledger().pool(), &key, DEFINITIONS_READ).await?;
    definitions.reverse();
    let mut activity = json!({"objectType": "Activity", "id": id});
    if let Some(definition) = definition::merged(&definitions) {
        activity["definition"] = Value::Object(definition);
    }
    Ok(Json(activity))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentParams {
    /// The agent, as JSON.
    agent: String,
}

/// `GET /xapi/agents`: the Person the agent is, as far as the LRS knows: its name and its
/// identifier, each in a list.
#[utoipa::path(get, path = "/xapi/agents", operation_id = "xapi_get_person", tag = "xapi",
    params(AgentParams),
    responses(
        (status = 200, description = "a Person object"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
    ),
    security(("bearer" = ["ingest", "admin", "auditor"])))]
async fn person(ApiQuery(params): ApiQuery<AgentParams>) -> Result<Json<Value>, ApiError> {
    let (agent, _) = agent_param(&params.agent)?;
    if agent.get("objectType").and_then(Value::as_str) == Some("Group") {
        return Err(ApiError::Malformed(
            "agent must be an agent, not a group".to_owned(),
        ));
    }
    let mut person = Map::new();
    person.insert("objectType".to_owned(), json!("Person"));
    for key in ["name", "mbox", "mbox_sha1sum", "openid", "account"] {
        if let Some(value) = agent.get(key) {
            person.insert(key.to_owned(), json!([value]));
        }
    }
    Ok(Json(Value::Object(person)))
}
