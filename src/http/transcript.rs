//! `GET /v1/members/{id}/ledger` ("what counted, and why?", as of any moment) and its CSV
//! transcript.
//!
//! Read from the member's stream directly, not a view, so that `as_of` is exact: the ledger
//! as of T is folded from the events recorded by T, under the rulesets published by T.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::values::{local_date, MemberId, Quarter};
use studyledger_projections::fold::{MemberFold, QuarterCompliance};
use studyledger_projections::ledger_lines::{fold_history, ledger_lines, LedgerLine};

use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::access;
use crate::http::auth::Caller;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::events::{member_stream, with_provenance};
use crate::http::extract::{ApiPath, ApiQuery, Rfc3339};
use crate::http::openapi as doc;
use crate::http::skipped_events;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ledger))
        .routes(routes!(ledger_csv))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// The ledger as the system knew it at this instant (RFC 3339); default now.
    #[param(value_type = Option<String>, format = DateTime)]
    as_of: Option<Rfc3339>,
}

#[derive(Serialize, ToSchema)]
pub struct Transcript {
    member_id: MemberId,
    as_of: DateTime<Utc>,
    entries: Vec<LedgerLine>,
    quarters: Vec<QuarterCompliance>,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

/// `GET /v1/members/{id}/ledger?as_of=`: every completion and adjustment recorded by `as_of`,
/// credited or not and why, with its event's sequence, position and recorder, and the
/// per-quarter totals. With `Accept: text/csv`, the entries as a transcript.
#[utoipa::path(get, path = "/v1/members/{member_id}/ledger", tag = "audit",
    params(("member_id" = MemberId, Path), LedgerQuery),
    responses(
        (status = 200, body = Transcript, description = "the ledger; as `text/csv` when asked with `Accept: text/csv`"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn ledger(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let transcript = transcript(&state, &caller, member_id, &query).await?;
    if csv::wanted(&headers) {
        return transcript_csv(&transcript);
    }
    Ok(Json(transcript).into_response())
}

/// `GET /v1/members/{id}/ledger.csv?as_of=`: the transcript as CSV (UTF-8 with a BOM).
#[utoipa::path(get, path = "/v1/members/{member_id}/ledger.csv", tag = "audit",
    params(("member_id" = MemberId, Path), LedgerQuery),
    responses(
        (status = 200, description = "the transcript", content_type = "text/csv"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn ledger_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> Result<Response, ApiError> {
    transcript_csv(&transcript(&state, &caller, member_id, &query).await?)
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

fn transcript_csv(transcript: &Transcript) -> Result<Response, ApiError> {
    let rows = transcript
        .entries
        .iter()
        .map(|line| csv::row(line, &LEDGER_CSV))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(csv::response(
        csv::encode(Some(&LEDGER_CSV), rows)?,
        &format!("ledger-{}.csv", transcript.member_id),
    ))
}

async fn transcript(
    state: &AppState,
    caller: &Caller,
    member_id: MemberId,
    query: &LedgerQuery,
) -> Result<Transcript, ApiError> {
    let as_of = query.as_of.map_or_else(Utc::now, |t| t.0);
    let history = member_stream(state, caller, member_id, Some(as_of)).await?;
    access::log_read(state, caller, vec![member_id.uuid()]).await?;
    let ledger = state.ledger();
    let tz = ledger.tz();
    let rulesets = ledger.rulesets_as_of(as_of).await?;
    let (member, provenance) = fold_history(with_provenance(history), usize::MAX);
    let entries = ledger_lines(&member, &rulesets, tz, &provenance);
    let fold = MemberFold::new(&member, &rulesets, tz);
    let mut quarters: Vec<Quarter> = entries.iter().map(|e| e.quarter).collect();
    quarters.sort_unstable();
    quarters.dedup();
    let today = local_date(as_of, tz);
    Ok(Transcript {
        member_id,
        as_of,
        quarters: quarters
            .into_iter()
            .map(|q| fold.quarter(q, &rulesets, today))
            .collect(),
        entries,
        incomplete: skipped_events::incomplete(state, member_id).await?,
    })
}
