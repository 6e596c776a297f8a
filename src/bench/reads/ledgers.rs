//! The two ledgers of `bench-reads`, and how they are loaded.
//!
//! The small ledger goes through the real command path (`demo::load` with
//! [`DemoPlan::national`], its commands sent round by round so that each member's events lie
//! apart in the table as a year of traffic leaves them). The large one starts as a copy of the
//! small one's database (`CREATE DATABASE … TEMPLATE`), and its member streams are copied by
//! SQL under new member ids until it has the members asked for (`streams::copy_member_streams`:
//! round by round too, the member id replaced in the payloads, every event hashed into its new
//! stream's chain by the table's trigger as for any append, so `studyledger verify` accepts
//! them). Every member of it has the shape of one of the small ledger's, by construction, and
//! a copy stays in its original's party cell: the generator spreads the originals evenly over
//! the tree's 496 cells, so the copies are spread the same way. The command path alone would
//! take hours for a million members. Both ledgers' views are then built by a replay (bulk,
//! member by member), and both databases vacuumed and analysed, as a database settles after a
//! replay.

use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::app::App;
use crate::bench::{create_database, database_size, free_disk, fresh_app, vacuum_database};
use crate::config::BenchReadsArgs;
use crate::jobs::demo::{self, DemoPlan};
use crate::jobs::progress::Progress;
use crate::jobs::replay;
use crate::store::{database, streams};
use crate::JobError;

/// A loaded ledger, views built.
pub struct Built {
    pub options: PgConnectOptions,
    pub members: u64,
    pub events: u64,
    /// `pg_database_size`, in bytes, once loaded.
    pub bytes: i64,
}

/// How long each loading step took, in order, for the report.
#[derive(Default)]
pub struct Loading {
    pub steps: Vec<(String, f64)>,
    pub free_before: Option<u64>,
    pub free_after: Option<u64>,
}

impl Loading {
    fn timed(&mut self, step: String, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("{step}: {seconds:.1} s");
        self.steps.push((step, seconds));
    }
}

/// Builds both ledgers in databases `names.0` (small) and `names.1` (large) on `server`.
pub async fn build(
    args: &BenchReadsArgs,
    server: &PgConnectOptions,
    names: (&str, &str),
    loading: &mut Loading,
) -> Result<(Built, Built), JobError> {
    loading.free_before = free_disk(server).await;
    let small = create_database(server, names.0, None).await?;
    let started = Instant::now();
    let app = fresh_app(&small).await?;
    demo::load(app.ledger(), &DemoPlan::national(args.small)).await?;
    close(app).await;
    loading.timed(
        format!("{} members through the command path", args.small),
        started,
    );
    check_room(args, &small, loading.free_before).await?;
    let started = Instant::now();
    let large = create_database(server, names.1, Some(names.0)).await?;
    loading.timed("copy of the small ledger's database".to_owned(), started);
    let copies = args.large / args.small.max(1) - 1;
    grow(&large, copies, loading).await?;
    let large = settle(names.1, large, loading).await?;
    let small = settle(names.0, small, loading).await?;
    loading.free_after = free_disk(server).await;
    Ok((small, large))
}

/// Copies the small ledger's member streams `copies` times under new ids, two copies at a
/// time and round by round (see `streams::copy_member_streams`), then vacuums and analyses
/// the events (a replay reads them in the primary key's order). Each copy is one statement of
/// many seconds: statement logging is off on this pool.
async fn grow(
    options: &PgConnectOptions,
    copies: usize,
    loading: &mut Loading,
) -> Result<(), JobError> {
    let pool = database::pool_options(2)
        .connect_with(options.clone().disable_statement_logging())
        .await?;
    let (base_events, base_last) = streams::member_events_extent(&pool).await?;
    let started = Instant::now();
    let progress = Progress::new("copying member streams", copies as u64);
    stream::iter(1..=i64::try_from(copies).unwrap_or(0))
        .map(|copy| {
            let (pool, progress) = (&pool, &progress);
            async move {
                streams::copy_member_streams(pool, copy, base_last, true).await?;
                progress.advance(1);
                Ok::<(), sqlx::Error>(())
            }
        })
        .buffer_unordered(2)
        .try_collect::<Vec<()>>()
        .await?;
    progress.finish();
    loading.timed(
        format!(
            "{copies} copies of {base_events} member events by SQL ({:.0} events/s)",
            (copies as f64 * base_events as f64) / started.elapsed().as_secs_f64()
        ),
        started,
    );
    let started = Instant::now();
    streams::analyze_events(&pool).await?;
    loading.timed("VACUUM ANALYZE events".to_owned(), started);
    pool.close().await;
    Ok(())
}

/// Builds a ledger's views by a replay, then vacuums and analyses its database.
async fn settle(
    name: &str,
    options: PgConnectOptions,
    loading: &mut Loading,
) -> Result<Built, JobError> {
    let app = fresh_app(&options).await?;
    let ledger = app.ledger();
    let started = Instant::now();
    let replaying = replay::start(ledger, false, "bench-reads").await?;
    let summary = replay::run_with_progress(ledger.clone(), replaying).await?;
    loading.timed(
        format!(
            "replay of {} events of {} members ({name})",
            summary.events, summary.members
        ),
        started,
    );
    close(app).await;
    let started = Instant::now();
    vacuum_database(&options).await?;
    loading.timed(format!("VACUUM ANALYZE and CHECKPOINT ({name})"), started);
    Ok(Built {
        bytes: database_size(&options).await?,
        options,
        members: summary.members,
        events: summary.events,
    })
}

/// Refuses to grow the large ledger when the server's disk would not hold it: its estimated
/// size is the small ledger's (events only so far) times the ratio of members, plus half for
/// the views, the write-ahead log and a margin.
async fn check_room(
    args: &BenchReadsArgs,
    small: &PgConnectOptions,
    free: Option<u64>,
) -> Result<(), JobError> {
    let Some(free) = free else {
        eprintln!("(the server's free disk space cannot be seen from here: not checked)");
        return Ok(());
    };
    let small_bytes = database_size(small).await? as f64;
    let needed = small_bytes * (args.large as f64 / args.small.max(1) as f64) * 1.5;
    let gib = |bytes: f64| bytes / f64::from(1 << 30);
    eprintln!(
        "the large ledger needs about {:.1} GiB; {:.1} GiB free on the server's disk",
        gib(needed),
        gib(free as f64)
    );
    if needed > free as f64 * 0.9 {
        let fits = (free as f64 * 0.9 / small_bytes / 1.5) as usize * args.small;
        return Err(format!(
            "not enough disk for {} members: about {:.1} GiB needed, {:.1} GiB free; \
             --large {} would fit",
            args.large,
            gib(needed),
            gib(free as f64),
            fits / args.small.max(1) * args.small.max(1)
        )
        .into());
    }
    Ok(())
}

/// Closes an application's pool, so that its database can be copied or dropped.
async fn close(app: App) {
    app.ledger().pool().close().await;
}
