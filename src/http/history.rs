//! The auditable trail of a member: the ledger ("what counted, and why?", as of any moment)
//! and the raw event stream.
//!
//! Both read the member's stream directly, not a view, so that `as_of` is exact: the ledger
//! as of T is folded from the events recorded by T, under the rulesets published by T.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rules::credit::credit_completions;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::values::{local_date, Quarter};
use studyledger_projections::fold::MemberFold;

use crate::http::csv;
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

/// `GET /v1/members/{id}/ledger?as_of=`: every completion and adjustment recorded by `as_of`,
/// credited or not and why, with its event's sequence, position and recorder, and the
/// per-quarter totals. With `Accept: text/csv`, the entries as a transcript.
pub async fn ledger(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer_ledger(&state, &member_id, &query, csv::wanted(&headers)).await
}

/// `GET /v1/members/{id}/ledger.csv?as_of=`: the transcript as CSV.
pub async fn ledger_csv(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    answer_ledger(&state, &member_id, &query, true).await
}

const LEDGER_CSV: [&str; 14] = [
    "sequence",
    "position",
    "recorded_at",
    "recorded_by",
    "occurred_at",
    "kind",
    "course_id",
    "adjustment_id",
    "category",
    "hours",
    "credited",
    "not_credited_reason",
    "reason",
    "quarter",
];

async fn answer_ledger(
    state: &AppState,
    member_id: &str,
    query: &LedgerQuery,
    as_csv: bool,
) -> Result<Response, ApiError> {
    let as_of = match query.as_of.as_deref() {
        Some(raw) => extract::instant("as_of", raw)?,
        None => Utc::now(),
    };
    let (member_id, history) = stream(state, member_id, Some(as_of)).await?;
    let ledger = state.ledger();
    let tz = ledger.tz();
    let rulesets = ledger.rulesets_as_of(as_of).await?;

    let (member, provenance) = fold_history(history, usize::MAX);
    let entries = ledger_entries(&member, &rulesets, tz, &provenance);
    if as_csv {
        let rows = entries.iter().map(|e| {
            LEDGER_CSV
                .iter()
                .map(|field| csv::cell(&e.json[*field]))
                .collect::<Vec<_>>()
        });
        return Ok(csv::response(
            csv::encode(Some(&LEDGER_CSV), rows)?,
            &format!("ledger-{member_id}.csv"),
        ));
    }
    let fold = MemberFold::new(&member, &rulesets, tz);
    let mut quarters: Vec<Quarter> = entries.iter().map(|e| e.quarter).collect();
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
        "entries": entries.iter().map(|e| &e.json).collect::<Vec<_>>(),
        "quarters": quarters,
    }))
    .into_response())
}

/// Where each recorded event stands in the log: position, recording time, who recorded it.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub actor: Option<String>,
}

/// The member folded from its stream's events before sequence `before` (all of them for
/// `usize::MAX`), and the provenance of each event by sequence.
pub fn fold_history(
    history: impl IntoIterator<Item = Recorded<MemberEvent>>,
    before: usize,
) -> (Member, HashMap<usize, Provenance>) {
    let mut member = Member::default();
    let mut provenance = HashMap::new();
    for recorded in history.into_iter().take_while(|r| r.sequence < before) {
        provenance.insert(
            recorded.sequence,
            Provenance {
                position: recorded.position,
                recorded_at: recorded.recorded_at,
                actor: recorded.metadata["actor"].as_str().map(str::to_owned),
            },
        );
        member.apply(recorded.event);
    }
    (member, provenance)
}

/// One line of the ledger: a completion (credited or not, and why) or an adjustment.
pub struct Entry {
    pub quarter: Quarter,
    pub sequence: usize,
    pub json: Value,
}

/// Every completion and adjustment of `member`, judged under `rulesets`, in sequence order.
pub fn ledger_entries(
    member: &Member,
    rulesets: &[Ruleset],
    tz: Tz,
    provenance: &HashMap<usize, Provenance>,
) -> Vec<Entry> {
    // Where each line came from: its event's sequence, position, recording time and actor.
    let line = |sequence: usize, occurred_at: DateTime<Utc>, fields: Value| {
        let at = provenance.get(&sequence);
        let mut json = json!({
            "sequence": sequence,
            "position": at.map(|p| p.position),
            "recorded_at": at.map(|p| p.recorded_at),
            "recorded_by": at.and_then(|p| p.actor.clone()),
            "occurred_at": occurred_at,
        });
        if let (Some(json), Value::Object(fields)) = (json.as_object_mut(), fields) {
            json.extend(fields);
        }
        json
    };
    let completions = credit_completions(member.sessions(), member.completions(), rulesets, tz)
        .into_iter()
        .map(|outcome| {
            let completion = outcome.completion;
            Entry {
                quarter: outcome.quarter,
                sequence: completion.sequence,
                json: line(
                    completion.sequence,
                    completion.completed_at,
                    json!({
                        "kind": "course_completion",
                        "completion_id": completion.completion_id,
                        "course_id": completion.course.course_id,
                        "category": completion.course.category,
                        "hours": completion.course.credit_hours,
                        "credited": outcome.is_credited(),
                        "not_credited_reason": outcome.credited.err().map(|r| r.as_str()),
                        "quarter": outcome.quarter,
                    }),
                ),
            }
        });
    let adjustments = member.adjustments().iter().map(|adjustment| {
        let quarter = Quarter::of_instant(adjustment.effective_at, tz);
        Entry {
            quarter,
            sequence: adjustment.sequence,
            json: line(
                adjustment.sequence,
                adjustment.effective_at,
                json!({
                    "kind": "credit_adjustment",
                    "adjustment_id": adjustment.adjustment_id,
                    "course_id": null,
                    "category": adjustment.category,
                    "hours": adjustment.hours,
                    // Rule 3: adjustments always count.
                    "credited": true,
                    "not_credited_reason": null,
                    "reason": adjustment.reason,
                    "appeal_id": adjustment.appeal_id,
                    "quarter": quarter,
                }),
            ),
        }
    });
    let mut entries: Vec<Entry> = completions.chain(adjustments).collect();
    entries.sort_by_key(|e| e.sequence);
    entries
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
