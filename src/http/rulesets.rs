//! `/v1/rulesets`: publishing a ruleset (rule 5) and listing every version. Publishing never
//! edits history: views computed under older rules say so (`stale`) until a replay rebuilds
//! them. Administrators only.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::rulebook::{RuleBook, RuleBookCommand, RuleBookEvent, RULEBOOK_ID};
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::values::{Hours, Quarter};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::record::Recorded;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(publish, list))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// Higher than every version published before.
    #[schema(minimum = 1, maximum = 2147483647)]
    version: u32,
    effective_from: Quarter,
    #[schema(value_type = f64, minimum = 0, maximum = 1000, multiple_of = 0.01)]
    required_hours: Box<RawValue>,
    #[schema(value_type = f64, minimum = 0, maximum = 1000, multiple_of = 0.01)]
    elective_hours: Box<RawValue>,
    excess_required_counts_as_elective: bool,
    enforce_min_study_time: bool,
}

/// A published ruleset, with who published it when.
#[derive(Serialize, ToSchema)]
pub struct Published {
    version: u32,
    effective_from: Quarter,
    required_hours: Hours,
    elective_hours: Hours,
    excess_required_counts_as_elective: bool,
    enforce_min_study_time: bool,
    published_at: DateTime<Utc>,
    published_by: Option<String>,
    position: i64,
}

impl Published {
    /// The ruleset an event of the rule book published (none when the event cannot be read).
    fn of(recorded: &Recorded<RuleBookEvent>) -> Option<Published> {
        let RuleBookEvent::RulesetPublished(ruleset) = recorded.event.as_ref()?;
        Some(Published {
            version: ruleset.version,
            effective_from: ruleset.effective_from,
            required_hours: ruleset.required_hours,
            elective_hours: ruleset.elective_hours,
            excess_required_counts_as_elective: ruleset.excess_required_counts_as_elective,
            enforce_min_study_time: ruleset.enforce_min_study_time,
            published_at: recorded.recorded_at,
            published_by: recorded.actor().map(str::to_owned),
            position: recorded.position,
        })
    }
}

/// `POST /v1/rulesets`: publish a new version (it must exceed every earlier one).
#[utoipa::path(post, path = "/v1/rulesets", tag = "rules",
    request_body = Publish,
    responses(
        (status = 201, body = Published),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Publish>,
) -> Result<Created<Published>, ApiError> {
    let ruleset = Ruleset {
        version: body.version,
        effective_from: body.effective_from,
        required_hours: extract::hours("required_hours", &body.required_hours)?,
        elective_hours: extract::hours("elective_hours", &body.elective_hours)?,
        excess_required_counts_as_elective: body.excess_required_counts_as_elective,
        enforce_min_study_time: body.enforce_min_study_time,
    };
    let ledger = state.ledger();
    let command = RuleBookCommand::Publish(ruleset.clone());
    ledger
        .execute::<RuleBook, _>(RULEBOOK_ID, command, &caller.metadata(), |_| ())
        .await?;
    // Answer from the log, so that a resend answers exactly as the first request did.
    let history = ledger.history::<RuleBook>(RULEBOOK_ID, None).await?;
    let published = history
        .iter()
        .filter_map(Published::of)
        .find(|p| p.version == ruleset.version)
        .ok_or(ApiError::Internal)?;
    Ok(Created(published))
}

/// `GET /v1/rulesets`: every published version (an array), in version order, with who
/// published it when.
#[utoipa::path(get, path = "/v1/rulesets", operation_id = "list_rulesets", tag = "rules",
    responses(
        (status = 200, body = Vec<Published>),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<Published>>, ApiError> {
    let history = state
        .ledger()
        .history::<RuleBook>(RULEBOOK_ID, None)
        .await?;
    Ok(Json(history.iter().filter_map(Published::of).collect()))
}
