//! What learning apps report (rules 1 and 2): study sessions and course completions of a
//! registered course, recorded on the member's stream with the course's terms of the day.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::course::{Course, CourseRecord};
use studyledger_aggregates::facts::CourseTerms;
use studyledger_aggregates::member::command::{RecordCompletion, RecordStudySession};
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::rules::sessions::session_minutes;
use studyledger_aggregates::values::{local_date, Category, CourseId, Hours, MemberId, Quarter};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, Rfc3339};
use crate::http::members::ensure_enrolled;
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::ledger::Ledger;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_session))
        .routes(routes!(record_completion))
}

/// A registered course with its terms as registered; when the course is unknown, 404 if the
/// member is unknown too (the path is checked before the body), else 422. `as_it_stands`
/// reads it from the store, never from a cache another instance's writes could leave behind
/// (terms change and courses retire): a completion needs that; a session needs only to know
/// that the course exists, which never changes once true.
async fn registered_course(
    ledger: &Ledger,
    member_id: MemberId,
    course_id: &CourseId,
    as_it_stands: bool,
) -> Result<(Course, CourseTerms), ApiError> {
    let course = if as_it_stands {
        ledger.read::<Course>(course_id.as_str()).await?.0
    } else {
        ledger.read_immutable::<Course>(course_id.as_str()).await?
    };
    if let Some(terms) = course.record().map(CourseRecord::terms) {
        return Ok((course, terms));
    }
    ensure_enrolled(ledger, member_id).await?;
    Err(ApiError::RuleViolation(format!(
        "course {course_id} is not registered"
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSession {
    session_id: Uuid,
    course_id: CourseId,
    started_at: Rfc3339,
    ended_at: Rfc3339,
}

#[derive(Serialize, ToSchema)]
pub struct SessionRecorded {
    member_id: MemberId,
    session_id: Uuid,
    course_id: CourseId,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    minutes: i64,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/study-sessions` (rule 1): recorded when its times are valid and it
/// overlaps no other session of the member.
#[utoipa::path(post, path = "/v1/members/{member_id}/study-sessions", tag = "study",
    params(("member_id" = MemberId, Path)),
    request_body = RecordSession,
    responses(
        (status = 201, body = SessionRecorded),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "ingest"])))]
async fn record_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RecordSession>,
) -> Result<Created<SessionRecorded>, ApiError> {
    let ledger = state.ledger();
    let (session_id, started_at, ended_at) = (body.session_id, body.started_at.0, body.ended_at.0);
    // A session only names its course: the terms of the day are the completion's to take.
    let (_, course) = registered_course(ledger, member_id, &body.course_id, false).await?;
    let command = MemberCommand::RecordStudySession(RecordStudySession {
        session_id,
        course,
        started_at,
        ended_at,
        source: None,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            m.session(session_id).map(|s| (s.sequence, ()))
        })
        .await?;
    Ok(Created(SessionRecorded {
        member_id,
        session_id,
        course_id: body.course_id,
        started_at,
        ended_at,
        minutes: session_minutes(started_at, ended_at),
        sequence: fact.sequence,
        position: fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportCompletion {
    completion_id: Uuid,
    course_id: CourseId,
    completed_at: Rfc3339,
}

#[derive(Serialize, ToSchema)]
pub struct CompletionRecorded {
    member_id: MemberId,
    completion_id: Uuid,
    course_id: CourseId,
    category: Category,
    credit_hours: Hours,
    completed_at: DateTime<Utc>,
    quarter: Quarter,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/course-completions` (rule 2): recorded with the course's terms in
/// force on the completion's day (422 once the course is retired); whether it earns credit is
/// judged when the ledger is read.
#[utoipa::path(post, path = "/v1/members/{member_id}/course-completions", tag = "study",
    params(("member_id" = MemberId, Path)),
    request_body = ReportCompletion,
    responses(
        (status = 201, body = CompletionRecorded),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "ingest"])))]
async fn record_completion(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<ReportCompletion>,
) -> Result<Created<CompletionRecorded>, ApiError> {
    let ledger = state.ledger();
    let (completion_id, completed_at) = (body.completion_id, body.completed_at.0);
    let (course, _) = registered_course(ledger, member_id, &body.course_id, true).await?;
    let course = match course.terms_on(local_date(completed_at, ledger.tz())) {
        Ok(terms) => terms,
        // A resend of a completion recorded before the course was retired answers as the
        // first request did (the member's decision sees the resend); anything else is refused.
        Err(rejection) => {
            let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
            member
                .completion(completion_id)
                .map(|recorded| recorded.course.clone())
                .ok_or_else(|| ApiError::rejected(&rejection))?
        }
    };
    let command = MemberCommand::RecordCompletion(RecordCompletion {
        completion_id,
        course,
        completed_at,
        source: None,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            m.completion(completion_id)
                .map(|c| (c.sequence, c.course.clone()))
        })
        .await?;
    let terms = fact.value;
    Ok(Created(CompletionRecorded {
        member_id,
        completion_id,
        course_id: terms.course_id,
        category: terms.category,
        credit_hours: terms.credit_hours,
        completed_at,
        quarter: Quarter::of_instant(completed_at, ledger.tz()),
        sequence: fact.sequence,
        position: fact.position,
    }))
}
