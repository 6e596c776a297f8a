//! The course registry over time: `POST /v1/courses/{id}/terms` (new terms for completions from
//! a day on), `POST /v1/courses/{id}/retirements` (no completion from a day on), and
//! `GET /v1/courses[/{id}]`: each course with its terms over time and its retirement.

use axum::extract::State;
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::course::{Course, CourseCommand, Retirement, TermsChange};
use studyledger_aggregates::values::{local_date, Category, CourseId, Hours, Name, Reason};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{self, page_limit, ApiJson, ApiPath, ApiQuery, CalendarDate};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::streams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_terms))
        .routes(routes!(retire))
        .routes(routes!(list))
        .routes(routes!(one))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTerms {
    /// The first day (the ledger's time zone) whose completions take these terms: today or
    /// later, after the course's last change.
    effective_from: CalendarDate,
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

/// A course's terms from a day on (`effective_from` absent: as registered).
#[derive(Serialize, ToSchema)]
pub struct Terms {
    effective_from: Option<NaiveDate>,
    title: Name,
    category: Category,
    credit_hours: Hours,
    min_study_minutes: u32,
    /// The event that recorded them.
    sequence: usize,
}

impl Terms {
    fn of(change: &TermsChange, sequence: usize) -> Terms {
        Terms {
            effective_from: Some(change.effective_from),
            title: change.title.clone(),
            category: change.category,
            credit_hours: change.credit_hours,
            min_study_minutes: change.min_study_minutes,
            sequence,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TermsChanged {
    course_id: CourseId,
    #[serde(flatten)]
    terms: Terms,
    position: Option<i64>,
}

fn today(state: &AppState) -> NaiveDate {
    local_date(Utc::now(), state.ledger().tz())
}

/// `POST /v1/courses/{course_id}/terms`: the course's terms for completions from a day on;
/// completions recorded before keep theirs (rule 2). The same change again records nothing.
#[utoipa::path(post, path = "/v1/courses/{course_id}/terms", tag = "catalog",
    params(("course_id" = CourseId, Path)),
    request_body = ChangeTerms,
    responses(
        (status = 201, body = TermsChanged),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn change_terms(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(course_id): ApiPath<CourseId>,
    ApiJson(body): ApiJson<ChangeTerms>,
) -> Result<Created<TermsChanged>, ApiError> {
    let change = TermsChange {
        effective_from: body.effective_from.within_ledger_years("effective_from")?,
        title: extract::text("title", body.title)?,
        category: extract::category("category", &body.category)?,
        credit_hours: extract::hours("credit_hours", &body.credit_hours)?,
        min_study_minutes: extract::study_minutes("min_study_minutes", body.min_study_minutes)?,
    };
    let command = CourseCommand::ChangeTerms {
        change: change.clone(),
        today: today(&state),
    };
    let fact = state
        .ledger()
        .record::<Course, _>(course_id.as_str(), command, &caller.metadata(), |course| {
            course
                .changes()
                .find(|(_, c)| **c == change)
                .map(|(s, _)| (s, ()))
        })
        .await?;
    Ok(Created(TermsChanged {
        course_id,
        terms: Terms::of(&change, fact.sequence),
        position: fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retire {
    /// The first day (the ledger's time zone) with no completion of the course: today or later.
    retired_from: CalendarDate,
    #[schema(value_type = Reason)]
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Retired {
    course_id: CourseId,
    retired_from: NaiveDate,
    reason: Reason,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/courses/{course_id}/retirements`: no completion of the course from a day on
/// (422); sessions may still name it. Once only: another day is a conflict.
#[utoipa::path(post, path = "/v1/courses/{course_id}/retirements", tag = "catalog",
    params(("course_id" = CourseId, Path)),
    request_body = Retire,
    responses(
        (status = 201, body = Retired),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn retire(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(course_id): ApiPath<CourseId>,
    ApiJson(body): ApiJson<Retire>,
) -> Result<Created<Retired>, ApiError> {
    let retirement = Retirement {
        retired_from: body.retired_from.within_ledger_years("retired_from")?,
        reason: extract::text("reason", body.reason)?,
    };
    let command = CourseCommand::Retire {
        retirement: retirement.clone(),
        today: today(&state),
    };
    let fact = state
        .ledger()
        .record::<Course, _>(course_id.as_str(), command, &caller.metadata(), |course| {
            course
                .retirement()
                .filter(|(_, r)| **r == retirement)
                .map(|(s, _)| (s, ()))
        })
        .await?;
    Ok(Created(Retired {
        course_id,
        retired_from: retirement.retired_from,
        reason: retirement.reason,
        sequence: fact.sequence,
        position: fact.position,
    }))
}

/// A course in the registry: its terms over time (the first as registered) and any retirement.
#[derive(Serialize, ToSchema)]
pub struct CourseEntry {
    course_id: CourseId,
    /// The title of the terms in force today (the last ones once retired).
    title: Name,
    terms: Vec<Terms>,
    retired: Option<Retirement>,
}

impl CourseEntry {
    fn of(course: &Course) -> Option<CourseEntry> {
        let record = course.record()?;
        let mut terms = vec![Terms {
            effective_from: None,
            title: record.title.clone(),
            category: record.category,
            credit_hours: record.credit_hours,
            min_study_minutes: record.min_study_minutes,
            sequence: 1,
        }];
        terms.extend(course.changes().map(|(s, change)| Terms::of(change, s)));
        Some(CourseEntry {
            course_id: record.course_id.clone(),
            title: record.title.clone(),
            terms,
            retired: course.retirement().map(|(_, r)| r.clone()),
        })
    }

    /// With the title of the terms in force on `today`.
    fn titled_on(mut self, today: NaiveDate) -> CourseEntry {
        if let Some(terms) = self
            .terms
            .iter()
            .rev()
            .find(|t| t.effective_from.is_none_or(|d| d <= today))
        {
            self.title = terms.title.clone();
        }
        self
    }
}

/// `GET /v1/courses/{course_id}`.
#[utoipa::path(get, path = "/v1/courses/{course_id}", operation_id = "course", tag = "catalog",
    params(("course_id" = CourseId, Path)),
    responses(
        (status = 200, body = CourseEntry),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn one(
    State(state): State<AppState>,
    ApiPath(course_id): ApiPath<CourseId>,
) -> Result<Json<CourseEntry>, ApiError> {
    let (course, _) = state.ledger().read::<Course>(course_id.as_str()).await?;
    let entry = CourseEntry::of(&course)
        .ok_or_else(|| ApiError::NotFound(format!("course {course_id} is not registered")))?;
    Ok(Json(entry.titled_on(today(&state))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CoursesQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(value_type = Option<CourseId>)]
    cursor: Option<CourseId>,
}

#[derive(Serialize, ToSchema)]
pub struct CoursesPage {
    courses: Vec<CourseEntry>,
    next_cursor: Option<CourseId>,
}

/// `GET /v1/courses?limit=&cursor=`: the registry in course id order.
#[utoipa::path(get, path = "/v1/courses", operation_id = "courses", tag = "catalog",
    params(CoursesQuery),
    responses(
        (status = 200, body = CoursesPage),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CoursesQuery>,
) -> Result<Json<CoursesPage>, ApiError> {
    let limit = page_limit(query.limit, 50, 200)?;
    let ledger = state.ledger();
    let after = query.cursor.as_ref().map(CourseId::as_str);
    let ids = streams::course_ids_after(ledger.pool(), after, limit + 1).await?;
    let today = today(&state);
    let page = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut courses = Vec::with_capacity(ids.len());
    for id in ids.iter().take(page) {
        let (course, _) = ledger.read::<Course>(id).await?;
        courses.extend(CourseEntry::of(&course).map(|entry| entry.titled_on(today)));
    }
    // More ids than the page: the next page starts after its last course.
    let next_cursor = (ids.len() > page)
        .then(|| courses.last().map(|c| c.course_id.clone()))
        .flatten();
    Ok(Json(CoursesPage {
        courses,
        next_cursor,
    }))
}
