//! The benchmarks behind `studyledger bench-*`: each measures the ledger against PostgreSQL's
//! own rate for the same work, in the same run, on a database of its own, and reports medians
//! of several runs (the machines are shared and noisy).
//!
//! - [`write`]: study-session commands over HTTP against single-row INSERTs;
//! - [`projector`]: the projector catching up against a COPY scan in commit order;
//! - [`replay`]: a full replay against a COPY scan in member order.

pub mod projector;
pub mod replay;
pub mod write;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::app::App;
use crate::config::{DatabaseArgs, LedgerArgs};
use crate::JobError;

/// Runs a benchmark in a database of its own on the server `database_url` names, created for
/// it and dropped afterwards (also when the benchmark fails).
pub async fn in_scratch_database<F, Fut>(
    database_url: &str,
    prefix: &str,
    benchmark: F,
) -> Result<(), JobError>
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: std::future::Future<Output = Result<(), JobError>>,
{
    let server: PgConnectOptions = database_url.parse()?;
    let name = format!("{prefix}_{}", std::process::id());
    let mut admin = server.clone().connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let outcome = benchmark(server.database(&name)).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    outcome
}

/// The application on a benchmark's database, built as `serve` builds it (no projector).
pub async fn fresh_app(options: &PgConnectOptions) -> Result<App, JobError> {
    let database = DatabaseArgs {
        database_url: options.to_url_lossy().to_string(),
        pool_size: 8,
    };
    let ledger = LedgerArgs {
        timezone: chrono_tz::Asia::Shanghai,
        member_cache: 20_000,
        write_connections: 4,
    };
    App::build(&database, &ledger).await
}

/// Seconds PostgreSQL takes for a baseline scan, on a connection of its own.
pub async fn timed_scan<T>(
    options: &PgConnectOptions,
    scan: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<f64, JobError> {
    let mut connection = options.clone().connect().await?;
    let started = std::time::Instant::now();
    scan(&mut connection).await?;
    let seconds = started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(seconds)
}

/// The median of some measurements (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
