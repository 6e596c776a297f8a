//! The dashboard's sign-in sessions (migration 0018): a random secret in the browser's cookie,
//! its SHA-256 here, with the SHA-256 of the token the session was opened with and the value
//! its forms must send back.

use chrono::Duration;
use rand::Rng;
use sqlx::PgExecutor;

use crate::store::tokens::secret_hash;

/// A session as the cookie's secret finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// The SHA-256 of the token's secret: the token is checked again on every page.
    pub secret_sha256: Vec<u8>,
    pub csrf: String,
}

/// 256 random bits, hex.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// Opens a session for the token whose secret has this SHA-256; answers the cookie's secret.
pub async fn open(
    connection: impl PgExecutor<'_>,
    token_sha256: &[u8],
    lasts: Duration,
) -> Result<String, sqlx::Error> {
    let secret = random_secret();
    sqlx::query(
        "INSERT INTO dashboard_sessions (session_sha256, secret_sha256, csrf, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 second')",
    )
    .bind(secret_hash(&secret))
    .bind(token_sha256)
    .bind(random_secret())
    .bind(lasts.num_seconds() as f64)
    .execute(connection)
    .await?;
    Ok(secret)
}

/// The live session a cookie's secret names: not ended, not expired.
pub async fn find(
    connection: impl PgExecutor<'_>,
    secret: &str,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "SELECT secret_sha256, csrf FROM dashboard_sessions
          WHERE session_sha256 = $1 AND ended_at IS NULL AND expires_at > now()",
    )
    .bind(secret_hash(secret))
    .fetch_optional(connection)
    .await
}

/// Ends a session (sign-out); ending one that is over already changes nothing.
pub async fn end(connection: impl PgExecutor<'_>, secret: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE dashboard_sessions SET ended_at = now()
          WHERE session_sha256 = $1 AND ended_at IS NULL",
    )
    .bind(secret_hash(secret))
    .execute(connection)
    .await?;
    Ok(())
}

/// Deletes sessions that ended or expired more than a day ago; answers how many.
pub async fn sweep(connection: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM dashboard_sessions
          WHERE expires_at < now() - interval '1 day' OR ended_at < now() - interval '1 day'",
    )
    .execute(connection)
    .await?;
    Ok(done.rows_affected())
}
