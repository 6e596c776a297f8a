//! Statements feed the ledger: a cmi5 session and its completion change a member's
//! compliance exactly; voiding withdraws (rule 11) and the next qualifying completion takes
//! the credit; statements of members or activities not registered yet wait and are mapped
//! once when the registration arrives; refusals of the rules are listed with their reasons.

use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

const HOME: &str = "https://studyledger.invalid/";
const PARTY: &str = "https://courses.example/party-history";
const ETHICS: &str = "https://courses.example/ethics";
const CMI5_SESSION: &str = "https://w3id.org/xapi/cmi5/context/extensions/sessionid";

/// Organisation `fz`; a required course of 8 hours needing 30 minutes of study, linked to
/// `PARTY`; an elective course of 3 hours needing a pass, linked to `ETHICS`.
async fn catalog(app: &TestApp) {
    let (status, body) = app
        .post("/v1/orgs", &json!({"org_id": "fz", "name": "福州"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            "/v1/courses",
            &json!({"course_id": "party-history", "title": "党史", "category": "required",
                    "credit_hours": 8, "min_study_minutes": 30, "activity_id": PARTY}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["activity"]["activity_id"], PARTY);
    let (status, body) = app
        .post(
            "/v1/courses",
            &json!({"course_id": "ethics", "title": "职业道德", "category": "elective",
                    "credit_hours": 3}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            "/v1/courses/ethics/activities",
            &json!({"activity_id": ETHICS, "pass_required": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pass_required"], true);
}

async fn enrol(app: &TestApp, member: Uuid) {
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": member, "member_no": format!("M-{member}"), "name": "林晓",
                    "org_id": "fz", "enrolled_on": "2026-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// A statement by `member` about `activity`, at `timestamp` (Beijing time, 2026-08-03).
fn statement(member: Uuid, verb: &str, activity: &str, at: &str, result: Value) -> Value {
    json!({
        "id": Uuid::new_v4(),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": member.to_string()}},
        "verb": {"id": verb, "display": {"zh-CN": "学习"}},
        "object": {"objectType": "Activity", "id": activity},
        "result": result,
        "timestamp": format!("2026-08-03T{at}+08:00"),
    })
}

fn in_cmi5_session(mut statement: Value, session: &str, registration: Uuid) -> Value {
    statement["context"] = json!({
        "registration": registration,
        "extensions": {CMI5_SESSION: session},
    });
    statement
}

fn completed(member: Uuid, activity: &str, at: &str, registration: Uuid) -> Value {
    let result = json!({"completion": true, "success": true});
    let s = statement(
        member,
        "http://adlnet.gov/expapi/verbs/completed",
        activity,
        at,
        result,
    );
    in_cmi5_session(s, "s-1", registration)
}

fn voiding(target: &Value) -> Value {
    json!({
        "actor": {"mbox": "mailto:lms@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target["id"]},
    })
}

/// Stores statements, one request each, in order (as a player sends them).
async fn send(app: &TestApp, token: &str, statements: &[&Value]) {
    for statement in statements {
        let response = reqwest::Client::new()
            .post(format!("{}/xapi/statements", app.address))
            .basic_auth("player", Some(token))
            .header("X-Experience-API-Version", "2.0.0")
            .json(statement)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert_eq!(status, 200, "{text}");
    }
}

/// The member's 2026-Q3: (status, required hours, elective hours).
async fn q3(app: &TestApp, member: Uuid) -> (String, f64, f64) {
    wait_until_projected(&app.pool).await;
    let (status, body) = app
        .get(&format!("/v1/members/{member}/compliance?quarter=2026-Q3"))
        .await;
    assert_eq!(status, 200, "{body}");
    let row = if body.is_array() { &body[0] } else { &body };
    (
        row["status"].as_str().expect("status").to_owned(),
        row["required_hours"].as_f64().expect("hours"),
        row["elective_hours"].as_f64().expect("hours"),
    )
}

/// The member's completion lines: (course, credited, not_credited_reason, source statement).
async fn completions(app: &TestApp, member: Uuid, as_of: Option<&str>) -> Vec<Value> {
    let query = as_of.map_or_else(String::new, |t| {
        format!("?as_of={}", crate::helpers::urlencode(t))
    });
    let (status, body) = app
        .get(&format!("/v1/members/{member}/ledger{query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "course_completion")
        .map(|e| {
            json!([
                e["course_id"],
                e["credited"],
                e["not_credited_reason"],
                e["source_statement_id"]
            ])
        })
        .collect()
}

async fn outcome_of(app: &TestApp, statement: &Value) -> (String, Option<String>) {
    let id = Uuid::parse_str(statement["id"].as_str().expect("id")).expect("uuid");
    sqlx::query_as("SELECT outcome, reason FROM xapi_mappings WHERE statement_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .expect("a mapping")
}

#[tokio::test]
async fn a_cmi5_session_and_its_completion_make_a_member_compliant() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let member = Uuid::new_v4();
    enrol(&app, member).await;
    let player = app.token(Role::Ingest, None, None).await;
    let registration = Uuid::new_v4();
    let cmi5 = |verb: &str, at: &str, result: Value| {
        in_cmi5_session(
            statement(member, verb, PARTY, at, result),
            "s-1",
            registration,
        )
    };
    let launched = cmi5(
        "http://adlnet.gov/expapi/verbs/launched",
        "10:00:00",
        json!({}),
    );
    let initialized = cmi5(
        "http://adlnet.gov/expapi/verbs/initialized",
        "10:00:01",
        json!({}),
    );
    // In cmi5 the completion comes inside the session, before `terminated`.
    let completion = completed(member, PARTY, "10:40:00", registration);
    let terminated = cmi5(
        "http://adlnet.gov/expapi/verbs/terminated",
        "11:00:00",
        json!({"duration": "PT1H"}),
    );
    send(&app, &player, &[&launched, &initialized, &completion]).await;
    assert_eq!(
        q3(&app, member).await,
        ("non_compliant".to_owned(), 0.0, 0.0),
        "no study time yet: the completion is not credited"
    );
    send(&app, &player, &[&terminated]).await;
    assert_eq!(
        q3(&app, member).await,
        ("non_compliant".to_owned(), 8.0, 0.0)
    );
    assert_eq!(
        completions(&app, member, None).await,
        [json!(["party-history", true, null, completion["id"]])]
    );
    // The session was cut at the completion: 40 minutes before it, 20 after.
    let (_, events) = app.get(&format!("/v1/members/{member}/events")).await;
    let sessions: Vec<(i64, Value)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == "StudySessionRecorded")
        .map(|e| {
            let payload = &e["payload"]["StudySessionRecorded"];
            (
                payload["minutes"].as_i64().expect("minutes"),
                payload["source"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sessions,
        [
            (40, terminated["id"].clone()),
            (20, terminated["id"].clone())
        ]
    );
    for s in [&launched, &initialized] {
        let id = Uuid::parse_str(s["id"].as_str().expect("id")).expect("uuid");
        let mapped: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM xapi_mappings WHERE statement_id = $1")
                .bind(id)
                .fetch_optional(&app.pool)
                .await
                .expect("query");
        assert_eq!(
            mapped, None,
            "launched and initialized mean nothing to the ledger"
        );
    }

    // An elective outside cmi5: attended for 30 minutes, then completed with a pass.
    let attended = statement(
        member,
        "http://adlnet.gov/expapi/verbs/attended",
        ETHICS,
        "14:30:00",
        json!({"duration": "PT30M"}),
    );
    let passed = statement(
        member,
        "http://adlnet.gov/expapi/verbs/completed",
        ETHICS,
        "14:31:00",
        json!({"completion": true, "success": true}),
    );
    send(&app, &player, &[&attended, &passed]).await;
    assert_eq!(q3(&app, member).await, ("compliant".to_owned(), 8.0, 3.0));
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn voiding_withdraws_the_fact_and_the_next_completion_takes_the_credit() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let member = Uuid::new_v4();
    enrol(&app, member).await;
    let player = app.token(Role::Ingest, None, None).await;
    let session = statement(
        member,
        "http://adlnet.gov/expapi/verbs/attended",
        PARTY,
        "09:00:00",
        json!({"duration": "PT1H"}),
    );
    // The session runs 08:00–09:00: the first completion comes before it, the second after.
    let first = completed(member, PARTY, "07:30:00", Uuid::new_v4());
    let second = completed(member, PARTY, "09:30:00", Uuid::new_v4());
    send(&app, &player, &[&session, &first, &second]).await;
    assert_eq!(q3(&app, member).await.1, 8.0);
    assert_eq!(
        completions(&app, member, None).await,
        [
            json!([
                "party-history",
                false,
                "insufficient_study_time",
                first["id"]
            ]),
            json!(["party-history", true, null, second["id"]]),
        ]
    );
    let before_voiding = chrono::Utc::now().to_rfc3339();
    // Voiding the session: the second completion no longer has its study time.
    send(&app, &player, &[&voiding(&session)]).await;
    assert_eq!(q3(&app, member).await.1, 0.0);
    assert_eq!(outcome_of(&app, &session).await.0, "withdrawn");
    // What was read before still shows it.
    assert_eq!(
        completions(&app, member, Some(&before_voiding)).await[1],
        json!(["party-history", true, null, second["id"]])
    );
    // A new session, then a third completion: credited; voiding it hands the credit to the
    // earliest remaining qualifying completion, never to a withdrawn one.
    let again = statement(
        member,
        "http://adlnet.gov/expapi/verbs/attended",
        PARTY,
        "12:00:00",
        json!({"duration": "PT45M"}),
    );
    let third = completed(member, PARTY, "13:00:00", Uuid::new_v4());
    send(&app, &player, &[&again, &third]).await;
    assert_eq!(q3(&app, member).await.1, 8.0);
    send(&app, &player, &[&voiding(&third)]).await;
    let lines = completions(&app, member, None).await;
    assert_eq!(
        lines[2],
        json!(["party-history", false, "withdrawn", third["id"]])
    );
    assert_eq!(
        q3(&app, member).await.1,
        0.0,
        "the others lack study time before them"
    );
    // Voiding again is refused by the LRS (a voided statement is not voided twice), and the
    // events show each withdrawal once.
    let (_, events) = app.get(&format!("/v1/members/{member}/events")).await;
    let withdrawn = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == "FactWithdrawn")
        .count();
    assert_eq!(withdrawn, 2);
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn statements_wait_for_their_member_and_activity_and_map_once() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let player = app.token(Role::Ingest, None, None).await;
    let member = Uuid::new_v4();
    let session = statement(
        member,
        "http://adlnet.gov/expapi/verbs/experienced",
        PARTY,
        "09:00:00",
        json!({"duration": "PT40M"}),
    );
    let completion = completed(member, PARTY, "09:45:00", Uuid::new_v4());
    let later_course = "https://courses.example/later";
    let unlinked = completed(member, later_course, "10:00:00", Uuid::new_v4());
    let stranger = json!({
        "actor": {"mbox": "mailto:stranger@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": PARTY},
        "result": {"completion": true},
    });
    send(
        &app,
        &player,
        &[&session, &completion, &unlinked, &stranger],
    )
    .await;
    let (status, review) = app.get("/v1/statement-mappings").await;
    assert_eq!(status, 200, "{review}");
    let listed: Vec<(Value, Value, Value)> = review["statement_mappings"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            (
                m["statement_id"].clone(),
                m["outcome"].clone(),
                m["member_id"].clone(),
            )
        })
        .collect();
    let member_json = json!(member);
    assert_eq!(listed.len(), 4);
    assert_eq!(
        listed[..3],
        [
            (
                session["id"].clone(),
                json!("unknown_member"),
                member_json.clone()
            ),
            (
                completion["id"].clone(),
                json!("unknown_member"),
                member_json.clone()
            ),
            // Its activity is linked to no course either: it waits for that first.
            (
                unlinked["id"].clone(),
                json!("unknown_activity"),
                member_json
            ),
        ]
    );
    // An actor who is no member's account: listed, with no member to wait for.
    assert_eq!(
        (&listed[3].1, &listed[3].2),
        (&json!("unknown_member"), &Value::Null)
    );

    // The enrolment maps the member's statements: two now, one waits for its activity.
    enrol(&app, member).await;
    assert_eq!(q3(&app, member).await.1, 8.0);
    assert_eq!(outcome_of(&app, &unlinked).await.0, "unknown_activity");
    // Mapping again finds nothing more to do, and records nothing twice.
    let events_before = app.event_count(&member.to_string()).await;
    let (status, done) = app.post("/v1/statement-mappings/remaps", &json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["recorded"], 0);
    assert_eq!(app.event_count(&member.to_string()).await, events_before);

    // Linking the activity to a course maps the last one.
    let (status, body) = app
        .post(
            "/v1/courses",
            &json!({"course_id": "later", "title": "后来的课", "category": "elective",
                    "credit_hours": 1.5, "activity_id": later_course}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["activity"]["statements_mapped"]["recorded"], 1);
    assert_eq!(outcome_of(&app, &unlinked).await.0, "recorded");
    assert_eq!(q3(&app, member).await.2, 1.5);
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn refused_mappings_are_stored_listed_and_explained() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let member = Uuid::new_v4();
    enrol(&app, member).await;
    let player = app.token(Role::Ingest, None, None).await;
    let registration = Uuid::new_v4();
    // A completion of a pass-required course without a pass.
    let mut failed = completed(member, ETHICS, "09:00:00", Uuid::new_v4());
    failed["result"]["success"] = json!(false);
    // A second completion in the same registration at another time.
    let once = completed(member, PARTY, "10:00:00", registration);
    let twice = completed(member, PARTY, "10:30:00", registration);
    // A completed verb without completion = true, and a session without a duration.
    let unfinished = statement(
        member,
        "http://adlnet.gov/expapi/verbs/completed",
        PARTY,
        "11:00:00",
        json!({"completion": false}),
    );
    // Two overlapping sessions outside cmi5: the second is refused by rule 1.
    let morning = statement(
        member,
        "http://adlnet.gov/expapi/verbs/attended",
        PARTY,
        "08:00:00",
        json!({"duration": "PT1H"}),
    );
    let overlapping = statement(
        member,
        "http://adlnet.gov/expapi/verbs/attended",
        PARTY,
        "08:30:00",
        json!({"duration": "PT1H"}),
    );
    send(
        &app,
        &player,
        &[&failed, &once, &twice, &unfinished, &morning, &overlapping],
    )
    .await;
    let refused = |why: &str| (String::from("refused"), Some(why.to_owned()));
    assert_eq!(
        outcome_of(&app, &failed).await,
        refused("course ethics needs a pass: result.success must be true")
    );
    assert_eq!(outcome_of(&app, &once).await.0, "recorded");
    assert_eq!(
        outcome_of(&app, &twice).await,
        refused(
            "a completion of this course in this registration is already recorded with another time"
        )
    );
    assert_eq!(
        outcome_of(&app, &unfinished).await,
        (
            "unreadable".to_owned(),
            Some("a completion needs result.completion = true".to_owned())
        )
    );
    let (outcome, reason) = outcome_of(&app, &overlapping).await;
    assert_eq!(outcome, "refused");
    assert!(reason.expect("a reason").contains("overlaps"));
    // The refused statements are stored all the same, and listed for review.
    let (status, review) = app.get("/v1/statement-mappings?outcome=refused").await;
    assert_eq!(status, 200, "{review}");
    let ids: Vec<&Value> = review["statement_mappings"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| &m["statement_id"])
        .collect();
    assert_eq!(ids, [&failed["id"], &twice["id"], &overlapping["id"]]);
    let (status, _) = app.get("/v1/statement-mappings?outcome=everything").await;
    assert_eq!(status, 400);
    assert_eq!(
        q3(&app, member).await.1,
        8.0,
        "only the one completion counts"
    );
}

#[tokio::test]
async fn an_activity_links_to_one_course_only_and_must_be_an_iri() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let (status, body) = app
        .post(
            "/v1/courses",
            &json!({"course_id": "copy", "title": "抄", "category": "required",
                    "credit_hours": 1, "activity_id": PARTY}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .post(
            "/v1/courses/ethics/activities",
            &json!({"activity_id": PARTY}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app
        .post(
            "/v1/courses/ethics/activities",
            &json!({"activity_id": "not an iri"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .post(
            "/v1/courses/nobody/activities",
            &json!({"activity_id": "https://x.example/a"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // The same link again records nothing and answers the same.
    let (status, body) = app
        .post(
            "/v1/courses/ethics/activities",
            &json!({"activity_id": ETHICS, "pass_required": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.event_count(ETHICS).await, 1);
    // The course "copy" was not registered by the refused request.
    assert_eq!(app.event_count("copy").await, 0);
}
