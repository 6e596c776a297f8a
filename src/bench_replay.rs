//! `studyledger bench-replay`: how fast a replay rebuilds every view from a large store,
//! against PostgreSQL's own rate of scanning the same rows in member order, in the same run.
//!
//! The store: the demo data set through the real command path (a few thousand members), then
//! copied under new member ids by SQL until it holds the requested number of events (the
//! command path alone would take many minutes for millions of events). Per run: the baseline
//! `COPY (SELECT aggregate_id, sequence, payload FROM events ORDER BY aggregate_id, sequence)
//! TO '/dev/null'`, then a full replay (rebuild and swap), with the process's peak resident
//! memory during the replay.

use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::bench::median;
use crate::config::BenchReplayArgs;
use crate::demo::{self, DemoPlan};
use crate::{replay, JobError};

/// Members loaded through the command path before the store is copied up to size.
const BASE_MEMBERS: usize = 2_000;

pub async fn run(args: BenchReplayArgs) -> Result<(), JobError> {
    crate::bench::in_scratch_database(&args.database_url, "studyledger_bench_replay", |options| {
        measure(&args, options)
    })
    .await
}

async fn measure(args: &BenchReplayArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let (pool, ledger) = crate::bench::fresh_ledger(options.clone()).await?;
    eprintln!("filling the store: {BASE_MEMBERS} demo members through the command path");
    demo::load(
        &ledger,
        &DemoPlan {
            members: BASE_MEMBERS,
            ..DemoPlan::default()
        },
    )
    .await?;
    let (base_events, base_last): (i64, i64) = sqlx::query_as(
        "SELECT count(*), max(position) FROM events WHERE aggregate_type = 'member'",
    )
    .fetch_one(&pool)
    .await?;
    let wanted = i64::try_from(args.events).unwrap_or(i64::MAX);
    let copies = ((wanted - base_events).max(0) + base_events - 1) / base_events.max(1);
    for copy in 1..=copies {
        // New member ids, derived from the old ones and the copy number, also inside payloads.
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, recorded_at)
             SELECT e.aggregate_type, n.id, e.sequence, e.event_type, e.event_version,
                    replace(e.payload::text, e.aggregate_id, n.id)::json, e.metadata,
                    e.recorded_at
               FROM events e,
                    LATERAL (SELECT md5(e.aggregate_id || '/' || $1)::uuid::text AS id) n
              WHERE e.aggregate_type = 'member' AND e.position <= $2
              ORDER BY e.position",
        )
        .bind(copy)
        .bind(base_last)
        .execute(&pool)
        .await?;
        eprintln!("copied the members {copy}/{copies} times");
    }
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    let (events, members): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'member'",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!("store: {events} member events of {members} members");

    let mut scans = Vec::new();
    let mut replays = Vec::new();
    let mut peaks = Vec::new();
    for run in 1..=args.runs.max(1) {
        let scan = copy_scan(&options).await?;
        reset_peak_memory();
        let before = memory_mib("VmRSS:");
        let started = Instant::now();
        let summary = replay::run(
            ledger.clone(),
            replay::start(&ledger, false, "bench").await?,
            |_| (),
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        let peak = memory_mib("VmHWM:");
        let rate = summary.events as f64 / seconds;
        eprintln!(
            "run {run}: COPY {:.0} rows/s; replay {} events in {seconds:.1} s = {rate:.0} events/s; resident memory {before:.0} MiB before, peak {peak:.0} MiB",
            events as f64 / scan,
            summary.events
        );
        scans.push(events as f64 / scan);
        replays.push(rate);
        peaks.push((before, peak));
    }
    let scan = median(&mut scans);
    let rate = median(&mut replays);
    let (before, peak) = peaks
        .iter()
        .copied()
        .fold((0.0, 0.0), |(b, p), (before, peak)| {
            (f64::max(b, before), f64::max(p, peak))
        });
    println!(
        "replay benchmark: {events} member events, {members} members, {} runs, medians",
        args.runs.max(1)
    );
    println!("  COPY scan in member order:  {scan:>10.0} rows/s");
    println!("  replay (rebuild and swap):  {rate:>10.0} events/s");
    println!("  ratio:                      {:>10.2}", rate / scan);
    println!(
        "  peak resident memory:       {peak:>10.0} MiB (whole process; {before:.0} MiB before the replay)"
    );
    Ok(())
}

/// Seconds for PostgreSQL to scan every event in member order and write it to /dev/null.
async fn copy_scan(options: &PgConnectOptions) -> Result<f64, JobError> {
    let mut connection = options.clone().connect().await?;
    let started = Instant::now();
    sqlx::query(
        "COPY (SELECT aggregate_id, sequence, payload FROM events ORDER BY aggregate_id, sequence)
           TO '/dev/null'",
    )
    .execute(&mut connection)
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(seconds)
}

/// Resets the kernel's record of this process's peak resident memory (Linux).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A memory figure of this process from /proc/self/status (`VmRSS:` now, `VmHWM:` the peak
/// since the last reset), in MiB (Linux; 0 elsewhere).
fn memory_mib(field: &str) -> f64 {
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
