//! `studyledger bench-write`: study-session commands per second over HTTP, against
//! PostgreSQL's own rate of single-row INSERT transactions into an events-shaped table, both
//! measured in the same run on the same server, with 1 and 16 clients by default.
//!
//! Each run gets fresh members (fifty per client), so every run starts from the same state;
//! the report gives the median of the runs and the ratio of the medians. The service runs in
//! a process of its own on a loopback port, as in production; this process is the client of
//! both.
//!
//! With `--local-commit`, a second instance of the service and a second pool commit with
//! `synchronous_commit = local`, and each round measures both in turn: on a primary with a
//! synchronous standby, what waiting for the standby costs, against a lone primary's commit,
//! in one run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::bench::{
    free_port, in_scratch_database, median, percentile, sample_lag, start_service, wait_until_ready,
};
use crate::config::BenchArgs;
use crate::store::{database, streams};
use crate::JobError;

/// The bootstrap administrator of the service the benchmark starts (its own, on a scratch
/// database that is dropped afterwards).
const BENCH_ADMIN: &str = "bench-write-administrator-token-0123456789";

/// How often the projector's lag is sampled while commands run.
const LAG_EVERY: Duration = Duration::from_millis(20);

pub async fn run(args: BenchArgs) -> Result<(), JobError> {
    in_scratch_database(&args.database_url, "studyledger_bench", |options| {
        measure(&args, options)
    })
    .await
}

/// One way of committing, measured on its own connections and its own instance of the
/// service: as the server is configured, or with `synchronous_commit = local`.
struct Target {
    label: &'static str,
    pool: PgPool,
    base: String,
    service: tokio::process::Child,
}

/// The setting a lone primary commits with: the commit waits for the local disk only.
const LOCAL_COMMIT: (&str, &str) = ("synchronous_commit", "local");

async fn start_target(
    label: &'static str,
    options: PgConnectOptions,
    local: bool,
    clients: usize,
    http: &reqwest::Client,
) -> Result<Target, JobError> {
    let mut url = options.to_url_lossy().to_string();
    let options = if local {
        // sqlx's URL leaves out startup options; the service reads them from its URL.
        url.push_str("&options=-c%20synchronous_commit%3Dlocal");
        options.options([LOCAL_COMMIT])
    } else {
        options
    };
    let pool_size = u32::try_from(clients * 2).unwrap_or(32).max(4);
    let pool = database::pool_options(pool_size)
        .connect_with(options)
        .await?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let service = start_service(&url, port, BENCH_ADMIN)?;
    wait_until_ready(http, &base).await?;
    Ok(Target {
        label,
        pool,
        base,
        service,
    })
}

async fn measure(args: &BenchArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    let pool = database::pool_options(4)
        .connect_with(options.clone())
        .await?;
    database::migrate(&pool).await?;
    // The baseline table has the shape, constraints and indexes of `events`, and no trigger:
    // the hash chain the ledger computes on insert counts as part of the ledger's cost.
    streams::create_baseline_table(&pool).await?;
    // Every request carries the service's bootstrap administrator token: the benchmark measures
    // the ledger as deployed, authentication included.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {BENCH_ADMIN}").parse()?,
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(max_clients * 2)
        .default_headers(headers)
        .build()?;
    let mut targets =
        vec![start_target("server", options.clone(), false, max_clients, &http).await?];
    if args.local_commit {
        targets.push(start_target("local", options, true, max_clients, &http).await?);
    }
    setup_catalog(&http, &targets[0].base).await?;
    let seconds = args.seconds.max(0.5);
    println!(
        "write benchmark: {} runs of {seconds} s per measurement; medians; ratio = ledger / PostgreSQL",
        args.runs
    );
    if args.local_commit {
        println!("commit: server = as the server is configured; local = synchronous_commit local (no wait for a standby)");
    }
    println!(
        "{:>7}  {:>6}  {:>14}  {:>14}  {:>6}  {:>16}  {:>18}",
        "clients",
        "commit",
        "postgres ins/s",
        "ledger cmd/s",
        "ratio",
        "http floor req/s",
        "view lag p50/p99"
    );
    for &clients in &args.clients {
        measure_clients(&targets, &http, clients, args.runs, seconds).await?;
    }
    for mut target in targets {
        target.service.kill().await?;
    }
    Ok(())
}

/// The runs of one commit target for one client count.
#[derive(Default)]
struct Runs {
    postgres: Vec<f64>,
    ledger: Vec<f64>,
    floor: Vec<f64>,
    lag: Vec<f64>,
}

