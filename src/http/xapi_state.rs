//! `/xapi/activities/state`: the state documents of the Learning Record Store (xAPI 2.0
//! part 3, §2.3), kept per activity, agent, registration and `stateId` — where cmi5 players
//! keep their launch data. Any content type; `POST` merges JSON objects; `If-Match` and
//! `If-None-Match` guard writes (412 when they do not hold), and a 2.0 `PUT` over a document
//! that exists must give one of them (409 without).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use studyledger_xapi::validate;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, Rfc3339};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::http::xapi::{agent_param, http_date, versioned, VERSION_HEADER};
use crate::store::documents::{self, DocumentError, Place, Precondition, Write};

const KIND: &str = "state";

/// The answers of a document resource's GET.
#[allow(dead_code)] // Only their OpenAPI description is used.
#[derive(utoipa::IntoResponses)]
pub enum DocumentRead {
    /// The document with its `Content-Type`, `ETag` and `Last-Modified`, or the ids.
    #[response(status = 200)]
    Found,
    #[response(status = 400)]
    Malformed(#[ref_response] doc::Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] doc::Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] doc::Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] doc::NotFound),
    #[response(status = 503)]
    Unavailable(#[ref_response] doc::Unavailable),
}

/// The answers of a document resource's PUT and POST.
#[allow(dead_code)] // Only their OpenAPI description is used.
#[derive(utoipa::IntoResponses)]
pub enum DocumentWritten {
    /// Stored; `ETag` is the new one.
    #[response(status = 204)]
    Stored,
    #[response(status = 400)]
    Malformed(#[ref_response] doc::Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] doc::Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] doc::Forbidden),
    #[response(status = 409)]
    Conflict(#[ref_response] doc::Conflict),
    /// `If-Match` or `If-None-Match` does not hold.
    #[response(status = 412)]
    PreconditionFailed,
    #[response(status = 413)]
    TooLarge(#[ref_response] doc::TooLarge),
    #[response(status = 503)]
    Unavailable(#[ref_response] doc::Unavailable),
}

/// The answers of a document resource's DELETE.
#[allow(dead_code)] // Only their OpenAPI description is used.
#[derive(utoipa::IntoResponses)]
pub enum DocumentDeleted {
    /// Removed, or there was nothing.
    #[response(status = 204)]
    Removed,
    #[response(status = 400)]
    Malformed(#[ref_response] doc::Malformed),
    #[response(status = 401)]
    Unauthorized(#[ref_response] doc::Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] doc::Forbidden),
    /// `If-Match` or `If-None-Match` does not hold.
    #[response(status = 412)]
    PreconditionFailed,
    #[response(status = 503)]
    Unavailable(#[ref_response] doc::Unavailable),
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_state, put_state, post_state, delete_state))
        .layer(axum::middleware::from_fn(versioned))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StateParams {
    /// The activity's IRI.
    #[serde(rename = "activityId")]
    #[param(rename = "activityId")]
    activity_id: String,
    /// The agent, as JSON.
    agent: String,
    registration: Option<Uuid>,
    /// The document's id; without it, GET lists the ids and DELETE removes them all.
    #[serde(rename = "stateId")]
    #[param(rename = "stateId")]
    state_id: Option<String>,
    /// GET without `stateId`: only documents changed after it.
    #[param(value_type = Option<String>)]
    since: Option<Rfc3339>,
}

impl StateParams {
    /// The documents' scope: activity, agent and registration.
    fn scope(&self) -> Result<String, ApiError> {
        if !validate::is_iri(&self.activity_id) {
            return Err(ApiError::Malformed("activityId must be an IRI".to_owned()));
        }
        let (_, agent) = agent_param(&self.agent)?;
        let registration = self.registration.map(|r| r.to_string()).unwrap_or_default();
        Ok(format!("{}\n{agent}\n{registration}", self.activity_id))
    }

    fn state_id(&self) -> Result<&str, ApiError> {
        self.state_id
            .as_deref()
            .ok_or_else(|| ApiError::Malformed("stateId is required".to_owned()))
    }
}

/// `GET /xapi/activities/state`: one document by `stateId`, or the ids of the scope's.
#[utoipa::path(get, path = "/xapi/activities/state", operation_id = "xapi_get_state", tag = "xapi",
    params(StateParams),
    responses(DocumentRead),
    security(("bearer" = ["ingest", "admin", "auditor"])))]
async fn get_state(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StateParams>,
) -> Result<Response, ApiError> {
    let scope = params.scope()?;
    let pool = state.ledger().pool();
    let Some(id) = params.state_id.as_deref() else {
        let since = params.since.as_ref().map(|s| s.0);
        return Ok(Json(documents::ids(pool, KIND, &scope, since).await?).into_response());
    };
    if params.since.is_some() {
        return Err(ApiError::Malformed(
            "since goes with a list, not a stateId".to_owned(),
        ));
    }
    let place = Place {
        kind: KIND,
        scope: &scope,
        id,
    };
    read_document(pool, place).await
}

/// A document with its `Content-Type`, `ETag` and `Last-Modified`; 404 when there is none.
pub async fn read_document(pool: &sqlx::PgPool, place: Place<'_>) -> Result<Response, ApiError> {
    let document = documents::get(pool, place)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no document {} here", place.id)))?;
    let mut headers = HeaderMap::new();
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| ApiError::Internal);
    headers.insert(header::CONTENT_TYPE, value(&document.content_type)?);
    headers.insert(header::ETAG, value(&document.etag)?);
    let modified = http_date(document.updated);
    headers.insert(header::LAST_MODIFIED, value(&modified)?);
    Ok((headers, document.content).into_response())
}

/// `PUT /xapi/activities/state`: stores the document, replacing one there (xAPI 2.0: only
/// with `If-Match` or `If-None-Match`, 409 without).
#[utoipa::path(put, path = "/xapi/activities/state", operation_id = "xapi_put_state", tag = "xapi",
    params(StateParams),
    request_body(content = Vec<u8>, content_type = "*/*"),
    responses(DocumentWritten),
    security(("bearer" = ["ingest", "admin"])))]
async fn put_state(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StateParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&state, &params, &headers, &body, Write::Replace).await
}

/// `POST /xapi/activities/state`: merges a JSON object into the document (or stores it).
#[utoipa::path(post, path = "/xapi/activities/state", operation_id = "xapi_post_state", tag = "xapi",
    params(StateParams),
    request_body(content = Vec<u8>, content_type = "application/json"),
    responses(DocumentWritten),
    security(("bearer" = ["ingest", "admin"])))]
