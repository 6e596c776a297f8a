//! `/v1/replays`: start a replay (rule 10: rebuild, or a dry run that lists who changes
//! eligibility), follow it, and read its work list — as JSON pages, or as CSV for committees.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use studyledger_aggregates::values::Quarter;
use studyledger_projections::sql::replays::{self, ChangeRecord, QuarterChange, ReplayRecord};
use uuid::Uuid;

use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::jobs::replay;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/replays", post(start))
        .route("/v1/replays/{replay_id}", get(show))
        .route("/v1/replays/{replay_id}/changes.csv", get(show_csv))
}

#[derive(Deserialize)]
pub struct StartReplay {
    dry_run: Option<bool>,
}

#[derive(Serialize)]
pub struct Started {
    replay_id: Uuid,
    dry_run: bool,
    status: &'static str,
}

/// `POST /v1/replays {"dry_run": true|false}`: 202 with the replay's id; the work runs in the
/// background. 409 while another replay runs.
async fn start(
    State(state): State<AppState>,
    Admin(meta): Admin,
    ApiJson(body): ApiJson<StartReplay>,
) -> Result<Response, ApiError> {
    let dry_run = body.dry_run.ok_or_else(|| {
        ApiError::Malformed("dry_run is required: true lists the changes, false rebuilds".into())
    })?;
    let ledger = state.ledger().clone();
    let started = replay::start(&ledger, dry_run, &meta.actor).await?;
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
    let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/replays/{replay_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// One change of the work list, with the member's number and name for the people reading it.
#[derive(Serialize)]
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

#[derive(Serialize)]
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
async fn show(
    State(state): State<AppState>,
    ApiPath(replay_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pool = state.ledger().pool();
    let replay = replay_record(pool, replay_id).await?;
    if csv::wanted(&headers) {
        return Ok(csv_response(pool.clone(), replay_id));
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
    Ok(Json(ReplayAnswer {
        replay,
        changes: page,
        next_cursor,
    })
    .into_response())
}

/// `GET /v1/replays/{id}/changes.csv`: the work list as CSV.
async fn show_csv(
    State(state): State<AppState>,
    ApiPath(replay_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let pool = state.ledger().pool();
    replay_record(pool, replay_id).await?;
    Ok(csv_response(pool.clone(), replay_id))
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

/// The whole work list, streamed page by page (memory holds one page).
fn csv_response(pool: PgPool, replay_id: Uuid) -> Response {
    let pages = futures::stream::unfold(
        (Some(None::<(Uuid, String)>), true),
        move |(after, first)| {
            let pool = pool.clone();
            async move {
                let after = after?;
                let page: Vec<Change> =
                    match replays::changes(&pool, replay_id, after, CSV_PAGE).await {
                        Ok(page) => page.into_iter().map(Change::from).collect(),
                        Err(e) => return Some((Err(std::io::Error::other(e)), (None, false))),
                    };
                let next = (i64::try_from(page.len()).unwrap_or(0) == CSV_PAGE)
                    .then(|| {
                        page.last()
                            .map(|c| Some((c.member_id, c.evaluation_id.clone())))
                    })
                    .flatten();
                let bytes =
                    csv_page(&page, first).map_err(|e| std::io::Error::other(e.to_string()));
                Some((bytes, (next, false)))
            }
        },
    );
    csv::response(
        Body::from_stream(pages),
        &format!("replay-{replay_id}-changes.csv"),
    )
}
