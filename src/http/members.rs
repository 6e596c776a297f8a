//! Members: enrolment, study sessions, course completions, the profile and quarterly compliance.
//!
//! Compliance is folded from the member's stream on each request with the same pure functions
//! the projections will use; the durable views come with the projector.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::course::Course;
use studyledger_aggregates::facts::{CourseTerms, Enrolment};
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::organisation::Organisation;
use studyledger_aggregates::values::{local_date, CourseId, Quarter};
use studyledger_projections::fold::MemberFold;
use studyledger_projections::store as views;
use uuid::Uuid;

use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, ApiPath, ApiQuery, RequestMeta};
use crate::http::AppState;
use crate::ledger::Ledger;
use crate::store::StoreError;

#[derive(Deserialize)]
pub struct Enrol {
    member_id: String,
    member_no: String,
    name: String,
    org_id: String,
    enrolled_on: String,
}

#[derive(Deserialize)]
pub struct RecordSession {
    session_id: String,
    course_id: String,
    started_at: String,
    ended_at: String,
}

#[derive(Deserialize)]
pub struct RecordCompletion {
    completion_id: String,
    course_id: String,
    completed_at: String,
}

#[derive(Deserialize)]
pub struct RecordTransfer {
    transfer_id: String,
    to_org_id: String,
    effective_on: String,
}

#[derive(Deserialize)]
pub struct ComplianceQuery {
    quarter: Option<String>,
    min_position: Option<i64>,
}

fn member_path(raw: &str) -> Result<Uuid, ApiError> {
    extract::uuid("member_id", raw)
}

/// The terms of a registered course; when the course is unknown, 404 if the member is
/// unknown too (the path is checked before the body), else 422.
async fn course_terms(
    ledger: &Ledger,
    member_id: Uuid,
    course_id: &CourseId,
) -> Result<CourseTerms, ApiError> {
    let course = ledger.read_immutable::<Course>(course_id.as_str()).await?;
    if let Some(record) = course.record() {
        return Ok(record.terms());
    }
    let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
    if member.enrolment().is_none() {
        return Err(ApiError::NotFound(format!(
            "member {member_id} is not enrolled"
        )));
    }
    Err(ApiError::RuleViolation(format!(
        "course {course_id} is not registered"
    )))
}

fn profile_json(
    member: &Member,
    enrolment: &Enrolment,
    fold: &MemberFold,
    today: chrono::NaiveDate,
) -> Value {
    let lifetime = fold.lifetime_totals();
    let transfers: Vec<Value> = member
        .transfers()
        .iter()
        .map(|t| {
            json!({
                "transfer_id": t.transfer_id,
                "to_org_id": t.to_org_id,
                "effective_on": t.effective_on,
                "sequence": t.sequence,
            })
        })
        .collect();
    json!({
        "member_id": enrolment.member_id,
        "member_no": enrolment.member_no,
        "name": enrolment.name,
        // Where the member belongs today (rule 7); where they started is `enrolled_org_id`.
        "org_id": member.organisation_on(today).unwrap_or(&enrolment.org_id),
        "enrolled_org_id": enrolment.org_id,
        "enrolled_on": enrolment.enrolled_on,
        "transfers": transfers,
        "credited_hours": {
            "required": lifetime.required,
            "elective": lifetime.elective,
            "total": lifetime.total(),
        },
        "sequence": member.version(),
    })
}

/// Runs a command that records one fact on a member's stream. `recorded` finds the fact in
/// the state afterwards — its event's sequence and what the answer needs — so that a resend,
/// which appends nothing, answers exactly as the first request did.
pub(crate) async fn record_fact<T>(
    ledger: &Ledger,
    member_id: Uuid,
    command: MemberCommand,
    meta: &crate::store::Metadata,
    recorded: impl Fn(&Member) -> Option<(usize, T)>,
) -> Result<(usize, Option<i64>, T), ApiError> {
    let id = member_id.to_string();
    let executed = ledger
        .execute::<Member, _>(&id, command, meta, recorded)
        .await?;
    let Some((sequence, found)) = executed.answer else {
        // The aggregate accepted the command, so the fact is in its state.
        tracing::error!(%member_id, "a recorded fact is missing from the member's state");
        return Err(ApiError::Internal);
    };
    let position = ledger
        .position_after::<Member>(&id, &executed.appended, sequence)
        .await?;
    Ok((sequence, position, found))
}

pub async fn enrol(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<Enrol>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let enrolment = Enrolment {
        member_id: extract::uuid("member_id", &body.member_id)?,
        member_no: body.member_no,
        name: body.name,
        org_id: extract::slug("org_id", &body.org_id)?,
        enrolled_on: extract::date("enrolled_on", &body.enrolled_on)?,
    };
    let ledger = state.ledger();
    let org = ledger
        .read_immutable::<Organisation>(enrolment.org_id.as_str())
        .await?;
    if org.record().is_none() {
        return Err(ApiError::RuleViolation(format!(
            "organisation {} is not registered",
            enrolment.org_id
        )));
    }
    let id = enrolment.member_id.to_string();
    let executed = ledger
        .execute::<Member, _>(&id, MemberCommand::Enrol(enrolment.clone()), &meta, |_| ())
        .await?;
    let position = ledger
        .position_after::<Member>(&id, &executed.appended, 1)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member_id": enrolment.member_id,
            "member_no": enrolment.member_no,
            "name": enrolment.name,
            "org_id": enrolment.org_id,
            "enrolled_on": enrolment.enrolled_on,
            "sequence": 1,
            "position": position,
        })),
    ))
}

