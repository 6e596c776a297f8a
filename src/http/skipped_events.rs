//! Events the ledger could not apply: `GET /v1/skipped-events` lists them for auditors, and
//! `POST /v1/members/{id}/skipped-events/{sequence}/set-aside` records an administrator's
//! decision that a member's record goes on without one (until then the member reads as
//! `incomplete` and no determination is made for them).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::member::command::SetAsideSkipped;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{MemberId, Reason};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, text, ApiJson, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::skipped::{self, Listed};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set_aside))
}

/// Whether a member's record holds a skipped event not set aside: the `incomplete` flag of
/// every read of the record.
pub async fn incomplete(state: &AppState, member_id: MemberId) -> Result<bool, ApiError> {
    let id = member_id.to_string();
    Ok(skipped::is_incomplete(state.ledger().pool(), &id).await?)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SkippedQuery {
    /// Only those not set aside yet.
    open: Option<bool>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Skipped {
    /// In the order of the log (events.position).
    skipped_events: Vec<Listed>,
    next_cursor: Option<i64>,
}

/// `GET /v1/skipped-events?open=&limit=&cursor=`: the events the projector or replay passed
/// over, with why, oldest first.
#[utoipa::path(get, path = "/v1/skipped-events", operation_id = "list_skipped_events", tag = "audit",
    params(SkippedQuery),
    responses(
        (status = 200, body = Skipped),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SkippedQuery>,
) -> Result<Json<Skipped>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    let pool = state.ledger().pool();
    let after = query.cursor.unwrap_or(0);
    let page = skipped::list(pool, after, limit, query.open.unwrap_or(false)).await?;
    let members: Vec<Uuid> = page
        .iter()
        .filter(|s| s.aggregate_type == Member::TYPE)
        .filter_map(|s| Uuid::parse_str(&s.aggregate_id).ok())
        .collect();
    access::log_read(&state, &caller, members).await?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(|s| s.position))
        .flatten();
    Ok(Json(Skipped {
        skipped_events: page,
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAside {
    /// Why the record can go on without the event (what was checked, what was recorded
    /// instead).
    #[schema(value_type = Reason)]
    note: String,
}

#[derive(Serialize, ToSchema)]
pub struct SetAsideAnswer {
    member_id: MemberId,
    skipped_sequence: usize,
    note: Reason,
    set_aside_at: DateTime<Utc>,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/skipped-events/{sequence}/set-aside {"note"}`: the member's record
/// goes on without the skipped event (which stays stored). 404 when the member has no
/// skipped event at that sequence; a resend with the same note answers the same.
#[utoipa::path(post, path = "/v1/members/{member_id}/skipped-events/{sequence}/set-aside",
    tag = "audit",
    params(("member_id" = MemberId, Path), ("sequence" = usize, Path)),
    request_body = SetAside,
    responses(
        (status = 201, body = SetAsideAnswer),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn set_aside(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((member_id, skipped_sequence)): ApiPath<(MemberId, usize)>,
    ApiJson(body): ApiJson<SetAside>,
) -> Result<Created<SetAsideAnswer>, ApiError> {
    let note: Reason = text("note", body.note)?;
    let ledger = state.ledger();
    let id = member_id.to_string();
    let skipped = skipped::of_member(ledger.pool(), &id).await?;
    let command = MemberCommand::SetAsideSkipped(SetAsideSkipped {
        skipped_sequence,
        note,
        skipped,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&id, command, &caller.metadata(), |m| {
            m.set_aside()
                .iter()
                .find(|a| a.skipped_sequence == skipped_sequence)
                .map(|a| (a.sequence, a.clone()))
        })
        .await?;
    let decision = fact.value;
    Ok(Created(SetAsideAnswer {
        member_id,
        skipped_sequence,
        note: decision.note,
        set_aside_at: decision.set_aside_at,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
