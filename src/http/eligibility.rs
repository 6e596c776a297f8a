//! Determinations and eligibility (rule 8): deciding an evaluation for an organisation's
//! members or a list of members, following the job, and a member's recorded eligibility.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::determination_run::{
    DeterminationRequest, DeterminationRun, DeterminationRunCommand, Scope,
};
use studyledger_aggregates::evaluation::{Evaluation, EvaluationRecord};
use studyledger_aggregates::facts::Appeal;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rejection::RejectionKind;
use studyledger_aggregates::rules::eligibility::{all_ended, Determination, QuarterJudgement};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::values::{local_date, OrgId, Quarter};
use studyledger_projections::store as views;
use uuid::Uuid;

use crate::determinations::{not_enrolled, JobState, JobStatus};
use crate::http::appeals;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{self, Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::history::{fold_history, ledger_entries, Entry};
use crate::http::AppState;
use crate::store::StoreError;

/// How long a determination request waits for its job before answering 202 with its place.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Members read per round trip when listing an organisation's subtree.
const SCAN_CHUNK: i64 = 5_000;

#[derive(Deserialize)]
pub struct Determine {
    determination_id: String,
    org_id: Option<String>,
    member_ids: Option<Vec<String>>,
}

async fn evaluation(state: &AppState, raw: &str) -> Result<EvaluationRecord, ApiError> {
    let evaluation_id = extract::slug("evaluation_id", raw)?;
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
    let mut tx = state
        .ledger()
        .pool()
        .begin()
        .await
        .map_err(StoreError::from)?;
    let orgs = views::subtree(&mut tx, org_id.as_str())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| {
            ApiError::RuleViolation(format!("organisation {org_id} is not registered"))
        })?;
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let chunk = views::members_of(&mut tx, &orgs, last.last_day(), last, after, SCAN_CHUNK)
            .await
            .map_err(StoreError::from)?;
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

fn job_json(state: &JobState) -> Value {
    serde_json::to_value(state).unwrap_or_else(|_| json!({}))
}

fn job_location(state: &JobState) -> String {
    format!(
        "/v1/evaluations/{}/determinations/{}",
        state.evaluation_id, state.determination_id
    )
}

/// The answer for a job: 200 with the counts when it is done, 202 with its place while it
/// runs, or the error it failed with.
fn job_answer(state: &JobState) -> Result<Response, ApiError> {
    match state.status {
        JobStatus::Succeeded => Ok(Json(job_json(state)).into_response()),
        JobStatus::Running => {
            let mut response = (StatusCode::ACCEPTED, Json(job_json(state))).into_response();
            if let Ok(location) = HeaderValue::from_str(&job_location(state)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
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
pub async fn determine(
    State(state): State<AppState>,
    Admin(meta): Admin,
    ApiPath(evaluation_id): ApiPath<String>,
    ApiJson(body): ApiJson<Determine>,
) -> Result<Response, ApiError> {
    let evaluation = evaluation(&state, &evaluation_id).await?;
    let determination_id = extract::uuid("determination_id", &body.determination_id)?;
    let ledger = state.ledger();
    let today = local_date(Utc::now(), ledger.tz());
    if !all_ended(&evaluation.quarters, today) {
        return Err(ApiError::Conflict(format!(
            "evaluation {} covers quarters that have not ended yet",
            evaluation.evaluation_id
        )));
    }
    let (scope, members) = match (&body.org_id, &body.member_ids) {
        (Some(org_id), None) => {
            let org_id = extract::slug("org_id", org_id)?;
            let members = members_of_org(&state, &evaluation, &org_id).await?;
            (Scope::Organisation(org_id), members)
        }
        (None, Some(raw_ids)) => {
            let mut ids = raw_ids
                .iter()
                .map(|raw| extract::uuid("member_ids", raw))
                .collect::<Result<Vec<Uuid>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            let missing = not_enrolled(ledger, &ids).await?;
            if !missing.is_empty() {
                let listed: Vec<String> = missing.iter().map(Uuid::to_string).collect();
                return Err(ApiError::RuleViolation(format!(
                    "not enrolled: {}",
                    listed.join(", ")
                )));
            }
            (Scope::Members(ids.clone()), ids)
        }
        _ => {
            return Err(ApiError::Malformed(
                "give either org_id or member_ids".to_owned(),
            ))
        }
    };
    // Recorded before any member is decided: an id already used for another evaluation or
    // other members is refused here, for every instance, with nothing else recorded.
    let request = DeterminationRequest {
        determination_id,
        evaluation_id: evaluation.evaluation_id.clone(),
        scope,
    };
    ledger
        .execute::<DeterminationRun, _>(
            &determination_id.to_string(),
            DeterminationRunCommand::Request(request),
            &meta,
            |_| (),
        )
        .await?;
    let mut job = state
        .jobs()
        .start(ledger.clone(), determination_id, evaluation, members, meta);
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
/// instance that runs it.
pub async fn job(
    State(state): State<AppState>,
    ApiPath((evaluation_id, determination_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let evaluation_id = extract::slug("evaluation_id", &evaluation_id)?;
    let determination_id = extract::uuid("determination_id", &determination_id)?;
    let job = state
        .jobs()
        .get(determination_id)
        .map(|j| j.borrow().clone())
        .filter(|j| j.evaluation_id == evaluation_id.as_str())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no determination job {determination_id} for {evaluation_id} on this instance"
            ))
        })?;
    Ok(Json(job_json(&job)).into_response())
}

pub fn determination_json(determination: &Determination) -> Value {
    json!({
        "determination_id": determination.determination_id,
        "evaluation_id": determination.evaluation_id,
        "eligible": determination.eligible,
        "determined_at": determination.determined_at,
        "rules_version": determination.rules_version,
        "quarters": determination.quarters,
    })
}

#[derive(Deserialize)]
pub struct EligibilityQuery {
    explain: Option<bool>,
    /// Explain this (earlier) determination instead of the one in force.
    determination_id: Option<String>,
}

/// `GET /v1/members/{id}/eligibility/{evaluation_id}[?explain=true]`: the final eligibility
/// (rule 9), the determination in force with its basis as recorded, and its appeal; 404 when
/// no determination exists. With `explain=true`, per quarter of the evaluation, the completions
/// and adjustments that counted and those that did not (and why), each with its sequence and
/// position: as the system knew them when it decided (the events before the determination,
/// under the rulesets it knew), and beside that what it would decide now; `determination_id=`
/// explains an earlier determination of the evaluation instead (an appeal's, say).
pub async fn eligibility(
    State(state): State<AppState>,
    ApiPath((member_id, evaluation_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<EligibilityQuery>,
) -> Result<Json<Value>, ApiError> {
    let member_id = extract::uuid("member_id", &member_id)?;
    let evaluation_id = extract::slug("evaluation_id", &evaluation_id)?;
    let ledger = state.ledger();
    let not_found = || {
        ApiError::NotFound(format!(
            "member {member_id} has no determination for {evaluation_id}"
        ))
    };
    let explained_id = query
        .determination_id
        .as_deref()
        .map(|d| extract::uuid("determination_id", d))
        .transpose()?;
    if query.explain != Some(true) && explained_id.is_none() {
        let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
        let (eligible, determination, appeal) = member
            .final_eligibility(&evaluation_id)
            .ok_or_else(not_found)?;
        return Ok(Json(eligibility_json(
            member_id,
            &member,
            eligible,
            determination,
            appeal,
        )));
    }
    let history = ledger
        .history::<Member>(&member_id.to_string(), None)
        .await?;
    let (now, now_provenance) = fold_history(history.iter().cloned(), usize::MAX);
    let (eligible, determination, appeal) = now
        .final_eligibility(&evaluation_id)
        .ok_or_else(not_found)?;
    let mut body = eligibility_json(member_id, &now, eligible, determination, appeal);
    let determination = match explained_id {
        None => determination,
        Some(id) => now
            .determinations()
            .iter()
            .find(|d| d.determination_id == id && d.evaluation_id == evaluation_id)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "member {member_id} has no determination {id} for {evaluation_id}"
                ))
            })?,
    };
    let (sequence, recorded_at) = history
        .iter()
        .find_map(|r| match &r.event {
            MemberEvent::EligibilityDetermined(d)
                if d.determination_id == determination.determination_id =>
            {
                Some((r.sequence, r.recorded_at))
            }
            _ => None,
        })
        .ok_or_else(not_found)?;
    let quarters: Vec<Quarter> = determination.quarters.iter().map(|q| q.quarter).collect();
    let tz = ledger.tz();
    let rulesets = ledger.rulesets().await?;
    // What the system knew: the events before the determination, the rulesets it knew.
    let known_rules: Vec<Ruleset> = rulesets
        .iter()
        .filter(|r| r.version <= determination.rules_version)
        .cloned()
        .collect();
    let (then, then_provenance) = fold_history(history, sequence);
    let then_entries = ledger_entries(&then, &known_rules, tz, &then_provenance);
    // What it would decide now: every fact and every ruleset.
    let now_entries = ledger_entries(&now, &rulesets, tz, &now_provenance);
    let (eligible_now, judged_now) = now
        .eligibility(&quarters, &rulesets, ledger.clock())
        .ok_or_else(not_found)?;
    body["explanation"] = json!({
        "determination_id": determination.determination_id,
        "as_determined": {
            "determination_sequence": sequence,
            "recorded_at": recorded_at,
            "rules_version": determination.rules_version,
            "eligible": determination.eligible,
            "quarters": explained(&determination.quarters, &then_entries),
        },
        "now": {
            "rules_version": latest_version(&rulesets),
            "eligible": eligible_now,
            "quarters": explained(&judged_now, &now_entries),
        },
    });
    Ok(Json(body))
}

/// The final eligibility (rule 9), the determination in force as recorded, and its appeal;
/// then the determinations it superseded, newest first, each with its appeal.
fn eligibility_json(
    member_id: Uuid,
    member: &Member,
    eligible: bool,
    determination: &Determination,
    appeal: Option<&Appeal>,
) -> Value {
    let appeal_json = |a: &Appeal| appeals::appeal_json(a, member.appeal_status(a));
    let earlier: Vec<Value> = member
        .determinations()
        .iter()
        .rev()
        .filter(|d| {
            d.evaluation_id == determination.evaluation_id
                && d.determination_id != determination.determination_id
        })
        .map(|d| {
            let mut earlier = determination_json(d);
            earlier["appeal"] = json!(member.appeal_against(d.determination_id).map(appeal_json));
            earlier
        })
        .collect();
    json!({
        "member_id": member_id,
        "evaluation_id": determination.evaluation_id,
        "eligible": eligible,
        "determination": determination_json(determination),
        "appeal": appeal.map(appeal_json),
        "earlier_determinations": earlier,
    })
}

/// Each judged quarter with the ledger entries that fall in it.
fn explained(judged: &[QuarterJudgement], entries: &[Entry]) -> Vec<Value> {
    judged
        .iter()
        .map(|judgement| {
            let mut quarter = serde_json::to_value(judgement).unwrap_or_else(|_| json!({}));
            quarter["entries"] = json!(entries
                .iter()
                .filter(|e| e.quarter == judgement.quarter)
                .map(|e| &e.json)
                .collect::<Vec<_>>());
            quarter
        })
        .collect()
}
