//! `/xapi`: the Learning Record Store's statement resource (xAPI 2.0.0; 1.0.x clients too).
//!
//! Statements are validated by `studyledger-xapi` (400 with the path of what is wrong), kept
//! in `xapi_statements` (append-only, a batch in one transaction) and read back by id or in
//! pages in the order they were stored, in the `format` asked for, with their attachments'
//! data when asked (`xapi_attachments`). Every request but `/xapi/about` names the version
//! it speaks in `X-Experience-API-Version` (400 without); every answer names the LRS's, and
//! every statement read `X-Experience-API-Consistent-Through`.
//! `ingest` tokens store statements and read back those they stored (statements/read/mine);
//! `admin` and `auditor` read all.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_xapi::attachments::Part;
use studyledger_xapi::format::Format;
use studyledger_xapi::{validate, VERSION};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, Rfc3339};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::http::xapi_attachments::{self, StatementsBody};
use crate::jobs::feed::{self, FeedError};
use crate::store;
use crate::store::statements::{self, Filter, Prepared, Readable, StatementsError};
use crate::store::tokens::Role;

/// The header that names the xAPI version of a request and of an answer.
pub const VERSION_HEADER: &str = "x-experience-api-version";
/// Statements per page when the client asks for none, and at most.
const PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;
/// Statements at most in a page read with `attachments=true`.
const ATTACHED_PAGE: i64 = 10;

pub fn router() -> OpenApiRouter<AppState> {
    // The statements' routes get `consistent_through` outside `versioned`, so that even a read
    // refused for its missing version header carries the header.
    let statements = OpenApiRouter::new()
        .routes(routes!(put_statement, post_statements, get_statements))
        .layer(axum::middleware::from_fn(versioned))
        .layer(axum::middleware::from_fn(consistent_through))
        // Learning apps send statements in batches, with activity definitions in several
        // languages: more than the 64 KiB of the JSON API's bodies, still bounded.
        .layer(axum::extract::DefaultBodyLimit::max(STATEMENTS_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(about))
        .layer(axum::middleware::from_fn(versioned))
        .merge(statements)
}

/// The largest body `PUT` and `POST /xapi/statements` take.
pub const STATEMENTS_BODY_LIMIT: usize = 4 << 20;

/// The header that tells how far a statement read is complete.
const CONSISTENT_THROUGH: &str = "x-experience-api-consistent-through";

/// Every answer to a statement read (`GET` or `HEAD`), errors included, names the instant
/// through which the LRS's statements are in its reach (xAPI 2.0 part 3, §2.1.3,
/// XAPI-00153): a client polling the resource learns it from a 400 or a 404 too. The instant
/// is taken before the read runs, as each batch commits whole: every statement committed by
/// then is in the read's reach.
async fn consistent_through(request: Request, next: Next) -> Response {
    let read = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let through = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut response = next.run(request).await;
    if read {
        if let Ok(value) = HeaderValue::from_str(&through) {
            response.headers_mut().insert(CONSISTENT_THROUGH, value);
        }
    }
    response
}

/// Every answer names the LRS's version; every request but `/xapi/about` must name its own.
pub async fn versioned(request: Request, next: Next) -> Response {
    let about = request.uri().path().trim_end_matches('/') == "/xapi/about";
    let asked = request
        .headers()
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = match asked {
        Some(version) if !validate::supported_version(&version) => ApiError::Malformed(format!(
            "X-Experience-API-Version {version} is not spoken here: 2.0.0 and 1.0.x are"
        ))
        .into_response(),
        None if !about => ApiError::Malformed(
            "xAPI requests must carry an X-Experience-API-Version header".to_owned(),
        )
        .into_response(),
        _ => next.run(request).await,
    };
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from_static(VERSION));
    response
}

/// `GET /xapi/about`: the versions this LRS speaks.
#[utoipa::path(get, path = "/xapi/about", operation_id = "xapi_about", tag = "xapi",
    responses((status = 200, description = "`{version: [...], extensions: {}}`")),
    security(()))]
async fn about() -> Json<Value> {
    Json(json!({"version": [VERSION, "1.0.3"], "extensions": {}}))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    #[serde(rename = "statementId")]
    #[param(rename = "statementId")]
    statement_id: Uuid,
}

/// `PUT /xapi/statements?statementId=`: stores one statement under that id; 204, also when
/// the same statement is stored already; 409 when another one is. As JSON, or as
/// `multipart/mixed` with its attachments' data (see `xapi_attachments`).
#[utoipa::path(put, path = "/xapi/statements", operation_id = "xapi_put_statement", tag = "xapi",
    params(PutParams),
    request_body = Object,
    responses(
        (status = 204, description = "stored, or stored already"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::TooLarge),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["ingest", "admin"])))]
