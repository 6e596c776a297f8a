//! `/v1/evaluations/{id}/determinations`: deciding an evaluation (rule 8) for an organisation's
//! members or a list of members — a background job whose progress the answer reports.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use studyledger_aggregates::determination_run::{
    DeterminationRequest, DeterminationRun, DeterminationRunCommand, Scope,
};
use studyledger_aggregates::evaluation::{Evaluation, EvaluationRecord};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rejection::RejectionKind;
use studyledger_aggregates::rules::eligibility::all_ended;
use studyledger_aggregates::values::{local_date, EvaluationId, MemberId, OrgId};
use studyledger_projections::sql::members::{members_of, PageOf};
use studyledger_projections::sql::orgs::is_registered;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Accepted;
use crate::http::auth::Caller;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::determinations::{not_enrolled, JobState, JobStatus};
use crate::ledger::Ledger;
use crate::store::skipped::{self, SkipMap};
use crate::store::tokens::Role;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(determine))
        .routes(routes!(job))
}

/// How long a determination request waits for its job before answering 202 with its place.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Members read per round trip when listing an organisation's subtree.
const SCAN_CHUNK: i64 = 5_000;

/// Either `org_id` (every member of its subtree on the evaluation's last day) or
/// `member_ids`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Determine {
    determination_id: Uuid,
    org_id: Option<OrgId>,
    member_ids: Option<Vec<MemberId>>,
}

async fn evaluation(
    state: &AppState,
    evaluation_id: &EvaluationId,
) -> Result<EvaluationRecord, ApiError> {
    state
        .ledger()
        .read_immutable::<Evaluation>(evaluation_id.as_str())
        .await?
        .record()
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("evaluation {evaluation_id} is not defined")))
}

/// The members counted in an organisation's subtree on the evaluation's last day (rule 7).
async fn members_of_org(
    state: &AppState,
    evaluation: &EvaluationRecord,
    org_id: &OrgId,
) -> Result<Vec<Uuid>, ApiError> {
    if !consistency::wait_for_views(state, None).await? {
        // Counting from views that miss recent enrolments or transfers would leave members
        // out without a word.
        return Err(ApiError::Unavailable);
    }
    let last = *evaluation.quarters.last().ok_or(ApiError::Internal)?;
    let mut tx = state.ledger().pool().begin().await?;
    if !is_registered(&mut *tx, org_id.as_str()).await? {
        return Err(ApiError::RuleViolation(format!(
            "organisation {org_id} is not registered"
        )));
    }
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = PageOf {
            ancestor: org_id.as_str(),
            day: last.last_day(),
            quarter: last,
            after,
            limit: SCAN_CHUNK,
        };
        let chunk = members_of(&mut *tx, page).await?;
        members.extend(chunk.iter().map(|(m, _)| m.member_id));
        match chunk.last() {
            Some((m, _)) if i64::try_from(chunk.len()).unwrap_or(0) == SCAN_CHUNK => {
                after = Some(m.member_id);
            }
            _ => break,
        }
    }
    Ok(members)
}

/// The listed members, without repeats, each in the caller's reach; 422 naming those not
/// enrolled.
async fn listed_members(
    state: &AppState,
    caller: &Caller,
    listed: &[MemberId],
) -> Result<Vec<Uuid>, ApiError> {
    let mut listed = listed.to_vec();
    listed.sort_unstable();
    listed.dedup();
    for member_id in &listed {
        access::member(state, caller, *member_id).await?;
    }
    let ids: Vec<Uuid> = listed.iter().map(|m| m.uuid()).collect();
    let missing = not_enrolled(state.ledger(), &ids).await?;
    if !missing.is_empty() {
        let listed: Vec<String> = missing.iter().map(Uuid::to_string).collect();
        return Err(ApiError::RuleViolation(format!(
            "not enrolled: {}",
            listed.join(", ")
        )));
    }
    Ok(ids)
}

/// 409 naming the members whose record holds an event the ledger could not apply and no
/// administrator set aside: their eligibility would be decided on facts known to be missing.
async fn refuse_incomplete(
    ledger: &Ledger,
    members: &[Uuid],
    skips: &SkipMap,
) -> Result<(), ApiError> {
    let mut incomplete = Vec::new();
    for member_id in members {
        let id = member_id.to_string();
        let Some(listed) = skips.get(&id) else {
            continue;
        };
        let (member, _) = ledger.read::<Member>(&id).await?;
        let listed: Vec<usize> = listed.iter().copied().collect();
        let open = member.open_skips(&listed);
        if !open.is_empty() {
            let sequences: Vec<String> = open.iter().map(usize::to_string).collect();
            incomplete.push(format!("{id} (sequences {})", sequences.join(", ")));
        }
    }
    if incomplete.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "the records of these members hold events the ledger could not apply: {}; an \
         administrator sets them aside first (POST /v1/members/{{id}}/skipped-events/{{sequence}}/set-aside), \
         or leave the members out",
        incomplete.join("; ")
    )))
}

