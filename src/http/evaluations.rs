//! `POST /v1/evaluations`: a merit evaluation and the quarters it covers (rule 8).
//! Administrators only.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::evaluation::{Evaluation, EvaluationCommand, EvaluationRecord};
use studyledger_aggregates::values::{EvaluationId, Name, Quarter};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson};
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(define))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Define {
    evaluation_id: EvaluationId,
    #[schema(value_type = Name)]
    name: String,
    /// Distinct quarters.
    #[schema(min_items = 1, max_items = 40)]
    quarters: Vec<Quarter>,
}

#[derive(Serialize, ToSchema)]
pub struct Defined {
    #[serde(flatten)]
    evaluation: EvaluationRecord,
    position: Option<i64>,
}

/// `POST /v1/evaluations`: 1 to 40 distinct quarters.
#[utoipa::path(post, path = "/v1/evaluations", tag = "eligibility",
    request_body = Define,
    responses(
        (status = 201, body = Defined),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn define(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Define>,
) -> Result<Created<Defined>, ApiError> {
    let record = EvaluationRecord {
        evaluation_id: body.evaluation_id,
        name: text("name", body.name)?,
        quarters: body.quarters,
    };
    let id = record.evaluation_id.to_string();
    let fact = state
        .ledger()
        .record::<Evaluation, _>(
            &id,
            EvaluationCommand::Define(record),
            &caller.metadata(),
            |e| e.record().cloned().map(|r| (1, r)),
        )
        .await?;
    Ok(Created(Defined {
        evaluation: fact.value,
        position: fact.position,
    }))
}
