//! Prometheus metrics: requests and latency per route, and the projector's progress and lag.
//!
//! Counters live in one process-wide registry; the lag gauges are measured in the database
//! when `/metrics` is scraped, since any instance may be asked while another one projects.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::http::AppState;

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    batches: IntCounter,
    events_applied: IntCounter,
    errors: IntCounter,
    events_behind: IntGauge,
    seconds_behind: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new(
            "studyledger_http_requests_total",
            "HTTP requests by route and status",
        ),
        &["method", "route", "status"],
    )
    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "studyledger_http_request_duration_seconds",
            "HTTP request latency by route",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]),
        &["method", "route"],
    )
    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
    let counter = |name: &str, help: &str| {
        IntCounter::new(name, help)
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}"))
    };
    let batches = counter(
        "studyledger_projector_batches_total",
        "Batches the projector applied",
    );
    let events_applied = counter(
        "studyledger_projector_events_applied_total",
        "Events the projector applied",
    );
    let errors = counter(
        "studyledger_projector_errors_total",
        "Projector failures (it retries)",
    );
    let events_behind = IntGauge::new(
        "studyledger_projector_events_behind",
        "Committed events not yet in the views",
    )
    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
    let seconds_behind = Gauge::new(
        "studyledger_projector_seconds_behind",
        "Age of the oldest event not yet in the views (0 when caught up)",
    )
    .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
    for collector in [
        Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(latency.clone()),
        Box::new(batches.clone()),
        Box::new(events_applied.clone()),
        Box::new(errors.clone()),
        Box::new(events_behind.clone()),
        Box::new(seconds_behind.clone()),
    ] {
        registry
            .register(collector)
            .unwrap_or_else(|e| unreachable!("each metric is registered once: {e}"));
    }
    Metrics {
        registry,
        requests,
        latency,
        batches,
        events_applied,
        errors,
        events_behind,
        seconds_behind,
    }
});

pub fn projector_batch(events: usize) {
    if events > 0 {
        METRICS.batches.inc();
        METRICS.events_applied.inc_by(events as u64);
    }
}

pub fn projector_error() {
    METRICS.errors.inc();
}

/// Middleware: counts each request and times it under its route template.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    METRICS
        .latency
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    METRICS
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    response
}

/// `GET /metrics`: Prometheus text, with the projector's lag measured now.
pub async fn render(State(state): State<AppState>) -> Response {
    let lag: Result<(i64, f64), sqlx::Error> = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(e.recorded_at))::float8, 0)
           FROM events e, projector_checkpoints c
          WHERE c.projector = 'views'
            AND (e.transaction_id, e.position) > (c.transaction_id, c.position)",
    )
    .fetch_one(state.ledger().pool())
    .await;
    match lag {
        Ok((events, seconds)) => {
            METRICS.events_behind.set(events);
            METRICS.seconds_behind.set(seconds.max(0.0));
        }
        Err(error) => tracing::warn!(%error, "cannot measure projector lag"),
    }
    let mut text = Vec::new();
    if TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut text)
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
