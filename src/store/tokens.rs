//! Bearer tokens: who may call the service, in which role, over which part of the ledger.
//!
//! A token's secret is 256 random bits, shown once when it is issued; only its SHA-256 is
//! stored, so the table cannot be used to call the service. A token is looked up by that
//! hash on the request path (the HTTP layer caches what it found for a second, which is also
//! how long a revocation takes to reach every instance).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use uuid::Uuid;

/// What a token may do (the routes name the roles they admit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads their own record and files their own appeals.
    Member,
    /// A learning app: records study sessions and completions, reads nothing.
    Ingest,
    /// Manages the members of an organisation's subtree.
    OrgAdmin,
    /// Reads everything, writes nothing.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Member,
        Role::Ingest,
        Role::OrgAdmin,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Ingest => "ingest",
            Role::OrgAdmin => "org_admin",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a role: use member, ingest, org_admin, auditor or admin")
            })
    }
}

/// A token as stored (never its secret).
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Token {
    pub token_id: Uuid,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub org_id: Option<String>,
    pub member_id: Option<Uuid>,
    pub name: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl Token {
    /// Whether the token may be used at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub role: Role,
    pub org_id: Option<String>,
    pub member_id: Option<Uuid>,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_by: String,
}

/// The prefix every secret starts with, so a leaked one is recognisable in logs and scans.
const PREFIX: &str = "slt_";

/// A fresh secret: the prefix and 256 random bits in hex (URL-safe, 68 characters).
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a secret.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Stores a new token; answers its id and its secret (never stored, shown once).
pub async fn issue(
    connection: impl PgExecutor<'_>,
    token: &NewToken,
) -> Result<(Uuid, String), sqlx::Error> {
    let token_id = Uuid::new_v4();
    let secret = new_secret();
    sqlx::query(
        "INSERT INTO access_tokens (token_id, secret_sha256, role, org_id, member_id, name,
                                    issued_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(token_id)
    .bind(secret_hash(&secret))
    .bind(token.role.as_str())
    .bind(&token.org_id)
    .bind(token.member_id)
    .bind(&token.name)
    .bind(&token.issued_by)
    .bind(token.expires_at)
    .execute(connection)
    .await?;
    Ok((token_id, secret))
}

const COLUMNS: &str = "token_id, role, org_id, member_id, name, issued_at, issued_by, expires_at,
                       revoked_at";

/// The token a secret belongs to, valid or not.
pub async fn by_secret(
    connection: impl PgExecutor<'_>,
    secret: &str,
) -> Result<Option<Token>, sqlx::Error> {
    by_hash(connection, &secret_hash(secret)).await
}

/// The token whose secret has this SHA-256, valid or not.
pub async fn by_hash(
    connection: impl PgExecutor<'_>,
    hash: &[u8],
) -> Result<Option<Token>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM access_tokens WHERE secret_sha256 = $1"
    ))
    .bind(hash)
    .fetch_optional(connection)
    .await
}

/// Every token, newest first.
pub async fn list(connection: impl PgExecutor<'_>) -> Result<Vec<Token>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM access_tokens ORDER BY issued_at DESC, token_id"
    ))
    .fetch_all(connection)
    .await
}

/// Revokes a token by id; answers whether one was revoked now (false: unknown, or revoked
/// before).
pub async fn revoke(
    connection: impl PgExecutor<'_>,
    token_id: Uuid,
    revoked_by: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = now(), revoked_by = $2
          WHERE token_id = $1 AND revoked_at IS NULL",
    )
    .bind(token_id)
    .bind(revoked_by)
    .execute(connection)
    .await?;
    Ok(done.rows_affected() == 1)
}
