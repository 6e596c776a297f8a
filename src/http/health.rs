//! `/healthz` and `/readyz`: liveness, and readiness — the database answers and every
//! migration this binary knows is applied. Both stay answerable when the service sheds load
//! (`http::router`), and `/readyz` answers within [`READY_TIMEOUT`] even when the database
//! does not, so that a load balancer learns of an outage promptly.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;
use crate::store::database;

/// How long `/readyz` waits for the database before it says not ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health)), security(()))]
async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        reason: None,
    })
}

/// `GET /readyz`: the database answers and every migration this binary knows is applied.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = Health)), security(()))]
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
    let check = database::migrations_applied(state.ledger().pool());
    let Ok(applied) = tokio::time::timeout(READY_TIMEOUT, check).await else {
        return not_ready("database: no answer within 2 s".to_owned());
    };
    match applied {
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
