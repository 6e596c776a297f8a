//! What-ifs: a proposed ruleset judged over every member without publishing it — the members
//! and quarters that would change, per organisation, equal what publishing it then shows; the
//! ledger serves the same before and after; it runs beside a replay; bad proposals record
//! nothing.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// A member of `fz` who studies and completes both courses in 2018-Q2: 2.5 required and 1.5
/// elective hours, short of ruleset 1's 8 + 3.
async fn studied_member(app: &TestApp) -> Uuid {
    let member = app.seed_member("2018-01-01").await;
    for (course, start, end) in [
        (
            "party-history",
            "2018-05-02T09:00:00Z",
            "2018-05-02T10:00:00Z",
        ),
        ("ethics", "2018-05-03T09:00:00Z", "2018-05-03T09:30:00Z"),
    ] {
        app.study(member, course, start, end).await;
        let (status, body) = app
            .post(
                &format!("/v1/members/{member}/course-completions"),
                &json!({"completion_id": Uuid::new_v4(), "course_id": course, "completed_at": end}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    member
}

fn proposal() -> Value {
    json!({"effective_from": "2018-Q2", "required_hours": 2, "elective_hours": 1,
           "excess_required_counts_as_elective": false, "enforce_min_study_time": true})
}

async fn finished(app: &TestApp, what_if: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = app.get(&format!("/v1/what-ifs/{what_if}")).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] != "running" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the what-if did not finish in 10 s");
}

#[tokio::test]
async fn a_what_if_finds_who_would_change_and_publishing_it_shows_the_same() {
    let app = TestApp::spawn().await;
    let changed = studied_member(&app).await;
    let idle = Uuid::new_v4();
    let (status, _) = app
        .post(
            "/v1/members",
            &json!({"member_id": idle, "member_no": "M-2", "name": "陈默", "org_id": "fz",
                    "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 201);
    wait_until_projected(&app.pool).await;
    let events_before = app.total_events().await;
    let (_, rulesets_before) = app.get("/v1/rulesets").await;
    let compliance = format!("/v1/members/{changed}/compliance?quarter=2018-Q2");
    let (_, before) = app.get(&compliance).await;
    assert_eq!(before["status"], "non_compliant");

    // Beside a replay that rebuilds the views.
    let replay = app.start_replay(false).await;
    let (status, started) = app.post("/v1/what-ifs", &proposal()).await;
    assert_eq!(status, 202, "{started}");
    let id = started["what_if_id"].as_str().expect("an id").to_owned();
    let result = finished(&app, &id).await;
    assert_eq!(app.replay_outcome(&replay).await["status"], "succeeded");

    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["members_examined"], 2);
    assert_eq!(result["members_changed"], 1);
    assert_eq!(
        result["orgs"],
        json!([{"org_id": "fz", "name": "福州", "members": 1}])
    );
    let changes = result["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{result}");
    assert_eq!(changes[0]["member_id"], changed.to_string());
    assert_eq!(changes[0]["quarter"], "2018-Q2");
    assert_eq!(
        (&changes[0]["status_now"], &changes[0]["status_proposed"]),
        (&json!("non_compliant"), &json!("compliant"))
    );
    let (status, headers, csv) = app
        .request_as(
            &app.admin_token,
            reqwest::Method::GET,
            &format!("/v1/what-ifs/{id}/changes.csv"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let text = csv.as_str().unwrap_or_default().to_owned();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(&changed.to_string()) && text.contains("compliant"));

    // Nothing the ledger serves moved.
    assert_eq!(app.total_events().await, events_before);
    assert_eq!(app.get("/v1/rulesets").await.1, rulesets_before);
    assert_eq!(app.get(&compliance).await.1["status"], "non_compliant");

    // Published, the same ruleset says what the what-if said.
    let mut published = proposal();
    published["version"] = json!(2);
    let (status, body) = app.post("/v1/rulesets", &published).await;
    assert_eq!(status, 201, "{body}");
    let replay = app.start_replay(false).await;
    assert_eq!(app.replay_outcome(&replay).await["status"], "succeeded");
    for (member, expected) in [(changed, "compliant"), (idle, "non_compliant")] {
        let (_, now) = app
            .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
            .await;
        assert_eq!(now["status"], expected, "{member}");
        assert_eq!(now["ruleset_version"], 2, "{member}");
    }
}

#[tokio::test]
async fn a_proposal_the_api_cannot_judge_is_refused_and_records_nothing() {
    let app = TestApp::spawn().await;
    for (field, value) in [
        ("required_hours", json!(1.234)),
        ("elective_hours", json!(-1)),
        ("effective_from", json!("2018-Q5")),
        // A quarter that has not begun: nothing to judge yet.
        ("effective_from", json!("2999-Q1")),
        ("surprise", json!(true)),
    ] {
        let mut body = proposal();
        body[field] = value;
        let (status, answer) = app.post("/v1/what-ifs", &body).await;
        assert!([400, 422].contains(&status), "{field}: {status} {answer}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM what_ifs")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    let (status, _) = app.get(&format!("/v1/what-ifs/{}", Uuid::new_v4())).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn one_what_if_runs_at_a_time_and_one_its_service_left_running_is_marked_failed() {
    use sqlx::{Connection, PgConnection};
    let app = TestApp::spawn().await;
    studied_member(&app).await;
    // A what-if whose service died while it ran: its row says running, nobody holds the lock.
    let orphan = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO what_ifs (what_if_id, proposed, status, requested_by, expires_at)
         VALUES ($1, '{}', 'running', 'gone', now() + interval '1 day')",
    )
    .bind(orphan)
    .execute(&app.pool)
    .await
    .expect("a what-if left running");
    // Another instance's what-if runs: it holds the lock.
    let mut other = PgConnection::connect_with(&app.database.options)
        .await
        .expect("connect");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(studyledger::store::lock::WHAT_IF)
        .execute(&mut other)
        .await
        .expect("lock");
    let (status, answer) = app.post("/v1/what-ifs", &proposal()).await;
    assert_eq!(status, 409, "{answer}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM what_ifs")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(rows, 1, "nothing recorded");
    other.close().await.expect("close");

    let (status, started) = app.post("/v1/what-ifs", &proposal()).await;
    assert_eq!(status, 202, "{started}");
    let done = finished(&app, started["what_if_id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, left) = app.get(&format!("/v1/what-ifs/{orphan}")).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["status"], "failed", "{left}");
    assert!(
        left["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{left}"
    );
}
