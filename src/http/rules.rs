//! Rules and evaluations: publishing a ruleset (rule 5), listing them, and defining a merit
//! evaluation's quarters (rule 8). Administrators only (see [`Admin`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use studyledger_aggregates::evaluation::{Evaluation, EvaluationCommand, EvaluationRecord};
use studyledger_aggregates::rulebook::{RuleBook, RuleBookCommand, RULEBOOK_ID};
use studyledger_aggregates::rules::rulesets::Ruleset;

use crate::http::error::ApiError;
use crate::http::extract::{self, Admin, ApiJson};
use crate::http::AppState;
use crate::store::Recorded;

#[derive(Deserialize)]
pub struct PublishRuleset {
    version: u32,
    effective_from: String,
    required_hours: Box<RawValue>,
    elective_hours: Box<RawValue>,
    excess_required_counts_as_elective: bool,
    enforce_min_study_time: bool,
}

fn ruleset_json(ruleset: &Ruleset) -> Value {
    json!({
        "version": ruleset.version,
        "effective_from": ruleset.effective_from,
        "required_hours": ruleset.required_hours,
        "elective_hours": ruleset.elective_hours,
        "excess_required_counts_as_elective": ruleset.excess_required_counts_as_elective,
        "enforce_min_study_time": ruleset.enforce_min_study_time,
    })
}

fn published_json(recorded: &Recorded<studyledger_aggregates::rulebook::RuleBookEvent>) -> Value {
    let studyledger_aggregates::rulebook::RuleBookEvent::RulesetPublished(ruleset) =
        &recorded.event;
    let mut body = ruleset_json(ruleset);
    body["published_at"] = json!(recorded.recorded_at);
    body["published_by"] = recorded.metadata["actor"].clone();
    body["position"] = json!(recorded.position);
    body
}

/// `POST /v1/rulesets`: publish a new version. Publishing never edits history: views computed
/// under older rules say so (`stale`) until a replay rebuilds them.
pub async fn publish(
    State(state): State<AppState>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<PublishRuleset>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ruleset = Ruleset {
        version: body.version,
        effective_from: extract::quarter("effective_from", &body.effective_from)?,
        required_hours: extract::hours("required_hours", &body.required_hours)?,
        elective_hours: extract::hours("elective_hours", &body.elective_hours)?,
        excess_required_counts_as_elective: body.excess_required_counts_as_elective,
        enforce_min_study_time: body.enforce_min_study_time,
    };
    let ledger = state.ledger();
    ledger
        .execute::<RuleBook, _>(
            RULEBOOK_ID,
            RuleBookCommand::Publish(ruleset.clone()),
            &meta,
            |_| (),
        )
        .await?;
    // Answer from the log, so that a resend answers exactly as the first request did.
    let history = ledger.history::<RuleBook>(RULEBOOK_ID, None).await?;
    let recorded = history
        .iter()
        .find(|r| {
            let studyledger_aggregates::rulebook::RuleBookEvent::RulesetPublished(published) =
                &r.event;
            published == &ruleset
        })
        .ok_or(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(published_json(recorded))))
}

/// `GET /v1/rulesets`: every published version (an array), in version order, with who
/// published it when.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let history = state
        .ledger()
        .history::<RuleBook>(RULEBOOK_ID, None)
        .await?;
    Ok(Json(Value::Array(
        history.iter().map(published_json).collect(),
    )))
}

#[derive(Deserialize)]
pub struct DefineEvaluation {
    evaluation_id: String,
    name: String,
    quarters: Vec<String>,
}

pub fn evaluation_json(record: &EvaluationRecord) -> Value {
    json!({
        "evaluation_id": record.evaluation_id,
        "name": record.name,
        "quarters": record.quarters,
    })
}

/// `POST /v1/evaluations`: a merit evaluation and the quarters it covers.
pub async fn define_evaluation(
    State(state): State<AppState>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<DefineEvaluation>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let record = EvaluationRecord {
        evaluation_id: extract::slug("evaluation_id", &body.evaluation_id)?,
        name: body.name,
        quarters: body
            .quarters
            .iter()
            .map(|q| extract::quarter("quarters", q))
            .collect::<Result<_, _>>()?,
    };
    let ledger = state.ledger();
    let id = record.evaluation_id.to_string();
    let executed = ledger
        .execute::<Evaluation, _>(&id, EvaluationCommand::Define(record), &meta, |e| {
            e.record().cloned()
        })
        .await?;
    let record = executed.answer.ok_or(ApiError::Internal)?;
    let position = ledger
        .position_after::<Evaluation>(&id, &executed.appended, 1)
        .await?;
    let mut body = evaluation_json(&record);
    body["position"] = json!(position);
    Ok((StatusCode::CREATED, Json(body)))
}
