//! Organisations that close and merge, through the HTTP API: a closing is refused while anyone
//! belongs to the organisation from its closing day on or a child of it is open; a closed
//! organisation takes no new members, transfers, rejoinings, children or imported enrolments;
//! a merge transfers everyone from its day and closes the organisation, once, however often it
//! is sent; the roll-ups of both branches before and after it; and a closing racing a transfer
//! into the organisation never lets both through.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, wait_until_projected, TestApp};
use crate::import::import;
use crate::tenure::{comply, ok};

pub async fn refused(app: &TestApp, path: &str, body: Value, expected: u16) -> Value {
    let before = app.total_events().await;
    let (status, answer) = app.post(path, &body).await;
    assert_eq!(status, expected, "{path} {body}: {answer}");
    assert_eq!(app.total_events().await, before, "{path}: nothing recorded");
    answer
}

pub async fn enrol(app: &TestApp, org: &str, number: &str) -> Uuid {
    let member = Uuid::new_v4();
    ok(
        app,
        "/v1/members",
        json!({"member_id": member, "member_no": number, "name": "林晓", "org_id": org,
               "enrolled_on": "2018-01-01"}),
    )
    .await;
    member
}

/// [members, compliant, non_compliant, compliance_rate] of a roll-up.
pub async fn rollup(app: &TestApp, org: &str, quarter: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/orgs/{org}/compliance?quarter={quarter}"))
        .await;
    assert_eq!(status, 200, "{body}");
    json!([
        body["members"],
        body["compliant"],
        body["non_compliant"],
        body["compliance_rate"]
    ])
}

fn close(day: &str) -> Value {
    json!({"closure_id": Uuid::new_v4(), "closed_on": day, "reason": "机构撤销"})
}

#[tokio::test]
async fn a_closing_waits_for_its_members_to_go_and_a_closed_organisation_takes_no_one() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    ok(&app, "/v1/orgs", json!({"org_id": "xm", "name": "厦门"})).await;
    ok(
        &app,
        "/v1/orgs",
        json!({"org_id": "fz-a", "name": "福州一支部", "parent_id": "fz"}),
    )
    .await;

    // A member belongs, and a child is open: both are named.
    let answer = refused(&app, "/v1/orgs/fz/closures", close("2018-07-01"), 409).await;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("fz-a")),
        "{answer}"
    );
    // An empty organisation closes at once.
    ok(&app, "/v1/orgs/fz-a/closures", close("2018-07-01")).await;
    ok(
        &app,
        &format!("/v1/members/{member}/transfers"),
        json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm", "effective_on": "2018-07-01"}),
    )
    .await;
    // The member still belongs on the 30th of June.
    let answer = refused(&app, "/v1/orgs/fz/closures", close("2018-06-30"), 409).await;
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&member.to_string())),
        "{answer}"
    );

    let closing = close("2018-07-01");
    let closed = ok(&app, "/v1/orgs/fz/closures", closing.clone()).await;
    assert_eq!(closed["closed_on"], "2018-07-01");
    let events = app.total_events().await;
    assert_eq!(
        ok(&app, "/v1/orgs/fz/closures", closing.clone()).await,
        closed
    );
    assert_eq!(app.total_events().await, events, "a resend records nothing");
    refused(&app, "/v1/orgs/fz/closures", close("2018-07-01"), 409).await;

    // Nobody comes in any more, by any door.
    refused(
        &app,
        "/v1/members",
        json!({"member_id": Uuid::new_v4(), "member_no": "N-1", "name": "新人", "org_id": "fz",
               "enrolled_on": "2018-01-01"}),
        409,
    )
    .await;
    refused(
        &app,
        &format!("/v1/members/{member}/transfers"),
        json!({"transfer_id": Uuid::new_v4(), "to_org_id": "fz", "effective_on": "2018-09-01"}),
        409,
    )
    .await;
    refused(
        &app,
        "/v1/orgs",
        json!({"org_id": "fz-b", "name": "福州二支部", "parent_id": "fz"}),
        409,
    )
    .await;
    let leaver = enrol(&app, "xm", "L-1").await;
    ok(
        &app,
        &format!("/v1/members/{leaver}/departures"),
        json!({"departure_id": Uuid::new_v4(), "left_on": "2018-03-01", "reason": "调离"}),
    )
    .await;
    refused(
        &app,
        &format!("/v1/members/{leaver}/rejoinings"),
        json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": "2018-04-01", "org_id": "fz"}),
        409,
    )
    .await;
    let csv = format!(
        "kind,member_id,member_no,name,org_id,enrolled_on\n\
         enrolment,{},I-1,甲,fz,2018-01-01\n\
         enrolment,{},I-2,乙,xm,2018-01-01\n",
        Uuid::new_v4(),
        Uuid::new_v4()
    );
    let record = import(&app, "text/csv", csv).await;
    assert_eq!(
        (&record["rows_recorded"], &record["rows_refused"]),
        (&json!(1), &json!(1)),
        "{record}"
    );

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        let (status, node) = app.get("/v1/orgs/fz").await;
        assert_eq!(status, 200, "{node}");
        assert_eq!(node["closed_on"], "2018-07-01", "{when}: {node}");
        assert_eq!(node["merged_into"], Value::Null, "{when}");
        assert_eq!(
            rollup(&app, "fz", "2018-Q2").await,
            json!([1, 0, 1, 0.0]),
            "{when}"
        );
        assert_eq!(
            rollup(&app, "fz", "2018-Q3").await,
            json!([0, 0, 0, null]),
            "{when}"
        );
        assert_views_match_the_log(&app.pool).await;
    }
}

