//! Read models of studyledger: folding a member's facts into the figures people ask for.
//!
//! The folds are pure — facts and rulesets in, typed rows out — so the same fold serves a
//! request, the projector, a replay and an explanation:
//! - [`fold`]: per-quarter compliance rows of a member;
//! - [`rollup`]: an organisation's quarter, tallied from its members' rows;
//! - [`counters`]: each member's part in the roll-up sums the projector keeps per
//!   organisation, and a roll-up read back from those sums;
//! - [`ledger_lines`]: the ledger "as known then", line by line, and explanations.
//!
//! [`sql`] stores and reads those rows in the view tables; only SQL lives there.

pub mod counters;
pub mod fold;
pub mod ledger_lines;
pub mod rollup;
pub mod sql;
