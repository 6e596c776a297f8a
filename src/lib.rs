//! studyledger, the service. The domain lives in `studyledger-aggregates`, the folds in
//! `studyledger-projections`; this crate wires them to PostgreSQL and axum, in layers whose
//! imports only point down (an architecture test keeps it so):
//!
//! `main` → [`bench`] → [`app`] → [`http`] → [`jobs`] → [`ledger`] (the command path) →
//! [`store`] (the event log); [`config`] and [`telemetry`] serve every layer.

pub mod app;
pub mod bench;
pub mod config;
pub mod http;
pub mod jobs;
pub mod ledger;
pub mod store;
pub mod telemetry;

/// The error type of the command-line jobs: a message for the operator.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;
