//! The PostgreSQL pool and the migrations embedded in the binary.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Pool settings for every pool of the service. sqlx pings a pooled connection before each
/// use by default — a whole extra round trip per statement on the write path; a broken
/// connection fails its statement instead, and the command is answered 503 and can be resent.
pub fn pool_options(pool_size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(pool_size.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
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