pub async fn record_session(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RecordSession>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member_id = member_path(&member_id)?;
    let session_id = extract::uuid("session_id", &body.session_id)?;
    let course_id = extract::slug("course_id", &body.course_id)?;
    let started_at = extract::instant("started_at", &body.started_at)?;
    let ended_at = extract::instant("ended_at", &body.ended_at)?;
    let ledger = state.ledger();
    let course = course_terms(ledger, member_id, &course_id).await?;
    let command = MemberCommand::RecordStudySession {
        session_id,
        course,
        started_at,
        ended_at,
        clock: ledger.clock(),
    };
    let (sequence, position, ()) = record_fact(ledger, member_id, command, &meta, move |m| {
        m.session(session_id).map(|s| (s.sequence, ()))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member_id": member_id,
            "session_id": session_id,
            "course_id": course_id,
            "started_at": started_at,
            "ended_at": ended_at,
            "minutes": studyledger_aggregates::rules::sessions::session_minutes(started_at, ended_at),
            "sequence": sequence,
            "position": position,
        })),
    ))
}

pub async fn record_completion(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RecordCompletion>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member_id = member_path(&member_id)?;
    let completion_id = extract::uuid("completion_id", &body.completion_id)?;
    let course_id = extract::slug("course_id", &body.course_id)?;
    let completed_at = extract::instant("completed_at", &body.completed_at)?;
    let ledger = state.ledger();
    let course = course_terms(ledger, member_id, &course_id).await?;
    let command = MemberCommand::RecordCompletion {
        completion_id,
        course,
        completed_at,
        clock: ledger.clock(),
    };
    let (sequence, position, terms) = record_fact(ledger, member_id, command, &meta, move |m| {
        m.completion(completion_id)
            .map(|c| (c.sequence, c.course.clone()))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member_id": member_id,
            "completion_id": completion_id,
            "course_id": terms.course_id,
            "category": terms.category,
            "credit_hours": terms.credit_hours,
            "completed_at": completed_at,
            "quarter": studyledger_aggregates::values::Quarter::of_instant(completed_at, ledger.tz()),
            "sequence": sequence,
            "position": position,
        })),
    ))
}

pub async fn record_transfer(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RecordTransfer>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member_id = member_path(&member_id)?;
    let transfer_id = extract::uuid("transfer_id", &body.transfer_id)?;
    let to_org_id = extract::slug("to_org_id", &body.to_org_id)?;
    let effective_on = extract::date("effective_on", &body.effective_on)?;
    let ledger = state.ledger();
    let org = ledger
        .read_immutable::<Organisation>(to_org_id.as_str())
        .await?;
    if org.record().is_none() {
        let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
        if member.enrolment().is_none() {
            return Err(ApiError::NotFound(format!(
                "member {member_id} is not enrolled"
            )));
        }
        return Err(ApiError::RuleViolation(format!(
            "organisation {to_org_id} is not registered"
        )));
    }
    let command = MemberCommand::Transfer {
        transfer_id,
        to_org_id: to_org_id.clone(),
        effective_on,
    };
    let (sequence, position, ()) = record_fact(ledger, member_id, command, &meta, move |m| {
        m.transfer(transfer_id).map(|t| (t.sequence, ()))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member_id": member_id,
            "transfer_id": transfer_id,
            "to_org_id": to_org_id,
            "effective_on": effective_on,
            "sequence": sequence,
            "position": position,
        })),
    ))
}

/// `GET /v1/members/{id}`: who the member is, where they belong today, their transfers and
/// their lifetime credit; 404 unless enrolled.
pub async fn profile(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let ledger = state.ledger();
    let member_id = member_path(&member_id)?;
    let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
    let enrolment = member
        .enrolment()
        .ok_or_else(|| ApiError::NotFound(format!("member {member_id} is not enrolled")))?;
    let rulesets = ledger.rulesets().await?;
    let fold = MemberFold::new(&member, &rulesets, ledger.tz());
    Ok(Json(profile_json(
        &member,
        enrolment,
        &fold,
        local_date(Utc::now(), ledger.tz()),
    )))
}

pub async fn compliance(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ComplianceQuery>,
) -> Result<Response, ApiError> {
    let member_id = member_path(&member_id)?;
    let quarter = query
        .quarter
        .as_deref()
        .map(|q| extract::quarter("quarter", q))
        .transpose()?;
    let caught_up = consistency::wait_for_views(&state, query.min_position).await?;
    let ledger = state.ledger();
    let Some((member, stored)) = views::member(ledger.pool(), member_id)
        .await
        .map_err(StoreError::from)?
    else {
        // Perhaps enrolled a moment ago, and the views have not caught up: say so.
        return Ok(consistency::marked(
            ApiError::NotFound(format!("member {member_id} is not enrolled")).into_response(),
            caught_up,
        ));
    };
    let rulesets = ledger.rulesets().await?;
    let today = local_date(Utc::now(), ledger.tz());
    let row =
        |q: Quarter| member.judge(q, stored.iter().find(|s| s.quarter == q), &rulesets, today);
    let body = match quarter {
        Some(quarter) => {
            let mut body = serde_json::to_value(row(quarter)).map_err(|_| ApiError::Internal)?;
            body["member_id"] = json!(member_id);
            body
        }
        None => {
            let rows: Vec<_> = Quarter::of_date(member.enrolled_on)
                .through(Quarter::of_date(today))
                .map(row)
                .collect();
            json!({ "member_id": member_id, "quarters": rows })
        }
    };
    Ok(consistency::marked(Json(body).into_response(), caught_up))
}
