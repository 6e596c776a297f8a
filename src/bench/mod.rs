//! The benchmarks behind `studyledger bench-*`: each measures the ledger against PostgreSQL's
//! own rate for the same work, in the same run, on a database of its own, and reports medians
//! of several runs (the machines are shared and noisy).
//!
//! - [`write`]: study-session commands over HTTP against single-row INSERTs;
//! - [`projector`]: the projector catching up against a COPY scan in commit order;
//! - [`replay`]: a full replay against a COPY scan in member order;
//! - [`reads`]: reads at two sizes of ledger, the large one against the small one.

pub mod import;
pub mod projector;
pub mod reads;
pub mod replay;
pub mod write;

use std::time::{Duration, Instant};

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
    let options = create_database(&server, &name, None).await?;
    let outcome = benchmark(options).await;
    drop_database(&server, &name).await?;
    outcome
}

/// Creates the database `name` on `server` (dropping one of that name first), empty or as a
/// copy of `template`; answers how to connect to it. A template must have no connections: any
/// left are ended first.
pub async fn create_database(
    server: &PgConnectOptions,
    name: &str,
    template: Option<&str>,
) -> Result<PgConnectOptions, JobError> {
    let mut admin = server.clone().connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    let Some(template) = template else {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        return Ok(server.clone().database(name));
    };
    // A pool closed a moment ago may still be ending its connections.
    for attempt in 0.. {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(template)
        .execute(&mut admin)
        .await?;
        let created = sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .await;
        match created {
            Ok(_) => break,
            Err(error) if attempt >= 20 => return Err(error.into()),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    admin.close().await?;
    Ok(server.clone().database(name))
}

/// Drops the database `name` on `server`, ending its connections.
pub async fn drop_database(server: &PgConnectOptions, name: &str) -> Result<(), JobError> {
    let mut admin = server.clone().connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// The size of the database `options` names, in bytes (`pg_database_size`).
pub async fn database_size(options: &PgConnectOptions) -> Result<i64, JobError> {
    let mut connection = options.clone().connect().await?;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(size)
}

/// `VACUUM (ANALYZE)` of every table of the database `options` names: visibility maps and
/// statistics, as a database has them once autovacuum has been by. Then a `CHECKPOINT`, so
/// that the pages the load dirtied are written now and not by the checkpointer while reads are
/// timed (seen: a checkpoint of the load spread over 139 s of the reads at a million members,
/// the background's commands waiting on the disk, p99 937 ms).
pub async fn vacuum_database(options: &PgConnectOptions) -> Result<(), JobError> {
    let mut connection = options.clone().connect().await?;
    for statement in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        sqlx::query(statement).execute(&mut connection).await?;
    }
    connection.close().await?;
    Ok(())
}

/// Bytes free on the file system of the server's data directory, when this machine can see it
/// (the server is local and the connection a superuser's): `df` of `data_directory`.
pub async fn free_disk(server: &PgConnectOptions) -> Option<u64> {
    let mut connection = server.clone().connect().await.ok()?;
    let directory: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut connection)
        .await
        .ok()?;
    let _ = connection.close().await;
    let output = tokio::process::Command::new("df")
        .args(["-B1", "--output=avail", &directory])
        .output()
        .await
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// The application on a benchmark's database, built as `serve` builds it (no projector).
pub async fn fresh_app(options: &PgConnectOptions) -> Result<App, JobError> {
    let database = DatabaseArgs {
        database_url: options.to_url_lossy().to_string(),
        pool_size: 8,
        read_url: None,
    };
    let ledger = LedgerArgs {
        member_cache: 20_000,
        write_connections: 4,
        ..LedgerArgs::quiet()
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

/// The service as its own process, as in production: `studyledger serve` on a loopback port,
/// over a benchmark's database (`database_url`), with `admin_token` as its bootstrap
/// administrator's token.
pub fn start_service(
    database_url: &str,
    port: u16,
    admin_token: &str,
) -> Result<tokio::process::Child, JobError> {
    Ok(tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env("LEDGER_ADMIN_TOKEN", admin_token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?)
}

/// A free loopback port, for a service to listen on.
pub fn free_port() -> Result<u16, JobError> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.port())
}

/// Waits (at most a minute) until the service at `base` says it is ready.
pub async fn wait_until_ready(http: &reqwest::Client, base: &str) -> Result<(), JobError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the service did not become ready within 60 s".into())
}

/// Samples the projector's lag (`studyledger_projector_seconds_behind`: the age of the oldest
/// event not yet in the views) from `/metrics` every `every` for `seconds`.
pub async fn sample_lag(
    http: reqwest::Client,
    base: String,
    seconds: f64,
    every: Duration,
) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/metrics")).send().await {
            if let Ok(text) = response.text().await {
                let value = text
                    .lines()
                    .find_map(|l| l.strip_prefix("studyledger_projector_seconds_behind "))
                    .and_then(|v| v.trim().parse::<f64>().ok());
                samples.extend(value);
            }
        }
        tokio::time::sleep(every).await;
    }
    samples
}

/// The value at quantile `q` (0 to 1) of sorted measurements: the one at rank
/// round((n − 1)·q); 0 for none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

/// The median of some measurements (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Resets the kernel's record of this process's peak resident memory (Linux).
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A memory figure of this process from /proc/self/status (`VmRSS:` now, `VmHWM:` the peak
/// since the last reset), in MiB (Linux; 0 elsewhere).
pub fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
