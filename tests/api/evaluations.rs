//! Rulesets, evaluations and determinations: what is accepted, what is refused (and then
//! records nothing), idempotent resends, and the administrator's token.

use crate::helpers::{TestApp, TestDatabase};
use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

fn ruleset(version: u32, from: &str, required: Value) -> Value {
    json!({"version": version, "effective_from": from, "required_hours": required,
           "elective_hours": 3, "excess_required_counts_as_elective": false,
           "enforce_min_study_time": true})
}

#[tokio::test]
async fn rulesets_are_published_in_increasing_versions_and_never_edited() {
    let app = TestApp::spawn().await;
    let (status, first) = app
        .post("/v1/rulesets", &ruleset(2, "2019-Q1", json!(8.5)))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (&first["required_hours"], &first["effective_from"]),
        (&json!(8.5), &json!("2019-Q1"))
    );
    let (status, again) = app
        .post("/v1/rulesets", &ruleset(2, "2019-Q1", json!(8.5)))
        .await;
    assert_eq!(status, 201, "a resend answers as the first time");
    assert_eq!(again, first);

    let refusals = [
        (ruleset(2, "2019-Q1", json!(9)), 409),
        (ruleset(1, "2019-Q1", json!(9)), 409),
        (ruleset(3, "2019-Q1", json!(8.125)), 422),
        (ruleset(3, "2019-Q1", json!(-1)), 422),
        (ruleset(0, "2019-Q1", json!(8)), 422),
        (ruleset(3, "2019-Q5", json!(8)), 400),
        (ruleset(3, "2019-Q1", json!("8")), 400),
        (json!({"version": 3, "effective_from": "2019-Q1"}), 400),
    ];
    let before = app.event_count("rulebook").await;
    for (body, expected) in refusals {
        let (status, answer) = app.post("/v1/rulesets", &body).await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    assert_eq!(
        app.event_count("rulebook").await,
        before,
        "nothing recorded"
    );

    let (status, listed) = app.get("/v1/rulesets").await;
    assert_eq!(status, 200);
    let rulesets = listed.as_array().expect("an array of rulesets");
    assert_eq!(rulesets.len(), 2);
    assert_eq!(rulesets[0]["version"], 1);
    assert_eq!(rulesets[0]["published_by"], "system");
    assert_eq!(rulesets[0]["required_hours"], 8.0);
    assert_eq!(rulesets[1], first);
}

async fn evaluation(app: &TestApp, body: Value) -> (u16, Value) {
    app.post("/v1/evaluations", &body).await
}

