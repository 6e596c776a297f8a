//! `/v1/replays`: start a replay (rule 10: rebuild, or a dry run that lists who changes
//! eligibility), follow it, and read its work list — as JSON pages, or as CSV for committees.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use studyledger_aggregates::values::Quarter;
use studyledger_projections::sql::replays::{self, ChangeRecord, QuarterChange, ReplayRecord};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Accepted;
use crate::http::auth::Caller;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, ApiJson, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::replay;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(show))
        .routes(routes!(show_csv))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReplay {
    /// Required: `true` lists who changes eligibility, `false` rebuilds the views.
    #[schema(value_type = bool, required = true)]
    dry_run: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ReplayStarted)]
pub struct Started {
    replay_id: Uuid,
    dry_run: bool,
    status: &'static str,
}

/// `POST /v1/replays {"dry_run": true|false}`: 202 with the replay's id; the work runs in the
/// background. 409 while another replay runs.
#[utoipa::path(post, path = "/v1/replays", operation_id = "start_replay", tag = "rules",
    request_body = StartReplay,
    responses(
        (status = 202, body = Started, description = "started; follow `Location`"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::TooLarge),
        (status = 415, response = doc::UnsupportedType),
        (status = 422, response = doc::RuleViolation),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["admin"])))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<StartReplay>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run.ok_or_else(|| {
        ApiError::Malformed("dry_run is required: true lists the changes, false rebuilds".into())
    })?;
    let ledger = state.ledger().clone();
    let started = replay::start(&ledger, dry_run, &caller.principal.name).await?;
    let replay_id = started.replay_id;
    tokio::spawn(async move {
        // The outcome is recorded in the replay's row.
        let _ = replay::run(ledger, started, |_| ()).await;
    });
    let answer = Started {
        replay_id,
        dry_run,
        status: "running",
    };
    Ok(Accepted {
        answer,
        location: format!("/v1/replays/{replay_id}"),
    }
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// 1–1000, default 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// One change of the work list, with the member's number and name for the people reading it.
#[derive(Serialize, ToSchema)]
pub struct Change {
    member_id: Uuid,
    member_no: Option<String>,
    name: Option<String>,
    evaluation_id: String,
    determination_id: Uuid,
    recorded_eligible: bool,
    eligible_now: bool,
    quarters_changed: Vec<Quarter>,
    quarters: Vec<QuarterChange>,
}

impl From<ChangeRecord> for Change {
    fn from(record: ChangeRecord) -> Self {
        let quarters = record.quarters_changed.0;
        Change {
            member_id: record.member_id,
            member_no: record.member_no,
            name: record.name,
            evaluation_id: record.evaluation_id,
            determination_id: record.determination_id,
            recorded_eligible: record.recorded_eligible,
            eligible_now: record.eligible_now,
            quarters_changed: quarters.iter().map(|q| q.quarter).collect(),
            quarters,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReplayAnswer {
    #[serde(flatten)]
    replay: ReplayRecord,
    changes: Vec<Change>,
    next_cursor: Option<String>,
}

fn cursor_of(change: &Change) -> String {
    format!("{}/{}", change.member_id, change.evaluation_id)
}

fn parse_cursor(raw: &str) -> Result<(Uuid, String), ApiError> {
    let malformed = || ApiError::Malformed("cursor is not one this service gave".to_owned());
    let (member, evaluation) = raw.split_once('/').ok_or_else(malformed)?;
    let member = Uuid::parse_str(member).map_err(|_| malformed())?;
    Ok((member, evaluation.to_owned()))
}

async fn replay_record(pool: &PgPool, replay_id: Uuid) -> Result<ReplayRecord, ApiError> {
    replays::replay(pool, replay_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no replay {replay_id}")))
}

/// `GET /v1/replays/{id}`: status, progress, and a page of `changes` (`limit` ≤ 1000,
/// `next_cursor` continues); with `Accept: text/csv`, every change as CSV.
#[utoipa::path(get, path = "/v1/replays/{replay_id}", operation_id = "show_replay", tag = "rules",
    params(("replay_id" = Uuid, Path), ChangesQuery),
    responses(
        (status = 200, body = ReplayAnswer, description = "the replay and a page of its work list; every change as `text/csv` when asked with `Accept: text/csv`"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(replay_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pool = state.ledger().pool();
    let replay = replay_record(pool, replay_id).await?;
    if csv::wanted(&headers) {
        return Ok(csv_response(state.clone(), caller, replay_id));
    }
    let limit = page_limit(query.limit, 1000, 1000)?;
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let page: Vec<Change> = replays::changes(pool, replay_id, after, limit)
        .await?
        .into_iter()
        .map(Change::from)
        .collect();
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(cursor_of))
        .flatten();
    access::log_read(&state, &caller, page.iter().map(|c| c.member_id).collect()).await?;
    Ok(Json(ReplayAnswer {
        replay,
        changes: page,
        next_cursor,
    })
    .into_response())
}

/// `GET /v1/replays/{id}/changes.csv`: the work list as CSV.
#[utoipa::path(get, path = "/v1/replays/{replay_id}/changes.csv", tag = "rules",
    params(("replay_id" = Uuid, Path)),
    responses(
        (status = 200, description = "every change", content_type = "text/csv"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn show_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(replay_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    replay_record(state.ledger().pool(), replay_id).await?;
    Ok(csv_response(state, caller, replay_id))
}

const CSV_HEADER: [&str; 8] = [
    "member_id",
    "member_no",
    "name",
    "evaluation_id",
    "determination_id",
    "recorded_eligible",
    "eligible_now",
    "quarters_changed",
];

/// Changes per page of the CSV stream.
const CSV_PAGE: i64 = 5_000;

/// One page of the work list, its reads logged.
async fn csv_changes(
    state: &AppState,
    caller: &Caller,
    replay_id: Uuid,
    after: Option<(Uuid, String)>,
) -> Result<Vec<Change>, ApiError> {
    let records = replays::changes(state.ledger().pool(), replay_id, after, CSV_PAGE).await?;
    let page: Vec<Change> = records.into_iter().map(Change::from).collect();
    access::log_read(state, caller, page.iter().map(|c| c.member_id).collect()).await?;
    Ok(page)
}

fn csv_page(changes: &[Change], with_header: bool) -> Result<Vec<u8>, ApiError> {
    csv::encode(
        with_header.then_some(&CSV_HEADER[..]),
        changes.iter().map(|change| {
            let quarters: Vec<String> = change
                .quarters_changed
                .iter()
                .map(Quarter::to_string)
                .collect();
            vec![
                change.member_id.to_string(),
                csv::text(change.member_no.as_deref().unwrap_or_default()),
                csv::text(change.name.as_deref().unwrap_or_default()),
                change.evaluation_id.clone(),
                change.determination_id.to_string(),
                change.recorded_eligible.to_string(),
                change.eligible_now.to_string(),
                quarters.join(" "),
            ]
        }),
    )
}

/// The whole work list, streamed page by page (memory holds one page), each page's reads
/// logged before it goes.
fn csv_response(state: AppState, caller: Caller, replay_id: Uuid) -> Response {
    let body = csv::paged(move |after: Option<(Uuid, String)>, first| {
        let (state, caller) = (state.clone(), caller.clone());
        async move {
            let page = csv_changes(&state, &caller, replay_id, after).await?;
            let next = (i64::try_from(page.len()).unwrap_or(0) == CSV_PAGE)
                .then(|| page.last().map(|c| (c.member_id, c.evaluation_id.clone())))
                .flatten();
            Ok((csv_page(&page, first)?, next))
        }
    });
    csv::response(body, &format!("replay-{replay_id}-changes.csv"))
}
