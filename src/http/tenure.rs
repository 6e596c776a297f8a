//! `/v1/members/{id}/departures` and `/v1/members/{id}/rejoinings`: a member leaves, and may
//! come back (rule 12). While away they are counted in no roll-up, their own quarters are
//! `left`, and their study is refused; the quarter they come back in is exempt unless they come
//! back on its first day.

use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::member::command::{Depart, Rejoin};
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{MemberId, OrgId, Reason};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson, ApiPath, CalendarDate};
use crate::http::members::moving_to;
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_departure))
        .routes(routes!(record_rejoining))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDeparture {
    departure_id: Uuid,
    /// The first day the member is away (local date); not ahead of today.
    left_on: CalendarDate,
    #[schema(value_type = Reason)]
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Departed {
    member_id: MemberId,
    departure_id: Uuid,
    left_on: NaiveDate,
    reason: String,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/departures`: the member leaves from `left_on` on (rule 12). Refused
/// while they are away already (409), when they studied on or after `left_on` (409), and when
/// `left_on` is ahead of today or not after their last move (422).
#[utoipa::path(post, path = "/v1/members/{member_id}/departures", tag = "members",
    params(("member_id" = MemberId, Path)),
    request_body = RecordDeparture,
    responses(
        (status = 201, body = Departed),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn record_departure(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RecordDeparture>,
) -> Result<Created<Departed>, ApiError> {
    let left_on = body.left_on.within_ledger_years("left_on")?;
    let reason: Reason = text("reason", body.reason)?;
    access::member(&state, &caller, member_id).await?;
    let ledger = state.ledger();
    let departure_id = body.departure_id;
    let command = MemberCommand::Depart(Depart {
        departure_id,
        left_on,
        reason: reason.clone(),
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            m.departure(departure_id).map(|d| (d.sequence, ()))
        })
        .await?;
    Ok(Created(Departed {
        member_id,
        departure_id,
        left_on,
        reason: reason.into_string(),
        sequence: fact.sequence,
        position: fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRejoining {
    rejoining_id: Uuid,
    /// The first day back (local date); after the departure, not ahead of today.
    rejoined_on: CalendarDate,
    /// The organisation the member comes back to.
    org_id: OrgId,
}

#[derive(Serialize, ToSchema)]
pub struct Rejoined {
    member_id: MemberId,
    rejoining_id: Uuid,
    rejoined_on: NaiveDate,
    org_id: OrgId,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/rejoinings`: a member who left comes back to an organisation from
/// `rejoined_on` on (rule 12). Refused unless they are away (409), and when `rejoined_on` is
/// not after the departure or ahead of today, or the organisation is not registered (422).
#[utoipa::path(post, path = "/v1/members/{member_id}/rejoinings", tag = "members",
    params(("member_id" = MemberId, Path)),
    request_body = RecordRejoining,
    responses(
        (status = 201, body = Rejoined),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn record_rejoining(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RecordRejoining>,
) -> Result<Created<Rejoined>, ApiError> {
    let rejoined_on = body.rejoined_on.within_ledger_years("rejoined_on")?;
    access::member(&state, &caller, member_id).await?;
    access::organisation(&state, &caller, &body.org_id).await?;
    let ledger = state.ledger();
    moving_to(ledger, member_id, &body.org_id).await?;
    let rejoining_id = body.rejoining_id;
    let command = MemberCommand::Rejoin(Rejoin {
        rejoining_id,
        rejoined_on,
        org_id: body.org_id.clone(),
        clock: ledger.clock(),
    });
    let fact = ledger
        .record_held::<Member, _>(
            &member_id.to_string(),
            command,
            &caller.metadata(),
            Some(&body.org_id),
            |_| None,
            |m| m.rejoining(rejoining_id).map(|r| (r.sequence, ())),
        )
        .await?;
    Ok(Created(Rejoined {
        member_id,
        rejoining_id,
        rejoined_on,
        org_id: body.org_id,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
