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
    (org_ancestry) => {
        "org_ancestry_view"
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

/// The ancestors of an organisation (an SQL expression naming it), itself included, with the
/// days each lies above it, `[since, until)` (null: always, until further notice), as a
/// subquery of rows `(ancestor, since, until)`. An organisation the tree does not hold is its
/// own only ancestor.
macro_rules! ancestry {
    ($org:literal) => {
        concat!(
            "(SELECT COALESCE(x.ancestor, ",
            $org,
            ") AS ancestor, x.since, x.until FROM (SELECT) AS one LEFT JOIN ",
            table!(org_ancestry),
            " x ON x.org_id = ",
            $org,
            ")"
        )
    };
}

/// The quarter (`2026-Q3`) of a date, as an SQL expression (null for null).
macro_rules! quarter_of {
    ($day:literal) => {
        concat!("to_char(", $day, ", 'YYYY-\"Q\"Q')")
    };
}

/// The ancestors of an organisation in a quarter (SQL expressions naming both), itself
/// included, as a subquery of rows `(ancestor)`: the tree of the quarter's first day (moves
/// take effect from one).
macro_rules! ancestors_in_quarter {
    ($org:literal, $quarter:literal) => {
        concat!(
            "(SELECT t.ancestor FROM ",
            ancestry!($org),
            " AS t WHERE (t.since IS NULL OR ",
            quarter_of!("t.since"),
            " <= ",
            $quarter,
            ") AND (t.until IS NULL OR ",
            quarter_of!("t.until"),
            " > ",
            $quarter,
            "))"
        )
    };
}

/// Adds the new row of `org_quarter_view AS c` to the one it meets, column by column.
macro_rules! add_to_counters {
    () => {
        " ON CONFLICT (org_id, quarter, rules_version) DO UPDATE
            SET member_delta = c.member_delta + EXCLUDED.member_delta,
                counted = c.counted + EXCLUDED.counted,
                compliant = c.compliant + EXCLUDED.compliant,
                not_met = c.not_met + EXCLUDED.not_met,
                exempt = c.exempt + EXCLUDED.exempt,
                hundredths = c.hundredths + EXCLUDED.hundredths"
    };
}

pub mod appeals;
pub mod counters;
pub mod members;
pub mod moves;
pub mod orgs;
pub mod rebuild;
pub mod replays;

/// The view tables the projector keeps and a replay rebuilds, parents first.
pub const VIEW_TABLES: [&str; 9] = [
    table!(org),
    table!(org_ancestry),
    table!(member),
    table!(member_org),
    table!(member_quarter),
    table!(member_appeal),
    table!(member_placement),
    table!(org_quarter),
    table!(member_status),
];
