//! A subtree moved under another parent from a quarter's first day, through the HTTP API: the
//! roll-ups and member lists of both branches before and after it (quarters before it keep
//! counting where members belonged then, rule 7), a fact recorded after the move and dated in
//! the moved quarter, the move's refusals (none records anything), scope following the tree of
//! today, and everything again after a replay.

use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, wait_until_projected, TestApp};
use crate::org_closures::{enrol, refused, rollup};
use crate::tenure::{comply, ok};

fn move_to(parent: &str, day: &str) -> Value {
    json!({"move_id": Uuid::new_v4(), "parent_id": parent, "moved_on": day, "reason": "改隶"})
}

/// The members of a subtree's list for a quarter, sorted.
async fn listed(app: &TestApp, org: &str, quarter: &str) -> Vec<String> {
    let (status, page) = app
        .get(&format!(
            "/v1/orgs/{org}/members?quarter={quarter}&limit=50"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut ids: Vec<String> = page["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["member_id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// The ids on an organisation's path from the root, as `GET /v1/orgs/{id}` shows it.
async fn path(app: &TestApp, org: &str) -> Vec<String> {
    let (status, node) = app.get(&format!("/v1/orgs/{org}")).await;
    assert_eq!(status, 200, "{node}");
    node["path"]
        .as_array()
        .expect("a path")
        .iter()
        .map(|o| o["org_id"].as_str().expect("an id").to_owned())
        .collect()
}

fn sorted(members: &[Uuid]) -> Vec<String> {
    let mut ids: Vec<String> = members.iter().map(Uuid::to_string).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_moved_subtree_counts_under_its_new_parent_from_the_move_and_where_it_was_before() {
    let app = TestApp::spawn().await;
    let first = app.seed_member("2018-01-01").await;
    ok(&app, "/v1/orgs", json!({"org_id": "xm", "name": "厦门"})).await;
    ok(
        &app,
        "/v1/orgs",
        json!({"org_id": "fz-a", "name": "福州一支部", "parent_id": "fz"}),
    )
    .await;
    let kept = enrol(&app, "fz-a", "A-1").await;
    let behind = enrol(&app, "fz-a", "A-2").await;
    let there = enrol(&app, "xm", "X-1").await;
    for member in [first, kept] {
        comply(&app, member, "2018-02-01").await;
        comply(&app, member, "2018-05-20").await;
    }
    wait_until_projected(&app.pool).await;
    let before = [
        rollup(&app, "fz", "2018-Q1").await,
        rollup(&app, "xm", "2018-Q1").await,
        rollup(&app, "fz-a", "2018-Q2").await,
    ];
    assert_eq!(
        json!(before),
        json!([[3, 2, 1, 0.6667], [1, 0, 1, 0.0], [2, 1, 1, 0.5]])
    );
    assert_eq!(
        json!([
            rollup(&app, "fz", "2018-Q2").await,
            rollup(&app, "xm", "2018-Q2").await
        ]),
        json!([[3, 2, 1, 0.6667], [1, 0, 1, 0.0]])
    );

    // fz-a, with the branch under it, goes to xm from the second quarter.
    ok(
        &app,
        "/v1/orgs",
        json!({"org_id": "fz-a-1", "name": "小组", "parent_id": "fz-a"}),
    )
    .await;
    let moving = move_to("xm", "2018-04-01");
    let moved = ok(&app, "/v1/orgs/fz-a/moves", moving.clone()).await;
    assert_eq!(
        (&moved["parent_id"], &moved["moved_on"]),
        (&json!("xm"), &json!("2018-04-01"))
    );
    let events = app.total_events().await;
    assert_eq!(ok(&app, "/v1/orgs/fz-a/moves", moving.clone()).await, moved);
    assert_eq!(app.total_events().await, events, "a resend records nothing");

    // Recorded after the move, dated inside the moved quarter: the member leaves the moved
    // branch for fz itself.
    ok(
        &app,
        &format!("/v1/members/{behind}/transfers"),
        json!({"transfer_id": Uuid::new_v4(), "to_org_id": "fz", "effective_on": "2018-05-01"}),
    )
    .await;

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        // The first quarter counts as it did; in the second, fz keeps the members of its own
        // (the one transferred in included) and xm has the moved branch's.
        assert_eq!(
            json!([
                rollup(&app, "fz", "2018-Q1").await,
                rollup(&app, "xm", "2018-Q1").await,
                rollup(&app, "fz", "2018-Q2").await,
                rollup(&app, "xm", "2018-Q2").await,
                rollup(&app, "fz-a", "2018-Q2").await,
            ]),
            json!([
                before[0],
                before[1],
                [2, 1, 1, 0.5],
                [2, 1, 1, 0.5],
                [1, 1, 0, 1.0]
            ]),
            "{when}"
        );
        assert_eq!(
            listed(&app, "fz", "2018-Q1").await,
            sorted(&[first, kept, behind])
        );
        assert_eq!(
            listed(&app, "fz", "2018-Q2").await,
            sorted(&[first, behind])
        );
        assert_eq!(listed(&app, "xm", "2018-Q2").await, sorted(&[kept, there]));
        assert_eq!(
            path(&app, "fz-a-1").await,
            ["xm", "fz-a", "fz-a-1"],
            "{when}"
        );
        assert_views_match_the_log(&app.pool).await;
    }

    // The node shows its moves (to the ledger's administrators; an organisation's own
    // administrator sees nothing above their subtree, so none).
    let (_, node) = app.get("/v1/orgs/fz-a").await;
    assert_eq!(node["moves"][0]["move_id"], moving["move_id"], "{node}");
    assert_eq!(node["moves"][0]["parent_id"], "xm", "{node}");
    // Scope follows the tree of today.
    let fz_admin = app.token(Role::OrgAdmin, Some("fz"), None).await;
    let xm_admin = app.token(Role::OrgAdmin, Some("xm"), None).await;
    let (status, _, _) = app.get_as(&fz_admin, "/v1/orgs/fz-a-1").await;
    assert_eq!(status, 403);
    let (status, _, body) = app.get_as(&xm_admin, "/v1/orgs/fz-a-1").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = app.get_as(&xm_admin, "/v1/orgs/fz-a").await;
    assert_eq!((status, &body["moves"]), (200, &json!([])), "{body}");
}

#[tokio::test]
async fn a_move_is_refused_into_its_own_subtree_ahead_of_time_or_behind_an_earlier_move() {
    let app = TestApp::spawn().await;
    app.seed_member("2018-01-01").await;
    for (org, parent) in [("xm", None), ("fz-a", Some("fz")), ("fz-a-1", Some("fz-a"))] {
        ok(
            &app,
            "/v1/orgs",
            json!({"org_id": org, "name": org, "parent_id": parent}),
        )
        .await;
    }
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("fz-a-1", "2018-04-01"),
        422,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("fz-a", "2018-04-01"),
        422,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("nowhere", "2018-04-01"),
        422,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("xm", "2018-04-15"),
        422,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("xm", "2990-01-01"),
        422,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("fz", "2018-04-01"),
        409,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/nowhere/moves",
        move_to("xm", "2018-04-01"),
        404,
    )
    .await;
    ok(&app, "/v1/orgs", json!({"org_id": "gone", "name": "撤销"})).await;
    ok(
        &app,
        "/v1/orgs/gone/closures",
        json!({"closure_id": Uuid::new_v4(), "closed_on": "2018-01-01", "reason": "撤销"}),
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("gone", "2018-04-01"),
        409,
    )
    .await;

    ok(&app, "/v1/orgs/fz-a/moves", move_to("xm", "2018-07-01")).await;
    // Behind it: the organisation itself, a branch inside it, or a move under it.
    refused(
        &app,
        "/v1/orgs/fz-a/moves",
        move_to("fz", "2018-04-01"),
        409,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz-a-1/moves",
        move_to("fz", "2018-04-01"),
        409,
    )
    .await;
    refused(
        &app,
        "/v1/orgs/fz/moves",
        move_to("fz-a-1", "2018-04-01"),
        409,
    )
    .await;
    // From the same quarter on, it may move again.
    ok(&app, "/v1/orgs/fz-a-1/moves", move_to("fz", "2018-07-01")).await;
    wait_until_projected(&app.pool).await;
    assert_eq!(path(&app, "fz-a-1").await, ["fz", "fz-a-1"]);
    assert_views_match_the_log(&app.pool).await;
}
