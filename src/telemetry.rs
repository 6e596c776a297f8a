//! What the service tells its operators: structured logs through `tracing` (filtered by
//! `RUST_LOG`, default `info`), and the Prometheus metrics every part of the service counts
//! into — requests and latency per route, the projector's batches, errors and lag.
//!
//! One process-wide registry, so the projector (a job) and the HTTP layer count into the same
//! place without knowing each other; `/metrics` renders it.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests start several apps in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    batches: IntCounter,
    events_applied: IntCounter,
    errors: IntCounter,
    events_behind: IntGauge,
    seconds_behind: Gauge,
    skips: IntCounter,
    open_skips: IntGauge,
    overloaded: IntCounter,
    view_reads: IntCounterVec,
    stale_snapshots: IntCounter,
}

/// Upper bounds of the request latency histogram, in seconds: ten per decade (the R10 series,
/// each ≈ 1.26× the one before) from 100 µs to 10 s. Quantiles are estimated by interpolating
/// inside one bucket (Prometheus's `histogram_quantile`, `scripts/load`), so the buckets must be
/// narrow where requests fall — from a fraction of a millisecond for a cached read to the 2 s
/// a read may wait for the views — or every estimate is off by up to a bucket's width.
#[rustfmt::skip]
const LATENCY_BUCKETS: [f64; 51] = [
    0.0001, 0.000125, 0.00016, 0.0002, 0.00025, 0.000315, 0.0004, 0.0005, 0.00063, 0.0008,
    0.001, 0.00125, 0.0016, 0.002, 0.0025, 0.00315, 0.004, 0.005, 0.0063, 0.008,
    0.01, 0.0125, 0.016, 0.02, 0.025, 0.0315, 0.04, 0.05, 0.063, 0.08,
    0.1, 0.125, 0.16, 0.2, 0.25, 0.315, 0.4, 0.5, 0.63, 0.8,
    1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0,
    10.0,
];

/// A metric's definition is static: it cannot fail but by a typo caught by the first test.
fn defined<T>(metric: prometheus::Result<T>) -> T {
    metric.unwrap_or_else(|e| unreachable!("static metric definition: {e}"))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let counter = |name: &str, help: &str| defined(IntCounter::new(name, help));
    let metrics = Metrics {
        registry: Registry::new(),
        requests: defined(IntCounterVec::new(
            Opts::new(
                "studyledger_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )),
        latency: defined(HistogramVec::new(
            HistogramOpts::new(
                "studyledger_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )),
        batches: counter(
            "studyledger_projector_batches_total",
            "Batches the projector applied",
        ),
        events_applied: counter(
            "studyledger_projector_events_applied_total",
            "Events the projector applied",
        ),
        errors: counter(
            "studyledger_projector_errors_total",
            "Projector failures (it retries)",
        ),
        events_behind: defined(IntGauge::new(
            "studyledger_projector_events_behind",
            "Committed events not yet in the views (counted up to one projector batch, 10,000)",
        )),
        seconds_behind: defined(Gauge::new(
            "studyledger_projector_seconds_behind",
            "Age of the oldest event not yet in the views (0 when caught up)",
        )),
        skips: counter(
            "studyledger_projector_events_skipped_total",
            "Events this instance's projector or replay could not apply and passed over",
        ),
        overloaded: counter(
            "studyledger_http_overloaded_total",
            "Requests refused with 503 because too many were in flight",
        ),
        view_reads: defined(IntCounterVec::new(
            Opts::new(
                "studyledger_view_reads_total",
                "Reads of the views that waited for read-your-writes, by the server that answered \
                 (standby, or primary)",
            ),
            &["from"],
        )),
        open_skips: defined(IntGauge::new(
            "studyledger_skipped_events_open",
            "Skipped events not yet set aside (GET /v1/skipped-events lists them)",
        )),
        stale_snapshots: counter(
            "studyledger_snapshots_unreadable_total",
            "Cold loads that found a snapshot this build cannot read (an older layout) and \
             rebuilt the aggregate from its events",
        ),
    };
    for collector in [
        Box::new(metrics.requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(metrics.latency.clone()),
        Box::new(metrics.batches.clone()),
        Box::new(metrics.events_applied.clone()),
        Box::new(metrics.errors.clone()),
        Box::new(metrics.events_behind.clone()),
        Box::new(metrics.seconds_behind.clone()),
        Box::new(metrics.skips.clone()),
        Box::new(metrics.open_skips.clone()),
        Box::new(metrics.overloaded.clone()),
        Box::new(metrics.view_reads.clone()),
        Box::new(metrics.stale_snapshots.clone()),
    ] {
        defined(metrics.registry.register(collector));
    }
    metrics
});

/// The projector applied a batch of `events` (0: it found nothing to do).
pub fn projector_batch(events: usize) {
    if events > 0 {
        METRICS.batches.inc();
        METRICS.events_applied.inc_by(events as u64);
    }
}

pub fn projector_error() {
    METRICS.errors.inc();
}

/// How far the views trail the log, and how many skipped events wait to be set aside, as
/// measured now.
pub fn projector_lag(events: i64, seconds: f64, open_skips: i64) {
    METRICS.events_behind.set(events);
    METRICS.seconds_behind.set(seconds.max(0.0));
    METRICS.open_skips.set(open_skips);
}

/// The projector or replay passed over `events` it could not apply.
pub fn events_skipped(events: usize) {
    METRICS.skips.inc_by(events as u64);
}

/// A read of the views answered from `from` ("standby" or "primary").
pub fn view_read(from: &str) {
    METRICS.view_reads.with_label_values(&[from]).inc();
}

/// A cold load found a snapshot it cannot read and rebuilt from the events.
pub fn snapshot_unreadable() {
    METRICS.stale_snapshots.inc();
}

/// A request refused because too many were in flight.
pub fn overloaded() {
    METRICS.overloaded.inc();
}

/// One request answered: its route template, status and duration.
pub fn request(method: &str, route: &str, status: &str, seconds: f64) {
    METRICS
        .latency
        .with_label_values(&[method, route])
        .observe(seconds);
    METRICS
        .requests
        .with_label_values(&[method, route, status])
        .inc();
}

/// Every metric in Prometheus's text format.
pub fn render() -> prometheus::Result<Vec<u8>> {
    let mut text = Vec::new();
    TextEncoder::new().encode(&METRICS.registry.gather(), &mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::LATENCY_BUCKETS;

    #[test]
    fn latency_buckets_rise_by_at_most_a_third_from_100_microseconds_to_10_seconds() {
        assert_eq!(LATENCY_BUCKETS.first(), Some(&0.0001));
        assert_eq!(LATENCY_BUCKETS.last(), Some(&10.0));
        for pair in LATENCY_BUCKETS.windows(2) {
            let ratio = pair[1] / pair[0];
            assert!((1.2..=1.33).contains(&ratio), "{pair:?}: ratio {ratio}");
        }
    }
}
