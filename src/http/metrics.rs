//! `/metrics` in Prometheus's text format, and the middleware that counts and times every
//! request under its route template. The projector's lag is measured in the database when
//! `/metrics` is scraped, since any instance may be asked while another one projects.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;
use crate::store::commit_order;
use crate::telemetry;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render))
}

/// Middleware: counts each request and times it under its route template.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    telemetry::request(
        &method,
        &route,
        response.status().as_str(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`: Prometheus text, with the projector's lag measured now.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, response = crate::http::openapi::Unauthorized),
        (status = 403, response = crate::http::openapi::Forbidden),
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn render(State(state): State<AppState>) -> Response {
    match commit_order::lag(state.ledger().pool()).await {
        Ok((events, seconds, open_skips)) => telemetry::projector_lag(events, seconds, open_skips),
        Err(error) => tracing::warn!(%error, "cannot measure projector lag"),
    }
    match telemetry::render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
