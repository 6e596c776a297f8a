//! The Learning Record Store's documents (`xapi_documents`): state documents and profiles,
//! each under its kind, scope and id, with an ETag that changes with its content.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A document as kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Document {
    pub content_type: String,
    pub content: Vec<u8>,
    pub etag: String,
    pub updated: DateTime<Utc>,
}

/// Where a document lives.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub kind: &'a str,
    pub scope: &'a str,
    pub id: &'a str,
}

/// What a write requires of the document as it stands (`If-Match`, `If-None-Match`).
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    /// The ETags one of which the document must have (`*`: it must exist).
    pub if_match: Option<Vec<String>>,
    /// ETags the document must not have (`*`: it must not exist).
    pub if_none_match: Option<Vec<String>>,
    /// Whether a write to a document that exists must name one of the two (the profile
    /// resources' `PUT`: 409 without).
    pub required_if_present: bool,
}

impl Precondition {
    /// Whether a document with this ETag (`None`: absent) meets it.
    pub fn holds(&self, current: Option<&str>) -> bool {
        let listed = |tags: &Vec<String>| {
            tags.iter()
                .any(|t| t == "*" && current.is_some() || Some(t.as_str()) == current)
        };
        self.if_match.as_ref().is_none_or(listed)
            && self.if_none_match.as_ref().is_none_or(|tags| !listed(tags))
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the document does not meet If-Match / If-None-Match")]
    PreconditionFailed,
    #[error("the document exists: a write to it names If-Match (or If-None-Match)")]
    PreconditionRequired,
    #[error("{0}")]
    NotMergeable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The ETag of a content: its SHA-256 in hex, quoted.
pub fn etag_of(content: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(content)))
}

pub async fn get(pool: &PgPool, place: Place<'_>) -> Result<Option<Document>, sqlx::Error> {
    sqlx::query_as(
        "SELECT content_type, content, etag, updated FROM xapi_documents
          WHERE kind = $1 AND scope = $2 AND document_id = $3",
    )
    .bind(place.kind)
    .bind(place.scope)
    .bind(place.id)
    .fetch_optional(pool)
    .await
}

/// The ids of a scope's documents, changed after `since` when given.
pub async fn ids(
    pool: &PgPool,
    kind: &str,
    scope: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT document_id FROM xapi_documents
          WHERE kind = $1 AND scope = $2 AND ($3::timestamptz IS NULL OR updated > $3)
          ORDER BY document_id",
    )
    .bind(kind)
    .bind(scope)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// How a write changes the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `PUT`: the content replaces it.
    Replace,
    /// `POST`: JSON objects are merged, their top-level properties from the new one winning.
    Merge,
}

/// Writes a document if the precondition holds; answers its new ETag.
pub async fn write(
    pool: &PgPool,
    place: Place<'_>,
    precondition: &Precondition,
    how: Write,
    content_type: &str,
    content: &[u8],
) -> Result<String, DocumentError> {
    if how == Write::Merge && is_json(content_type) && json_object(content).is_none() {
        // Refused whether or not there is a document to merge into (XAPI-00314): a POST
        // stores a new document as a PUT would, but only what a later POST could merge.
        return Err(DocumentError::NotMergeable(
            "a POST of application/json merges a JSON object: the body is not one".to_owned(),
        ));
    }
    let mut tx = pool.begin().await?;
    let current: Option<(String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT content_type, content, etag FROM xapi_documents
          WHERE kind = $1 AND scope = $2 AND document_id = $3 FOR UPDATE",
    )
    .bind(place.kind)
    .bind(place.scope)
    .bind(place.id)
    .fetch_optional(&mut *tx)
    .await?;
    if current.is_some() && precondition.required_if_present && precondition.is_empty() {
        return Err(DocumentError::PreconditionRequired);
    }
    if !precondition.holds(current.as_ref().map(|(_, _, etag)| etag.as_str())) {
        return Err(DocumentError::PreconditionFailed);
    }
    let (content_type, content) = match (&current, how) {
        (Some((old_type, old, _)), Write::Merge) => merged(old_type, old, content_type, content)?,
        _ => (content_type.to_owned(), content.to_vec()),
    };
    let etag = etag_of(&content);
    let written = sqlx::query(
        "INSERT INTO xapi_documents (kind, scope, document_id, content_type, content, etag, updated)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (kind, scope, document_id) DO UPDATE
            SET content_type = EXCLUDED.content_type, content = EXCLUDED.content,
                etag = EXCLUDED.etag, updated = EXCLUDED.updated
          WHERE $7",
    )
    .bind(place.kind)
    .bind(place.scope)
    .bind(place.id)
    .bind(&content_type)
    .bind(&content)
    .bind(&etag)
    // A document created by another writer since it was read as absent: the precondition
    // was checked against its absence, so it only still holds when none was given.
    .bind(current.is_some() || precondition.is_empty())
    .execute(&mut *tx)
    .await?;
    if written.rows_affected() == 0 {
        return Err(DocumentError::PreconditionFailed);
    }
    tx.commit().await?;
    Ok(etag)
}

/// Two JSON objects merged (xAPI 2.0 part 3, §2.2: POST to a document resource); anything
/// else cannot be.
fn merged(
    old_type: &str,
    old: &[u8],
    new_type: &str,
    new: &[u8],
) -> Result<(String, Vec<u8>), DocumentError> {
    let both = is_json(old_type) && is_json(new_type);
    match (both, json_object(old), json_object(new)) {
        (true, Some(mut old), Some(new)) => {
            old.extend(new);
            let bytes =
                serde_json::to_vec(&old).map_err(|e| DocumentError::NotMergeable(e.to_string()))?;
            Ok((new_type.to_owned(), bytes))
        }
        _ => Err(DocumentError::NotMergeable(
            "only JSON objects are merged: the document or the body is not one".to_owned(),
        )),
    }
}

/// Whether a content type is JSON's, whatever its parameters (`application/json; charset=…`).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The content as a JSON object, when it is one.
fn json_object(content: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<serde_json::Value>(content) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Deletes a document, or every document of a scope (`id` = `None`), if the precondition
/// holds; answers how many went.
pub async fn delete(
    pool: &PgPool,
    kind: &str,
    scope: &str,
    id: Option<&str>,
    precondition: &Precondition,
) -> Result<u64, DocumentError> {
    let mut tx = pool.begin().await?;
    if let Some(id) = id {
        let current: Option<String> = sqlx::query_scalar(
            "SELECT etag FROM xapi_documents
              WHERE kind = $1 AND scope = $2 AND document_id = $3 FOR UPDATE",
        )
        .bind(kind)
        .bind(scope)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if !precondition.holds(current.as_deref()) {
            return Err(DocumentError::PreconditionFailed);
        }
    }
    let deleted = sqlx::query(
        "DELETE FROM xapi_documents
          WHERE kind = $1 AND scope = $2 AND ($3::text IS NULL OR document_id = $3)",
    )
    .bind(kind)
    .bind(scope)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}