/// Lines of the report for `clients` clients: `runs` rounds, each running every target in
/// turn (the baseline, the ledger with the projector's lag sampled meanwhile, the HTTP floor),
/// so that the targets share the machine's moods; then, with more than one target, each
/// rate's ratio to the last target's.
async fn measure_clients(
    targets: &[Target],
    http: &reqwest::Client,
    clients: usize,
    runs: usize,
    seconds: f64,
) -> Result<(), JobError> {
    let mut all: Vec<Runs> = targets.iter().map(|_| Runs::default()).collect();
    for run in 0..runs.max(1) {
        for (index, (target, runs)) in targets.iter().zip(all.iter_mut()).enumerate() {
            let base = target.base.as_str();
            runs.postgres
                .push(postgres_inserts(&target.pool, clients, seconds).await?);
            let sampler = tokio::spawn(sample_lag(
                http.clone(),
                base.to_owned(),
                seconds,
                LAG_EVERY,
            ));
            let round = run * targets.len() + index;
            runs.ledger
                .push(ledger_sessions(http, base, clients, seconds, round).await?);
            runs.lag.extend(sampler.await?);
            runs.floor
                .push(http_floor(http, base, clients, seconds).await?);
        }
    }
    let mut medians = Vec::new();
    for (target, runs) in targets.iter().zip(all.iter_mut()) {
        let (pg, sl, fl) = (
            median(&mut runs.postgres),
            median(&mut runs.ledger),
            median(&mut runs.floor),
        );
        runs.lag.sort_by(f64::total_cmp);
        println!(
            "{clients:>7}  {:>6}  {pg:>14.0}  {sl:>14.0}  {:>6.2}  {fl:>16.0}  {:>8.0}/{:.0} ms",
            target.label,
            sl / pg,
            percentile(&runs.lag, 0.5) * 1000.0,
            percentile(&runs.lag, 0.99) * 1000.0
        );
        eprintln!(
            "  runs ({}): postgres {:.0?}, ledger {:.0?}, http floor {:.0?}; {} lag samples",
            target.label,
            runs.postgres,
            runs.ledger,
            runs.floor,
            runs.lag.len()
        );
        medians.push((pg, sl));
    }
    if let (Some(first), Some(last)) = (medians.first(), medians.last()) {
        if medians.len() > 1 {
            println!(
                "{clients:>7}  server / local commit: postgres {:.2}, ledger {:.2}",
                first.0 / last.0,
                first.1 / last.1
            );
        }
    }
    Ok(())
}

async fn setup_catalog(http: &reqwest::Client, base: &str) -> Result<(), JobError> {
    let org = http
        .post(format!("{base}/v1/orgs"))
        .json(&json!({"org_id": "bench", "name": "Bench"}))
        .send()
        .await?;
    let course = http
        .post(format!("{base}/v1/courses"))
        .json(&json!({"course_id": "bench-course", "title": "Bench", "category": "required", "credit_hours": 1}))
        .send()
        .await?;
    if !org.status().is_success() || !course.status().is_success() {
        return Err(format!("setup failed: {} / {}", org.status(), course.status()).into());
    }
    Ok(())
}

/// `GET /healthz` in a loop: what one HTTP exchange costs here, without any database work —
/// the floor under the ledger's rate, for telling where the time goes.
async fn http_floor(
    http: &reqwest::Client,
    base: &str,
    clients: usize,
    seconds: f64,
) -> Result<f64, JobError> {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = format!("{base}/healthz");
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let response = http.get(&url).send().await?;
                response.bytes().await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), reqwest::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Single-row INSERT transactions of session-sized events, one connection per client.
async fn postgres_inserts(pool: &PgPool, clients: usize, seconds: f64) -> Result<f64, JobError> {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let aggregate_id = Uuid::new_v4().to_string();
            let mut connection = pool.acquire().await?;
            let mut sequence: i64 = 0;
            while Instant::now() < deadline {
                sequence += 1;
                let payload = json!({"StudySessionRecorded": {
                    "session_id": Uuid::new_v4(), "course_id": "bench-course",
                    "started_at": Utc::now(), "ended_at": Utc::now(), "minutes": 1}});
                sqlx::query(
                    "INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type,
                                               event_version, payload, metadata, recorded_at)
                     VALUES ('member', $1, $2, 'StudySessionRecorded', '1', $3::json, $4::json, now())",
                )
                .bind(&aggregate_id)
                .bind(sequence)
                .bind(payload.to_string())
                .bind(r#"{"actor":"bench","request_id":"00000000-0000-0000-0000-000000000000","recorded_at":"2026-01-01T00:00:00Z"}"#)
                .execute(&mut *connection)
                .await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Members each client spreads its sessions over, so that streams stay as long as real
/// ones (tens to hundreds of events) rather than thousands of sessions in a few seconds.
const MEMBERS_PER_CLIENT: usize = 50;

/// `POST /v1/members/{id}/study-sessions` in a loop; each client cycles through fresh members
/// of its own (enrolled before the clock starts).
async fn ledger_sessions(
    http: &reqwest::Client,
    base: &str,
    clients: usize,
    seconds: f64,
    run: usize,
) -> Result<f64, JobError> {
    let mut members_of_clients = Vec::new();
    for client in 0..clients {
        let mut members = Vec::new();
        for n in 0..MEMBERS_PER_CLIENT {
            let member_id = Uuid::new_v4();
            let response = http
                .post(format!("{base}/v1/members"))
                .json(
                    &json!({"member_id": member_id, "member_no": format!("B{clients}-{run}-{client}-{n}"),
                              "name": "Bench", "org_id": "bench", "enrolled_on": "2020-01-01"}),
                )
                .send()
                .await?;
            if !response.status().is_success() {
                return Err(format!("enrolment failed: {}", response.status()).into());
            }
            members.push(format!("{base}/v1/members/{member_id}/study-sessions"));
        }
        members_of_clients.push(members);
    }
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let first_start = Utc::now() - chrono::Duration::days(60);
    let mut tasks = Vec::new();
    for members in members_of_clients {
        let http = http.clone();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut n: i64 = 0;
            while Instant::now() < deadline {
                let url = &members[usize::try_from(n).unwrap_or(0) % members.len()];
                // Each member's sessions follow each other two minutes apart: no overlaps.
                let started_at = first_start + chrono::Duration::minutes(2 * n);
                n += 1;
                let response = http
                    .post(url)
                    .json(
                        &json!({"session_id": Uuid::new_v4(), "course_id": "bench-course",
                                  "started_at": started_at,
                                  "ended_at": started_at + chrono::Duration::minutes(1)}),
                    )
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status() != reqwest::StatusCode::CREATED {
                    return Err(format!("session answered {}", response.status()));
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
