//! The write side over HTTP: recording facts, every class of rejection (with proof that nothing
//! was recorded), idempotent resends and concurrency.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

fn session(course: &str, start: &str, end: &str) -> Value {
    json!({"session_id": Uuid::new_v4(), "course_id": course, "started_at": start, "ended_at": end})
}

fn completion(course: &str, at: &str) -> Value {
    json!({"completion_id": Uuid::new_v4(), "course_id": course, "completed_at": at})
}

#[tokio::test]
async fn a_quarter_of_study_makes_a_member_compliant_end_to_end() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let sessions = format!("/v1/members/{member}/study-sessions");
    let completions = format!("/v1/members/{member}/course-completions");

    // 2.5 h required, completed three times over distinct courses would be needed for 8 h;
    // register two more required courses to reach 8 h: 2.5 + 2.5 + 3.0.
    for (id, hours) in [("rules", 2.5), ("theory", 3.0)] {
        let (status, _) = app
            .post("/v1/courses", &json!({"course_id": id, "title": id, "category": "required", "credit_hours": hours}))
            .await;
        assert_eq!(status, 201);
    }
    let (status, body) = app
        .post(
            &sessions,
            &session(
                "party-history",
                "2018-05-02T01:00:00Z",
                "2018-05-02T02:00:30Z",
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["minutes"], 60);
    assert!(body["position"].as_i64().is_some());
    let (status, _) = app
        .post(
            &sessions,
            &session("ethics", "2018-05-03T01:00:00Z", "2018-05-03T01:45:00Z"),
        )
        .await;
    assert_eq!(status, 201);
    for (course, at) in [
        ("party-history", "2018-05-02T03:00:00Z"),
        ("rules", "2018-05-10T03:00:00Z"),
        ("theory", "2018-05-11T03:00:00Z"),
        ("ethics", "2018-05-03T02:00:00Z"),
    ] {
        let (status, body) = app.post(&completions, &completion(course, at)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["quarter"], "2018-Q2");
    }
    // Elective is 1.5 h: register and complete a second elective for 3 h.
    let (status, _) = app
        .post("/v1/courses", &json!({"course_id": "law", "title": "law", "category": "elective", "credit_hours": 1.5}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(&completions, &completion("law", "2018-06-01T03:00:00Z"))
        .await;
    assert_eq!(status, 201);

    let (status, q2) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(status, 200, "{q2}");
    assert_eq!(q2["status"], "compliant");
    assert_eq!(q2["required_hours"].as_f64(), Some(8.0));
    assert_eq!(q2["elective_hours"].as_f64(), Some(3.0));
    assert_eq!(q2["required_target"].as_f64(), Some(8.0));
    assert_eq!(q2["elective_target"].as_f64(), Some(3.0));
    assert_eq!(q2["study_minutes"], 105);
    assert_eq!(q2["ruleset_version"], 1);
    assert_eq!(q2["stale"], false);

    let (_, q3) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q3"))
        .await;
    assert_eq!(q3["status"], "non_compliant");

    let (status, all) = app.get(&format!("/v1/members/{member}/compliance")).await;
    assert_eq!(status, 200);
    let quarters = all["quarters"].as_array().expect("quarters");
    assert_eq!(quarters[0]["quarter"], "2018-Q1");
    assert_eq!(
        quarters[0]["status"], "non_compliant",
        "enrolled on the first day"
    );
    assert_eq!(quarters[1]["status"], "compliant");
    let today_quarter = studyledger_aggregates::values::Quarter::of_instant(
        chrono::Utc::now(),
        chrono_tz::Asia::Shanghai,
    );
    let last = quarters.last().expect("a quarter");
    assert_eq!(last["quarter"], today_quarter.to_string());
    assert_eq!(last["status"], "in_progress");

    let (status, profile) = app.get(&format!("/v1/members/{member}")).await;
    assert_eq!(status, 200);
    assert_eq!(profile["name"], "林晓");
    assert_eq!(profile["org_id"], "fz");
    assert_eq!(profile["credited_hours"]["total"].as_f64(), Some(11.0));
}

#[tokio::test]
async fn a_completion_without_enough_study_time_is_recorded_but_not_credited() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let (status, _) = app
        .post(
            &format!("/v1/members/{member}/study-sessions"),
            &session(
                "party-history",
                "2018-05-02T01:00:00Z",
                "2018-05-02T01:59:59Z",
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &completion("party-history", "2018-05-02T02:00:00Z"),
        )
        .await;
    assert_eq!(status, 201, "recorded: a fact is a fact");
    let (_, q2) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(
        q2["required_hours"].as_f64(),
        Some(0.0),
        "59 minutes < 60: not credited"
    );
}

#[tokio::test]
async fn a_completion_at_20_utc_on_june_30_counts_in_the_third_quarter() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let (status, _) = app
        .post(
            &format!("/v1/members/{member}/study-sessions"),
            &session("ethics", "2018-06-30T18:00:00Z", "2018-06-30T19:00:00Z"),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &completion("ethics", "2018-06-30T20:00:00Z"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["quarter"], "2018-Q3");
    let (_, q2) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    let (_, q3) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q3"))
        .await;
    assert_eq!(q2["elective_hours"].as_f64(), Some(0.0));
    assert_eq!(q3["elective_hours"].as_f64(), Some(1.5));
    assert_eq!(
        q2["study_minutes"], 0,
        "18:00Z on June 30 is 02:00 on July 1 in Shanghai"
    );
    assert_eq!(q3["study_minutes"], 60);
}

#[tokio::test]
async fn a_member_who_joins_mid_quarter_is_exempt_for_it() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-04-02").await;
    let (_, q2) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(q2["status"], "exempt");
    let (_, q3) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q3"))
        .await;
    assert_eq!(q3["status"], "non_compliant");
}

/// Sends `body` to `path`, expects `status` as problem+json, and proves nothing was recorded.
async fn assert_refused(app: &TestApp, path: &str, body: &Value, status: u16) {
    let before = app.total_events().await;
    let (got, problem) = app.post(path, body).await;
    assert_eq!(got, status, "{path} {body} -> {problem}");
    assert_eq!(problem["status"], status);
    assert!(
        problem["title"].is_string()
            && problem["detail"].is_string()
            && problem["type"].is_string()
    );
    assert_eq!(
        app.total_events().await,
        before,
        "nothing recorded for {body}"
    );
}

#[tokio::test]
async fn every_rejection_answers_its_status_and_records_nothing() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-03-01").await;
    let sessions = format!("/v1/members/{member}/study-sessions");
    let completions = format!("/v1/members/{member}/course-completions");
    let stranger = Uuid::new_v4();
    app.study(
        member,
        "party-history",
        "2018-05-02T01:00:00Z",
        "2018-05-02T02:00:00Z",
    )
    .await;
    let soon = chrono::Utc::now() + chrono::Duration::minutes(10);
    let an_hour_before_soon = (soon - chrono::Duration::hours(1)).to_rfc3339();
    let soon = soon.to_rfc3339();
    let may_3 = ("2018-05-03T01:00:00Z", "2018-05-03T02:00:00Z");
    let enrol = |org: &str, date: &str| json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "N", "org_id": org, "enrolled_on": date});
    let course = |id: &str, category: &str, hours: f64| json!({"course_id": id, "title": "t", "category": category, "credit_hours": hours});
    let cases: Vec<(String, Value, u16)> = vec![
        // 400: malformed ids, dates, fields.
        (
            "/v1/members/not-a-uuid/study-sessions".into(),
            session("party-history", may_3.0, may_3.1),
            400,
        ),
        (
            sessions.clone(),
            json!({"session_id": "x", "course_id": "party-history", "started_at": may_3.0, "ended_at": may_3.1}),
            400,
        ),
        (
            sessions.clone(),
            session("Party History", may_3.0, may_3.1),
            400,
        ),
        (
            sessions.clone(),
            session("party-history", "yesterday", may_3.1),
            400,
        ),
        (sessions.clone(), json!({"session_id": Uuid::new_v4()}), 400),
        ("/v1/members".into(), enrol("fz", "2018-13-01"), 400),
        // 404: unknown member.
        (
            format!("/v1/members/{stranger}/study-sessions"),
            session("party-history", may_3.0, may_3.1),
            404,
        ),
        (
            format!("/v1/members/{stranger}/course-completions"),
            completion("party-history", may_3.0),
            404,
        ),
        (
            format!("/v1/members/{stranger}/study-sessions"),
            session("no-such-course", may_3.0, may_3.1),
            404,
        ),
        // 422: unknown course or organisation, broken rules.
        (
            sessions.clone(),
            session("no-such-course", may_3.0, may_3.1),
            422,
        ),
        (
            completions.clone(),
            completion("no-such-course", may_3.0),
            422,
        ),
        ("/v1/members".into(), enrol("nowhere", "2018-01-01"), 422),
        (
            sessions.clone(),
            session(
                "party-history",
                "2018-05-03T02:00:00Z",
                "2018-05-03T02:00:00Z",
            ),
            422,
        ),
        (
            sessions.clone(),
            session(
                "party-history",
                "2018-05-03T01:00:00Z",
                "2018-05-03T13:00:01Z",
            ),
            422,
        ),
        (
            sessions.clone(),
            session("party-history", &an_hour_before_soon, &soon),
            422,
        ),
        (
            sessions.clone(),
            session(
                "party-history",
                "2018-02-28T15:00:00Z",
                "2018-02-28T15:30:00Z",
            ),
            422,
        ),
        (completions.clone(), completion("party-history", &soon), 422),
        (
            completions.clone(),
            completion("party-history", "2018-02-28T15:59:00Z"),
            422,
        ),
        (
            "/v1/courses".into(),
            course("precise", "required", 1.005),
            422,
        ),
        ("/v1/courses".into(), course("odd", "mandatory", 1.0), 422),
        ("/v1/courses".into(), course("free", "required", 0.0), 422),
        // 409: an overlap, a course registered again with other terms.
        (
            sessions.clone(),
            session(
                "party-history",
                "2018-05-02T01:30:00Z",
                "2018-05-02T02:30:00Z",
            ),
            409,
        ),
        (
            "/v1/courses".into(),
            json!({"course_id": "ethics", "title": "ethics", "category": "required", "credit_hours": 1.5, "min_study_minutes": 30}),
            409,
        ),
    ];
    for (path, body, status) in &cases {
        assert_refused(&app, path, body, *status).await;
    }

    let before = app.total_events().await;
    for raw in ["{\"session_id\": ", "[1, 2]", ""] {
        let (status, _) = app.post_raw(&sessions, raw).await;
        assert_eq!(status, 400, "{raw:?}");
    }
    assert_eq!(app.total_events().await, before);
    for path in [
        format!("/v1/members/{stranger}"),
        format!("/v1/members/{stranger}/compliance"),
    ] {
        let (status, _) = app.get(&path).await;
        assert_eq!(status, 404, "{path}");
    }

    // 409: a session id reused with other times.
    let first = session("ethics", "2018-05-05T01:00:00Z", "2018-05-05T02:00:00Z");
    let (status, _) = app.post(&sessions, &first).await;
    assert_eq!(status, 201);
    let mut reused = first.clone();
    reused["ended_at"] = json!("2018-05-05T02:30:00Z");
    assert_refused(&app, &sessions, &reused, 409).await;

    // 413: a body over 64 KiB.
    let before = app.total_events().await;
    let huge = json!({"org_id": "big", "name": "x".repeat(70 * 1024)});
    let (status, _) = app.post("/v1/orgs", &huge).await;
    assert_eq!(status, 413);
    assert_eq!(app.total_events().await, before);
}

