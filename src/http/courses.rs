//! `POST /v1/courses`: register a catalog entry, whose terms every completion of it carries.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};
use studyledger_aggregates::values::{Category, CourseId, Name};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson};
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterCourse)]
pub struct Register {
    course_id: CourseId,
    #[schema(value_type = Name)]
    title: String,
    #[schema(value_type = Category)]
    category: String,
    /// More than 0, at most 1000, at most two decimals.
    #[schema(value_type = f64, exclusive_minimum = 0, maximum = 1000, multiple_of = 0.01)]
    credit_hours: Box<RawValue>,
    /// Minutes of study a completion needs (rule 2); default 0.
    #[schema(minimum = 0, maximum = 525600)]
    min_study_minutes: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CourseRegistered)]
pub struct Registered {
    #[serde(flatten)]
    course: CourseRecord,
    position: Option<i64>,
}

/// `POST /v1/courses`.
#[utoipa::path(post, path = "/v1/courses", operation_id = "register_course", tag = "catalog",
    request_body = Register,
    responses(
        (status = 201, body = Registered),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Register>,
) -> Result<Created<Registered>, ApiError> {
    let category = extract::category("category", &body.category)?;
    let credit_hours = extract::hours("credit_hours", &body.credit_hours)?;
    let min_study_minutes = u32::try_from(body.min_study_minutes.unwrap_or(0)).map_err(|_| {
        ApiError::RuleViolation("min_study_minutes must be a whole number from 0".to_owned())
    })?;
    let record = CourseRecord {
        course_id: body.course_id,
        title: extract::text("title", body.title)?,
        category,
        credit_hours,
        min_study_minutes,
    };
    let id = record.course_id.to_string();
    let fact = state
        .ledger()
        .record::<Course, _>(
            &id,
            CourseCommand::Register(record.clone()),
            &caller.metadata(),
            |_| Some((1, ())),
        )
        .await?;
    Ok(Created(Registered {
        course: record,
        position: fact.position,
    }))
}
