//! `studyledger bench-projector`: how fast the projector catches up on a large store, against
//! PostgreSQL's own rate of scanning the same rows in the same order, in the same run.
//!
//! The store is filled through the real command path (the demo data generator, scaled up to
//! the requested number of events, with its snapshots), with no projector running. Then, per
//! run: the baseline `COPY (SELECT … FROM events ORDER BY transaction_id, position) TO STDOUT`
//! (read to the end by this process), and a catch-up of the projector from an empty view set.

use std::time::Instant;

use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use studyledger_projections::sql::rebuild;

use crate::bench::{fresh_app, in_scratch_database, median, timed_scan};
use crate::config::BenchProjectorArgs;
use crate::jobs::demo::{self, DemoPlan};
use crate::jobs::projector::Projector;
use crate::store::{commit_order, streams};
use crate::JobError;

/// Events the demo data set holds per member, on average (twelve quarters of study).
const EVENTS_PER_MEMBER: usize = 148;

pub async fn run(args: BenchProjectorArgs) -> Result<(), JobError> {
    in_scratch_database(
        &args.database_url,
        "studyledger_bench_projector",
        |options| measure(&args, options),
    )
    .await
}

async fn measure(args: &BenchProjectorArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let app = fresh_app(&options).await?;
    let ledger = app.ledger();
    let pool = ledger.pool();
    let plan = DemoPlan {
        members: (args.events / EVENTS_PER_MEMBER).max(1),
        ..DemoPlan::default()
    };
    eprintln!(
        "filling the store: {} members through the command path",
        plan.members
    );
    demo::load(ledger, &plan).await?;
    streams::analyze_events(pool).await?;
    let (events, _) = streams::member_census(pool).await?;
    let mut scans = Vec::new();
    let mut catch_ups = Vec::new();
    for run in 1..=args.runs.max(1) {
        let scan = timed_scan(&options, streams::copy_out_in_commit_order).await?;
        reset_views(pool).await?;
        // A fresh projector each run, as after a restart: nothing cached.
        let projector = Projector::new(ledger.clone(), 100_000);
        let started = Instant::now();
        let mut applied = 0_usize;
        loop {
            let n = projector.step().await?;
            if n == 0 {
                break;
            }
            applied += n;
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = applied as f64 / seconds;
        eprintln!(
            "run {run}: COPY {:.0} rows/s; catch-up {applied} events in {seconds:.1} s = {rate:.0} events/s",
            events as f64 / scan
        );
        scans.push(events as f64 / scan);
        catch_ups.push(rate);
    }
    let scan = median(&mut scans);
    let catch_up = median(&mut catch_ups);
    println!(
        "projector benchmark: {events} events, {} runs, medians",
        args.runs.max(1)
    );
    println!("  COPY scan in commit order: {scan:>10.0} rows/s");
    println!("  projector catch-up:        {catch_up:>10.0} events/s");
    println!("  ratio:                     {:>10.2}", catch_up / scan);
    Ok(())
}

/// Empty views and a checkpoint at the start of the log, in one transaction.
async fn reset_views(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    rebuild::empty_views(&mut tx).await?;
    commit_order::reset(&mut tx).await?;
    tx.commit().await
}
