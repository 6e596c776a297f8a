//! The long work of the ledger, each job in a file of its own: the [`projector`] that keeps
//! the views, [`replay`] (rebuild and dry run), eligibility [`determinations`], the [`demo`]
//! data set, bulk [`import`] and the xAPI [`feed`], [`verify`]ing the hash chains, and the [`read_log`] of who read whose record;
//! [`progress`] shows how far they are.
//!
//! Jobs use the command path (`crate::ledger`), the event log (`crate::store`) and the views
//! (`studyledger_projections::sql`); they know nothing of HTTP.

pub mod demo;
pub mod determinations;
pub mod feed;
pub mod import;
pub mod progress;
pub mod projector;
pub mod read_log;
pub mod replay;
pub mod verify;
pub mod what_if;
