//! Events that a later step cannot hold, written behind the service's back (as a version
//! before the value types' rules could have written them): the projector lists them and goes
//! on, every other member stays exact, the member with one reads as incomplete and gets no
//! determination until an administrator sets it aside, and replay does the same.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// Appends an event to a stream as a superuser would: the append-only triggers stay on and the
/// database computes its hash like any other's.
async fn insert_event(app: &TestApp, kind: &str, id: &str, event_type: &str, payload: Value) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT $1, $2, COALESCE(max(sequence), 0) + 1, $3, '1', $4::json, '{}'
           FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(kind)
    .bind(id)
    .bind(event_type)
    .bind(payload.to_string())
    .execute(&app.pool)
    .await
    .expect("insert an event");
}

async fn compliance(app: &TestApp, member: Uuid) -> Value {
    let (status, body) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("text").to_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[tokio::test]
async fn events_the_views_cannot_hold_are_listed_and_passed_over_and_the_rest_stays_exact() {
    let app = TestApp::spawn().await;
    let poisoned = app.seed_member("2018-01-01").await;
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": Uuid::new_v4(), "member_no": "M-2", "name": "陈静",
                    "org_id": "fz", "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let healthy = Uuid::parse_str(body["member_id"].as_str().expect("id")).expect("uuid");
    app.study(
        poisoned,
        "ethics",
        "2018-05-02T01:00:00Z",
        "2018-05-02T02:00:00Z",
    )
    .await;
    wait_until_projected(&app.pool).await;

    // 1. a NUL in an organisation's name (no current type reads it; PostgreSQL text could
    //    not hold it either); 2. the same in a member's adjustment reason; 3. a completion
    //    dated in the year 12000, which the member reads but no quarter row can hold.
    insert_event(&app, "organisation", "bad-org", "OrganisationRegistered",
        json!({"OrganisationRegistered": {"org_id": "bad-org", "name": "坏\u{0}组", "parent_id": null}}))
        .await;
    let member = poisoned.to_string();
    insert_event(
        &app,
        "member",
        &member,
        "CreditAdjusted",
        json!({"CreditAdjusted": {"adjustment_id": Uuid::new_v4(), "category": "required",
               "hours": 5.0, "effective_at": "2018-05-03T00:00:00Z", "reason": "\u{0}",
               "appeal_id": null}}),
    )
    .await;
    insert_event(
        &app,
        "member",
        &member,
        "CourseCompleted",
        json!({"CourseCompleted": {"completion_id": Uuid::new_v4(), "course_id": "ethics",
               "category": "elective", "credit_hours": 1.5, "min_study_minutes": 0,
               "completed_at": "+12000-05-03T00:00:00Z"}}),
    )
    .await;
    // The service goes on: new facts for both members are taken and projected.
    app.study(
        poisoned,
        "ethics",
        "2018-05-04T01:00:00Z",
        "2018-05-04T02:00:00Z",
    )
    .await;
    app.study(
        healthy,
        "ethics",
        "2018-05-04T01:00:00Z",
        "2018-05-04T01:30:00Z",
    )
    .await;
    wait_until_projected(&app.pool).await;
    assert_eq!(
        metric(&app, "studyledger_projector_events_behind").await,
        0.0
    );
    assert_eq!(metric(&app, "studyledger_skipped_events_open").await, 3.0);

    let (status, listing) = app.get("/v1/skipped-events").await;
    assert_eq!(status, 200, "{listing}");
    let listed: Vec<(String, i64, String)> = listing["skipped_events"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["aggregate_id"].as_str().expect("id").to_owned(),
                s["sequence"].as_i64().expect("sequence"),
                s["event_type"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("bad-org".to_owned(), 1, "OrganisationRegistered".to_owned()),
            (member.clone(), 3, "CreditAdjusted".to_owned()),
            (member.clone(), 4, "CourseCompleted".to_owned()),
        ]
    );
    let reason = |i: usize| {
        listing["skipped_events"][i]["reason"]
            .as_str()
            .unwrap_or_default()
    };
    assert!(reason(1).contains("U+0000"), "{}", reason(1));
    assert!(reason(2).contains("check constraint"), "{}", reason(2));

    // The poisoned member: both good sessions count, the passed-over facts do not, and the
    // record says it is incomplete; the other member is exact and complete.
    let read = compliance(&app, poisoned).await;
    assert_eq!(
        (
            &read["study_minutes"],
            &read["required_hours"],
            &read["incomplete"]
        ),
        (&json!(120), &json!(0.0), &json!(true)),
        "{read}"
    );
    let read = compliance(&app, healthy).await;
    assert_eq!(
        (&read["study_minutes"], &read["incomplete"]),
        (&json!(30), &json!(false))
    );
    let (_, events) = app.get(&format!("/v1/members/{poisoned}/events")).await;
    let readable: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["readable"])
        .collect();
    assert_eq!(
        readable,
        [
            &json!(true),
            &json!(true),
            &json!(false),
            &json!(true),
            &json!(true)
        ]
    );
    let (status, org) = app.get("/v1/orgs/bad-org/compliance?quarter=2018-Q2").await;
    assert_eq!(
        status, 404,
        "the unreadable organisation is not in the tree: {org}"
    );

    // No determination for the member until both are set aside.
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    let determine = |id: Uuid| json!({"determination_id": id, "member_ids": [poisoned]});
    let (status, refused) = app
        .post(
            "/v1/evaluations/2018-q2/determinations",
            &determine(Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["detail"]
        .as_str()
        .is_some_and(|d| d.contains("sequences 3, 4")));
    for sequence in [3, 4] {
        let path = format!("/v1/members/{poisoned}/skipped-events/{sequence}/set-aside");
        let (status, body) = app
            .post(&path, &json!({"note": "已核对原始记录，不计入"}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let path = format!("/v1/members/{poisoned}/skipped-events/2/set-aside");
    let (status, _) = app.post(&path, &json!({"note": "not skipped"})).await;
    assert_eq!(status, 404, "only a skipped event can be set aside");
    wait_until_projected(&app.pool).await;
    assert_eq!(compliance(&app, poisoned).await["incomplete"], json!(false));
    assert_eq!(metric(&app, "studyledger_skipped_events_open").await, 1.0);
    let (status, body) = app
        .post(
            "/v1/evaluations/2018-q2/determinations",
            &determine(Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A rebuild passes over the same events and serves the same answers.
    let before = compliance(&app, poisoned).await;
    let id = app.start_replay(false).await;
    let replayed = app.replay_outcome(&id).await;
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
    assert_eq!(compliance(&app, poisoned).await, before);
    assert_eq!(compliance(&app, healthy).await["study_minutes"], json!(30));

    // Nothing was changed behind the chains' back.
    let (status, started) = app.post("/v1/verifications", &json!({})).await;
    assert_eq!(status, 202, "{started}");
    let path = format!(
        "/v1/verifications/{}",
        started["verification_id"].as_str().expect("id")
    );
    let mut done = Value::Null;
    for _ in 0..100 {
        let (_, body) = app.get(&path).await;
        if body["status"] != "running" {
            done = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["broken_links"], json!([]));
}
