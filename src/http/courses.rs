//! `POST /v1/courses`: register a catalog entry, whose terms every completion of it carries.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};

use crate::http::answer::Created;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, RequestMeta};
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/courses", post(register))
}

#[derive(Deserialize)]
pub struct Register {
    course_id: studyledger_aggregates::values::CourseId,
    title: String,
    category: String,
    credit_hours: Box<RawValue>,
    min_study_minutes: Option<i64>,
}

#[derive(Serialize)]
pub struct Registered {
    #[serde(flatten)]
    course: CourseRecord,
    position: Option<i64>,
}

async fn register(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<Register>,
) -> Result<Created<Registered>, ApiError> {
    let category = extract::category("category", &body.category)?;
    let credit_hours = extract::hours("credit_hours", &body.credit_hours)?;
    let min_study_minutes = u32::try_from(body.min_study_minutes.unwrap_or(0)).map_err(|_| {
        ApiError::RuleViolation("min_study_minutes must be a whole number from 0".to_owned())
    })?;
    let record = CourseRecord {
        course_id: body.course_id,
        title: body.title,
        category,
        credit_hours,
        min_study_minutes,
    };
    let id = record.course_id.to_string();
    let fact = state
        .ledger()
        .record::<Course, _>(&id, CourseCommand::Register(record.clone()), &meta, |_| {
            Some((1, ()))
        })
        .await?;
    Ok(Created(Registered {
        course: record,
        position: fact.position,
    }))
}
