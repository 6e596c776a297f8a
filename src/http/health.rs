//! `/healthz` and `/readyz`: liveness, and readiness — the database answers and every
//! migration this binary knows is applied.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;
use crate::store::database;

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
