//! Statements with their attachments' data, in and out (xAPI 2.0 part 3, §1.5.2).
//!
//! `PUT` and `POST /xapi/statements` take `application/json`, or `multipart/mixed` whose first
//! part is the JSON and whose other parts are attachments' data, each with its
//! `X-Experience-API-Hash` and `Content-Transfer-Encoding: binary`. `GET` with
//! `attachments=true` answers the same form: the statements first, then the data of each
//! attachment they name that the LRS keeps, once per hash.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use studyledger_xapi::attachments::Part;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::{body_bytes, ApiJson};

const HASH_HEADER: &str = "x-experience-api-hash";

/// A statements request's body: its JSON, and the attachments' data sent with it.
pub struct StatementsBody {
    pub json: Value,
    pub parts: Vec<Part>,
}

impl<S: Send + Sync> FromRequest<S> for StatementsBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok());
        let Some(content_type) = content_type.filter(|m| m.type_() == mime::MULTIPART) else {
            let ApiJson(json) = ApiJson::<Value>::from_request(req, state).await?;
            return Ok(StatementsBody {
                json,
                parts: Vec::new(),
            });
        };
        if content_type.subtype() != "mixed" {
            return Err(ApiError::Malformed(format!(
                "statements come as application/json or multipart/mixed, not {content_type}"
            )));
        }
        let boundary = content_type
            .get_param(mime::BOUNDARY)
            .map(|b| b.as_str().to_owned())
            .ok_or_else(|| ApiError::Malformed("multipart/mixed needs a boundary".to_owned()))?;
        parse(body_bytes(req, state).await?, boundary).await
    }
}

/// The JSON part first, then each attachment's data.
async fn parse(bytes: Bytes, boundary: String) -> Result<StatementsBody, ApiError> {
    let whole = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(whole, boundary);
    let malformed = |e: multer::Error| ApiError::Malformed(format!("multipart/mixed body: {e}"));
    let first = multipart
        .next_field()
        .await
        .map_err(malformed)?
        .ok_or_else(|| ApiError::Malformed("the multipart body has no part".to_owned()))?;
    if essence(first.headers()).as_deref() != Some("application/json") {
        return Err(ApiError::Malformed(
            "the first part of a multipart statement request is application/json".to_owned(),
        ));
    }
    let json = serde_json::from_slice(&first.bytes().await.map_err(malformed)?)
        .map_err(|e| ApiError::Malformed(format!("the statements' part: invalid JSON: {e}")))?;
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let number = parts.len() + 2;
        let headers = field.headers();
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(sha2) = text(HASH_HEADER).map(str::to_owned) else {
            return Err(ApiError::Malformed(format!(
                "part {number} has no X-Experience-API-Hash"
            )));
        };
        let binary = text("content-transfer-encoding")
            .is_some_and(|encoding| encoding.trim().eq_ignore_ascii_case("binary"));
        if !binary {
            return Err(ApiError::Malformed(format!(
                "part {number}: Content-Transfer-Encoding must be binary"
            )));
        }
        let content_type = match headers.get(header::CONTENT_TYPE) {
            None => "application/octet-stream".to_owned(),
            Some(value) => media_type(value).ok_or_else(|| {
                ApiError::Malformed(format!("part {number}: Content-Type is not a media type"))
            })?,
        };
        let content = field.bytes().await.map_err(malformed)?;
        parts.push(Part::new(&sha2, &content_type, content.to_vec()));
    }
    Ok(StatementsBody { json, parts })
}

/// A part's `Content-Type` as a media type, as it will be served back.
fn media_type(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?.trim();
    text.parse::<mime::Mime>().ok().map(|_| text.to_owned())
}

fn essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// A statement read with its attachments' data: `headers` (those of the read) with a
/// `multipart/mixed` content type, the JSON first, then each part.
pub fn multipart(mut headers: HeaderMap, json: &Value, parts: &[Part]) -> Response {
    let boundary = format!("studyledger-{}", Uuid::new_v4().simple());
    let mut body: Vec<u8> = Vec::new();
    let mut part = |head: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{head}\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Type: application/json\r\n".to_owned(),
        json.to_string().as_bytes(),
    );
    for attachment in parts {
        part(
            format!(
                "Content-Type: {}\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n",
                attachment.content_type, attachment.sha2
            ),
            &attachment.content,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    if let Ok(value) = HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}")) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    (headers, Body::from(body)).into_response()
}