#[tokio::test]
async fn evaluations_and_determinations_refuse_what_they_cannot_decide() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let (status, body) = evaluation(
        &app,
        json!({"evaluation_id": "2018-h1", "name": "2018 上半年", "quarters": ["2018-Q2", "2018-Q1"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["quarters"], json!(["2018-Q1", "2018-Q2"]));
    let before_refusals = app.total_events().await;
    for (body, expected) in [
        (
            json!({"evaluation_id": "2018-h1", "name": "other", "quarters": ["2018-Q1"]}),
            409,
        ),
        (
            json!({"evaluation_id": "dup", "name": "d", "quarters": ["2018-Q1", "2018-Q1"]}),
            422,
        ),
        (
            json!({"evaluation_id": "none", "name": "n", "quarters": []}),
            422,
        ),
        (
            json!({"evaluation_id": "Bad Id", "name": "n", "quarters": ["2018-Q1"]}),
            400,
        ),
    ] {
        let (status, answer) = evaluation(&app, body.clone()).await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    assert_eq!(
        app.total_events().await,
        before_refusals,
        "nothing recorded"
    );
    // The quarter in progress where the ledger keeps its dates (Asia/Shanghai by default).
    let current = studyledger_aggregates::values::Quarter::of_instant(
        chrono::Utc::now(),
        chrono_tz::Asia::Shanghai,
    );
    let (status, _) = evaluation(
        &app,
        json!({"evaluation_id": "this-year", "name": "now", "quarters": [current]}),
    )
    .await;
    assert_eq!(status, 201);

    let determine = |evaluation: &str, body: Value| {
        let path = format!("/v1/evaluations/{evaluation}/determinations");
        let app = &app;
        async move { app.post(&path, &body).await }
    };
    let events_before = app.total_events().await;
    let member_events_before = app.event_count(&member.to_string()).await;
    let id = Uuid::new_v4();
    for (evaluation, body, expected) in [
        (
            "this-year",
            json!({"determination_id": id, "org_id": "fz"}),
            409,
        ),
        (
            "unknown",
            json!({"determination_id": id, "org_id": "fz"}),
            404,
        ),
        (
            "2018-h1",
            json!({"determination_id": id, "org_id": "fz", "member_ids": [member]}),
            400,
        ),
        ("2018-h1", json!({"determination_id": id}), 400),
        (
            "2018-h1",
            json!({"determination_id": "x", "org_id": "fz"}),
            400,
        ),
        (
            "2018-h1",
            json!({"determination_id": id, "member_ids": [member, Uuid::new_v4()]}),
            422,
        ),
        (
            "2018-h1",
            json!({"determination_id": id, "org_id": "nowhere"}),
            422,
        ),
    ] {
        let (status, answer) = determine(evaluation, body.clone()).await;
        assert_eq!(status, expected, "{evaluation} {body} → {answer}");
    }
    assert_eq!(
        app.total_events().await,
        events_before,
        "nothing recorded, not even the request"
    );
    let (status, _) = app
        .get(&format!("/v1/members/{member}/eligibility/2018-h1"))
        .await;
    assert_eq!(status, 404, "no determination yet");

    // Decided once; a resend answers the same and records nothing more.
    let (status, first) =
        determine("2018-h1", json!({"determination_id": id, "org_id": "fz"})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            &first["determined"],
            &first["eligible"],
            &first["ineligible"]
        ),
        (&json!(1), &json!(0), &json!(1))
    );
    let recorded = app.event_count(&member.to_string()).await;
    assert_eq!(recorded, member_events_before + 1);
    let (status, again) =
        determine("2018-h1", json!({"determination_id": id, "org_id": "fz"})).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(app.event_count(&member.to_string()).await, recorded);
    // The id names that request: the same id for a list of members is another request.
    let (status, answer) = determine(
        "2018-h1",
        json!({"determination_id": id, "member_ids": [member]}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");

    let (status, body) = app
        .get(&format!("/v1/members/{member}/eligibility/2018-h1"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["eligible"], false);
    let quarters = body["determination"]["quarters"].as_array().expect("basis");
    let basis: Vec<(&Value, &Value, &Value)> = quarters
        .iter()
        .map(|q| (&q["quarter"], &q["status"], &q["required_target"]))
        .collect();
    assert_eq!(
        basis,
        [
            (&json!("2018-Q1"), &json!("non_compliant"), &json!(8.0)),
            (&json!("2018-Q2"), &json!("non_compliant"), &json!(8.0))
        ]
    );
    assert_eq!(body["determination"]["determination_id"], json!(id));

    // The same determination id for another evaluation contradicts what was recorded.
    let (status, _) = evaluation(
        &app,
        json!({"evaluation_id": "2018-q1", "name": "q1", "quarters": ["2018-Q1"]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, answer) = determine(
        "2018-q1",
        json!({"determination_id": id, "member_ids": [member]}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(app.event_count(&member.to_string()).await, recorded);
}

#[tokio::test]
async fn the_bootstrap_administrator_token_is_one_fixed_identity() {
    let database = std::sync::Arc::new(TestDatabase::create().await);
    let bootstrap = "bootstrap-administrator-token-of-32-or-more-characters";
    let app = TestApp::spawn_with(database, Some(bootstrap)).await;
    let body = ruleset(2, "2020-Q1", json!(8));
    let (status, headers, _) = app.post_as("", "/v1/rulesets", &body).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, headers, _) = app.post_as("wrong", "/v1/rulesets", &body).await;
    assert_eq!(status, 401, "an unknown token is no token");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = app
        .post_as("", "/v1/replays", &json!({"dry_run": true}))
        .await;
    assert_eq!(status, 401, "replays are administrative too");
    let auditor = app.token(Role::Auditor, None, None).await;
    let (status, _, _) = app.post_as(&auditor, "/v1/rulesets", &body).await;
    assert_eq!(status, 403, "an auditor writes nothing");
    assert_eq!(app.event_count("rulebook").await, 1, "nothing recorded");

    let (status, _, published) = app.post_as(bootstrap, "/v1/rulesets", &body).await;
    assert_eq!(status, 201, "{published}");
    assert_eq!(published["published_by"], "bootstrap");
    let (status, _, listed) = app.get_as(&auditor, "/v1/rulesets").await;
    assert_eq!(status, 200, "{listed}");
    let (status, _, _) = app.get_as("", "/v1/rulesets").await;
    assert_eq!(status, 401, "reading needs a token too");
}

#[tokio::test]
async fn a_determination_id_serves_one_request_across_instances() {
    let database = std::sync::Arc::new(TestDatabase::create().await);
    let first = TestApp::spawn_on(database.clone()).await;
    let second = TestApp::spawn_on(database).await;
    let member = first.seed_member("2018-01-01").await;
    for (id, quarters) in [("2018-q1", ["2018-Q1"]), ("2018-q2", ["2018-Q2"])] {
        first.define_evaluation(id, &quarters).await;
    }
    let id = Uuid::new_v4();
    let (status, body) = first
        .post(
            "/v1/evaluations/2018-q1/determinations",
            &json!({"determination_id": id, "member_ids": [member]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let recorded = first.event_count(&member.to_string()).await;

    // The other instance never ran that job, and still refuses the id for anything else,
    // before deciding any member.
    for (evaluation, body) in [
        (
            "2018-q2",
            json!({"determination_id": id, "member_ids": [member]}),
        ),
        ("2018-q1", json!({"determination_id": id, "org_id": "fz"})),
    ] {
        let (status, answer) = second
            .post(
                &format!("/v1/evaluations/{evaluation}/determinations"),
                &body,
            )
            .await;
        assert_eq!(status, 409, "{answer}");
    }
    assert_eq!(second.event_count(&member.to_string()).await, recorded);
    // The same request on the other instance answers as the first did.
    let (status, again) = second
        .post(
            "/v1/evaluations/2018-q1/determinations",
            &json!({"determination_id": id, "member_ids": [member]}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["determined"], &again["ineligible"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(second.event_count(&member.to_string()).await, recorded);
}
