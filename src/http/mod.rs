//! The HTTP contract of DESIGN §5 on axum: one module per URL resource, each with its own
//! `router()` and typed request and answer structs, merged here with the middleware every
//! request passes (request id, tracing, metrics, body limit, panic guard).
//!
//! Shared pieces, none of which imports a resource: [`state`] (what handlers share),
//! [`auth`] (who calls, and whether the route admits them: closed by default), [`access`]
//! (scope, checked where the data is read, and the read log), [`error`] (one error enum, one
//! problem+json table), [`extract`] (the edge: domain types from paths, queries and bodies),
//! [`answer`] (201s and answers from the views), [`consistency`] (reads that see the writes
//! before them), [`csv`] (spreadsheet exports), [`openapi`] (the document and `/docs`).
//! Around the whole service: [`server`] (connections, their header and idle timeouts, the
//! graceful stop) and [`in_flight`] (the bound on requests in flight).

pub mod access;
pub mod access_log;
pub mod adjustments;
pub mod answer;
pub mod appeals;
pub mod auth;
pub mod consistency;
pub mod corrections;
pub mod course_registry;
pub mod courses;
pub mod csv;
pub mod dashboard;
pub mod determinations;
pub mod eligibility;
pub mod error;
pub mod evaluations;
pub mod events;
pub mod extract;
pub mod gate;
pub mod health;
pub mod imports;
pub mod in_flight;
pub mod ledger_health;
pub mod member_compliance;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod org_changes;
pub mod org_members;
pub mod org_tree;
pub mod orgs;
pub mod replays;
pub mod rulesets;
pub mod server;
pub mod skipped_events;
pub mod state;
pub mod statement_mappings;
pub mod study;
pub mod tenure;
pub mod transcript;
pub mod verifications;
pub mod what_ifs;
pub mod xapi;
pub mod xapi_attachments;
pub mod xapi_objects;
pub mod xapi_profiles;
pub mod xapi_state;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use self::auth::{Authenticator, Policies};
use self::error::problem;
use self::state::AppState;
use crate::ledger::Ledger;

/// Request bodies above this size are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Who may call: the bootstrap administrator's token, and whether callers without a token are
/// let in (a developer's machine only).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub admin_token: Option<String>,
    pub insecure_open: bool,
}

/// Every resource's routes and their OpenAPI description, before any state.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(ledger_health::router())
        .merge(openapi::router())
        .merge(metrics::router())
        .merge(orgs::router())
        .merge(org_changes::router())
        .merge(org_members::router())
        .merge(org_tree::router())
        .merge(courses::router())
        .merge(course_registry::router())
        .merge(members::router())
        .merge(tenure::router())
        .merge(corrections::router())
        .merge(study::router())
        .merge(member_compliance::router())
        .merge(transcript::router())
        .merge(events::router())
        .merge(eligibility::router())
        .merge(adjustments::router())
        .merge(appeals::router())
        .merge(rulesets::router())
        .merge(evaluations::router())
        .merge(determinations::router())
        .merge(replays::router())
        .merge(verifications::router())
        .merge(access_log::router())
        .merge(skipped_events::router())
        .merge(xapi::router())
        .merge(xapi_state::router())
        .merge(xapi_profiles::router())
        .merge(xapi_objects::router())
        .merge(statement_mappings::router())
        .merge(imports::router())
        .merge(what_ifs::router())
}

/// The service's OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The service: every route behind authentication, with the middleware around them.
pub fn router(ledger: Arc<Ledger>, access: &Access) -> Router {
    let (routes, document) = api().split_for_parts();
    let authenticator = Authenticator::new(
        ledger.pool().clone(),
        access.admin_token.as_deref(),
        access.insecure_open,
        Policies::of(&document),
    );
    let json = document.to_json().unwrap_or_default();
    let state = AppState::new(ledger, authenticator, json);
    let request_id = HeaderName::from_static("x-request-id");
    let api = routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::authenticate,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state.clone());
    api.clone()
        .merge(dashboard::router(state, api))
        .merge(openapi::docs())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(panicked)),
        )
}

async fn unknown_route() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such route",
    )
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not answer that method",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "internal error",
    )
}
