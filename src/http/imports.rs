//! `/v1/imports`: bulk import of history over HTTP. The body (CSV or NDJSON, any size) is
//! streamed to a spool file on the server's disk — memory holds one chunk — and then imported
//! by a job in the background, exactly as `studyledger import FILE` does; the answer is 202
//! with the job. `GET /v1/imports/{id}` shows its progress (counted in the transactions that
//! commit the rows), `GET /v1/imports/{id}/refused.csv` the refused rows with their lines and
//! reasons.

use std::io::Write;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::import::rows::Format;
use crate::jobs::import::{self, Importer};
use crate::store::imports::{self, ImportRecord};

/// The largest body an import takes (the spool file's bound).
const MAX_IMPORT_BYTES: u64 = 8 << 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(show))
        .routes(routes!(refused_csv))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// `csv` or `ndjson`; by default from `Content-Type` (`text/csv`, `application/x-ndjson`).
    format: Option<Format>,
    /// The job's id, chosen by the client to watch it from the start; a new one by default.
    import_id: Option<Uuid>,
}

/// `POST /v1/imports`: imports a CSV (with a header) or NDJSON file of enrolments, sessions,
/// completions and xAPI statements; 202 with the job, which goes on after the answer.
#[utoipa::path(post, path = "/v1/imports", operation_id = "start_import", tag = "imports",
    params(StartQuery),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 202, body = ImportRecord),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StartQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let format = match query.format {
        Some(format) => format,
        None => format_of(&headers)?,
    };
    let import_id = query.import_id.unwrap_or_else(Uuid::new_v4);
    let spool = spool(body, import_id).await?;
    let pool = state.ledger().pool();
    if !imports::start(pool, import_id, format.as_str(), &caller.principal.name).await? {
        let _ = std::fs::remove_file(&spool);
        return Err(ApiError::Conflict(format!(
            "import {import_id} exists already"
        )));
    }
    let record = imports::get(pool, import_id)
        .await?
        .ok_or(ApiError::Internal)?;
    let ledger = std::sync::Arc::clone(state.ledger());
    let importer = Importer {
        metadata: caller.metadata(),
    };
    tokio::spawn(async move {
        let outcome = match std::fs::File::open(&spool) {
            Ok(file) => import::run(
                &ledger,
                &importer,
                import_id,
                format,
                Box::new(file),
                |_| {},
            )
            .await
            .map(|_| ()),
            Err(e) => Err(e.into()),
        };
        if let Err(error) = outcome {
            tracing::error!(%error, %import_id, "an import failed");
        }
        let _ = std::fs::remove_file(&spool);
    });
    let location = HeaderValue::from_str(&format!("/v1/imports/{import_id}"))
        .map_err(|_| ApiError::Internal)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(record),
    )
        .into_response())
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("text/csv") {
        Ok(Format::Csv)
    } else if content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/jsonl")
    {
        Ok(Format::Ndjson)
    } else {
        Err(ApiError::Malformed(
            "an import is text/csv or application/x-ndjson (or name ?format=)".to_owned(),
        ))
    }
}

/// Streams the body to a file of its own under the temporary folder, chunk by chunk.
async fn spool(body: Body, import_id: Uuid) -> Result<std::path::PathBuf, ApiError> {
    let path = std::env::temp_dir().join(format!("studyledger-import-{import_id}"));
    let mut file = std::fs::File::create(&path).map_err(|e| {
        tracing::error!(error = %e, "creating an import's spool file");
        ApiError::Internal
    })?;
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let _ = std::fs::remove_file(&path);
            ApiError::Malformed(format!("the body could not be read: {e}"))
        })?;
        written += chunk.len() as u64;
        if written > MAX_IMPORT_BYTES {
            let _ = std::fs::remove_file(&path);
            return Err(ApiError::TooLarge);
        }
        file.write_all(&chunk).map_err(|e| {
            tracing::error!(error = %e, "writing an import's spool file");
            let _ = std::fs::remove_file(&path);
            ApiError::Internal
        })?;
    }
    Ok(path)
}

/// `GET /v1/imports/{import_id}`: the import's progress and outcome.
#[utoipa::path(get, path = "/v1/imports/{import_id}", operation_id = "show_import", tag = "imports",
    params(("import_id" = Uuid, Path)),
    responses(
        (status = 200, body = ImportRecord),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(import_id): ApiPath<Uuid>,
) -> Result<Json<ImportRecord>, ApiError> {
    Ok(Json(record(&state, import_id).await?))
}

async fn record(state: &AppState, import_id: Uuid) -> Result<ImportRecord, ApiError> {
    imports::get(state.ledger().pool(), import_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no import {import_id}")))
}

/// Refused rows per page of the CSV stream.
const CSV_PAGE: i64 = 5_000;

/// `GET /v1/imports/{import_id}/refused.csv`: every refused row, by line (行号, 原因).
#[utoipa::path(get, path = "/v1/imports/{import_id}/refused.csv", operation_id = "import_refusals_csv", tag = "imports",
    params(("import_id" = Uuid, Path)),
    responses(
        (status = 200, description = "line and reason of each refused row", content_type = "text/csv"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn refused_csv(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(import_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    record(&state, import_id).await?;
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let state = state.clone();
        async move {
            let after = after?;
            let page = imports::refusals(state.ledger().pool(), import_id, after, CSV_PAGE).await;
            let page = match page {
                Ok(page) => page,
                Err(e) => return Some((Err(std::io::Error::other(e)), None)),
            };
            let next = (i64::try_from(page.len()).unwrap_or(0) == CSV_PAGE)
                .then(|| page.last().map(|(line, _)| *line))
                .flatten();
            let header = (after == 0).then_some(&["行号 line", "原因 reason"][..]);
            let bytes = csv::encode(
                header,
                page.iter()
                    .map(|(line, reason)| vec![line.to_string(), csv::text(reason)]),
            )
            .map_err(|_| std::io::Error::other("writing CSV"));
            Some((bytes, next))
        }
    });
    Ok(csv::response(
        Body::from_stream(pages),
        &format!("import-{import_id}-refused.csv"),
    ))
}
