//! `/healthz` and `/readyz`: liveness, and readiness — the database answers and every
//! migration this binary knows is applied.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::http::state::AppState;
use crate::store::database;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
}

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        reason: None,
    })
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "not ready",
                reason: Some(reason),
            }),
        )
    };
    match database::migrations_applied(state.ledger().pool()).await {
        Ok(true) => (
            StatusCode::OK,
            Json(Health {
                status: "ready",
                reason: None,
            }),
        ),
        Ok(false) => not_ready("migrations not applied".to_owned()),
        Err(error) => not_ready(format!("database: {error}")),
    }
}