async fn post_state(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StateParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(&state, &params, &headers, &body, Write::Merge).await
}

async fn write(
    state: &AppState,
    params: &StateParams,
    headers: &HeaderMap,
    body: &[u8],
    how: Write,
) -> Result<Response, ApiError> {
    let scope = params.scope()?;
    let place = Place {
        kind: KIND,
        scope: &scope,
        id: params.state_id()?,
    };
    let mut guard = precondition(headers);
    guard.required_if_present = how == Write::Replace && state_is_guarded(headers);
    write_document(state.ledger().pool(), place, &guard, headers, body, how).await
}

/// Whether a `PUT` over a state document that exists must name `If-Match` or
/// `If-None-Match` (409 without): xAPI 2.0 extends concurrency control to the State resource
/// (part 3, §3.1), while 1.0.x let state be replaced freely ("state conflicts are unlikely")
/// and the cmi5 content that speaks 1.0.3 relies on that. `versioned` has checked the header.
fn state_is_guarded(headers: &HeaderMap) -> bool {
    headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|version| !version.starts_with("1.0"))
}

/// Writes a document from a request's body and headers; 204 with the new `ETag`.
pub async fn write_document(
    pool: &sqlx::PgPool,
    place: Place<'_>,
    guard: &Precondition,
    headers: &HeaderMap,
    body: &[u8],
    how: Write,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let etag = documents::write(pool, place, guard, how, content_type, body)
        .await
        .map_err(document_error)?;
    let mut answer = StatusCode::NO_CONTENT.into_response();
    let etag = HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal)?;
    answer.headers_mut().insert(header::ETAG, etag);
    Ok(answer)
}

/// `DELETE /xapi/activities/state`: removes the document, or every one of the scope.
#[utoipa::path(delete, path = "/xapi/activities/state", operation_id = "xapi_delete_state", tag = "xapi",
    params(StateParams),
    responses(DocumentDeleted),
    security(("bearer" = ["ingest", "admin"])))]
async fn delete_state(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StateParams>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let scope = params.scope()?;
    let pool = state.ledger().pool();
    let id = params.state_id.as_deref();
    documents::delete(pool, KIND, &scope, id, &precondition(&headers))
        .await
        .map_err(document_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `If-Match` and `If-None-Match` as lists of ETags.
pub fn precondition(headers: &HeaderMap) -> Precondition {
    let tags = |name: header::HeaderName| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/").to_owned())
                .collect()
        })
    };
    Precondition {
        if_match: tags(header::IF_MATCH),
        if_none_match: tags(header::IF_NONE_MATCH),
        required_if_present: false,
    }
}

pub fn document_error(error: DocumentError) -> ApiError {
    match error {
        DocumentError::PreconditionFailed => ApiError::PreconditionFailed,
        DocumentError::PreconditionRequired => ApiError::Conflict(error.to_string()),
        DocumentError::NotMergeable(why) => ApiError::Malformed(why),
        DocumentError::Database(e) => e.into(),
    }
}
