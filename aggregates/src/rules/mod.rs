//! The domain rules of DESIGN §3 as pure functions, one file per rule family.
//!
//! The aggregates call them to decide, and the projections call the very same functions to
//! build views, so each rule exists exactly once.

pub mod credit;
pub mod eligibility;
pub mod rulesets;
pub mod sessions;
pub mod status;
