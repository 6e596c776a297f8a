//! The domain rules of DESIGN §3 as pure functions, one file per rule family: `sessions`
//! (rule 1), `credit` (rules 2 to 4), `rulesets` (rule 5), `status` (rule 6), `membership`
//! (rule 7), `eligibility` (rules 8 and 10's comparison), `appeals` (rule 9),
//! `tenure` (rule 12).
//!
//! The aggregates call them to decide, and the projections call the very same functions to
//! build views, so each rule exists exactly once.

pub mod appeals;
pub mod credit;
pub mod eligibility;
pub mod membership;
pub mod rulesets;
pub mod sessions;
pub mod status;
pub mod tenure;
