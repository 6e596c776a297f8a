//! Read models of studyledger: folding a member's facts into the figures people ask for.
//!
//! [`fold`] is pure — facts and rulesets in, view rows out — so the same fold serves a request,
//! the projector and a replay.

pub mod fold;
pub mod store;
