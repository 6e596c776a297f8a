//! The statements on the read paths, planned by PostgreSQL over tables large enough that a
//! sequential scan is what the planner picks wherever one is possible: each must use an index
//! (or read a bounded number of rows), under the generic plan a pooled connection may come to
//! use as well as the custom one.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use studyledger::store::commit_order;
use studyledger_projections::sql::{counters, members};

use crate::helpers::{holding_the_horizon, TestApp};

/// Tables that grow with the ledger: a read path never scans them.
const GROWING: [&str; 7] = [
    "events",
    "member_status_view",
    "member_view",
    "member_org_view",
    "member_quarter_view",
    "member_placement_view",
    "org_quarter_view",
];

/// The plan of `statement` with these parameters (`types` as PREPARE names them), generic
/// or custom; run and measured (`EXPLAIN ANALYZE`) when `analyze`.
async fn plan(
    connection: &mut PgConnection,
    statement: &str,
    types: &str,
    args: &str,
    generic: bool,
    analyze: bool,
) -> Value {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    let declared = if types.is_empty() {
        String::new()
    } else {
        format!("({types})")
    };
    let given = if args.is_empty() {
        String::new()
    } else {
        format!("({args})")
    };
    for setup in [
        format!("SET plan_cache_mode = {mode}"),
        format!("PREPARE read_path {declared} AS {statement}"),
    ] {
        sqlx::query(&setup)
            .execute(&mut *connection)
            .await
            .expect(&setup);
    }
    let options = if analyze {
        "ANALYZE, FORMAT JSON"
    } else {
        "FORMAT JSON"
    };
    let explained: Value =
        sqlx::query_scalar(&format!("EXPLAIN ({options}) EXECUTE read_path {given}"))
            .fetch_one(&mut *connection)
            .await
            .expect("explain");
    sqlx::query("DEALLOCATE read_path")
        .execute(&mut *connection)
        .await
        .expect("deallocate");
    explained
}

