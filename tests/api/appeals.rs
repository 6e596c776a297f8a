//! Corrections, appeals and explanations (DESIGN §3 rules 3 and 9): every lifecycle step and
//! refusal, the final eligibility after an overturn and after a re-determination, answers as of
//! a moment, and the exports.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

async fn determine(app: &TestApp, evaluation: &str, member: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    let (status, body) = app
        .post(
            &format!("/v1/evaluations/{evaluation}/determinations"),
            &json!({"determination_id": id, "member_ids": [member]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

async fn eligibility(app: &TestApp, member: Uuid, evaluation: &str, explain: bool) -> Value {
    let (status, body) = app
        .get(&format!(
            "/v1/members/{member}/eligibility/{evaluation}?explain={explain}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn adjustment(hours: Value, category: &str, reason: &str, appeal: Option<Uuid>) -> Value {
    json!({"adjustment_id": Uuid::new_v4(), "category": category, "hours": hours,
           "effective_at": "2018-05-15T02:00:00Z", "reason": reason, "appeal_id": appeal})
}

#[tokio::test]
async fn an_ineligible_member_appeals_is_corrected_and_found_eligible() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    // Completed without the 60 minutes of study the course asks: recorded, not credited.
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &json!({"completion_id": Uuid::new_v4(), "course_id": "party-history",
                    "completed_at": "2018-05-02T02:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let completion_sequence = body["sequence"].clone();
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    app.define_evaluation("2018-q1", &["2018-Q1"]).await;
    let first = determine(&app, "2018-q2", member).await;
    let decided = eligibility(&app, member, "2018-q2", false).await;
    assert_eq!(
        (&decided["eligible"], &decided["appeal"]),
        (&json!(false), &Value::Null)
    );

    // Appeals: only against a determination, one open at a time, idempotent by id.
    let appeals = format!("/v1/members/{member}/appeals");
    let before_appeals = app.event_count(&member.to_string()).await;
    let (status, body) = app
        .post(
            &appeals,
            &json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q1", "reason": "x"}),
        )
        .await;
    assert_eq!(status, 409, "no determination to appeal: {body}");
    let appeal_id = Uuid::new_v4();
    let appeal = json!({"appeal_id": appeal_id, "evaluation_id": "2018-q2",
                        "reason": "我在线下参加了党课学习"});
    let (status, filed) = app.post(&appeals, &appeal).await;
    assert_eq!(status, 201, "{filed}");
    assert_eq!(
        (&filed["status"], &filed["determination_id"]),
        (&json!("open"), &json!(first))
    );
    let (status, again) = app.post(&appeals, &appeal).await;
    assert_eq!((status, &again), (201, &filed), "a resend answers the same");
    let (status, body) = app
        .post(
            &appeals,
            &json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q2", "reason": "again"}),
        )
        .await;
    assert_eq!(status, 409, "one open appeal at a time: {body}");
    let (status, body) = app
        .post(
            &appeals,
            &json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q2", "reason": " "}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        app.event_count(&member.to_string()).await,
        before_appeals + 1,
        "the refused appeals and the resend recorded nothing"
    );

    // Reviewers find it under the organisation.
    let (status, open) = app
        .get(&format!(
            "/v1/orgs/fz/appeals?min_position={}",
            filed["position"]
        ))
        .await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(open["appeals"].as_array().map(Vec::len), Some(1), "{open}");
    assert_eq!(open["appeals"][0]["appeal_id"], json!(appeal_id));
    assert_eq!(open["appeals"][0]["member_id"], json!(member));
    assert_eq!(
        open["appeals"][0]["filed_at"], filed["filed_at"],
        "the same instant wherever it is read"
    );

    // Corrections: refused when malformed, recorded with who made them when not.
    let adjustments = format!("/v1/members/{member}/credit-adjustments");
    let before = app.event_count(&member.to_string()).await;
    for (body, expected) in [
        (adjustment(json!(8.125), "required", "补录", None), 422),
        (adjustment(json!(8), "required", "", None), 422),
        (adjustment(json!(0), "required", "补录", None), 422),
        (adjustment(json!(8), "bonus", "补录", None), 422),
        (
            adjustment(json!(8), "required", "补录", Some(Uuid::new_v4())),
            422,
        ),
        (
            json!({"adjustment_id": Uuid::new_v4(), "category": "required", "hours": 8,
                   "effective_at": "2999-01-01T00:00:00Z", "reason": "补录"}),
            422,
        ),
        (
            json!({"adjustment_id": "x", "category": "required", "hours": 8,
                "effective_at": "2018-05-15T02:00:00Z", "reason": "补录"}),
            400,
        ),
    ] {
        let (status, answer) = app.post(&adjustments, &body).await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    // Hundredths at the very ends of i64: out of range, not wrapped around.
    for hours in ["-92233720368547758.08", "92233720368547758.07"] {
        let body = format!(
            r#"{{"adjustment_id": "{}", "category": "required", "hours": {hours},
                 "effective_at": "2018-05-15T02:00:00Z", "reason": "补录"}}"#,
            Uuid::new_v4()
        );
        let (status, answer) = app.post_raw(&adjustments, body).await;
        assert_eq!(status, 422, "{hours} → {answer}");
    }
    assert_eq!(
        app.event_count(&member.to_string()).await,
        before,
        "nothing recorded"
    );
    let required = adjustment(json!(8), "required", "线下党课 8 学时补录", Some(appeal_id));
    let (status, body) = app.post(&adjustments, &required).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (&body["quarter"], &body["hours"]),
        (&json!("2018-Q2"), &json!(8.0))
    );
    let (status, again) = app.post(&adjustments, &required).await;
    assert_eq!((status, &again), (201, &body));
    let (status, elective) = app
        .post(
            &adjustments,
            &adjustment(json!(3.5), "elective", "线下选修补录", Some(appeal_id)),
        )
        .await;
    assert_eq!(status, 201, "{elective}");
    let (status, minus) = app
        .post(
            &adjustments,
            &adjustment(json!(-0.5), "elective", "多记了半学时", None),
        )
        .await;
    assert_eq!(status, 201, "{minus}");
    let (_, q2) = app
        .get(&format!(
            "/v1/members/{member}/compliance?quarter=2018-Q2&min_position={}",
            minus["position"]
        ))
        .await;
    assert_eq!(
        (&q2["status"], &q2["required_hours"], &q2["elective_hours"]),
        (&json!("compliant"), &json!(8.0), &json!(3.0)),
        "{q2}"
    );

    // The reviewer overturns: the final eligibility inverts the determination.
    let resolution = format!("/v1/members/{member}/appeals/{appeal_id}/resolution");
    let before_resolutions = app.event_count(&member.to_string()).await;
    let (status, body) = app
        .review(&resolution, &json!({"outcome": "reversed", "note": "x"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .review(&resolution, &json!({"outcome": "overturned", "note": ""}))
        .await;
    assert_eq!(status, 422, "a resolution needs a note: {body}");
    let decision = json!({"outcome": "overturned", "note": "补录后满足要求"});
    let (status, resolved) = app.review(&resolution, &decision).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(
        (&resolved["status"], &resolved["eligible"]),
        (&json!("overturned"), &json!(true))
    );
    let (status, again) = app.review(&resolution, &decision).await;
    assert_eq!(
        (status, &again),
        (200, &resolved),
        "a resend answers the same"
    );
    let (status, body) = app
        .review(&resolution, &json!({"outcome": "upheld", "note": "改判"}))
        .await;
    assert_eq!(status, 409, "resolved once: {body}");
    let (status, body) = app
        .review(
            &format!("/v1/members/{member}/appeals/{}/resolution", Uuid::new_v4()),
            &decision,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    // The determination has been heard: another appeal against it would undo the overturn.
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/appeals"),
            &json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q2", "reason": "再议"}),
        )
        .await;
    assert_eq!(status, 409, "one appeal per determination: {body}");
    assert_eq!(
        app.event_count(&member.to_string()).await,
        before_resolutions + 1,
        "one resolution recorded; the refusals and the resend recorded nothing"
    );

    let after = eligibility(&app, member, "2018-q2", true).await;
    assert_eq!(after["eligible"], true);
    assert_eq!(after["determination"]["determination_id"], json!(first));
    assert_eq!(after["determination"]["eligible"], false);
    assert_eq!(
        (&after["appeal"]["appeal_id"], &after["appeal"]["status"]),
        (&json!(appeal_id), &json!("overturned"))
    );
    // What the system knew when it decided: the completion, not credited, and why.
    let then = &after["explanation"]["as_determined"];
    assert_eq!(then["eligible"], false);
    let then_q2 = &then["quarters"][0];
    assert_eq!(
        (&then_q2["quarter"], &then_q2["status"]),
        (&json!("2018-Q2"), &json!("non_compliant"))
    );
    let entries = then_q2["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{then_q2}");
    assert_eq!(
        (
            &entries[0]["sequence"],
            &entries[0]["credited"],
            &entries[0]["not_credited_reason"]
        ),
        (
            &completion_sequence,
            &json!(false),
            &json!("insufficient_study_time")
        )
    );
    assert!(entries[0]["position"].is_i64());
    // And what it would decide now: the adjustments count.
    let now = &after["explanation"]["now"];
    assert_eq!(
        (&now["eligible"], &now["quarters"][0]["status"]),
        (&json!(true), &json!("compliant"))
    );
    let kinds: Vec<(&Value, &Value)> = now["quarters"][0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (&e["kind"], &e["credited"]))
        .collect();
    assert_eq!(
        kinds,
        [
            (&json!("course_completion"), &json!(false)),
            (&json!("credit_adjustment"), &json!(true)),
            (&json!("credit_adjustment"), &json!(true)),
            (&json!("credit_adjustment"), &json!(true)),
        ]
    );
    let (_, open) = app
        .get(&format!(
            "/v1/orgs/fz/appeals?min_position={}",
            resolved["position"]
        ))
        .await;
    assert_eq!(
        open["appeals"],
        json!([]),
        "resolved appeals leave the work list"
    );

    // A new determination supersedes the old one and its appeal.
    let second = determine(&app, "2018-q2", member).await;
    let redetermined = eligibility(&app, member, "2018-q2", false).await;
    assert_eq!(redetermined["eligible"], true);
    assert_eq!(
        redetermined["determination"]["determination_id"],
        json!(second)
    );
    assert_eq!(redetermined["determination"]["eligible"], true);
    assert_eq!(redetermined["appeal"], Value::Null);
    // The superseded determination stays in the answer with its appeal as resolved.
    let earlier = &redetermined["earlier_determinations"];
    assert_eq!(earlier.as_array().map(Vec::len), Some(1), "{earlier}");
    assert_eq!(
        (
            &earlier[0]["determination_id"],
            &earlier[0]["eligible"],
            &earlier[0]["appeal"]["appeal_id"],
            &earlier[0]["appeal"]["status"]
        ),
        (
            &json!(first),
            &json!(false),
            &json!(appeal_id),
            &json!("overturned")
        )
    );
    // The appealed determination can still be explained as it was decided.
    let (status, old) = app
        .get(&format!(
            "/v1/members/{member}/eligibility/2018-q2?determination_id={first}"
        ))
        .await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["explanation"]["determination_id"], json!(first));
    assert_eq!(old["explanation"]["as_determined"], then.clone());
    assert_eq!(old["explanation"]["now"]["eligible"], true);
    let (status, _) = app
        .get(&format!(
            "/v1/members/{member}/eligibility/2018-q2?determination_id={}",
            Uuid::new_v4()
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get(&format!(
            "/v1/members/{member}/eligibility/2018-q2?determination_id=nope"
        ))
        .await;
    assert_eq!(status, 400);
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn an_appeal_superseded_by_a_new_determination_cannot_be_resolved() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    determine(&app, "2018-q2", member).await;
    let appeals = format!("/v1/members/{member}/appeals");
    let old = Uuid::new_v4();
    let (status, _) = app
        .post(
            &appeals,
            &json!({"appeal_id": old, "evaluation_id": "2018-q2", "reason": "a"}),
        )
        .await;
    assert_eq!(status, 201);
    determine(&app, "2018-q2", member).await;
    let (status, body) = app
        .review(
            &format!("/v1/members/{member}/appeals/{old}/resolution"),
            &json!({"outcome": "overturned", "note": "n"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // The superseded appeal is no longer open: the new determination can be appealed.
    let (status, body) = app
        .post(
            &appeals,
            &json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q2", "reason": "b"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            &appeals,
            &json!({"appeal_id": old, "evaluation_id": "2018-q2", "reason": "changed"}),
        )
        .await;
    assert_eq!(
        status, 409,
        "an appeal id reused with other content: {body}"
    );
}

#[tokio::test]
async fn concurrent_appeals_against_one_determination_record_exactly_one() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    determine(&app, "2018-q2", member).await;
    let appeals = format!("/v1/members/{member}/appeals");
    let filings = (0..8).map(|n| {
        let body = json!({"appeal_id": Uuid::new_v4(), "evaluation_id": "2018-q2", "reason": format!("r{n}")});
        let (app, appeals) = (&app, &appeals);
        async move { app.post(appeals, &body).await.0 }
    });
    let mut statuses = futures::future::join_all(filings).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let (_, events) = app.get(&format!("/v1/members/{member}/events")).await;
    let filed = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == "AppealFiled")
        .count();
    assert_eq!(filed, 1);
}

#[tokio::test]
async fn the_ledger_as_of_a_moment_and_its_exports() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/credit-adjustments"),
            &adjustment(json!(2.5), "required", "补录, \"线下\"", None),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let recorded_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("recorded_at");
    let just_before = (recorded_at - chrono::Duration::microseconds(1)).to_rfc3339();
    let (_, before) = app
        .get(&format!(
            "/v1/members/{member}/ledger?as_of={}",
            crate::helpers::urlencode(&just_before)
        ))
        .await;
    assert_eq!(before["entries"], json!([]));
    let (_, after) = app
        .get(&format!(
            "/v1/members/{member}/ledger?as_of={}",
            crate::helpers::urlencode(&recorded_at.to_rfc3339())
        ))
        .await;
    let entry = &after["entries"][0];
    assert_eq!(
        (
            &entry["kind"],
            &entry["hours"],
            &entry["recorded_by"],
            &entry["sequence"]
        ),
        (
            &json!("credit_adjustment"),
            &json!(2.5),
            &json!("test admin"),
            &json!(2)
        )
    );
    assert_eq!(after["quarters"][0]["required_hours"], 2.5);

    let csv = |path: String, accept: bool| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if accept {
            request = request.header("accept", "text/csv");
        }
        async move {
            let response = request.send().await.expect("csv");
            assert_eq!(
                response.headers()["content-type"],
                "text/csv; charset=utf-8"
            );
            response.text().await.expect("text")
        }
    };
    let transcript = csv(format!("/v1/members/{member}/ledger.csv"), false).await;
    assert_eq!(
        transcript,
        csv(format!("/v1/members/{member}/ledger"), true).await
    );
    let lines: Vec<&str> = transcript.lines().collect();
    assert!(
        lines[0].starts_with("\u{feff}sequence,position,recorded_at,recorded_by"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains(",credit_adjustment,,"), "{}", lines[1]);
    assert!(
        lines[1].contains(",\"补录, \"\"线下\"\"\",2018-Q2"),
        "quoted: {}",
        lines[1]
    );

    // A name a spreadsheet would take for a formula.
    let prankster = Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": prankster, "member_no": "@1", "name": "=HYPERLINK(\"http://x\")",
                    "org_id": "fz", "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    crate::helpers::wait_until_projected(&app.pool).await;
    let list = csv(
        "/v1/orgs/fz/members.csv?quarter=2018-Q2&status=non_compliant".to_owned(),
        false,
    )
    .await;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines.contains(&format!("{prankster},'@1,\"'=HYPERLINK(\"\"http://x\"\")\",fz,non_compliant,0.0,0.0,0,1,false,11.0").as_str()),
        "shown as text: {list}"
    );
    let none = csv(
        "/v1/orgs/fz/members.csv?quarter=2018-Q2&status=compliant".to_owned(),
        false,
    )
    .await;
    assert_eq!(none.lines().count(), 1, "the header alone: {none}");
    let list = csv("/v1/orgs/fz/members.csv?quarter=2018-Q2".to_owned(), false).await;
    assert_eq!(
        list,
        csv("/v1/orgs/fz/members?quarter=2018-Q2".to_owned(), true).await
    );
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(
        lines[0],
        "\u{feff}member_id,member_no,name,org_id,status,required_hours,elective_hours,study_minutes,ruleset_version,stale,shortfall_hours"
    );
    assert!(
        lines.contains(
            &format!("{member},M-1,林晓,fz,non_compliant,2.5,0.0,0,1,false,8.5").as_str()
        ),
        "{list}"
    );
    assert_eq!(lines.len(), 3);
}

#[tokio::test]
async fn an_explanation_keeps_what_was_known_while_later_rules_and_facts_change_the_present() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.study(
        member,
        "party-history",
        "2018-04-02T01:00:00Z",
        "2018-04-02T02:00:00Z",
    )
    .await;
    let complete = |course: &str, at: &str| json!({"completion_id": Uuid::new_v4(), "course_id": course, "completed_at": at});
    let completions = format!("/v1/members/{member}/course-completions");
    let (status, body) = app
        .post(
            &completions,
            &complete("party-history", "2018-04-02T02:10:00Z"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    determine(&app, "2018-q2", member).await;
    let before = eligibility(&app, member, "2018-q2", true).await;

    // Afterwards: a ruleset asking 2 required and no elective hours from 2018-Q2, and a
    // late report of an elective completion in that quarter.
    let (status, body) = app
        .post(
            "/v1/rulesets",
            &json!({"version": 2, "effective_from": "2018-Q2", "required_hours": 2,
                    "elective_hours": 0, "excess_required_counts_as_elective": false,
                    "enforce_min_study_time": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.study(
        member,
        "ethics",
        "2018-05-02T01:00:00Z",
        "2018-05-02T01:40:00Z",
    )
    .await;
    let (status, body) = app
        .post(&completions, &complete("ethics", "2018-05-02T01:45:00Z"))
        .await;
    assert_eq!(status, 201, "{body}");

    let after = eligibility(&app, member, "2018-q2", true).await;
    let then = &after["explanation"]["as_determined"];
    assert_eq!(
        then, &before["explanation"]["as_determined"],
        "what was known does not move"
    );
    assert_eq!(
        (
            &then["eligible"],
            &then["rules_version"],
            &then["quarters"][0]["required_target"],
            &then["quarters"][0]["elective_target"]
        ),
        (&json!(false), &json!(1), &json!(8.0), &json!(3.0))
    );
    assert_eq!(
        then["quarters"][0]["entries"].as_array().map(Vec::len),
        Some(1)
    );
    let now = &after["explanation"]["now"];
    assert_eq!(
        (
            &now["eligible"],
            &now["rules_version"],
            &now["quarters"][0]["status"],
            &now["quarters"][0]["ruleset_version"],
            &now["quarters"][0]["elective_hours"]
        ),
        (
            &json!(true),
            &json!(2),
            &json!("compliant"),
            &json!(2),
            &json!(1.5)
        )
    );
    let courses: Vec<&Value> = now["quarters"][0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["course_id"])
        .collect();
    assert_eq!(courses, [&json!("party-history"), &json!("ethics")]);
    // The recorded outcome stands until someone decides again.
    assert_eq!(after["eligible"], false);
}
