//! `GET /v1/members/{id}/events`: a member's raw stream as stored — every event with its
//! sequence, global position, recording time, who recorded it, its payload and its link of the
//! stream's hash chain. Also the stream reads the other audit answers share.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::values::MemberId;
use studyledger_projections::ledger_lines::Provenance;

use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::access;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiPath;
use crate::http::openapi as doc;
use crate::http::skipped_events;
use crate::http::state::AppState;
use crate::store::record::Recorded;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// The member's stream (as of a moment), when the caller may reach the member (403 otherwise,
/// as for an unknown member); 404 when the member is unknown (or was not enrolled yet by
/// `as_of`) and the caller may reach everybody.
pub async fn member_stream(
    state: &AppState,
    caller: &Caller,
    member_id: MemberId,
    as_of: Option<DateTime<Utc>>,
) -> Result<Vec<Recorded<MemberEvent>>, ApiError> {
    access::member(state, caller, member_id).await?;
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
) -> impl Iterator<Item = (usize, Provenance, Option<MemberEvent>)> {
    history.into_iter().map(|r| {
        let provenance = Provenance {
            position: r.position,
            recorded_at: r.recorded_at,
            actor: r.actor().map(str::to_owned),
            token_id: r.token_id().map(str::to_owned),
            role: r.role().map(str::to_owned),
        };
        (r.sequence, provenance, r.event)
    })
}

#[derive(Serialize, ToSchema)]
pub struct StoredEvent {
    sequence: usize,
    position: i64,
    event_type: String,
    event_version: String,
    recorded_at: DateTime<Utc>,
    /// The recording token's name, id and role.
    actor: Option<String>,
    token_id: Option<String>,
    role: Option<String>,
    request_id: Option<String>,
    payload: serde_json::Value,
    /// Whether the current types read the payload; an event they cannot read is passed over
    /// by every fold, and listed at `GET /v1/skipped-events`.
    readable: bool,
    /// The event's link of its stream's hash chain (hex).
    hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct Stream {
    member_id: MemberId,
    events: Vec<StoredEvent>,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

/// `GET /v1/members/{id}/events`: the member's raw stream as stored.
#[utoipa::path(get, path = "/v1/members/{member_id}/events", tag = "audit",
    params(("member_id" = MemberId, Path)),
    responses(
        (status = 200, body = Stream),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
) -> Result<Json<Stream>, ApiError> {
    let history = member_stream(&state, &caller, member_id, None).await?;
    access::log_read(&state, &caller, vec![member_id.uuid()]).await?;
    let events = history
        .into_iter()
        .map(|r| StoredEvent {
            actor: r.actor().map(str::to_owned),
            token_id: r.token_id().map(str::to_owned),
            role: r.role().map(str::to_owned),
            request_id: r.request_id().map(str::to_owned),
            sequence: r.sequence,
            position: r.position,
            event_type: r.event_type,
            event_version: r.event_version,
            recorded_at: r.recorded_at,
            payload: r.payload,
            readable: r.event.is_some(),
            hash: r.hash,
        })
        .collect();
    let incomplete = skipped_events::incomplete(&state, member_id).await?;
    Ok(Json(Stream {
        member_id,
        events,
        incomplete,
    }))
}
