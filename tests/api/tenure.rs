//! Rule 12 through the HTTP API: a member who leaves stops counting in their branch's roll-up
//! from the quarter they leave in, their quarters read `left`, their study while away is
//! refused; a rejoining counts them again where they come back, exempt in that quarter; a
//! determination judges `left` like `exempt`. As projected and after a replay, and the views
//! equal a fold of the log.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, wait_until_projected, TestApp};

pub async fn ok(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, answer) = app.post(path, &body).await;
    assert_eq!(status, 201, "{path} {body}: {answer}");
    answer
}

/// Meets 8 + 3 in the quarter of `day` by adjustments.
pub async fn comply(app: &TestApp, member: Uuid, day: &str) {
    for (category, hours) in [("required", 8), ("elective", 3)] {
        ok(
            app,
            &format!("/v1/members/{member}/credit-adjustments"),
            json!({"adjustment_id": Uuid::new_v4(), "category": category, "hours": hours,
                   "effective_at": format!("{day}T04:00:00Z"), "reason": "补录"}),
        )
        .await;
    }
}

/// (members, compliant, non_compliant, exempt, compliance_rate) of a roll-up.
async fn rollup(app: &TestApp, org: &str, quarter: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/orgs/{org}/compliance?quarter={quarter}"))
        .await;
    assert_eq!(status, 200, "{body}");
    json!([
        body["members"],
        body["compliant"],
        body["non_compliant"],
        body["exempt"],
        body["compliance_rate"]
    ])
}

async fn status(app: &TestApp, member: Uuid, quarter: &str) -> Value {
    let (code, body) = app
        .get(&format!(
            "/v1/members/{member}/compliance?quarter={quarter}"
        ))
        .await;
    assert_eq!(code, 200, "{body}");
    body["status"].clone()
}

