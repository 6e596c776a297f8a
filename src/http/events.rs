//! `GET /v1/members/{id}/events`: a member's raw stream as stored — every event with its
//! sequence, global position, recording time, who recorded it, its payload and its link of the
//! stream's hash chain. Also the stream reads the other audit answers share.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::values::MemberId;
use studyledger_projections::ledger_lines::Provenance;

use crate::http::error::ApiError;
use crate::http::extract::ApiPath;
use crate::http::state::AppState;
use crate::store::record::Recorded;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/members/{member_id}/events", get(events))
}

/// The member's stream (as of a moment), or 404 when the member is unknown (or was not
/// enrolled yet by `as_of`).
pub async fn member_stream(
    state: &AppState,
    member_id: MemberId,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Recorded<MemberEvent>>, ApiError> {
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
    Ok(history)
}

/// A stream's events as the folds of "what was known then" take them: each with its
/// sequence and where it stands in the log.
pub fn with_provenance(
    history: impl IntoIterator<Item = Recorded<MemberEvent>>,
) -> impl Iterator<Item = (usize, Provenance, MemberEvent)> {
    history.into_iter().map(|r| {
        let provenance = Provenance {
            position: r.position,
            recorded_at: r.recorded_at,
            actor: r.actor().map(str::to_owned),
        };
        (r.sequence, provenance, r.event)
    })
}

#[derive(Serialize)]
pub struct StoredEvent {
    sequence: usize,
    position: i64,
    event_type: String,
    event_version: String,
    recorded_at: DateTime<Utc>,
    actor: Option<String>,
    request_id: Option<String>,
    payload: serde_json::Value,
    hash: String,
}

#[derive(Serialize)]
pub struct Stream {
    member_id: MemberId,
    events: Vec<StoredEvent>,
}

async fn events(
    State(state): State<AppState>,
    ApiPath(member_id): ApiPath<MemberId>,
) -> Result<Json<Stream>, ApiError> {
    let history = member_stream(&state, member_id, None).await?;
    let events = history
        .into_iter()
        .map(|r| StoredEvent {
            actor: r.actor().map(str::to_owned),
            request_id: r.request_id().map(str::to_owned),
            sequence: r.sequence,
            position: r.position,
            event_type: r.event_type,
            event_version: r.event_version,
            recorded_at: r.recorded_at,
            payload: r.payload,
            hash: r.hash,
        })
        .collect();
    Ok(Json(Stream { member_id, events }))
}
