//! The auditable trail of a member: the ledger ("what counted, and why?", as of any moment)
//! and the raw event stream.
//!
//! Both read the member's stream directly, not a view, so that `as_of` is exact: the ledger
//! as of T is folded from the events recorded by T, under the rulesets published by T.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rules::credit::credit_completions;
use studyledger_aggregates::values::{local_date, Quarter};
use studyledger_projections::fold::MemberFold;

use crate::http::error::ApiError;
use crate::http::extract::{self, ApiPath, ApiQuery};
use crate::http::AppState;
use crate::store::Recorded;

#[derive(Deserialize)]
pub struct LedgerQuery {
    as_of: Option<String>,
}

/// The member's stream, or 404 when the member is unknown (or was not enrolled yet by `as_of`).
async fn stream(
    state: &AppState,
    raw_id: &str,
    as_of: Option<DateTime<Utc>>,
) -> Result<(uuid::Uuid, Vec<Recorded<MemberEvent>>), ApiError> {
    let member_id = extract::uuid("member_id", raw_id)?;
    let history = state
        .ledger()
        .history::<Member>(&member_id.to_string(), as_of)
        .await?;
    if history.is_empty() {
        return Err(ApiError::NotFound(format!(
            "member {member_id} has no recorded events{}",
            as_of
                .map(|t| format!(" as of {}", t.to_rfc3339()))
                .unwrap_or_default()
        )));
    }
    Ok((member_id, history))
}

/// `GET /v1/members/{id}/ledger?as_of=`: every completion recorded by `as_of`, credited or
/// not and why, with its event's sequence and position, and the per-quarter totals.
pub async fn ledger(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Json<Value>, ApiError> {
    let as_of = match query.as_of.as_deref() {
        Some(raw) => extract::instant("as_of", raw)?,
        None => Utc::now(),
    };
    let (member_id, history) = stream(&state, &member_id, Some(as_of)).await?;
    let ledger = state.ledger();
    let tz = ledger.tz();
    let rulesets = ledger.rulesets_as_of(as_of).await?;

    let mut member = Member::default();
    let mut recorded_by_sequence = std::collections::HashMap::new();
    for recorded in history {
        recorded_by_sequence.insert(recorded.sequence, (recorded.position, recorded.recorded_at));
        member.apply(recorded.event);
    }
    let outcomes = credit_completions(member.sessions(), member.completions(), &rulesets, tz);
    let entries: Vec<Value> = outcomes
        .iter()
        .map(|outcome| {
            let completion = outcome.completion;
            let (position, recorded_at) = recorded_by_sequence
                .get(&completion.sequence)
                .copied()
                .unzip();
            json!({
                "sequence": completion.sequence,
                "position": position,
                "recorded_at": recorded_at,
                "occurred_at": completion.completed_at,
                "kind": "course_completion",
                "completion_id": completion.completion_id,
                "course_id": completion.course.course_id,
                "category": completion.course.category,
                "hours": completion.course.credit_hours,
                "credited": outcome.is_credited(),
                "not_credited_reason": outcome.credited.err().map(|r| r.as_str()),
                "quarter": outcome.quarter,
            })
        })
        .collect();

    let fold = MemberFold::new(&member, &rulesets, tz);
    let mut quarters: Vec<Quarter> = outcomes.iter().map(|o| o.quarter).collect();
    quarters.sort_unstable();
    quarters.dedup();
    let today = local_date(as_of, tz);
    let quarters: Vec<_> = quarters
        .into_iter()
        .map(|q| fold.quarter(q, &rulesets, today))
        .collect();
    Ok(Json(json!({
        "member_id": member_id,
        "as_of": as_of,
        "entries": entries,
        "quarters": quarters,
    })))
}

/// `GET /v1/members/{id}/events`: the raw stream with positions, recording times and metadata.
pub async fn events(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (member_id, history) = stream(&state, &member_id, None).await?;
    let events: Vec<Value> = history
        .into_iter()
        .map(|r| {
            json!({
                "sequence": r.sequence,
                "position": r.position,
                "event_type": r.event_type,
                "event_version": r.event_version,
                "recorded_at": r.recorded_at,
                "actor": r.metadata.get("actor"),
                "request_id": r.metadata.get("request_id"),
                "payload": r.payload,
                "hash": r.hash,
            })
        })
        .collect();
    Ok(Json(json!({ "member_id": member_id, "events": events })))
}