#[tokio::test]
async fn the_same_commands_sent_twice_record_each_fact_once() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let before = app.event_count(&member.to_string()).await;

    let s = session(
        "party-history",
        "2018-05-02T01:00:00Z",
        "2018-05-02T02:00:00Z",
    );
    let c = completion("party-history", "2018-05-02T03:00:00Z");
    let (first_status, first) = app
        .post(&format!("/v1/members/{member}/study-sessions"), &s)
        .await;
    let (again_status, again) = app
        .post(&format!("/v1/members/{member}/study-sessions"), &s)
        .await;
    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first, again, "a resend answers the same");
    let (first_status, first) = app
        .post(&format!("/v1/members/{member}/course-completions"), &c)
        .await;
    let (again_status, again) = app
        .post(&format!("/v1/members/{member}/course-completions"), &c)
        .await;
    assert_eq!((first_status, again_status), (201, 201));
    assert_eq!(first, again);
    assert_eq!(app.event_count(&member.to_string()).await, before + 2);

    let total = app.total_events().await;
    let (status, _) = app
        .post("/v1/orgs", &json!({"org_id": "fz", "name": "福州"}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post("/v1/courses", &json!({"course_id": "ethics", "title": "ethics", "category": "elective", "credit_hours": 1.5, "min_study_minutes": 30}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post("/v1/members", &json!({"member_id": member, "member_no": "M-1", "name": "林晓", "org_id": "fz", "enrolled_on": "2018-01-01"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(app.total_events().await, total);
}

/// Sends twenty back-to-back sessions for one member at once, spread over `apps`, and proves
/// each was answered 201 with its own sequence and recorded exactly once.
async fn twenty_sessions_at_once(apps: &[&TestApp], member: Uuid) {
    let path = format!("/v1/members/{member}/study-sessions");
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            let start = chrono::DateTime::parse_from_rfc3339("2018-05-02T00:00:00Z")
                .expect("instant")
                + chrono::Duration::minutes(30 * i);
            let end = start + chrono::Duration::minutes(30);
            session("party-history", &start.to_rfc3339(), &end.to_rfc3339())
        })
        .collect();
    let results = futures::future::join_all(
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| apps[i % apps.len()].post(&path, b)),
    )
    .await;
    for (status, body) in &results {
        assert_eq!(*status, 201, "{body}");
    }
    let mut sequences: Vec<i64> = results
        .iter()
        .map(|(_, b)| b["sequence"].as_i64().expect("sequence"))
        .collect();
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (2..22).collect::<Vec<i64>>(),
        "one event each, no gaps, no repeats"
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT payload->'StudySessionRecorded'->>'session_id') FROM events
          WHERE aggregate_id = $1 AND event_type = 'StudySessionRecorded'",
    )
    .bind(member.to_string())
    .fetch_one(&apps[0].pool)
    .await
    .expect("count");
    assert_eq!(recorded, 20);
    assert_eq!(apps[0].event_count(&member.to_string()).await, 21);
}

#[tokio::test]
async fn twenty_concurrent_sessions_for_one_member_are_all_recorded_exactly_once() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    twenty_sessions_at_once(&[&app], member).await;
}