/// The answer for a job: 200 with the counts when it is done, 202 with its place while it
/// runs, or the error it failed with.
fn job_answer(state: &JobState) -> Result<Response, ApiError> {
    match state.status {
        JobStatus::Succeeded => Ok(Json(state).into_response()),
        JobStatus::Running => Ok(Accepted {
            answer: state,
            location: format!(
                "/v1/evaluations/{}/determinations/{}",
                state.evaluation_id, state.determination_id
            ),
        }
        .into_response()),
        JobStatus::Failed => {
            let detail = state.error.clone().unwrap_or_default();
            Err(match state.error_kind {
                Some(RejectionKind::Conflict) => ApiError::Conflict(detail),
                Some(RejectionKind::NotFound) | Some(RejectionKind::RuleViolation) => {
                    ApiError::RuleViolation(detail)
                }
                None => ApiError::Unavailable,
            })
        }
    }
}

/// `POST /v1/evaluations/{id}/determinations`: decide every member of `org_id`'s subtree (as
/// counted on the evaluation's last day) or the listed `member_ids`. 409 while a quarter of
/// the evaluation has not ended. Answers 200 with `determined, eligible, ineligible` when the
/// job ends within ten seconds, else 202 with its progress and a `Location` to follow.
#[utoipa::path(post, path = "/v1/evaluations/{evaluation_id}/determinations",
    tag = "eligibility",
    params(("evaluation_id" = EvaluationId, Path)),
    request_body = Determine,
    responses(
        (status = 200, body = JobState, description = "decided"),
        (status = 202, body = JobState, description = "still deciding; follow `Location`"),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn determine(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(evaluation_id): ApiPath<EvaluationId>,
    ApiJson(body): ApiJson<Determine>,
) -> Result<Response, ApiError> {
    let evaluation = evaluation(&state, &evaluation_id).await?;
    let ledger = state.ledger();
    if !all_ended(&evaluation.quarters, local_date(Utc::now(), ledger.tz())) {
        return Err(ApiError::Conflict(format!(
            "evaluation {evaluation_id} covers quarters that have not ended yet"
        )));
    }
    let (scope, members) = match (body.org_id, &body.member_ids) {
        (Some(org_id), None) => {
            access::organisation(&state, &caller, &org_id).await?;
            let members = members_of_org(&state, &evaluation, &org_id).await?;
            (Scope::Organisation(org_id), members)
        }
        (None, Some(listed)) => {
            let ids = listed_members(&state, &caller, listed).await?;
            (Scope::Members(ids.clone()), ids)
        }
        _ => {
            return Err(ApiError::Malformed(
                "give either org_id or member_ids".to_owned(),
            ))
        }
    };
    let skips = Arc::new(skipped::member_skips(ledger.pool()).await?);
    refuse_incomplete(ledger, &members, &skips).await?;
    // Recorded before any member is decided: an id already used for another evaluation or
    // other members is refused here, for every instance, with nothing else recorded.
    let determination_id = body.determination_id;
    let request = DeterminationRequest {
        determination_id,
        evaluation_id,
        scope,
    };
    let command = DeterminationRunCommand::Request(request);
    let meta = caller.metadata();
    ledger
        .execute::<DeterminationRun, _>(&determination_id.to_string(), command, &meta, |_| ())
        .await?;
    let mut job = state.jobs().start(
        ledger.clone(),
        determination_id,
        evaluation,
        members,
        skips,
        meta,
    );
    // Whether the job ends in time or not, the answer says where it stands.
    let _ = tokio::time::timeout(
        ANSWER_WITHIN,
        job.wait_for(|s| s.status != JobStatus::Running),
    )
    .await;
    let current = job.borrow().clone();
    job_answer(&current)
}

/// `GET /v1/evaluations/{id}/determinations/{determination_id}`: a job's progress, from the
/// instance that runs it (an organisation's administrator: a job they asked for).
#[utoipa::path(get, path = "/v1/evaluations/{evaluation_id}/determinations/{determination_id}",
    tag = "eligibility",
    params(("evaluation_id" = EvaluationId, Path), ("determination_id" = Uuid, Path)),
    responses(
        (status = 200, body = JobState),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((evaluation_id, determination_id)): ApiPath<(EvaluationId, Uuid)>,
) -> Result<Json<JobState>, ApiError> {
    let found = state
        .jobs()
        .get(determination_id)
        .map(|j| j.borrow().clone())
        .filter(|j| j.evaluation_id == evaluation_id.as_str());
    let theirs = |j: &JobState| j.requested_by == caller.principal.token_id;
    if caller.role() == Role::OrgAdmin && !found.as_ref().is_some_and(theirs) {
        return Err(ApiError::Forbidden);
    }
    let job = found.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no determination job {determination_id} for {evaluation_id} on this instance"
        ))
    })?;
    Ok(Json(job))
}
