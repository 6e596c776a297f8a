//! `POST /v1/evaluations`: a merit evaluation and the quarters it covers (rule 8).
//! Administrators only.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::evaluation::{Evaluation, EvaluationCommand, EvaluationRecord};
use studyledger_aggregates::values::{EvaluationId, Quarter};

use crate::http::answer::Created;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, ApiJson};
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/evaluations", post(define))
}

#[derive(Deserialize)]
pub struct Define {
    evaluation_id: EvaluationId,
    name: String,
    quarters: Vec<Quarter>,
}

#[derive(Serialize)]
pub struct Defined {
    #[serde(flatten)]
    evaluation: EvaluationRecord,
    position: Option<i64>,
}

async fn define(
    State(state): State<AppState>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<Define>,
) -> Result<Created<Defined>, ApiError> {
    let record = EvaluationRecord {
        evaluation_id: body.evaluation_id,
        name: body.name,
        quarters: body.quarters,
    };
    let id = record.evaluation_id.to_string();
    let fact = state
        .ledger()
        .record::<Evaluation, _>(&id, EvaluationCommand::Define(record), &meta, |e| {
            e.record().cloned().map(|r| (1, r))
        })
        .await?;
    Ok(Created(Defined {
        evaluation: fact.value,
        position: fact.position,
    }))
}