#[tokio::test]
async fn twenty_sessions_sent_through_two_instances_at_once_are_each_recorded_once() {
    // Both instances hold the member in their caches and race for the same sequence numbers:
    // the losers must reload and decide again, never answer 500 and never lose a session.
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database.clone()).await;
    let member = first.seed_member("2018-01-01").await;
    twenty_sessions_at_once(&[&first, &second], member).await;
}

#[tokio::test]
async fn a_stale_cache_in_another_instance_still_cannot_record_an_overlap() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database.clone()).await;
    let member = first.seed_member("2018-01-01").await;

    // The first instance caches the member; the second records a session behind its back.
    first
        .study(
            member,
            "ethics",
            "2018-05-02T01:00:00Z",
            "2018-05-02T02:00:00Z",
        )
        .await;
    second
        .study(
            member,
            "ethics",
            "2018-05-02T02:00:00Z",
            "2018-05-02T03:00:00Z",
        )
        .await;
    // The first instance's cached state does not know that session: the append's sequence
    // check must send it back to the database, where the overlap shows.
    let (status, problem) = first
        .record_session(
            member,
            "ethics",
            "2018-05-02T02:30:00Z",
            "2018-05-02T03:30:00Z",
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    let body = first
        .study(
            member,
            "ethics",
            "2018-05-02T03:00:00Z",
            "2018-05-02T04:00:00Z",
        )
        .await;
    assert_eq!(body["sequence"], 4);
    assert_eq!(first.event_count(&member.to_string()).await, 4);
}

