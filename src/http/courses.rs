//! `POST /v1/courses`: register a catalog entry, whose terms every completion of it carries;
//! `POST /v1/courses/{course_id}/activities`: link an xAPI activity to it, so that statements
//! about the activity credit the course.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::activity::{Activity, ActivityCommand, ActivityLink};
use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};
use studyledger_aggregates::values::{Category, CourseId, Name};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, ApiPath};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::http::statement_mappings;
use crate::jobs::feed::Remapped;
use crate::store::mappings::Waiting;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(link_activity))
}

/// The longest activity IRI the ledger links (it is the Activity stream's id).
const MAX_IRI: usize = 2048;

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
    /// The xAPI activity IRI whose statements credit this course (unique across courses).
    activity_id: Option<String>,
    /// Whether an xAPI completion must also report a pass (`result.success = true`);
    /// default false. Only with `activity_id`.
    pass_required: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CourseRegistered)]
pub struct Registered {
    #[serde(flatten)]
    course: CourseRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    activity: Option<Linked>,
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
    let min_study_minutes = extract::study_minutes("min_study_minutes", body.min_study_minutes)?;
    let record = CourseRecord {
        course_id: body.course_id,
        title: extract::text("title", body.title)?,
        category,
        credit_hours,
        min_study_minutes,
    };
    let link = match body.activity_id {
        Some(iri) => Some(activity_link(iri, &record.course_id, body.pass_required)?),
        None if body.pass_required.is_some() => {
            return Err(ApiError::Malformed(
                "pass_required goes with activity_id".to_owned(),
            ))
        }
        None => None,
    };
    // Refused at the door: an activity another course holds is a conflict before anything
    // is recorded.
    if let Some((iri, link)) = &link {
        ensure_free(&state, iri, link).await?;
    }
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
    let activity = match link {
        Some((iri, link)) => Some(link_recorded(&state, &caller, iri, link).await?),
        None => None,
    };
    Ok(Created(Registered {
        course: record,
        position: activity.as_ref().and_then(|a| a.position).or(fact.position),
        activity,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkActivity {
    /// An IRI, linked to no other course.
    activity_id: String,
    /// Whether an xAPI completion must also report a pass (`result.success = true`);
    /// default false.
    pass_required: Option<bool>,
}

/// An activity linked to a course, and what the statements waiting for it became.
#[derive(Serialize, ToSchema)]
pub struct Linked {
    activity_id: String,
    pass_required: bool,
    /// The statements about the activity stored before the link, mapped now.
    statements_mapped: Remapped,
    position: Option<i64>,
}

/// `POST /v1/courses/{course_id}/activities`: links an xAPI activity to a registered course
/// (an event of the activity's own stream, so no two courses can hold one activity). The
/// statements about it stored before are mapped now, each once.
#[utoipa::path(post, path = "/v1/courses/{course_id}/activities", tag = "catalog",
    params(("course_id" = CourseId, Path)),
    request_body = LinkActivity,
    responses(
        (status = 201, body = Linked),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn link_activity(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(course_id): ApiPath<CourseId>,
    ApiJson(body): ApiJson<LinkActivity>,
) -> Result<Created<Linked>, ApiError> {
    let (iri, link) = activity_link(body.activity_id, &course_id, body.pass_required)?;
    let course = state
        .ledger()
        .read_immutable::<Course>(course_id.as_str())
        .await?;
    if course.record().is_none() {
        return Err(ApiError::NotFound(format!(
            "course {course_id} is not registered"
        )));
    }
    Ok(Created(link_recorded(&state, &caller, iri, link).await?))
}

fn activity_link(
    iri: String,
    course_id: &CourseId,
    pass_required: Option<bool>,
) -> Result<(String, ActivityLink), ApiError> {
    if iri.len() > MAX_IRI || !studyledger_xapi::validate::is_iri(&iri) {
        return Err(ApiError::Malformed(format!(
            "activity_id must be an IRI of at most {MAX_IRI} bytes"
        )));
    }
    let link = ActivityLink {
        course_id: course_id.clone(),
        pass_required: pass_required.unwrap_or(false),
    };
    Ok((iri, link))
}

/// A 409 when the activity is linked already, otherwise than asked.
async fn ensure_free(state: &AppState, iri: &str, link: &ActivityLink) -> Result<(), ApiError> {
    let (activity, _) = state.ledger().read::<Activity>(iri).await?;
    activity
        .decide(&ActivityCommand::Link(link.clone()))
        .map_err(|rejection| ApiError::Conflict(rejection.to_string()))?;
    Ok(())
}

/// Records the link (a resend records nothing) and maps the statements waiting for it.
async fn link_recorded(
    state: &AppState,
    caller: &Caller,
    iri: String,
    link: ActivityLink,
) -> Result<Linked, ApiError> {
    let fact = state
        .ledger()
        .record::<Activity, _>(
            &iri,
            ActivityCommand::Link(link.clone()),
            &caller.metadata(),
            |_| Some((1, ())),
        )
        .await?;
    let statements_mapped =
        statement_mappings::map_waiting(state, caller, Waiting::Activity(iri.clone())).await;
    Ok(Linked {
        activity_id: iri,
        pass_required: link.pass_required,
        statements_mapped,
        position: fact.position,
    })
}
