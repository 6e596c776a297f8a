//! The PostgreSQL pool and the migrations embedded in the binary.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::store::connections;

pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a statement may wait for a pooled connection before it fails (and its request is
/// answered 503): short, so that a database that is not there is reported well within 5 s.
/// sqlx keeps trying to connect meanwhile, as long as PostgreSQL refuses connections.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Pool settings for every pool of the service. sqlx pings a pooled connection before each
/// use by default — a whole extra round trip per statement. Here only a connection that has
/// been idle for a while is pinged (one found dead is closed and replaced, so a connection
/// that died while idle — PostgreSQL restarted — is never reported); a connection that breaks
/// mid-use fails its statement, and the request is answered 503 and can be resent.
pub fn pool_options(pool_size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(pool_size.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for < connections::CHECK_IDLE_AFTER {
                    return Ok(true);
                }
                match connections::answers(connection).await {
                    Ok(()) => Ok(true),
                    Err(error) => {
                        tracing::info!(%error, "an idle pooled connection was dead; replaced");
                        Ok(false)
                    }
                }
            })
        })
}

pub async fn connect(database_url: &str, pool_size: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(pool_size).connect(database_url).await
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether every migration this binary knows has been applied.
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)",
    )
    .bind(MIGRATOR.iter().map(|m| m.version).collect::<Vec<i64>>())
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(applied).unwrap_or(0) == MIGRATOR.iter().count())
}

/// Lets the connection's transaction commit without waiting for the WAL flush. Only for
/// writes of derived data (views and their checkpoint commit together, and are rebuilt from
/// the log if the last of them is lost in a crash), never for events.
pub async fn skip_flush_wait(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(tx)
        .await?;
    Ok(())
}

/// Keeps notices below warnings ("does not exist, skipping" and the like) off the log.
pub async fn warnings_only(connection: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET client_min_messages TO warning")
        .execute(connection)
        .await?;
    Ok(())
}

/// Makes the transaction give up on a lock it waits for after `seconds` (error 55P03), so
/// that statements queued behind it do not wait long either.
pub async fn lock_timeout(tx: &mut sqlx::PgConnection, seconds: u32) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL lock_timeout = '{seconds}s'"))
        .execute(tx)
        .await?;
    Ok(())
}
