//! Replays over HTTP: start one (`POST /v1/replays`), follow it and read its work list of
//! changed eligibilities (`GET /v1/replays/{id}`, as JSON pages or as CSV for committees).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{self, Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::AppState;
use crate::replay::{self, ReplayError};
use crate::store::StoreError;

#[derive(Deserialize)]
pub struct StartReplay {
    dry_run: Option<bool>,
}

impl From<ReplayError> for ApiError {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::AlreadyRunning => {
                ApiError::Conflict("a replay is already running".to_owned())
            }
            ReplayError::Database(e) => StoreError::from(e).into(),
            ReplayError::Store(e) => e.into(),
            ReplayError::Corrupt(_) | ReplayError::Stopped(_) => ApiError::Internal,
        }
    }
}

/// `POST /v1/replays {"dry_run": true|false}`: 202 with the replay's id; the work runs in the
/// background. 409 while another replay runs.
pub async fn start(
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
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"replay_id": replay_id, "dry_run": dry_run, "status": "running"})),
    )
        .into_response();
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
struct Change {
    member_id: Uuid,
    member_no: Option<String>,
    name: Option<String>,
    evaluation_id: String,
    determination_id: Uuid,
    recorded_eligible: bool,
    eligible_now: bool,
    quarters: Value,
}

impl Change {
    fn quarters_changed(&self) -> Vec<String> {
        self.quarters
            .as_array()
            .map(|qs| {
                qs.iter()
                    .filter_map(|q| q["quarter"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        json!({
            "member_id": self.member_id,
            "member_no": self.member_no,
            "name": self.name,
            "evaluation_id": self.evaluation_id,
            "determination_id": self.determination_id,
            "recorded_eligible": self.recorded_eligible,
            "eligible_now": self.eligible_now,
            "quarters_changed": self.quarters_changed(),
            "quarters": self.quarters,
        })
    }
}

/// The changes after `after` (member id, evaluation id), at most `limit`.
async fn changes(
    pool: &PgPool,
    replay_id: Uuid,
    after: Option<(Uuid, String)>,
    limit: i64,
) -> Result<Vec<Change>, sqlx::Error> {
    let (after_member, after_evaluation) = after.unzip();
    let rows = sqlx::query(
        "SELECT c.member_id, m.member_no, m.name, c.evaluation_id, c.determination_id,
                c.recorded_eligible, c.eligible_now, c.quarters_changed
           FROM replay_changes c
           LEFT JOIN member_view m ON m.member_id = c.member_id
          WHERE c.replay_id = $1
            AND ($2::uuid IS NULL OR (c.member_id, c.evaluation_id) > ($2, $3))
          ORDER BY c.member_id, c.evaluation_id
          LIMIT $4",
    )
    .bind(replay_id)
    .bind(after_member)
    .bind(after_evaluation)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Change {
                member_id: row.try_get(0)?,
                member_no: row.try_get(1)?,
                name: row.try_get(2)?,
                evaluation_id: row.try_get(3)?,
                determination_id: row.try_get(4)?,
                recorded_eligible: row.try_get(5)?,
                eligible_now: row.try_get(6)?,
                quarters: row.try_get(7)?,
            })
        })
        .collect()
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

/// A replay's row, as answered.
#[derive(sqlx::FromRow, serde::Serialize)]
struct ReplayRow {
    replay_id: Uuid,
    dry_run: bool,
    status: String,
    events_processed: i64,
    events_total: i64,
    members_processed: i64,
    rules_version: Option<i32>,
    actor: String,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    error: Option<String>,
    changes_total: i64,
}

async fn replay_row(pool: &PgPool, replay_id: Uuid) -> Result<Value, ApiError> {
    let row: ReplayRow = sqlx::query_as(
        "SELECT r.replay_id, r.dry_run, r.status, r.events_processed, r.events_total,
                r.members_processed, r.rules_version, r.actor, r.started_at, r.finished_at,
                r.error,
                (SELECT count(*) FROM replay_changes c WHERE c.replay_id = r.replay_id)
                    AS changes_total
           FROM replays r WHERE r.replay_id = $1",
    )
    .bind(replay_id)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::from)?
    .ok_or_else(|| ApiError::NotFound(format!("no replay {replay_id}")))?;
    serde_json::to_value(row).map_err(|_| ApiError::Internal)
}

/// `GET /v1/replays/{id}`: status, progress, and a page of `changes` (`limit` ≤ 1000,
/// `next_cursor` continues); with `Accept: text/csv`, every change as CSV.
pub async fn show(
    State(state): State<AppState>,
    ApiPath(replay_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let replay_id = extract::uuid("replay_id", &replay_id)?;
    let pool = state.ledger().pool();
    let mut body = replay_row(pool, replay_id).await?;
    if csv::wanted(&headers) {
        return Ok(csv_response(pool.clone(), replay_id));
    }
    let limit = query.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Malformed(
            "limit must be between 1 and 1000".to_owned(),
        ));
    }
    let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let page = changes(pool, replay_id, after, limit)
        .await
        .map_err(StoreError::from)?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(cursor_of))
        .flatten();
    body["changes"] = json!(page.iter().map(Change::json).collect::<Vec<_>>());
    body["next_cursor"] = json!(next_cursor);
    Ok(Json(body).into_response())
}

/// `GET /v1/replays/{id}/changes.csv`: the work list as CSV.
pub async fn show_csv(
    State(state): State<AppState>,
    ApiPath(replay_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let replay_id = extract::uuid("replay_id", &replay_id)?;
    let pool = state.ledger().pool();
    replay_row(pool, replay_id).await?;
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
            vec![
                change.member_id.to_string(),
                csv::text(change.member_no.as_deref().unwrap_or_default()),
                csv::text(change.name.as_deref().unwrap_or_default()),
                change.evaluation_id.clone(),
                change.determination_id.to_string(),
                change.recorded_eligible.to_string(),
                change.eligible_now.to_string(),
                change.quarters_changed().join(" "),
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
                let page = match changes(&pool, replay_id, after, CSV_PAGE).await {
                    Ok(page) => page,
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
