//! `studyledger bench-reads`: are reads as fast on a ledger of a million members as on one of
//! ten thousand?
//!
//! Two ledgers from the same generator with the same shape per member ([`ledgers`]: the small
//! one through the command path, the large one copied from it by SQL, both views built by a
//! replay), each served by its own `studyledger serve`; then, route by route and size by size
//! in turn ([`measure`]), 16 readers for a fixed time while study sessions are recorded in the
//! background, with the projector's lag sampled. The verdict compares each p99 at the large
//! size with the small one's: no more than 1.5 times it passes. The absolute figures stand
//! beside the ratios, against the aims of issue 15.

mod ledgers;
mod measure;

use sqlx::postgres::PgConnectOptions;

use crate::bench::{drop_database, percentile};
use crate::config::BenchReadsArgs;
use crate::JobError;

use ledgers::{Built, Loading};
use measure::{Figures, Plan, Route, Service, SessionSlots, Writes};

/// The most a p99 at the large size may be, as a multiple of the small size's.
const MAX_RATIO: f64 = 1.5;

pub async fn run(args: BenchReadsArgs) -> Result<(), JobError> {
    if args.small == 0 || args.large <= args.small || !args.large.is_multiple_of(args.small) {
        return Err("--large must be a multiple of --small, and larger".into());
    }
    let server: PgConnectOptions = args.database_url.parse()?;
    let pid = std::process::id();
    let small = format!("studyledger_bench_reads_{}_{pid}", args.small);
    let large = format!("studyledger_bench_reads_{}_{pid}", args.large);
    let outcome = load_and_measure(&args, &server, (&small, &large)).await;
    drop_database(&server, &small).await?;
    if args.keep_database {
        // The URL given, naming the kept database instead (sqlx's own rendering adds its
        // settings to the query).
        let mut url = reqwest::Url::parse(&args.database_url)?;
        url.set_path(&large);
        println!("the large ledger is kept: DATABASE_URL={url}");
    } else {
        drop_database(&server, &large).await?;
    }
    outcome
}

async fn load_and_measure(
    args: &BenchReadsArgs,
    server: &PgConnectOptions,
    names: (&str, &str),
) -> Result<(), JobError> {
    let mut loading = Loading::default();
    let (small, large) = ledgers::build(args, server, names, &mut loading).await?;
    report_loading(&loading, [&small, &large]);
    let sizes = measure_both(args, [&small, &large]).await?;
    report(args, [&small, &large], &sizes)
}

/// The machine's load average (`/proc/loadavg`: 1, 5 and 15 minutes), when it can be read.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// What one size gave: each route's figures, the lag samples, the background's writes.
#[derive(Default)]
struct Size {
    routes: Vec<(Route, Figures)>,
    lag: Vec<f64>,
    writes: Writes,
}

impl Size {
    fn p99_ms(&self, route: Route) -> f64 {
        self.routes
            .iter()
            .find(|(r, _)| *r == route)
            .map_or(0.0, |(_, f)| f.p99_ms())
    }
}

