//! The event log on PostgreSQL, in a room of its own: every statement on the `events` and
//! `snapshots` tables (postgres-es's tables, which postgres-es itself can still read) and on
//! the projector's checkpoint lives under this folder.
//!
//! - [`database`]: pools and the migrations; [`hosts`]: libpq's multi-host URLs, followed
//!   through a failover;
//! - [`event_store`]: aggregates loaded and appended with as few round trips as possible;
//! - [`group_commit`] over [`connections`]: concurrent appends share one commit;
//! - [`commit_order`]: reading the log in commit order, checkpoints and horizons;
//! - [`streams`]: bulk reads across streams (replay, determinations, benchmarks);
//! - [`lock`]: the advisory locks that keep one projector and one replay per database;
//! - [`chain`]: each stream's hash chain, recomputed to verify it;
//! - [`record`] and [`error`]: what an appended event carries, and how the store fails;
//! - beside the log: [`tokens`] (who may call), [`access_log`] (who read whose record),
//!   [`verifications`] (chain checks asked for over HTTP), [`skipped`] (events the
//!   projector and replay could not apply), [`statements`] and [`documents`] (the xAPI statements and
//!   documents of `/xapi`), [`mappings`] (what each statement became on the ledger), [`imports`] (bulk imports' progress and refused rows), [`member_numbers`] (who holds
//!   each member number), [`organisations`] (the locks between an organisation's closing and
//!   the moves into it).

pub mod access_log;
pub mod attachments;
pub mod chain;
pub mod commit_order;
pub mod connections;
pub mod database;
pub mod documents;
pub mod error;
pub mod event_store;
pub mod group_commit;
pub mod hosts;
pub mod imports;
pub mod lock;
pub mod mappings;
pub mod member_numbers;
pub mod organisations;
pub mod record;
pub mod sessions;
pub mod skipped;
pub mod statements;
pub mod status;
pub mod streams;
pub mod tokens;
pub mod verifications;
pub mod what_ifs;