/// Every (node type, relation) of a plan.
fn nodes(plan: &Value, found: &mut Vec<(String, String)>) {
    if let Some(kind) = plan.get("Node Type").and_then(Value::as_str) {
        let relation = plan
            .get("Relation Name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        found.push((kind.to_owned(), relation.to_owned()));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nodes(child, found);
    }
}

/// A member id in the middle of the seeded ones (md5 ids are spread evenly).
const MIDDLE: &str = "80000000-0000-0000-0000-000000000000";

/// The rows the statement's scans of growing tables read when run (those they return and
/// those their filters drop, over every loop).
async fn rows_read(
    connection: &mut PgConnection,
    statement: &str,
    types: &str,
    args: &str,
) -> (f64, Value) {
    let explained = plan(connection, statement, types, args, false, true).await;
    fn read(plan: &Value) -> f64 {
        let number = |key: &str| plan.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        let relation = plan.get("Relation Name").and_then(Value::as_str);
        let own = if relation.is_some_and(|r| GROWING.contains(&r)) {
            (number("Actual Rows") + number("Rows Removed by Filter")) * number("Actual Loops")
        } else {
            0.0
        };
        let children: f64 = plan
            .get("Plans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(read)
            .sum();
        own + children
    }
    (read(&explained[0]["Plan"]), explained)
}

async fn assert_no_scan_of_growing_tables(
    connection: &mut PgConnection,
    name: &str,
    statement: &str,
    types: &str,
    args: &str,
) {
    for generic in [false, true] {
        let explained = plan(connection, statement, types, args, generic, false).await;
        let mut found = Vec::new();
        nodes(&explained[0]["Plan"], &mut found);
        let scans: Vec<&(String, String)> = found
            .iter()
            .filter(|(kind, relation)| kind == "Seq Scan" && GROWING.contains(&relation.as_str()))
            .collect();
        assert!(
            scans.is_empty(),
            "{name} ({}) scans a growing table: {explained}",
            if generic {
                "generic plan"
            } else {
                "custom plan"
            }
        );
    }
}

#[tokio::test]
async fn the_statements_on_read_paths_never_scan_a_growing_table() {
    // Seeding is one long transaction, which would hold every other test's projector back.
    let _alone = holding_the_horizon().await;
    let app = TestApp::spawn().await;
    // 200,000 events of 20,000 streams of a kind the projector passes by.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT 'seeded', md5((g / 10)::text), g % 10 + 1, 'Seeded', '1',
                '{}', '{}'
           FROM generate_series(0, 199999) g",
    )
    .execute(&app.pool)
    .await
    .expect("seed events");
    // 100,000 members under a tree of 1,000 leaves, one row a quarter for each of four
    // quarters, counters for every organisation.
    for statement in [
        "INSERT INTO org_view (org_id, name, parent_id, path) VALUES ('root', 'root', NULL, '{root}')",
        "INSERT INTO org_view (org_id, name, parent_id, path)
         SELECT 'leaf-' || g, 'leaf', 'root', ARRAY['root', 'leaf-' || g]
           FROM generate_series(0, 999) g",
        "INSERT INTO member_view (member_id, member_no, name, enrolled_on, enrolled_org_id,
                                  last_sequence, rules_version)
         SELECT md5(g::text)::uuid, 'M' || g, 'name', '2018-01-01', 'leaf-' || (g % 1000), 10, 1
           FROM generate_series(0, 99999) g",
        "INSERT INTO member_org_view (member_id, effective_on, sequence, org_id)
         SELECT md5(g::text)::uuid, '2018-01-01'::date + (g % 300), 1, 'leaf-' || (g % 1000)
           FROM generate_series(0, 99999) g",
        "INSERT INTO member_quarter_view (member_id, quarter, required_hundredths,
                                          elective_hundredths, study_minutes, last_sequence)
         SELECT md5(g::text)::uuid, '2018-Q' || q, 800, 300, 60, 10
           FROM generate_series(0, 99999) g, generate_series(1, 4) q
          -- One member in ten without figures for 2018-Q2.
          WHERE q <> 2 OR g % 10 <> 0",
        "INSERT INTO member_status_view (ancestor, quarter, bucket, member_id,
                                         shortfall_hundredths)
         SELECT a, '2018-Q2', 'not_met', md5(g::text)::uuid, (g * 7) % 1100
           FROM generate_series(0, 99999) g, unnest(ARRAY['root', 'leaf-' || (g % 1000)]) a
          WHERE g % 10 = 1",
        "INSERT INTO member_placement_view (ancestor, member_id, effective_on, sequence, until,
                                            org_id)
         SELECT a, md5(g::text)::uuid, '2018-01-01', 1, NULL, 'leaf-' || (g % 1000)
           FROM generate_series(0, 99999) g, unnest(ARRAY['root', 'leaf-' || (g % 1000)]) a",
        "INSERT INTO org_quarter_view (org_id, quarter, rules_version, member_delta, counted)
         SELECT o.org_id, y || '-Q' || q, 1, 100, 100
           FROM org_view o, generate_series(2000, 2025) y, generate_series(1, 4) q",
        "ANALYZE",
    ] {
        sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect(statement);
    }
    let mut connection = PgConnection::connect_with(&app.database.options)
        .await
        .expect("connect");
    let (xid, position): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, position FROM events ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(&mut connection)
    .await
    .expect("last event");
    let horizon = (xid.parse::<u64>().expect("an xid") + 1).to_string();
    let cases = [
        ("freshness", commit_order::FRESHNESS, "", String::new()),
        (
            "probe after the checkpoint",
            commit_order::BEYOND_CHECKPOINT,
            "text, bigint, text",
            format!("'{xid}', {position}, '{horizon}'"),
        ),
        (
            "probe from the start",
            commit_order::BEYOND_CHECKPOINT,
            "text, bigint, text",
            format!("'0', 0, '{horizon}'"),
        ),
        (
            "the projector's lag, caught up",
            commit_order::LAG,
            "text, bigint, bigint",
            format!("'{xid}', {position}, {}", commit_order::LAG_COUNTED),
        ),
        (
            "the projector's lag, from the start",
            commit_order::LAG,
            "text, bigint, bigint",
            format!("'0', 0, {}", commit_order::LAG_COUNTED),
        ),
        (
            "transaction of a position",
            commit_order::TRANSACTION_OF_POSITION,
            "bigint",
            format!("{position}"),
        ),
        (
            "a member and their quarters",
            members::MEMBER,
            "uuid",
            format!("'{}'", uuid::Uuid::from_u128(7)),
        ),
        (
            "a page of the root's members",
            members::SUBTREE_MEMBERS,
            "text, date, text, uuid, bigint",
            "'root', '2018-06-30', '2018-Q2', NULL, 1000".to_owned(),
        ),
        (
            "a page of a leaf's members",
            members::SUBTREE_MEMBERS,
            "text, date, text, uuid, bigint",
            "'leaf-7', '2018-06-30', '2018-Q2', NULL, 1000".to_owned(),
        ),
        (
            "a page of the root's members from the middle",
            members::SUBTREE_MEMBERS,
            "text, date, text, uuid, bigint",
            format!("'root', '2018-06-30', '2018-Q2', '{MIDDLE}', 50"),
        ),
        (
            "the next places of a status in the root's list",
            members::WITH_PLACE,
            "text, text, text, uuid, bigint",
            format!("'root', '2018-Q2', 'not_met', '{MIDDLE}', 51"),
        ),
        (
            "the next places of a status in a leaf's list",
            members::WITH_PLACE,
            "text, text, text, uuid, bigint",
            "'leaf-7', '2018-Q2', 'not_met', NULL, 51".to_owned(),
        ),
        (
            "the root's next compliant members",
            members::WITHOUT_PLACE,
            "text, date, text, uuid, bigint, date",
            format!("'root', '2018-06-30', '2018-Q2', '{MIDDLE}', 51, '2018-04-01'"),
        ),
        (
            "the root's next members without figures",
            members::WITHOUT_FIGURES,
            "text, date, text, uuid, bigint, date, int[]",
            format!("'root', '2018-06-30', '2018-Q2', '{MIDDLE}', 51, '2018-04-01', '{{0,1}}'"),
        ),
        (
            "the next members behind in the root's list",
            members::BEHIND_PLACES,
            "text, text, bigint, uuid, bigint",
            format!("'root', '2018-Q2', 550, '{MIDDLE}', 51"),
        ),
        (
            "the first members behind in a leaf's list",
            members::BEHIND_PLACES,
            "text, text, bigint, uuid, bigint",
            "'leaf-7', '2018-Q2', NULL, NULL, 51".to_owned(),
        ),
        (
            "the root's next members without figures, going down",
            members::WITHOUT_FIGURES_DOWN,
            "text, date, text, uuid, bigint, date, int[]",
            format!("'root', '2018-06-30', '2018-Q2', '{MIDDLE}', 51, '2018-04-01', '{{0,1}}'"),
        ),
        (
            "a page's members by id",
            members::MEMBERS_BY_ID,
            "text, date, text, uuid[]",
            format!("'root', '2018-06-30', '2018-Q2', ARRAY['{MIDDLE}'::uuid]"),
        ),
        (
            "a subtree's sums",
            counters::QUARTER_SUMS,
            "text, text",
            "'root', '2018-Q2'".to_owned(),
        ),
        (
            "members moving later in the quarter",
            counters::MOVING,
            "date, date",
            "'2018-06-01', '2018-06-30'".to_owned(),
        ),
    ];
    for (name, statement, types, args) in &cases {
        assert_no_scan_of_growing_tables(&mut connection, name, statement, types, args).await;
    }
    // Pages read what they answer, not the subtree (of 100,000 members) up to them: a page of
    // 50 from the middle of the root's members, the next 51 places of a status (one member in
    // ten), the next 51 members without figures (one in ten: the placements between them are
    // read too, and each member's rows probed), and the next 51 compliant members (eight in
    // ten, each probed for figures and a place).
    for (name, statement, types, args) in &cases {
        let bound = match *name {
            "a page of the root's members from the middle" => 3.0 * 50.0,
            "the next places of a status in the root's list" => 51.0,
            "the root's next members without figures"
            | "the root's next members without figures, going down" => 4.0 * 10.0 * 51.0,
            "the next members behind in the root's list" => 51.0,
            "the root's next compliant members" => 4.0 * 51.0 / 0.8,
            _ => continue,
        };
        let (read, explained) = rows_read(&mut connection, statement, types, args).await;
        assert!(
            read <= bound,
            "{name} reads {read} rows, more than {bound}: {explained}"
        );
    }
    // The probe is honest: it sees the events beyond an old checkpoint, and none beyond the
    // last event.
    for ((from_xid, from_position), expected) in
        [(("0", 0), true), ((xid.as_str(), position), false)]
    {
        let behind: bool = sqlx::query_scalar(commit_order::BEYOND_CHECKPOINT)
            .bind(from_xid)
            .bind(from_position)
            .bind(&horizon)
            .fetch_one(&mut connection)
            .await
            .expect("probe");
        assert_eq!(behind, expected, "from ({from_xid}, {from_position})");
    }
}
