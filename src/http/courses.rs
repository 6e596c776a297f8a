//! `POST /v1/courses`: register a catalog entry.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};
use studyledger_aggregates::values::Category;

use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, RequestMeta};
use crate::http::AppState;

#[derive(Deserialize)]
pub struct RegisterCourse {
    course_id: String,
    title: String,
    category: String,
    credit_hours: Box<serde_json::value::RawValue>,
    min_study_minutes: Option<i64>,
}

pub async fn register(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RegisterCourse>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let course_id = extract::slug("course_id", &body.course_id)?;
    let category: Category = body
        .category
        .parse()
        .map_err(|e| ApiError::RuleViolation(format!("category: {e}")))?;
    let credit_hours = extract::hours("credit_hours", &body.credit_hours)?;
    let min_study_minutes = u32::try_from(body.min_study_minutes.unwrap_or(0)).map_err(|_| {
        ApiError::RuleViolation("min_study_minutes must be a whole number from 0".to_owned())
    })?;
    let record = CourseRecord {
        course_id,
        title: body.title,
        category,
        credit_hours,
        min_study_minutes,
    };
    let ledger = state.ledger();
    let id = record.course_id.to_string();
    let executed = ledger
        .execute::<Course, _>(&id, CourseCommand::Register(record.clone()), &meta, |_| ())
        .await?;
    let position = ledger
        .position_after::<Course>(&id, &executed.appended, 1)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "course_id": record.course_id,
            "title": record.title,
            "category": record.category,
            "credit_hours": record.credit_hours,
            "min_study_minutes": record.min_study_minutes,
            "position": position,
        })),
    ))
}
