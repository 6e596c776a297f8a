//! Attachments' raw data (xAPI 2.0 part 3, §1.5.2): the parts after the first of a
//! `multipart/mixed` statement request, each named by its `X-Experience-API-Hash`.
//!
//! A batch's parts and its statements' attachments must agree both ways: every attachment
//! without a `fileUrl` travels as a part, and every part is the data of some attachment. Each
//! part's hash is checked against its content (SHA-256, -384 or -512, by the hash's length),
//! so what the LRS keeps under a hash is the data that hash names. Signed statements (those
//! carrying a signature attachment) are checked by [`crate::signature`].

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

pub use crate::signature::SIGNATURE;
use crate::validate::Invalid;
use crate::{attached, signature};

/// An attachment's raw data as a request carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its `X-Experience-API-Hash`, in lower case.
    pub sha2: String,
    /// The part's `Content-Type`.
    pub content_type: String,
    pub content: Vec<u8>,
}

impl Part {
    pub fn new(sha2: &str, content_type: &str, content: Vec<u8>) -> Self {
        Part {
            sha2: sha2.trim().to_ascii_lowercase(),
            content_type: content_type.trim().to_owned(),
            content,
        }
    }
}

fn invalid(path: &str, problem: impl Into<String>) -> Invalid {
    Invalid {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// The hex SHA-2 of `content` in the length of `like` (64, 96 or 128 digits), or `None` for a
/// hash of another length.
pub fn sha2_like(like: &str, content: &[u8]) -> Option<String> {
    match like.len() {
        64 => Some(hex::encode(Sha256::digest(content))),
        96 => Some(hex::encode(Sha384::digest(content))),
        128 => Some(hex::encode(Sha512::digest(content))),
        _ => None,
    }
}

/// Checks a batch's statements (as sent) against the parts that came with them, and answers
/// the parts to keep, one per hash. See the module's documentation for the rules.
pub fn check(statements: &[&Map<String, Value>], parts: Vec<Part>) -> Result<Vec<Part>, Invalid> {
    let named: HashSet<String> = statements
        .iter()
        .flat_map(|statement| attached(statement).map(|(sha2, _)| sha2))
        .collect();
    let mut kept: HashMap<String, Part> = HashMap::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let path = format!("part {}", i + 2);
        if sha2_like(&part.sha2, &part.content).as_deref() != Some(part.sha2.as_str()) {
            return Err(invalid(
                &path,
                "X-Experience-API-Hash is not the SHA-2 of the part's content",
            ));
        }
        if !named.contains(&part.sha2) {
            return Err(invalid(
                &path,
                "is the data of no attachment of the statements sent with it",
            ));
        }
        kept.entry(part.sha2.clone()).or_insert(part);
    }
    for (i, statement) in statements.iter().enumerate() {
        for (sha2, attachment) in attached(statement) {
            if !kept.contains_key(&sha2) && attachment.get("fileUrl").is_none() {
                return Err(invalid(
                    &format!("statement {i}: attachments"),
                    format!("{sha2} has no fileUrl and no part of the request carries its data"),
                ));
            }
        }
        let data = |sha2: &str| kept.get(sha2).map(|part| part.content.as_slice());
        signature::check(statement, data)
            .map_err(|e| invalid(&format!("statement {i}: {}", e.path), e.problem))?;
    }
    // In hash order: two batches that keep the same data insert it in the same order.
    let mut kept: Vec<Part> = kept.into_values().collect();
    kept.sort_by(|a, b| a.sha2.cmp(&b.sha2));
    Ok(kept)
}