#[tokio::test]
async fn a_merge_transfers_everyone_once_and_moves_the_rollups_from_its_day() {
    let app = TestApp::spawn().await;
    let first = app.seed_member("2018-01-01").await;
    ok(&app, "/v1/orgs", json!({"org_id": "xm", "name": "厦门"})).await;
    let second = enrol(&app, "fz", "F-2").await;
    let there = enrol(&app, "xm", "X-1").await;
    // Arrives in fz after the merge day: goes to xm the day they arrive.
    let late = enrol(&app, "xm", "X-2").await;
    ok(
        &app,
        &format!("/v1/members/{late}/transfers"),
        json!({"transfer_id": Uuid::new_v4(), "to_org_id": "fz", "effective_on": "2018-05-10"}),
    )
    .await;
    for member in [first, there, late] {
        comply(&app, member, "2018-02-01").await;
        comply(&app, member, "2018-05-20").await;
    }
    wait_until_projected(&app.pool).await;
    let before = [
        rollup(&app, "fz", "2018-Q1").await,
        rollup(&app, "fz", "2018-Q2").await,
        rollup(&app, "xm", "2018-Q1").await,
        rollup(&app, "xm", "2018-Q2").await,
    ];
    assert_eq!(
        json!(before),
        json!([
            [2, 1, 1, 0.5],
            [3, 2, 1, 0.6667],
            [2, 2, 0, 1.0],
            [1, 1, 0, 1.0]
        ])
    );

    // Refused before anything moves.
    let merge = |into: &str| {
        json!({"merge_id": Uuid::new_v4(), "into_org_id": into, "merged_on": "2018-04-01",
               "reason": "机构合并"})
    };
    refused(&app, "/v1/orgs/fz/merges", merge("nowhere"), 422).await;
    refused(&app, "/v1/orgs/fz/merges", merge("fz"), 422).await;
    ok(
        &app,
        "/v1/orgs",
        json!({"org_id": "fz-a", "name": "支部", "parent_id": "fz"}),
    )
    .await;
    refused(&app, "/v1/orgs/fz/merges", merge("fz-a"), 422).await;
    refused(&app, "/v1/orgs/fz/merges", merge("xm"), 409).await;
    ok(&app, "/v1/orgs/fz-a/closures", close("2018-01-01")).await;

    let merging = merge("xm");
    let merged = ok(&app, "/v1/orgs/fz/merges", merging.clone()).await;
    assert_eq!(merged["transferred"], 3, "{merged}");
    assert_eq!(merged["merged_into"], "xm");
    let events = app.total_events().await;
    let again = ok(&app, "/v1/orgs/fz/merges", merging.clone()).await;
    assert_eq!(
        (again["sequence"].clone(), again["transferred"].clone()),
        (merged["sequence"].clone(), json!(0))
    );
    assert_eq!(app.total_events().await, events, "a resend records nothing");
    refused(&app, "/v1/orgs/fz/merges", merge("xm"), 409).await;

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        // The first quarter ended before the merge and counts as it did; from the second on,
        // everyone counts in xm.
        assert_eq!(
            json!([
                rollup(&app, "fz", "2018-Q1").await,
                rollup(&app, "fz", "2018-Q2").await,
                rollup(&app, "xm", "2018-Q1").await,
                rollup(&app, "xm", "2018-Q2").await,
            ]),
            json!([before[0], [0, 0, 0, null], before[2], [4, 3, 1, 0.75]]),
            "{when}"
        );
        let (_, node) = app.get("/v1/orgs/fz").await;
        assert_eq!(
            (&node["closed_on"], &node["merged_into"]),
            (&json!("2018-04-01"), &json!("xm"))
        );
        assert_views_match_the_log(&app.pool).await;
    }
    let (_, profile) = app.get(&format!("/v1/members/{second}")).await;
    assert_eq!(profile["org_id"], "xm", "{profile}");
}

#[tokio::test]
async fn a_closing_and_a_transfer_into_the_organisation_never_both_pass() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let mut both = Vec::new();
    for round in 0..12 {
        let org = format!("race-{round}");
        ok(&app, "/v1/orgs", json!({"org_id": org, "name": "临时"})).await;
        let (closures, closing) = (format!("/v1/orgs/{org}/closures"), close("2018-01-01"));
        let transfers = format!("/v1/members/{member}/transfers");
        let moving = json!({"transfer_id": Uuid::new_v4(), "to_org_id": org,
                            "effective_on": format!("2018-{:02}-01", round % 12 + 1)});
        let closing = app.post(&closures, &closing);
        let transfer = app.post(&transfers, &moving);
        let ((closed, c), (moved, t)) = tokio::join!(closing, transfer);
        assert!(
            [201, 409].contains(&closed) && [201, 409].contains(&moved),
            "{c} {t}"
        );
        assert_ne!((closed, moved), (409, 409), "one of them passes: {c} {t}");
        if closed == 201 && moved == 201 {
            both.push(org);
        }
    }
    assert_eq!(both, Vec::<String>::new(), "closed with a member arriving");
    wait_until_projected(&app.pool).await;
    assert_views_match_the_log(&app.pool).await;
}
