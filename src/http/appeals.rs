//! Corrections and appeals (DESIGN §3 rules 3 and 9): credit adjustments by administrators,
//! appeals by members against their latest determination, reviewers' resolutions, and the list
//! of open appeals under an organisation for reviewers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use studyledger_aggregates::facts::{Appeal, AppealOutcome, AppealStatus};
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{Category, Quarter};
use studyledger_projections::store as views;

use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{self, Admin, ApiJson, ApiPath, ApiQuery, RequestMeta};
use crate::http::members::record_fact;
use crate::http::AppState;
use crate::store::StoreError;

#[derive(Deserialize)]
pub struct AdjustCredit {
    adjustment_id: String,
    category: String,
    hours: Box<RawValue>,
    effective_at: String,
    reason: String,
    appeal_id: Option<String>,
}

/// `POST /v1/members/{id}/credit-adjustments`: an administrator adds or removes hours in one
/// category, counted in the quarter of `effective_at` (rule 3).
pub async fn adjust(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<AdjustCredit>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member_id = extract::uuid("member_id", &member_id)?;
    let adjustment_id = extract::uuid("adjustment_id", &body.adjustment_id)?;
    let category: Category = body
        .category
        .parse()
        .map_err(|e| ApiError::RuleViolation(format!("category: {e}")))?;
    let hours = extract::hours("hours", &body.hours)?;
    let effective_at = extract::instant("effective_at", &body.effective_at)?;
    let appeal_id = body
        .appeal_id
        .as_deref()
        .map(|a| extract::uuid("appeal_id", a))
        .transpose()?;
    let ledger = state.ledger();
    let command = MemberCommand::AdjustCredit {
        adjustment_id,
        category,
        hours,
        effective_at,
        reason: body.reason,
        appeal_id,
        clock: ledger.clock(),
    };
    let (sequence, position, adjustment) =
        record_fact(ledger, member_id, command, &meta, move |m: &Member| {
            m.adjustments()
                .iter()
                .find(|a| a.adjustment_id == adjustment_id)
                .map(|a| (a.sequence, a.clone()))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "member_id": member_id,
            "adjustment_id": adjustment.adjustment_id,
            "category": adjustment.category,
            "hours": adjustment.hours,
            "effective_at": adjustment.effective_at,
            "quarter": Quarter::of_instant(adjustment.effective_at, ledger.tz()),
            "reason": adjustment.reason,
            "appeal_id": adjustment.appeal_id,
            "sequence": sequence,
            "position": position,
        })),
    ))
}

#[derive(Deserialize)]
pub struct FileAppeal {
    appeal_id: String,
    evaluation_id: String,
    reason: String,
}

/// An appeal as answered, with where it stands (`open`, `upheld`, `overturned`, `superseded`).
pub fn appeal_json(appeal: &Appeal, status: AppealStatus) -> Value {
    let resolution = appeal.resolution.as_ref();
    json!({
        "appeal_id": appeal.appeal_id,
        "evaluation_id": appeal.evaluation_id,
        "determination_id": appeal.determination_id,
        "reason": appeal.reason,
        "filed_at": appeal.filed_at,
        "status": status,
        "note": resolution.map(|r| &r.note),
        "resolved_at": resolution.map(|r| r.resolved_at),
        "sequence": appeal.sequence,
    })
}

/// `POST /v1/members/{id}/appeals`: the member contests the latest determination for an
/// evaluation; 409 without a determination or while another appeal is open.
pub async fn file(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<FileAppeal>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member_id = extract::uuid("member_id", &member_id)?;
    let appeal_id = extract::uuid("appeal_id", &body.appeal_id)?;
    let evaluation_id = extract::slug("evaluation_id", &body.evaluation_id)?;
    let ledger = state.ledger();
    let command = MemberCommand::FileAppeal {
        appeal_id,
        evaluation_id,
        reason: body.reason,
        clock: ledger.clock(),
    };
    let (_, position, appeal) = record_fact(ledger, member_id, command, &meta, move |m| {
        m.appeal(appeal_id)
            .map(|a| (a.sequence, appeal_json(a, m.appeal_status(a))))
    })
    .await?;
    let mut answer = appeal;
    answer["member_id"] = json!(member_id);
    answer["position"] = json!(position);
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize)]
pub struct Resolve {
    outcome: String,
    note: String,
}

/// `POST /v1/members/{id}/appeals/{appeal_id}/resolution`: a reviewer upholds or overturns the
/// appeal; the answer carries the final eligibility it leads to.
pub async fn resolve(
    State(state): State<AppState>,
    ApiPath((member_id, appeal_id)): ApiPath<(String, String)>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<Resolve>,
) -> Result<Json<Value>, ApiError> {
    let member_id = extract::uuid("member_id", &member_id)?;
    let appeal_id = extract::uuid("appeal_id", &appeal_id)?;
    let outcome: AppealOutcome = serde_json::from_value(json!(body.outcome))
        .map_err(|_| ApiError::RuleViolation("outcome must be upheld or overturned".to_owned()))?;
    let ledger = state.ledger();
    let command = MemberCommand::ResolveAppeal {
        appeal_id,
        outcome,
        note: body.note,
        clock: ledger.clock(),
    };
    let (_, position, (appeal, eligible)) =
        record_fact(ledger, member_id, command, &meta, move |m| {
            let appeal = m.appeal(appeal_id)?;
            let resolution = appeal.resolution.as_ref()?;
            let eligible = m.final_eligibility(&appeal.evaluation_id).map(|f| f.0);
            Some((
                resolution.sequence,
                (appeal_json(appeal, m.appeal_status(appeal)), eligible),
            ))
        })
        .await?;
    let mut answer = appeal;
    answer["member_id"] = json!(member_id);
    answer["eligible"] = json!(eligible);
    answer["position"] = json!(position);
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct AppealsQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    min_position: Option<i64>,
}

/// `GET /v1/orgs/{id}/appeals?limit=&cursor=`: open appeals of the members who belong to the
/// subtree today, in appeal id order — a reviewer's work list. `next_cursor` continues it.
pub async fn open_in_org(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AppealsQuery>,
) -> Result<Response, ApiError> {
    let org_id = extract::slug("org_id", &org_id)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Malformed(
            "limit must be between 1 and 1000".to_owned(),
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(|c| extract::uuid("cursor", c))
        .transpose()?;
    let caught_up = consistency::wait_for_views(&state, query.min_position).await?;
    let ledger = state.ledger();
    let today = studyledger_aggregates::values::local_date(chrono::Utc::now(), ledger.tz());
    let mut tx = ledger.pool().begin().await.map_err(StoreError::from)?;
    let orgs = views::subtree(&mut tx, org_id.as_str())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("organisation {org_id} is not registered")))?;
    let page = views::open_appeals(&mut tx, &orgs, today, after, limit)
        .await
        .map_err(StoreError::from)?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(|a| a.appeal_id))
        .flatten();
    let appeals: Vec<Value> = page
        .iter()
        .map(|a| {
            json!({
                "appeal_id": a.appeal_id,
                "member_id": a.member_id,
                "member_no": a.member_no,
                "name": a.name,
                "org_id": a.org_id,
                "evaluation_id": a.evaluation_id,
                "determination_id": a.determination_id,
                "reason": a.reason,
                "filed_at": a.filed_at,
            })
        })
        .collect();
    Ok(consistency::marked(
        Json(json!({
            "org_id": org_id,
            "appeals": appeals,
            "next_cursor": next_cursor,
        }))
        .into_response(),
        caught_up,
    ))
}
