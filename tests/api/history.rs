//! Transfers and the auditable trail: the ledger as of any moment, and the raw event stream.

use crate::helpers::TestApp;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_transfer_moves_the_member_from_its_day_on_and_is_recorded_once() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let (status, _) = app
        .post(
            "/v1/orgs",
            &json!({"org_id": "xm", "name": "厦门", "parent_id": "fz"}),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!("/v1/members/{member}/transfers");
    let transfer =
        json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm", "effective_on": "2018-07-01"});
    let (status, first) = app.post(&path, &transfer).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = app.post(&path, &transfer).await;
    assert_eq!((status, &again), (201, &first), "a resend answers the same");
    assert_eq!(app.event_count(&member.to_string()).await, 2);

    let (_, profile) = app.get(&format!("/v1/members/{member}")).await;
    assert_eq!(profile["org_id"], "xm", "today the member belongs to xm");
    assert_eq!(profile["enrolled_org_id"], "fz");
    assert_eq!(profile["transfers"][0]["effective_on"], "2018-07-01");

    let before = app.total_events().await;
    for (body, status) in [
        (
            json!({"transfer_id": transfer["transfer_id"], "to_org_id": "xm", "effective_on": "2018-08-01"}),
            409,
        ),
        (
            json!({"transfer_id": Uuid::new_v4(), "to_org_id": "nowhere", "effective_on": "2018-08-01"}),
            422,
        ),
        (
            json!({"transfer_id": Uuid::new_v4(), "to_org_id": "fz", "effective_on": "2017-12-31"}),
            422,
        ),
        (
            json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm", "effective_on": "2018-09-01"}),
            422,
        ),
        (
            json!({"transfer_id": "t-1", "to_org_id": "xm", "effective_on": "2018-09-01"}),
            400,
        ),
    ] {
        let (got, problem) = app.post(&path, &body).await;
        assert_eq!(got, status, "{body} -> {problem}");
    }
    let (got, _) = app
        .post(
            &format!("/v1/members/{}/transfers", Uuid::new_v4()),
            &json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm", "effective_on": "2018-09-01"}),
        )
        .await;
    assert_eq!(got, 404);
    assert_eq!(app.total_events().await, before);
}

#[tokio::test]
async fn the_ledger_says_what_counted_and_why_as_of_any_moment() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let completions = format!("/v1/members/{member}/course-completions");
    app.study(
        member,
        "ethics",
        "2018-05-01T01:00:00Z",
        "2018-05-01T01:40:00Z",
    )
    .await;
    // Credited (40 ≥ 30 minutes), then a duplicate of it, then one without study time.
    for (course, at) in [
        ("ethics", "2018-05-01T02:00:00Z"),
        ("ethics", "2018-05-09T02:00:00Z"),
        ("party-history", "2018-05-10T02:00:00Z"),
    ] {
        let (status, _) = app
            .post(
                &completions,
                &json!({"completion_id": Uuid::new_v4(), "course_id": course, "completed_at": at}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, now) = app.get(&format!("/v1/members/{member}/ledger")).await;
    assert_eq!(status, 200, "{now}");
    let entries = now["entries"].as_array().expect("entries");
    let verdicts: Vec<(bool, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["credited"].as_bool().expect("credited"),
                e["not_credited_reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (true, None),
            (false, Some("duplicate_completion")),
            (false, Some("insufficient_study_time"))
        ]
    );
    assert_eq!(entries[0]["kind"], "course_completion");
    assert_eq!(entries[0]["quarter"], "2018-Q2");
    assert_eq!(entries[0]["hours"].as_f64(), Some(1.5));
    assert_eq!(entries[0]["sequence"], 3);
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM events WHERE aggregate_id = $1 AND sequence = 3")
            .bind(member.to_string())
            .fetch_one(&app.pool)
            .await
            .expect("position");
    assert_eq!(entries[0]["position"], position);
    assert_eq!(now["quarters"][0]["quarter"], "2018-Q2");
    assert_eq!(now["quarters"][0]["elective_hours"].as_f64(), Some(1.5));
    assert_eq!(now["quarters"][0]["required_hours"].as_f64(), Some(0.0));

    // As of the moment the first completion was recorded, it was the only entry.
    let first_recorded = entries[0]["recorded_at"]
        .as_str()
        .expect("recorded_at")
        .to_owned();
    let (status, then) = app
        .get(&format!(
            "/v1/members/{member}/ledger?as_of={}",
            crate::helpers::urlencode(&first_recorded)
        ))
        .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(then["as_of"], first_recorded);

    // Later facts change what counts now, never what the ledger said then: a session reported
    // afterwards, ending before the third completion, makes it creditable from now on.
    app.study(
        member,
        "party-history",
        "2018-05-09T22:00:00Z",
        "2018-05-10T01:00:00Z",
    )
    .await;
    let (_, later) = app.get(&format!("/v1/members/{member}/ledger")).await;
    assert_eq!(later["entries"][2]["credited"], true);
    assert_eq!(later["quarters"][0]["required_hours"].as_f64(), Some(2.5));
    let (_, earlier) = app
        .get(&format!(
            "/v1/members/{member}/ledger?as_of={}",
            crate::helpers::urlencode(now["as_of"].as_str().expect("as_of"))
        ))
        .await;
    assert_eq!(
        earlier["entries"][2]["credited"], false,
        "as of before the late session"
    );

    // Before the member existed there is nothing to show.
    let (status, _) = app
        .get(&format!(
            "/v1/members/{member}/ledger?as_of=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(&format!("/v1/members/{member}/ledger?as_of=yesterday"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_event_stream_shows_every_event_with_its_position_and_metadata() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let session = app
        .study(
            member,
            "ethics",
            "2018-05-01T01:00:00Z",
            "2018-05-01T01:40:00Z",
        )
        .await;
    let (status, stream) = app.get(&format!("/v1/members/{member}/events")).await;
    assert_eq!(status, 200);
    let events = stream["events"].as_array().expect("events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["MemberEnrolled", "StudySessionRecorded"]);
    assert_eq!(events[1]["sequence"], 2);
    assert_eq!(events[1]["position"], session["position"]);
    assert_eq!(
        (&events[1]["actor"], &events[1]["role"]),
        (&json!("test admin"), &json!("admin")),
        "the recording token's name and role"
    );
    assert!(events[1]["token_id"]
        .as_str()
        .is_some_and(|t| t.len() == 36));
    assert_eq!(events[1]["payload"]["StudySessionRecorded"]["minutes"], 40);
    let position = |e: &serde_json::Value| e["position"].as_i64().expect("position");
    assert!(position(&events[0]) < position(&events[1]));
    let (status, _) = app
        .get(&format!("/v1/members/{}/events", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
}
