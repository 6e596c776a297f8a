//! The SQL of the view tables (migrations/0002_views.sql and after): bulk writes of folded
//! rows, the reads the service answers from, and the table work of a rebuild. No rule lives
//! here; every figure comes from the pure folds.
//!
//! Each view table's name is spelled once, in [`table!`]; statements are put together from it
//! at compile time with `concat!` (never with values: every value is a bound parameter).

/// The name of a view table.
macro_rules! table {
    (org) => {
        "org_view"
    };
    (member) => {
        "member_view"
    };
    (member_org) => {
        "member_org_view"
    };
    (member_quarter) => {
        "member_quarter_view"
    };
    (member_appeal) => {
        "member_appeal_view"
    };
    (member_placement) => {
        "member_placement_view"
    };
    (org_quarter) => {
        "org_quarter_view"
    };
    (member_status) => {
        "member_status_view"
    };
    (replays) => {
        "replays"
    };
    (replay_changes) => {
        "replay_changes"
    };
}

pub mod appeals;
pub mod counters;
pub mod members;
pub mod orgs;
pub mod rebuild;
pub mod replays;

/// The view tables the projector keeps and a replay rebuilds, parents first.
pub const VIEW_TABLES: [&str; 8] = [
    table!(org),
    table!(member),
    table!(member_org),
    table!(member_quarter),
    table!(member_appeal),
    table!(member_placement),
    table!(org_quarter),
    table!(member_status),
];
