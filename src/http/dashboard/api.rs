//! The dashboard reads and writes through the service's own API, in process: each call is a
//! request to the real router, with the signed-in user vouched for (`auth::Vouched`), so the
//! route's roles, the scope checks, the read log and the answers are the API's own — what a
//! page shows is what the API answers.

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use crate::http::auth::Vouched;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;

/// Bodies the dashboard reads whole (CSV goes through as a stream).
const ANSWER_LIMIT: usize = 16 * 1024 * 1024;

/// API calls one page makes at once.
const AT_ONCE: usize = 6;

/// The API's routes, behind their gate.
#[derive(Clone)]
pub struct Api(pub Router);

impl Api {
    /// The raw answer to a request made as the signed-in user.
    pub async fn send(
        &self,
        signed: &Signed,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        accept: &str,
    ) -> Result<Response, PageError> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, accept);
        if let Some(id) = &signed.request_id {
            request = request.header("x-request-id", id);
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request
            .body(body)
            .map_err(|_| PageError::Status(StatusCode::BAD_REQUEST, "请求无效。 Bad request."))?;
        request
            .extensions_mut()
            .insert(Vouched(signed.principal.clone()));
        let Ok(response) = self.0.clone().oneshot(request).await;
        Ok(response)
    }

    /// A JSON answer; a refusal becomes the page's (403 and 404 as such, others with the
    /// API's reason).
    pub async fn json(
        &self,
        signed: &Signed,
        method: Method,
        uri: String,
        body: Option<&Value>,
    ) -> Result<Value, PageError> {
        let response = self
            .send(signed, method, &uri, body, "application/json")
            .await?;
        let status = response.status();
        let bytes = to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|_| {
                PageError::Status(StatusCode::BAD_GATEWAY, "回答过大。 Answer too large.")
            })?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(match status {
            StatusCode::FORBIDDEN => PageError::forbidden(),
            StatusCode::UNAUTHORIZED => PageError::SignIn {
                next: "/".to_owned(),
            },
            _ => PageError::Refused(
                status,
                value["detail"]
                    .as_str()
                    .or(value["title"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            ),
        })
    }

    /// A CSV answer of the API, streamed through to the browser; a refusal becomes the page's.
    pub async fn csv(&self, signed: &Signed, uri: &str) -> Result<Response, PageError> {
        let response = self
            .send(signed, Method::GET, uri, None, "text/csv")
            .await?;
        match response.status() {
            StatusCode::FORBIDDEN => Err(PageError::forbidden()),
            status if !status.is_success() => Err(PageError::Refused(status, String::new())),
            _ => Ok(response),
        }
    }

    /// Several `GET`s as JSON, a few at a time (a page must not take the pool from the API's
    /// other callers and the projector), answers in the order asked.
    pub async fn get_all(
        &self,
        signed: &Signed,
        uris: Vec<String>,
    ) -> Result<Vec<Value>, PageError> {
        use futures::StreamExt;
        futures::stream::iter(uris.into_iter().map(|uri| self.get(signed, uri)))
            .buffered(AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// `GET` as JSON.
    pub async fn get(&self, signed: &Signed, uri: String) -> Result<Value, PageError> {
        self.json(signed, Method::GET, uri, None).await
    }
}

/// A string of an answer (empty when absent).
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// A value for a path segment or query parameter of the API, percent-encoded.
pub fn enc(raw: &str) -> String {
    serde_urlencoded::to_string([("v", raw)])
        .map(|s| s[2..].to_owned())
        .unwrap_or_default()
}
