//! The HTTP contract of DESIGN §5 on axum: one module per resource, shared state, and the
//! middleware every request passes (request id, tracing, body limit, panic guard).

pub mod appeals;
pub mod consistency;
pub mod courses;
pub mod csv;
pub mod eligibility;
pub mod error;
pub mod extract;
pub mod health;
pub mod history;
pub mod members;
pub mod orgs;
pub mod replays;
pub mod rules;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::ledger::Ledger;

/// Request bodies above this size are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Arc<Ledger>,
    admin_token: Option<String>,
    jobs: crate::determinations::Jobs,
}

impl AppState {
    pub fn new(ledger: Arc<Ledger>, admin_token: Option<String>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                ledger,
                admin_token,
                jobs: crate::determinations::Jobs::default(),
            }),
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    pub fn jobs(&self) -> &crate::determinations::Jobs {
        &self.inner.jobs
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/v1/orgs", post(orgs::register))
        .route("/v1/orgs/{org_id}/compliance", get(orgs::compliance))
        .route("/v1/orgs/{org_id}/members", get(orgs::members))
        .route("/v1/orgs/{org_id}/members.csv", get(orgs::members_csv))
        .route("/metrics", get(crate::metrics::render))
        .route("/v1/courses", post(courses::register))
        .route("/v1/members", post(members::enrol))
        .route("/v1/members/{member_id}", get(members::profile))
        .route(
            "/v1/members/{member_id}/compliance",
            get(members::compliance),
        )
        .route(
            "/v1/members/{member_id}/study-sessions",
            post(members::record_session),
        )
        .route(
            "/v1/members/{member_id}/course-completions",
            post(members::record_completion),
        )
        .route(
            "/v1/members/{member_id}/transfers",
            post(members::record_transfer),
        )
        .route("/v1/members/{member_id}/ledger", get(history::ledger))
        .route(
            "/v1/members/{member_id}/ledger.csv",
            get(history::ledger_csv),
        )
        .route("/v1/members/{member_id}/events", get(history::events))
        .route(
            "/v1/members/{member_id}/eligibility/{evaluation_id}",
            get(eligibility::eligibility),
        )
        .route(
            "/v1/members/{member_id}/credit-adjustments",
            post(appeals::adjust),
        )
        .route("/v1/members/{member_id}/appeals", post(appeals::file))
        .route(
            "/v1/members/{member_id}/appeals/{appeal_id}/resolution",
            post(appeals::resolve),
        )
        .route("/v1/orgs/{org_id}/appeals", get(appeals::open_in_org))
        .route("/v1/rulesets", post(rules::publish).get(rules::list))
        .route("/v1/evaluations", post(rules::define_evaluation))
        .route("/v1/replays", post(replays::start))
        .route("/v1/replays/{replay_id}", get(replays::show))
        .route(
            "/v1/replays/{replay_id}/changes.csv",
            get(replays::show_csv),
        )
        .route(
            "/v1/evaluations/{evaluation_id}/determinations",
            post(eligibility::determine),
        )
        .route(
            "/v1/evaluations/{evaluation_id}/determinations/{determination_id}",
            get(eligibility::job),
        )
        .layer(axum::middleware::from_fn(crate::metrics::track))
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
        .with_state(state)
}

async fn unknown_route() -> Response {
    error::problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such route",
    )
}

async fn method_not_allowed() -> Response {
    error::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not answer that method",
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    error::problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "internal error",
    )
}
