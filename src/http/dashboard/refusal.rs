//! A page that cannot be shown, and its answer: the sign-in form for a visitor without a live
//! session, otherwise an HTML page with the status and the reason, in both languages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::http::dashboard::i18n::Lang;
use crate::http::dashboard::shell::bare;

/// A page that cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// No live session: the sign-in form, then back here.
    SignIn { next: String },
    /// An answer for people, in both languages.
    Status(StatusCode, &'static str),
    /// The API's refusal, with its reason.
    Refused(StatusCode, String),
}

impl PageError {
    /// Out of the role or scope, or not there: one answer (a 403 never tells which).
    pub fn forbidden() -> PageError {
        PageError::Status(
            StatusCode::FORBIDDEN,
            "您无权查看此页面。 You may not open this page.",
        )
    }

    pub fn store(error: sqlx::Error) -> PageError {
        tracing::error!(%error, "dashboard: database");
        PageError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            "数据库暂不可用，请稍后再试。 The database is unavailable: try again shortly.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            PageError::SignIn { next } => {
                let next: String = url_encode(&next);
                return Redirect::to(&format!("/?next={next}")).into_response();
            }
            PageError::Status(status, text) => (status, text.to_owned()),
            PageError::Refused(status, text) => (status, text),
        };
        let body = html! {
            main {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p role="alert" { (text) }
                p { a href="/" { "返回首页 Home" } }
            }
        };
        let mut response = bare(Lang::Zh, "学时账本 Study ledger", body);
        *response.status_mut() = status;
        response
    }
}

fn url_encode(raw: &str) -> String {
    serde_urlencoded::to_string([("", raw)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}