async fn put_statement(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PutParams>,
    body: StatementsBody,
) -> Result<StatusCode, ApiError> {
    let mut statement = body
        .json
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::Malformed("a statement must be a JSON object".to_owned()))?;
    match statement
        .get("id")
        .map(|id| id.as_str().map(Uuid::try_parse))
    {
        None => {
            statement.insert("id".to_owned(), json!(params.statement_id));
        }
        Some(Some(Ok(id))) if id == params.statement_id => {}
        Some(_) => {
            return Err(ApiError::Malformed(
                "the statement's id differs from statementId".to_owned(),
            ))
        }
    }
    let prepared = prepare(vec![Value::Object(statement)], &caller)?;
    store(&state, &caller, &prepared, body.parts).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /xapi/statements`: stores one statement or an array of them, all or none (with their
/// attachments' data when `multipart/mixed`), and answers their ids in order.
#[utoipa::path(post, path = "/xapi/statements", operation_id = "xapi_post_statements", tag = "xapi",
    request_body = Object,
    responses(
        (status = 200, description = "the statements' ids, in the order sent"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::Conflict),
        (status = 413, response = doc::TooLarge),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["ingest", "admin"])))]
async fn post_statements(
    State(state): State<AppState>,
    caller: Caller,
    body: StatementsBody,
) -> Result<Json<Vec<Uuid>>, ApiError> {
    let batch = match body.json {
        Value::Array(statements) => statements,
        statement => vec![statement],
    };
    let prepared = prepare(batch, &caller)?;
    store(&state, &caller, &prepared, body.parts).await?;
    Ok(Json(prepared.iter().map(|s| s.id).collect()))
}

/// Validates a batch and sets what the LRS sets; a batch holding one id twice is refused.
fn prepare(batch: Vec<Value>, caller: &Caller) -> Result<Vec<Prepared>, ApiError> {
    if batch.is_empty() {
        return Err(ApiError::Malformed(
            "the batch holds no statement".to_owned(),
        ));
    }
    let stored = Utc::now();
    let authority = feed::authority(&caller.principal.name, &caller.principal.token_id);
    let mut prepared: Vec<Prepared> = Vec::with_capacity(batch.len());
    for (i, value) in batch.into_iter().enumerate() {
        let statement = feed::prepare(value, &authority, stored)
            .map_err(|invalid| ApiError::Malformed(format!("statement {i}: {invalid}")))?;
        if prepared.iter().any(|p| p.id == statement.id) {
            return Err(ApiError::Malformed(format!(
                "statement {i}: id {} appears twice in the batch",
                statement.id
            )));
        }
        prepared.push(statement);
    }
    Ok(prepared)
}

/// Stores the batch, its attachments' data and what it means for the ledger, in one
/// transaction; attachments that disagree with the parts sent, or a malformed signature,
/// refuse the batch.
async fn store(
    state: &AppState,
    caller: &Caller,
    batch: &[Prepared],
    parts: Vec<Part>,
) -> Result<(), ApiError> {
    let parts = feed::with_attachments(batch, parts)
        .map_err(|invalid| ApiError::Malformed(invalid.to_string()))?;
    feed::store_statements(
        state.ledger(),
        &caller.metadata(),
        &caller.principal.token_id,
        batch,
        &parts,
    )
    .await
    .map_err(|error| match error {
        FeedError::Statements(StatementsError::Conflict(_)) => {
            ApiError::Conflict(error.to_string())
        }
        FeedError::Statements(StatementsError::VoidsVoiding(_)) => {
            ApiError::Malformed(error.to_string())
        }
        FeedError::Statements(StatementsError::Database(e)) => e.into(),
        FeedError::Store(e) => e.into(),
        FeedError::Contention => ApiError::Busy,
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    #[serde(rename = "statementId")]
    #[param(rename = "statementId")]
    statement_id: Option<Uuid>,
    #[serde(rename = "voidedStatementId")]
    #[param(rename = "voidedStatementId")]
    voided_statement_id: Option<Uuid>,
    /// A verb IRI.
    verb: Option<String>,
    /// An agent or identified group as JSON: statements whose actor or object it is.
    agent: Option<String>,
    /// An activity IRI: statements whose object it is.
    activity: Option<String>,
    registration: Option<Uuid>,
    /// The agent filter also matches authority, instructor, team, group members and
    /// sub-statements.
    related_agents: Option<bool>,
    /// The activity filter also matches the context's activities and sub-statements.
    related_activities: Option<bool>,
    #[param(value_type = Option<String>)]
    since: Option<Rfc3339>,
    #[param(value_type = Option<String>)]
    until: Option<Rfc3339>,
    /// At most this many (0: the LRS's page, 100); at most 1,000.
    limit: Option<i64>,
    ascending: Option<bool>,
    /// `exact` (as stored, the default), `ids` (agents, groups, activities and verbs only as
    /// far as they identify them) or `canonical` (each language map in the one language that
    /// best matches `Accept-Language`).
    format: Option<String>,
    /// `true`: the answer is `multipart/mixed`, the statements first, then the data each came
    /// with; a page then holds 10 statements at most.
    attachments: Option<bool>,
    /// The page after this cursor (from a `more` link).
    cursor: Option<i64>,
}

/// `GET /xapi/statements`: one statement by `statementId` (404 when voided) or
/// `voidedStatementId` (404 unless voided), or a page of statements that are not voided, with
/// a `more` link to the next.
#[utoipa::path(get, path = "/xapi/statements", operation_id = "xapi_get_statements", tag = "xapi",
    params(GetParams),
    responses(
        (status = 200, description = "a statement, or `{statements: [...], more}`"),
        (status = 400, response = doc::Malformed),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 503, response = doc::Unavailable),
    ),
    security(("bearer" = ["ingest", "admin", "auditor"])))]
async fn get_statements(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<GetParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let readable = match caller.principal.role {
        Role::Ingest => Readable::StoredBy(&caller.principal.token_id),
        _ => Readable::All,
    };
    let accept_language = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let format = Format::parse(params.format.as_deref(), accept_language)
        .ok_or_else(|| ApiError::Malformed("format is exact, ids or canonical".to_owned()))?;
    let pool = state.ledger().pool();
    match (params.statement_id, params.voided_statement_id) {
        (Some(_), Some(_)) => Err(ApiError::Malformed(
            "statementId and voidedStatementId exclude each other".to_owned(),
        )),
        (Some(id), None) | (None, Some(id)) => {
            single_only(&params)?;
            let want_voided = params.voided_statement_id.is_some();
            match statements::by_id(pool, readable, id).await? {
                Some((statement, voided)) if voided == want_voided => {
                    let found = std::slice::from_ref(&statement);
                    let headers = read_headers(found)?;
                    let parts = attachments_of(pool, &params, found).await?;
                    let statement = Value::Object(format.apply(statement));
                    Ok(answer(headers, &statement, parts))
                }
                _ => Err(ApiError::NotFound(format!("no statement {id} here"))),
            }
        }
        (None, None) => page(pool, readable, &params, &format).await,
    }
}

/// A read by id takes no other filter (xAPI 2.0 part 3, §2.1.3), but `format` and
/// `attachments`.
fn single_only(params: &GetParams) -> Result<(), ApiError> {
    let filtered = params.verb.is_some()
        || params.agent.is_some()
        || params.activity.is_some()
        || params.registration.is_some()
        || params.related_agents.is_some()
        || params.related_activities.is_some()
        || params.since.is_some()
        || params.until.is_some()
        || params.limit.is_some()
        || params.ascending.is_some()
        || params.cursor.is_some();
    if filtered {
        return Err(ApiError::Malformed(
            "a statement read by id takes no other filter".to_owned(),
        ));
    }
    Ok(())
}

async fn page(
    pool: &sqlx::PgPool,
    readable: Readable<'_>,
    params: &GetParams,
    format: &Format,
) -> Result<Response, ApiError> {
    // A page with its attachments' data holds fewer statements: each may carry up to a
    // request's worth of data (4 MiB), and the page is one answer held in memory.
    let most = if params.attachments == Some(true) {
        ATTACHED_PAGE
    } else {
        MAX_PAGE
    };
    let limit = match params.limit {
        None | Some(0) => PAGE.min(most),
        Some(n) if (1..=MAX_PAGE).contains(&n) => n.min(most),
        Some(_) => {
            return Err(ApiError::Malformed(format!(
                "limit is between 0 and {MAX_PAGE}"
            )))
        }
    };
    let filter = Filter {
        keys: filter_keys(params)?,
        since: params.since.as_ref().map(|t| t.0),
        until: params.until.as_ref().map(|t| t.0),
        ascending: params.ascending.unwrap_or(false),
        after: params.cursor,
    };
    let (found, next) = statements::page(pool, readable, &filter, limit).await?;
    let more = next.map_or_else(String::new, |cursor| more_link(params, limit, cursor));
    let headers = read_headers(&found)?;
    let parts = attachments_of(pool, params, &found).await?;
    let statements: Vec<Value> = found
        .into_iter()
        .map(|statement| Value::Object(format.apply(statement)))
        .collect();
    let result = json!({"statements": statements, "more": more});
    Ok(answer(headers, &result, parts))
}

/// With `attachments=true`, the data the statements came with.
async fn attachments_of(
    pool: &sqlx::PgPool,
    params: &GetParams,
    statements: &[serde_json::Map<String, Value>],
) -> Result<Option<Vec<Part>>, ApiError> {
    if params.attachments != Some(true) {
        return Ok(None);
    }
    let ids: Vec<Uuid> = statements
        .iter()
        .filter_map(studyledger_xapi::id_of)
        .collect();
    Ok(Some(store::attachments::of_statements(pool, &ids).await?))
}

/// A read's answer: JSON, or with attachments' data `multipart/mixed`.
fn answer(headers: HeaderMap, json: &Value, parts: Option<Vec<Part>>) -> Response {
    match parts {
        Some(parts) => xapi_attachments::multipart(headers, json, &parts),
        None => (headers, Json(json)).into_response(),
    }
}

/// The headers of a statement read: `Last-Modified`, the newest `stored` among the
/// statements answered (`X-Experience-API-Consistent-Through` is `consistent_through`'s, on
/// every answer of the route).
fn read_headers(statements: &[serde_json::Map<String, Value>]) -> Result<HeaderMap, ApiError> {
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| ApiError::Internal);
    let mut headers = HeaderMap::new();
    let newest = statements
        .iter()
        .filter_map(|s| s.get("stored").and_then(Value::as_str))
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .max();
    if let Some(newest) = newest {
        let newest = newest.with_timezone(&Utc);
        headers.insert(
            axum::http::header::LAST_MODIFIED,
            value(&http_date(newest))?,
        );
    }
    Ok(headers)
}

/// An instant as HTTP writes dates (`Wed, 02 Dec 2026 05:33:10 GMT`).
pub fn http_date(instant: chrono::DateTime<Utc>) -> String {
    instant.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// An `agent` parameter (an agent or identified group as JSON): the agent, and its
/// identifier as the filters and documents key it.
pub fn agent_param(text: &str) -> Result<(Value, String), ApiError> {
    let agent: Value = serde_json::from_str(text)
        .map_err(|_| ApiError::Malformed("agent must be an agent as JSON".to_owned()))?;
    validate::actor(&agent, "agent").map_err(|e| ApiError::Malformed(e.to_string()))?;
    let identifier = studyledger_xapi::index::identifier(&agent).ok_or_else(|| {
        ApiError::Malformed("agent must be an agent or an identified group".to_owned())
    })?;
    Ok((agent, identifier))
}

/// The keys a page's statements must have, most selective first.
fn filter_keys(params: &GetParams) -> Result<Vec<String>, ApiError> {
    let mut keys = Vec::new();
    if let Some(registration) = params.registration {
        keys.push(format!("registration:{registration}"));
    }
    if let Some(activity) = &params.activity {
        let related = params.related_activities == Some(true);
        let prefix = if related {
            "related_activity"
        } else {
            "activity"
        };
        keys.push(format!("{prefix}:{activity}"));
    }
    if let Some(agent) = &params.agent {
        let (_, identifier) = agent_param(agent)?;
        let related = params.related_agents == Some(true);
        let prefix = if related { "related_agent" } else { "agent" };
        keys.push(format!("{prefix}:{identifier}"));
    }
    if let Some(verb) = &params.verb {
        keys.push(format!("verb:{verb}"));
    }
    Ok(keys)
}

/// The relative link to the page after `cursor`, with the same filters and format.
fn more_link(params: &GetParams, limit: i64, cursor: i64) -> String {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(verb) = &params.verb {
        query.push(("verb", verb.clone()));
    }
    if let Some(agent) = &params.agent {
        query.push(("agent", agent.clone()));
    }
    if let Some(activity) = &params.activity {
        query.push(("activity", activity.clone()));
    }
    if let Some(registration) = params.registration {
        query.push(("registration", registration.to_string()));
    }
    for (name, flag) in [
        ("related_agents", params.related_agents),
        ("related_activities", params.related_activities),
    ] {
        if let Some(flag) = flag {
            query.push((name, flag.to_string()));
        }
    }
    if let Some(since) = &params.since {
        query.push(("since", since.0.to_rfc3339()));
    }
    if let Some(until) = &params.until {
        query.push(("until", until.0.to_rfc3339()));
    }
    if params.ascending == Some(true) {
        query.push(("ascending", "true".to_owned()));
    }
    if let Some(format) = &params.format {
        query.push(("format", format.clone()));
    }
    if params.attachments == Some(true) {
        query.push(("attachments", "true".to_owned()));
    }
    query.push(("limit", limit.to_string()));
    query.push(("cursor", cursor.to_string()));
    let encoded = serde_urlencoded::to_string(&query).unwrap_or_default();
    format!("/xapi/statements?{encoded}")
}