#[tokio::test]
async fn a_member_who_leaves_stops_counting_and_counts_again_where_they_rejoin() {
    let app = TestApp::spawn().await;
    let stays = app.seed_member("2018-01-01").await;
    ok(&app, "/v1/orgs", json!({"org_id": "xm", "name": "厦门"})).await;
    let leaves = Uuid::new_v4();
    ok(
        &app,
        "/v1/members",
        json!({"member_id": leaves, "member_no": "M-2", "name": "陈默", "org_id": "fz",
               "enrolled_on": "2018-01-01"}),
    )
    .await;
    comply(&app, stays, "2018-02-01").await;
    comply(&app, stays, "2018-05-01").await;
    comply(&app, leaves, "2018-02-01").await;
    app.study(
        stays,
        "ethics",
        "2018-05-20T01:00:00Z",
        "2018-05-20T02:00:00Z",
    )
    .await;
    wait_until_projected(&app.pool).await;
    assert_eq!(
        rollup(&app, "fz", "2018-Q2").await,
        json!([2, 1, 1, 0, 0.5]),
        "before the departure"
    );

    let departure = json!({"departure_id": Uuid::new_v4(), "left_on": "2018-05-15",
                           "reason": "调往外省"});
    let path = format!("/v1/members/{leaves}/departures");
    let departed = ok(&app, &path, departure.clone()).await;
    let resent = ok(&app, &path, departure.clone()).await;
    assert_eq!(
        resent["sequence"], departed["sequence"],
        "a resend records nothing"
    );

    // Refused, recording nothing.
    let events = app.total_events().await;
    let mut other = departure.clone();
    other["left_on"] = json!("2018-05-16");
    let refusals = [
        (path.clone(), other, 409),
        (
            path.clone(),
            json!({"departure_id": Uuid::new_v4(), "left_on": "2018-06-01", "reason": "又走"}),
            409,
        ),
        (
            format!("/v1/members/{stays}/departures"),
            json!({"departure_id": Uuid::new_v4(), "left_on": "2018-05-01", "reason": "学过之后"}),
            409,
        ),
        (
            format!("/v1/members/{stays}/departures"),
            json!({"departure_id": Uuid::new_v4(), "left_on": "2099-01-01", "reason": "将来"}),
            422,
        ),
        (
            format!("/v1/members/{stays}/departures"),
            json!({"departure_id": Uuid::new_v4(), "left_on": "2018-05-15"}),
            400,
        ),
        (
            format!("/v1/members/{leaves}/study-sessions"),
            json!({"session_id": Uuid::new_v4(), "course_id": "ethics",
                   "started_at": "2018-06-01T01:00:00Z", "ended_at": "2018-06-01T02:00:00Z"}),
            422,
        ),
        (
            format!("/v1/members/{leaves}/course-completions"),
            json!({"completion_id": Uuid::new_v4(), "course_id": "ethics",
                   "completed_at": "2018-05-15T01:00:00Z"}),
            422,
        ),
        (
            format!("/v1/members/{leaves}/transfers"),
            json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm", "effective_on": "2018-07-01"}),
            422,
        ),
        (
            format!("/v1/members/{stays}/rejoinings"),
            json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": "2018-08-10", "org_id": "fz"}),
            409,
        ),
        (
            format!("/v1/members/{leaves}/rejoinings"),
            json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": "2018-05-15", "org_id": "xm"}),
            422,
        ),
        (
            format!("/v1/members/{leaves}/rejoinings"),
            json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": "2018-08-10",
                   "org_id": "nowhere"}),
            422,
        ),
    ];
    for (path, body, expected) in refusals {
        let (status, answer) = app.post(&path, &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
    }
    assert_eq!(app.total_events().await, events, "nothing recorded");

    wait_until_projected(&app.pool).await;
    assert_eq!(
        rollup(&app, "fz", "2018-Q2").await,
        json!([1, 1, 0, 0, 1.0]),
        "after the departure: not counted in the quarter they left in"
    );
    assert_eq!(
        rollup(&app, "fz", "2018-Q1").await,
        json!([2, 2, 0, 0, 1.0])
    );
    for quarter in ["2018-Q2", "2018-Q3", "2019-Q1"] {
        assert_eq!(status(&app, leaves, quarter).await, "left", "{quarter}");
    }
    let (_, profile) = app.get(&format!("/v1/members/{leaves}")).await;
    assert_eq!(profile["away_since"], "2018-05-15", "{profile}");
    assert_eq!(profile["org_id"], "fz", "where they were last: {profile}");

    ok(
        &app,
        &format!("/v1/members/{leaves}/rejoinings"),
        json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": "2018-08-10", "org_id": "xm"}),
    )
    .await;
    app.define_evaluation("2018-h1", &["2018-Q1", "2018-Q2"])
        .await;
    let (code, decided) = app
        .post(
            "/v1/evaluations/2018-h1/determinations",
            &json!({"determination_id": Uuid::new_v4(), "member_ids": [leaves]}),
        )
        .await;
    assert_eq!(code, 200, "{decided}");
    assert_eq!(
        decided["eligible"], 1,
        "left is judged like exempt: {decided}"
    );

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        assert_eq!(
            rollup(&app, "fz", "2018-Q2").await,
            json!([1, 1, 0, 0, 1.0]),
            "{when}"
        );
        assert_eq!(
            rollup(&app, "fz", "2018-Q3").await,
            json!([1, 0, 1, 0, 0.0]),
            "{when}: counted where they rejoined only"
        );
        assert_eq!(
            rollup(&app, "xm", "2018-Q3").await,
            json!([1, 0, 0, 1, null]),
            "{when}: exempt in the quarter they rejoined in"
        );
        assert_eq!(
            rollup(&app, "xm", "2018-Q4").await,
            json!([1, 0, 1, 0, 0.0]),
            "{when}"
        );
        assert_eq!(status(&app, leaves, "2018-Q3").await, "exempt", "{when}");
        assert_eq!(
            status(&app, leaves, "2018-Q4").await,
            "non_compliant",
            "{when}"
        );
        let (_, listed) = app
            .get("/v1/orgs/xm/members?quarter=2018-Q3&status=exempt")
            .await;
        assert_eq!(
            listed["members"][0]["member_id"],
            json!(leaves),
            "{when}: {listed}"
        );
        let (_, listed) = app.get("/v1/orgs/fz/members?quarter=2018-Q2").await;
        let ids: Vec<&Value> = listed["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| &m["member_id"])
            .collect();
        assert_eq!(
            ids,
            [&json!(stays)],
            "{when}: the one who left is not listed"
        );
    }
    let (code, eligibility) = app
        .get(&format!("/v1/members/{leaves}/eligibility/2018-h1"))
        .await;
    assert_eq!(code, 200, "{eligibility}");
    let statuses: Vec<&Value> = eligibility["determination"]["quarters"]
        .as_array()
        .expect("quarters")
        .iter()
        .map(|q| &q["status"])
        .collect();
    assert_eq!(statuses, [&json!("compliant"), &json!("left")]);
    assert_views_match_the_log(&app.pool).await;
}
