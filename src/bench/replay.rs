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

use crate::app::App;
use crate::bench::{
    fresh_app, in_scratch_database, median, memory_mib, reset_peak_memory, timed_scan,
};
use crate::config::BenchReplayArgs;
use crate::jobs::demo::{self, DemoPlan};
use crate::jobs::replay;
use crate::store::streams;
use crate::JobError;

/// Members loaded through the command path before the store is copied up to size.
const BASE_MEMBERS: usize = 2_000;

pub async fn run(args: BenchReplayArgs) -> Result<(), JobError> {
    in_scratch_database(&args.database_url, "studyledger_bench_replay", |options| {
        measure(&args, options)
    })
    .await
}

/// One run's figures: scan rate, replay rate, resident memory before and at the peak.
struct Run {
    scan: f64,
    replay: f64,
    memory: (f64, f64),
}

async fn measure(args: &BenchReplayArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let app = fresh_app(&options).await?;
    let (events, members) = fill(&app, args.events).await?;
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        let measured = measure_run(&app, &options, events).await?;
        eprintln!(
            "run {run}: COPY {:.0} rows/s; replay {:.0} events/s; resident memory {:.0} MiB \
             before, peak {:.0} MiB",
            measured.scan, measured.replay, measured.memory.0, measured.memory.1
        );
        runs.push(measured);
    }
    let scan = median(&mut runs.iter().map(|r| r.scan).collect::<Vec<_>>());
    let rate = median(&mut runs.iter().map(|r| r.replay).collect::<Vec<_>>());
    let (before, peak) = runs.iter().fold((0.0, 0.0), |(b, p), r| {
        (f64::max(b, r.memory.0), f64::max(p, r.memory.1))
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

/// Fills the store: demo members through the command path, then copies of their streams
/// under new ids until about `wanted` member events. Answers (member events, members).
async fn fill(app: &App, wanted: usize) -> Result<(i64, i64), JobError> {
    let pool = app.ledger().pool();
    eprintln!("filling the store: {BASE_MEMBERS} demo members through the command path");
    let plan = DemoPlan {
        members: BASE_MEMBERS,
        ..DemoPlan::default()
    };
    demo::load(app.ledger(), &plan).await?;
    let (base_events, base_last) = streams::member_events_extent(pool).await?;
    let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
    let copies = ((wanted - base_events).max(0) + base_events - 1) / base_events.max(1);
    for copy in 1..=copies {
        streams::copy_member_streams(pool, copy, base_last, false).await?;
        eprintln!("copied the members {copy}/{copies} times");
    }
    streams::analyze_events(pool).await?;
    let (events, members) = streams::member_census(pool).await?;
    eprintln!("store: {events} member events of {members} members");
    Ok((events, members))
}

/// One run: PostgreSQL's scan, then a full replay with the process's memory watched.
async fn measure_run(app: &App, options: &PgConnectOptions, events: i64) -> Result<Run, JobError> {
    let scan = timed_scan(options, streams::copy_to_null_in_member_order).await?;
    reset_peak_memory();
    let before = memory_mib("VmRSS:");
    let started = Instant::now();
    let ledger = app.ledger();
    let replaying = replay::start(ledger, false, "bench").await?;
    let summary = replay::run(ledger.clone(), replaying, |_| ()).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run {
        scan: events as f64 / scan,
        replay: summary.events as f64 / seconds,
        memory: (before, memory_mib("VmHWM:")),
    })
}
