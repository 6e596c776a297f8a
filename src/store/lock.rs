//! Advisory locks: one projector, one replay and one what-if per database, across every instance. A lock
//! is held by a connection of its own and released when that connection closes (also when
//! the process dies), so a crashed holder never blocks the others for long.

use sqlx::PgConnection;

/// The lock the active projector holds ("STUDYLE" in ASCII).
pub const PROJECTOR: i64 = 0x0053_5455_4459_4c45;
/// The lock the running replay holds ("REPLAY" in ASCII).
pub const REPLAY: i64 = 0x5245_504c_4159;
/// The lock the running what-if holds ("WHATIF" in ASCII): one at a time, across instances.
pub const WHAT_IF: i64 = 0x5748_4154_4946;

/// Takes `key` on this connection if nobody holds it; answers whether it is ours now.
pub async fn try_lock(connection: &mut PgConnection, key: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(connection)
        .await
}
