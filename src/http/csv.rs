//! CSV answers for people who work in spreadsheets: UTF-8 with a byte order mark (so that
//! spreadsheet programs show Chinese names correctly), a header line, RFC 4180 quoting.
//! Asked for with `Accept: text/csv` or a `.csv` path.
//!
//! A row is taken from the JSON an answer would give, column by column ([`row`]), so a CSV
//! file always says what the JSON says.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// Whether the request asks for CSV.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// Rows as CSV bytes; the first page of a document starts with the BOM and the header line.
pub fn encode<R, F>(header: Option<&[&str]>, rows: R) -> Result<Vec<u8>, ApiError>
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let mut out = Vec::new();
    if header.is_some() {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    let mut writer = csv::Writer::from_writer(&mut out);
    let failed = |e: csv::Error| {
        tracing::error!(error = %e, "writing CSV");
        ApiError::Internal
    };
    if let Some(header) = header {
        writer.write_record(header).map_err(failed)?;
    }
    for row in rows {
        writer.write_record(row).map_err(failed)?;
    }
    writer.flush().map_err(|e| failed(e.into()))?;
    drop(writer);
    Ok(out)
}

/// A CSV body read page by page as the client takes it (memory holds one page):
/// `page(after, first)` answers a page's bytes and the key the next page starts after (`None`
/// after the last page); `first` is true for the page that carries the header.
pub fn paged<K, F, Fut>(page: F) -> Body
where
    K: Send + 'static,
    F: Fn(Option<K>, bool) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(Vec<u8>, Option<K>), ApiError>> + Send + 'static,
{
    let page = std::sync::Arc::new(page);
    let pages = futures::stream::unfold((Some(None::<K>), true), move |(after, first)| {
        let page = std::sync::Arc::clone(&page);
        async move {
            let after = after?;
            match page(after, first).await {
                Ok((bytes, next)) => Some((Ok(bytes), (next.map(Some), false))),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, false))),
            }
        }
    });
    Body::from_stream(pages)
}

/// A CSV answer offered for download as `filename`.
pub fn response(body: impl Into<Body>, filename: &str) -> Response {
    let mut response = body.into().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// The cells of `columns` from a value's JSON form (a missing field is an empty cell).
pub fn row(value: &impl serde::Serialize, columns: &[&str]) -> Result<Vec<String>, ApiError> {
    let json = serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "serialising a CSV row");
        ApiError::Internal
    })?;
    Ok(columns.iter().map(|c| cell(&json[*c])).collect())
}

/// A cell from any JSON value: strings as text, null as empty, anything else as JSON.
pub fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => text(s),
        other => other.to_string(),
    }
}

/// Text that a spreadsheet shows as text. A cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return is taken for a formula by spreadsheet programs (CSV injection), so such text
/// gets a leading apostrophe: the cell may show it, but never runs. Numbers are written as
/// numbers, never through here, so negative hours stay numbers.
pub fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_shown_as_text() {
        assert_eq!(text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("-2+3"), "'-2+3");
        assert_eq!(text("陈静"), "陈静");
        assert_eq!(text("2018-Q2"), "2018-Q2");
        assert_eq!(cell(&serde_json::json!(-1.5)), "-1.5");
        assert_eq!(cell(&serde_json::json!(null)), "");
    }
}
