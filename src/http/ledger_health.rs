//! `GET /v1/health`: what an operator checks first — the projector's lag, the last replay, the
//! xAPI statements waiting for review, the imports' refused rows and the skipped events — each
//! with the route that lists them.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::store::{commit_order, status};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
pub struct Projector {
    /// Committed events the views do not hold yet (up to one projector batch, 10,000).
    events_behind: i64,
    /// Age of the oldest of them.
    seconds_behind: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Replay {
    replay_id: Uuid,
    dry_run: bool,
    status: String,
    rules_version: Option<i32>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct Review {
    refused: i64,
    unreadable: i64,
    unknown_member: i64,
    unknown_activity: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Imports {
    imports: i64,
    rows_refused: i64,
    last_import_id: Option<Uuid>,
    last_status: Option<String>,
    last_started_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct Skipped {
    total: i64,
    /// Not set aside: the members they belong to read as incomplete.
    open: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerHealth {
    projector: Projector,
    last_replay: Option<Replay>,
    /// `GET /v1/statement-mappings?outcome=`
    statements_to_review: Review,
    /// `GET /v1/imports/{id}`, `GET /v1/imports/{id}/refused.csv`
    imports: Imports,
    /// `GET /v1/skipped-events`
    skipped_events: Skipped,
}

/// `GET /v1/health`.
#[utoipa::path(get, path = "/v1/health", operation_id = "ledger_health", tag = "service",
    responses((status = 200, body = LedgerHealth), doc::ReadRefusals),
    security(("bearer" = ["admin", "auditor"])))]
async fn health(State(state): State<AppState>) -> Result<Json<LedgerHealth>, ApiError> {
    let pool = state.ledger().pool();
    let (events_behind, seconds_behind, _) = commit_order::lag(pool).await?;
    let last_replay = status::last_replay(pool).await?.map(|r| Replay {
        replay_id: r.replay_id,
        dry_run: r.dry_run,
        status: r.status,
        rules_version: r.rules_version,
        started_at: r.started_at,
        finished_at: r.finished_at,
    });
    let counts = status::statements_to_review(pool).await?;
    let count = |outcome: &str| {
        counts
            .iter()
            .find(|(o, _)| o == outcome)
            .map_or(0, |(_, n)| *n)
    };
    let imports = status::imports(pool).await?;
    let (total, open) = status::skipped(pool).await?;
    Ok(Json(LedgerHealth {
        projector: Projector {
            events_behind,
            seconds_behind,
        },
        last_replay,
        statements_to_review: Review {
            refused: count("refused"),
            unreadable: count("unreadable"),
            unknown_member: count("unknown_member"),
            unknown_activity: count("unknown_activity"),
        },
        imports: Imports {
            imports: imports.imports,
            rows_refused: imports.rows_refused,
            last_import_id: imports.last_import_id,
            last_status: imports.last_status,
            last_started_at: imports.last_started_at,
        },
        skipped_events: Skipped { total, open },
    }))
}
