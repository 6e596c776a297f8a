//! `studyledger bench-projector`: how fast the projector catches up on a large store, against
//! PostgreSQL's own rate of scanning the same rows in the same order, in the same run.
//!
//! The store is filled through the real command path (the demo data generator, scaled up to
//! the requested number of events, with its snapshots), with no projector running. Then, per
//! run: the baseline `COPY (SELECT … FROM events ORDER BY transaction_id, position) TO STDOUT`
//! (read to the end by this process), and a catch-up of the projector from an empty view set.

use std::time::Instant;

use futures::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::bench::median;
use crate::config::BenchProjectorArgs;
use crate::demo::{self, DemoPlan};
use crate::projector::Projector;
use crate::JobError;

/// Events the demo data set holds per member, on average (twelve quarters of study).
const EVENTS_PER_MEMBER: usize = 148;

pub async fn run(args: BenchProjectorArgs) -> Result<(), JobError> {
    crate::bench::in_scratch_database(
        &args.database_url,
        "studyledger_bench_projector",
        |options| measure(&args, options),
    )
    .await
}

async fn measure(args: &BenchProjectorArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let (pool, ledger) = crate::bench::fresh_ledger(options.clone()).await?;
    let plan = DemoPlan {
        members: (args.events / EVENTS_PER_MEMBER).max(1),
        ..DemoPlan::default()
    };
    eprintln!(
        "filling the store: {} members through the command path",
        plan.members
    );
    demo::load(&ledger, &plan).await?;
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;

    let mut scans = Vec::new();
    let mut catch_ups = Vec::new();
    for run in 1..=args.runs.max(1) {
        let scan = copy_scan(&options).await?;
        reset_views(&pool).await?;
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

/// Seconds to read every event in commit order with COPY.
async fn copy_scan(options: &PgConnectOptions) -> Result<f64, JobError> {
    let mut connection = options.clone().connect().await?;
    let started = Instant::now();
    let mut stream = connection
        .copy_out_raw(
            "COPY (SELECT transaction_id, position, aggregate_type, aggregate_id, sequence, payload
                     FROM events ORDER BY transaction_id, position) TO STDOUT",
        )
        .await?;
    let mut bytes = 0_usize;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len();
    }
    drop(stream);
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(bytes, seconds, "copy scan");
    connection.close().await?;
    Ok(seconds)
}

async fn reset_views(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "TRUNCATE member_appeal_view, member_quarter_view, member_org_view, member_view, org_view",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projector_checkpoints SET transaction_id = '0', position = 0,
                events_applied = 0, batches = 0 WHERE projector = 'views'",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