#[tokio::test]
async fn concurrent_sessions_of_many_members_are_each_recorded_once_at_their_answered_position() {
    let app = TestApp::spawn().await;
    let first = app.seed_member("2018-01-01").await;
    let mut members = vec![first];
    for n in 0..15 {
        let member = Uuid::new_v4();
        let (status, _) = app
            .post("/v1/members", &json!({"member_id": member, "member_no": format!("C-{n}"),
                                         "name": "王芳", "org_id": "fz", "enrolled_on": "2018-01-01"}))
            .await;
        assert_eq!(status, 201);
        members.push(member);
    }
    let requests: Vec<(String, Value)> = members
        .iter()
        .flat_map(|m| {
            (0..4).map(move |i| {
                let start = format!("2018-05-0{}T01:00:00Z", i + 1);
                let end = format!("2018-05-0{}T02:00:00Z", i + 1);
                (
                    format!("/v1/members/{m}/study-sessions"),
                    session("ethics", &start, &end),
                )
            })
        })
        .collect();
    let results = futures::future::join_all(requests.iter().map(|(p, b)| app.post(p, b))).await;
    let mut positions: Vec<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["position"].as_i64().expect("position")
        })
        .collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 64, "every command got its own event");
    for member in &members {
        assert_eq!(app.event_count(&member.to_string()).await, 5);
    }
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE event_type = 'StudySessionRecorded' ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("positions");
    assert_eq!(
        stored, positions,
        "each answer names the committed event's position"
    );
}

