//! What an event carries besides its payload, and what the store answers about it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who recorded an event (the acting token: its name, id and role), when, and in answer to
/// which request.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// The token's name (its id when it has none).
    pub actor: String,
    pub token_id: String,
    pub role: String,
    pub request_id: String,
    pub recorded_at: DateTime<Utc>,
}

impl Metadata {
    /// The service itself (the initial ruleset, the demo data).
    pub fn system(reason: &str) -> Metadata {
        Metadata {
            actor: "system".to_owned(),
            token_id: "system".to_owned(),
            role: "system".to_owned(),
            request_id: reason.to_owned(),
            recorded_at: Utc::now(),
        }
    }

    /// The metadata column's JSON: a map of strings, as postgres-es writes and reads it. In
    /// key order, so that the same metadata always renders as the same text (a link of the
    /// hash chain covers the text as stored).
    pub fn as_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("actor".to_owned(), self.actor.clone()),
            ("token_id".to_owned(), self.token_id.clone()),
            ("role".to_owned(), self.role.clone()),
            ("request_id".to_owned(), self.request_id.clone()),
            ("recorded_at".to_owned(), self.recorded_at.to_rfc3339()),
        ])
    }
}

/// One stored event as an auditor reads it.
#[derive(Debug, Clone)]
pub struct Recorded<E> {
    pub sequence: usize,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: String,
    pub event_version: String,
    pub metadata: serde_json::Value,
    pub payload: serde_json::Value,
    /// The event's link in its stream's hash chain (hex; see migrations/0004_hash_chain.sql).
    pub hash: String,
    /// The event as the current types read it; `None` when they cannot (see
    /// `event_store::PassOver`).
    pub event: Option<E>,
}

impl<E> Recorded<E> {
    /// Who recorded the event (the token's subject), from its metadata.
    pub fn actor(&self) -> Option<&str> {
        self.metadata.get("actor").and_then(|a| a.as_str())
    }

    pub fn request_id(&self) -> Option<&str> {
        self.metadata.get("request_id").and_then(|a| a.as_str())
    }

    /// The id of the token that recorded the event (absent before tokens existed).
    pub fn token_id(&self) -> Option<&str> {
        self.metadata.get("token_id").and_then(|a| a.as_str())
    }

    pub fn role(&self) -> Option<&str> {
        self.metadata.get("role").and_then(|a| a.as_str())
    }
}

/// One appended event: its place in its stream and in the global order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub sequence: usize,
    pub position: i64,
}