/// Serves both ledgers and measures every route on each in turn (small, then large, route by
/// route, so that a noisy minute on a shared machine falls on both sizes alike).
async fn measure_both(args: &BenchReadsArgs, ledgers: [&Built; 2]) -> Result<[Size; 2], JobError> {
    let plan = Plan {
        readers: args.readers.max(1),
        warm_up: args.warm_up.max(0.0),
        seconds: args.seconds.max(0.5),
        write_rate: args.write_rate,
        quarter: measure::last_ended_quarter(),
    };
    let per_measurement = f64::from(args.write_rate) * (plan.warm_up + plan.seconds + 1.0);
    let slots = SessionSlots::plan((per_measurement * 2.0 * 5.0 * 1.5) as u64)?;
    let services = [
        Service::start(ledgers[0], plan.readers).await?,
        Service::start(ledgers[1], plan.readers).await?,
    ];
    for (service, ledger) in services.iter().zip(ledgers) {
        eprintln!(
            "{} members: the status page of {} lists {} non-compliant members",
            thousands(ledger.members),
            plan.quarter,
            service.status_page_length(plan.quarter).await?
        );
    }
    let mut sizes = [Size::default(), Size::default()];
    let load_before = load_average();
    for route in Route::ALL {
        for ((service, size), ledger) in services.iter().zip(&mut sizes).zip(ledgers) {
            let (figures, writes) = measure::measure(service, route, &plan, &slots).await?;
            eprintln!(
                "{} at {} members: {} requests, p50 {:.1} ms, p99 {:.1} ms",
                route.label(),
                thousands(ledger.members),
                figures.latencies.len(),
                figures.p50_ms(),
                figures.p99_ms()
            );
            size.lag.extend_from_slice(&figures.lag);
            size.routes.push((route, figures));
            size.writes.latencies.extend(writes.latencies);
            size.writes.refused.extend(writes.refused);
        }
    }
    println!(
        "load average (1, 5, 15 min) before the reads: {load_before}; after: {}; {} cores",
        load_average(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    for service in services {
        service.stop().await?;
    }
    for size in &mut sizes {
        size.lag.sort_by(f64::total_cmp);
        size.writes.latencies.sort_by(f64::total_cmp);
    }
    Ok(sizes)
}

fn report_loading(loading: &Loading, ledgers: [&Built; 2]) {
    println!("loading:");
    for (step, seconds) in &loading.steps {
        println!("  {step:<72} {seconds:>8.1} s");
    }
    let total: f64 = loading.steps.iter().map(|(_, s)| s).sum();
    println!("  {:<72} {total:>8.1} s", "in all");
    for ledger in ledgers {
        println!(
            "  {} members, {} member events: database {:.2} GiB (pg_database_size)",
            thousands(ledger.members),
            thousands(ledger.events),
            ledger.bytes as f64 / f64::from(1 << 30)
        );
    }
    let gib = |b: Option<u64>| {
        b.map_or("?".to_owned(), |b| {
            format!("{:.1}", b as f64 / f64::from(1 << 30))
        })
    };
    println!(
        "  free disk on the server: {} GiB before, {} GiB after",
        gib(loading.free_before),
        gib(loading.free_after)
    );
}

/// Prints a table per size, then the ratios and the verdict; an error when any fails.
fn report(args: &BenchReadsArgs, ledgers: [&Built; 2], sizes: &[Size; 2]) -> Result<(), JobError> {
    for (ledger, size) in ledgers.iter().zip(sizes) {
        report_size(args, ledger, size);
    }
    let (small, large) = (thousands(ledgers[0].members), thousands(ledgers[1].members));
    println!();
    println!("p99 at {large} members against {small} (pass: at most {MAX_RATIO}×)");
    println!(
        "  {:<26} {:>12} {:>12} {:>7}  {:<7} aim (p99 at both sizes)",
        "read", small, large, "ratio", "verdict"
    );
    let mut failed = Vec::new();
    let lag = |size: &Size| percentile(&size.lag, 0.99) * 1000.0;
    let mut rows: Vec<(&str, f64, f64, Option<f64>)> = Route::ALL
        .iter()
        .map(|r| {
            (
                r.label(),
                sizes[0].p99_ms(*r),
                sizes[1].p99_ms(*r),
                r.aim_ms(),
            )
        })
        .collect();
    rows.push(("view lag", lag(&sizes[0]), lag(&sizes[1]), None));
    for (label, small_ms, large_ms, aim) in rows {
        let ratio = ratio(small_ms, large_ms);
        let verdict = if ratio <= MAX_RATIO { "PASS" } else { "FAIL" };
        if verdict == "FAIL" {
            failed.push(label);
        }
        let aim = aim.map_or(String::new(), |aim| {
            let met = small_ms < aim && large_ms < aim;
            format!("< {aim} ms: {}", if met { "met" } else { "missed" })
        });
        println!(
            "  {label:<26} {small_ms:>9.1} ms {large_ms:>9.1} ms {ratio:>7.2}  {verdict:<7} {aim}"
        );
    }
    if failed.is_empty() {
        println!("PASS");
        Ok(())
    } else {
        println!("FAIL: {}", failed.join(", "));
        Err(format!("reads that do not scale: {}", failed.join(", ")).into())
    }
}

fn report_size(args: &BenchReadsArgs, ledger: &Built, size: &Size) {
    println!();
    println!(
        "{} members ({} member events; {} readers, {} s a read after {} s of warm-up; {} study sessions/s in the background)",
        thousands(ledger.members),
        thousands(ledger.events),
        args.readers,
        args.seconds,
        args.warm_up,
        args.write_rate
    );
    println!(
        "  {:<26} {:>9} {:>9} {:>9} {:>9} {:>13} {:>12}",
        "read", "requests", "per s", "p50 ms", "p99 ms", "views behind", "lag p99 ms"
    );
    for (route, figures) in &size.routes {
        println!(
            "  {:<26} {:>9} {:>9.0} {:>9.1} {:>9.1} {:>13} {:>12.1}",
            route.label(),
            figures.latencies.len(),
            figures.rate(),
            figures.p50_ms(),
            figures.p99_ms(),
            figures.behind,
            figures.lag_p99_ms()
        );
    }
    println!(
        "  {:<26} {:>9} {:>9} {:>9.1} {:>9.1}   (samples of /metrics during all the reads)",
        "view lag",
        size.lag.len(),
        "",
        percentile(&size.lag, 0.5) * 1000.0,
        percentile(&size.lag, 0.99) * 1000.0
    );
    let writes = &size.writes;
    println!(
        "  background: {} study sessions recorded (p50 {:.1} ms, p99 {:.1} ms), {} refused{}",
        writes.latencies.len(),
        percentile(&writes.latencies, 0.5) * 1000.0,
        percentile(&writes.latencies, 0.99) * 1000.0,
        writes.refused.len(),
        writes
            .refused
            .first()
            .map_or(String::new(), |first| format!(" (the first: {first})"))
    );
}

/// How many times `small` the `large` figure is (both 0: 1; only the small one: infinite).
fn ratio(small: f64, large: f64) -> f64 {
    if small > 0.0 {
        large / small
    } else if large > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// 1234567 as "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
