//! The administrators' dashboard: server-rendered pages in Simplified Chinese and English,
//! served by the same binary, no script and nothing fetched from elsewhere.
//!
//! Every page reads and writes through the API in process ([`api`]), as the signed-in user
//! ([`session`]): the same roles, scope checks, read log and figures as the JSON answers.
//! The frame and stylesheet are in [`layout`], the languages in [`i18n`], charts in
//! [`chart`].

pub mod api;
pub mod appeals;
pub mod chart;
pub mod cookies;
pub mod health;
pub mod i18n;
pub mod layout;
pub mod members;
pub mod orgs;
pub mod refusal;
pub mod rules;
pub mod session;
pub mod shell;
pub mod signed;
pub mod state;
pub mod what_ifs;

use axum::routing::{get, post};
use axum::Router;

use crate::http::dashboard::api::Api;
use crate::http::dashboard::state::Dash;
use crate::http::state::AppState;

/// The dashboard's routes; `api` is the service's API router (with its gate).
pub fn router(app: AppState, api: Router) -> Router {
    Router::new()
        .route("/", get(session::home))
        .route("/sign-in", post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/dashboard.css", get(layout::stylesheet))
        .route("/orgs/{org_id}", get(orgs::overview))
        .route("/orgs/{org_id}/behind", get(orgs::behind))
        .route("/orgs/{org_id}/behind.csv", get(orgs::behind_csv))
        .route("/orgs/{org_id}/appeals", get(appeals::queue))
        .route(
            "/members/{member_id}/appeals/{appeal_id}/resolution",
            post(appeals::resolve),
        )
        .route("/members/{member_id}", get(members::member))
        .route("/rules", get(rules::rules))
        .route("/health", get(health::health))
        .route("/what-ifs", post(what_ifs::start))
        .route("/what-ifs/{what_if_id}", get(what_ifs::show))
        .route(
            "/what-ifs/{what_if_id}/changes.csv",
            get(what_ifs::changes_csv),
        )
        .layer(axum::middleware::from_fn(cookies::secure_over_https))
        .with_state(Dash { app, api: Api(api) })
}