#[tokio::test]
async fn odd_input_is_answered_with_a_client_error_and_records_nothing() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let before = app.total_events().await;
    let sessions = format!("/v1/members/{member}/study-sessions");
    let cases: Vec<(String, Value, u16)> = vec![
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "N", "org_id": "fz", "enrolled_on": "-200000-01-01"}),
            400,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "N", "org_id": "fz", "enrolled_on": "2018-6-1"}),
            400,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "N", "org_id": "fz", "enrolled_on": "1066-10-14"}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "N", "org_id": "fz", "enrolled_on": "2018-01-01", "extra": [1, {"deep": null}]}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "\u{0}\u{7}", "org_id": "fz", "enrolled_on": "2018-01-01"}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "abc\u{202E}cba", "org_id": "fz", "enrolled_on": "2018-01-01"}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "名".repeat(201), "org_id": "fz", "enrolled_on": "2018-01-01"}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M\nN", "name": "N", "org_id": "fz", "enrolled_on": "2018-01-01"}),
            422,
        ),
        (
            "/v1/members".to_owned(),
            json!({"member_id": Uuid::new_v4(), "member_no": "M", "name": "Zoë 林 📚 محمد e\u{301}", "org_id": "fz", "enrolled_on": "2018-01-01"}),
            201,
        ),
        (
            "/v1/courses".to_owned(),
            json!({"course_id": "c1", "title": "t", "category": "required", "credit_hours": 1e300}),
            422,
        ),
        (
            "/v1/courses".to_owned(),
            json!({"course_id": "c2", "title": "t", "category": "required", "credit_hours": "2.5"}),
            400,
        ),
        (
            "/v1/courses".to_owned(),
            json!({"course_id": "c3", "title": "t", "category": "required", "credit_hours": 2, "min_study_minutes": -5}),
            422,
        ),
        (
            "/v1/courses".to_owned(),
            json!({"course_id": "c4", "title": "t", "category": "required", "credit_hours": 2, "min_study_minutes": 99_999_999_999u64}),
            422,
        ),
        (
            sessions.clone(),
            json!({"session_id": Uuid::new_v4(), "course_id": "ethics", "started_at": "0001-01-01T00:00:00Z", "ended_at": "0001-01-01T01:00:00Z"}),
            422,
        ),
        (
            sessions.clone(),
            json!({"session_id": Uuid::new_v4(), "course_id": "ethics", "started_at": "2018-05-02T01:00:00+99:00", "ended_at": "2018-05-02T02:00:00Z"}),
            400,
        ),
        (
            sessions.clone(),
            json!({"session_id": 7, "course_id": "ethics", "started_at": "2018-05-02T01:00:00Z", "ended_at": "2018-05-02T02:00:00Z"}),
            400,
        ),
        (sessions.clone(), json!(null), 400),
    ];
    for (path, body, status) in &cases {
        let (got, answer) = app.post(path, body).await;
        assert_eq!(got, *status, "{path} {body} -> {answer}");
    }
    // Only the one valid enrolment (any script, emoji and combining marks are text; control
    // characters, bidirectional overrides and over-long names are not) counts.
    assert_eq!(app.total_events().await, before + 1);
    for path in [
        "/v1/members/%FF/study-sessions".to_owned(),
        format!("/v1/members/{member}/compliance?quarter=%FF"),
        format!("/v1/members/{member}/compliance?quarter=+018-Q1"),
        format!("/v1/members/{member}/compliance?quarter=2018-Q1&quarter=2018-Q2"),
    ] {
        let (status, body) = if path.contains("study-sessions") {
            app.post(&path, &json!({})).await
        } else {
            app.get(&path).await
        };
        assert_eq!(status, 400, "{path} -> {body}");
    }
}

#[tokio::test]
async fn class_hours_are_judged_on_their_decimal_text() {
    let app = TestApp::spawn().await;
    for (id, raw, status) in [
        ("a", "2.5000000000000001", 422),
        ("b", "1.005", 422),
        ("c", "2.50", 201),
        ("d", "2.500", 201),
        ("e", "1e0", 201),
        ("f", "125e-2", 201),
        ("g", "1.2555e1", 422),
    ] {
        let body = format!(
            r#"{{"course_id": "{id}", "title": "t", "category": "elective", "credit_hours": {raw}}}"#
        );
        let (got, answer) = app.post_raw("/v1/courses", body).await;
        assert_eq!(got, status, "{raw} -> {answer}");
        if status == 201 {
            let expected: f64 = raw.parse().expect("number");
            assert_eq!(answer["credit_hours"].as_f64(), Some(expected), "{raw}");
        }
    }
}
