//! studyledger, the service: configuration, the event store and command path, HTTP, and the
//! command-line jobs. The domain lives in `studyledger-aggregates`, the folds in
//! `studyledger-projections`; this crate wires them to PostgreSQL and axum.

pub mod bench;
pub mod bench_projector;
pub mod bench_replay;
pub mod config;
pub mod connections;
pub mod db;
pub mod demo;
pub mod determinations;
pub mod group_commit;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod progress;
pub mod projector;
pub mod replay;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod verify;

/// The error type of the command-line jobs: a message for the operator.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;
