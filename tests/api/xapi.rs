//! The Learning Record Store's statements over HTTP: version headers, Basic and Bearer
//! credentials, round trips, the 204/409 rules of a statement sent again, batches all or
//! nothing, voiding, and who reads what.

use reqwest::Method;
use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::TestApp;

/// A request to the LRS with Basic credentials (any user, the token as password) and the
/// version header (none when `version` is empty).
async fn xapi(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    version: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .basic_auth("any learning app", Some(token));
    if !version.is_empty() {
        request = request.header("X-Experience-API-Version", version);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, body)
}

fn completed(name: &str) -> Value {
    json!({
        "actor": {"account": {"homePage": "https://studyledger.invalid/", "name": name}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"zh-CN": "完成"}},
        "object": {"id": "https://courses.example/党章", "objectType": "Activity"},
        "result": {"completion": true, "duration": "PT45M"},
        "timestamp": "2026-03-01T09:00:00+08:00",
    })
}

async fn count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM xapi_statements")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn statements_round_trip_and_a_statement_sent_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let id = Uuid::new_v4();
    let put = format!("/xapi/statements?statementId={id}");
    let statement = completed("m-1");

    let (status, headers, body) =
        xapi(&app, &ingest, Method::PUT, &put, Some(&statement), "").await;
    assert_eq!(status, 400, "no version header: {body}");
    assert_eq!(headers["x-experience-api-version"], "2.0.0");
    let (status, _, _) = xapi(&app, &ingest, Method::PUT, &put, Some(&statement), "0.9").await;
    assert_eq!(status, 400, "a version not spoken");
    assert_eq!(count(&app).await, 0, "nothing stored by refused requests");

    let (status, _, body) = xapi(&app, &ingest, Method::PUT, &put, Some(&statement), "1.0.3").await;
    assert_eq!(status, 204, "{body}");
    let get = format!("/xapi/statements?statementId={id}");
    let (status, _, kept) = xapi(&app, &ingest, Method::GET, &get, None, "2.0.0").await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["id"], json!(id));
    assert_eq!(kept["verb"], statement["verb"]);
    assert_eq!(kept["object"], statement["object"]);
    assert_eq!(kept["timestamp"], statement["timestamp"]);
    assert!(
        kept["stored"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{kept}"
    );
    assert_eq!(
        kept["authority"]["account"]["homePage"],
        "https://studyledger.invalid/"
    );
    assert_eq!(kept["version"], "1.0.0");
    let (_, headers, _) = xapi(&app, &ingest, Method::GET, &get, None, "2.0.0").await;
    let modified = headers["last-modified"].to_str().expect("Last-Modified");
    let stored = chrono::DateTime::parse_from_rfc3339(kept["stored"].as_str().expect("stored"))
        .expect("stored is a timestamp");
    assert_eq!(
        modified,
        stored.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    );
    assert!(headers.contains_key("x-experience-api-consistent-through"));

    // The same statement again, its timestamp written in another zone: nothing changes.
    let mut again = statement.clone();
    again["timestamp"] = json!("2026-03-01T01:00:00Z");
    let (status, _, _) = xapi(&app, &ingest, Method::PUT, &put, Some(&again), "2.0.0").await;
    assert_eq!(status, 204);
    let (status, _, ids) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&json!([with_id(&again, id)])),
        "2.0.0",
    )
    .await;
    assert_eq!((status, ids), (200, json!([id])));
    assert_eq!(count(&app).await, 1);

    // Other content under the same id: 409, nothing stored.
    let mut other = statement.clone();
    other["result"]["completion"] = json!(false);
    let (status, _, body) = xapi(&app, &ingest, Method::PUT, &put, Some(&other), "2.0.0").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], 409);
    assert_eq!(count(&app).await, 1);
}

fn with_id(statement: &Value, id: Uuid) -> Value {
    let mut statement = statement.clone();
    statement["id"] = json!(id);
    statement
}

#[tokio::test]
async fn a_batch_is_stored_whole_or_not_at_all() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let post = |batch: Value| {
        let app = &app;
        let ingest = ingest.clone();
        async move {
            xapi(
                app,
                &ingest,
                Method::POST,
                "/xapi/statements",
                Some(&batch),
                "2.0.0",
            )
            .await
        }
    };

    let (status, _, body) = post(json!([
        with_id(&completed("m-1"), a),
        with_id(&completed("m-2"), a)
    ]))
    .await;
    assert_eq!(status, 400, "one id twice: {body}");
    let mut broken = completed("m-2");
    broken["actor"] = json!({"name": "no identifier"});
    let (status, _, body) = post(json!([with_id(&completed("m-1"), a), broken])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("statement 1: actor")),
        "the reason names the statement and the property: {body}"
    );
    assert_eq!(count(&app).await, 0, "a refused batch stores nothing");

    let (status, _, ids) = post(json!([with_id(&completed("m-1"), a), completed("m-2")])).await;
    assert_eq!(status, 200, "{ids}");
    let ids = ids.as_array().expect("ids").clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], json!(a), "ids come back in the order sent");
    let mut changed = completed("m-1");
    changed["verb"]["display"] = json!({"en-US": "finished"});
    let (status, _, _) = post(json!([with_id(&completed("m-3"), b), with_id(&changed, a)])).await;
    assert_eq!(status, 409, "one conflicting statement refuses the batch");
    assert_eq!(count(&app).await, 2, "b was not stored with it");
}

#[tokio::test]
async fn a_voided_statement_is_read_only_as_voided_and_leaves_the_lists() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let target = Uuid::new_v4();
    let post = |body: Value| {
        let app = &app;
        let ingest = ingest.clone();
        async move {
            xapi(
                app,
                &ingest,
                Method::POST,
                "/xapi/statements",
                Some(&body),
                "2.0.0",
            )
            .await
        }
    };
    let (status, _, _) = post(with_id(&completed("m-1"), target)).await;
    assert_eq!(status, 200);
    let voiding_id = Uuid::new_v4();
    let voiding = json!({
        "id": voiding_id,
        "actor": {"mbox": "mailto:secretary@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target},
    });
    let (status, _, body) = post(voiding).await;
    assert_eq!(status, 200, "{body}");

    let read = |query: String| {
        let app = &app;
        let ingest = ingest.clone();
        async move { xapi(app, &ingest, Method::GET, &query, None, "2.0.0").await }
    };
    let (status, _, _) = read(format!("/xapi/statements?statementId={target}")).await;
    assert_eq!(status, 404, "a voided statement is not read by statementId");
    let (status, _, kept) = read(format!("/xapi/statements?voidedStatementId={target}")).await;
    assert_eq!((status, kept["id"].clone()), (200, json!(target)));
    let (status, _, _) = read(format!("/xapi/statements?voidedStatementId={voiding_id}")).await;
    assert_eq!(status, 404, "the voiding statement itself is not voided");
    let (status, _, page) = read("/xapi/statements".to_owned()).await;
    assert_eq!(status, 200);
    let listed: Vec<&Value> = page["statements"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(
        listed,
        vec![&json!(voiding_id)],
        "the list leaves the voided statement out"
    );

    let void_the_voiding = json!({
        "actor": {"mbox": "mailto:secretary@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": voiding_id},
    });
    let (status, _, body) = post(void_the_voiding).await;
    assert_eq!(status, 400, "a voiding statement cannot be voided: {body}");
}

#[tokio::test]
async fn pages_follow_more_links_and_ingest_tokens_read_only_their_own() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let other_app = app.token(Role::Ingest, None, None).await;
    let auditor = app.token(Role::Auditor, None, None).await;
    let member_id = app.seed_member("2026-01-05").await;
    let member = app.token(Role::Member, None, Some(member_id)).await;
    let mine: Vec<Value> = (0..5).map(|i| completed(&format!("m-{i}"))).collect();
    let (status, _, my_ids) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&json!(mine)),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, theirs) = xapi(
        &app,
        &other_app,
        Method::POST,
        "/xapi/statements",
        Some(&completed("m-9")),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200);

    // Pages of two, oldest first, by following `more`.
    let mut seen = Vec::new();
    let mut next = "/xapi/statements?limit=2&ascending=true".to_owned();
    while !next.is_empty() {
        let (status, headers, page) = xapi(&app, &ingest, Method::GET, &next, None, "2.0.0").await;
        assert_eq!(status, 200, "{page}");
        assert!(headers.contains_key("x-experience-api-consistent-through"));
        let statements = page["statements"].as_array().expect("a list");
        assert!(statements.len() <= 2);
        seen.extend(statements.iter().map(|s| s["id"].clone()));
        next = page["more"].as_str().expect("more").to_owned();
    }
    assert_eq!(
        Value::Array(seen),
        my_ids,
        "every statement of the token, once, in order"
    );

    let (status, _, page) = xapi(
        &app,
        &auditor,
        Method::GET,
        "/xapi/statements",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200);
    let all = page["statements"].as_array().expect("a list");
    assert_eq!(all.len(), 6, "an auditor reads every statement");
    assert_eq!(all[0]["id"], theirs[0], "newest first by default");

    let theirs_by_id = format!(
        "/xapi/statements?statementId={}",
        theirs[0].as_str().expect("id")
    );
    let (status, _, _) = xapi(&app, &ingest, Method::GET, &theirs_by_id, None, "2.0.0").await;
    assert_eq!(
        status, 404,
        "another app's statement is not this token's to read"
    );
    let (status, _, _) = xapi(
        &app,
        &member,
        Method::GET,
        "/xapi/statements",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(status, 403, "members do not read the LRS");
    let (status, _, _) = xapi(
        &app,
        &auditor,
        Method::POST,
        "/xapi/statements",
        Some(&completed("m-1")),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 403, "auditors store nothing");
    let (status, _, _) = xapi(
        &app,
        "not a token",
        Method::GET,
        "/xapi/statements",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = xapi(
        &app,
        &ingest,
        Method::GET,
        "/xapi/statements?agent=%7B%7D",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(status, 400, "an agent without an identifier");
    let (status, _, _) = xapi(
        &app,
        &ingest,
        Method::GET,
        "/xapi/statements?related=1",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(
        status, 400,
        "a parameter the LRS does not know is refused, not ignored"
    );

    let (status, headers, about) = xapi(&app, "", Method::GET, "/xapi/about", None, "").await;
    assert_eq!(status, 200, "about needs neither token nor version header");
    assert_eq!(about["version"][0], "2.0.0");
    assert_eq!(headers["x-experience-api-version"], "2.0.0");
    let (status, headers, body) = xapi(
        &app,
        &ingest,
        Method::HEAD,
        "/xapi/statements",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(
        (status, body),
        (200, Value::Null),
        "HEAD answers as GET, without a body"
    );
    assert!(headers.contains_key("x-experience-api-consistent-through"));
}

#[tokio::test]
async fn the_same_id_sent_at_once_by_many_is_stored_once() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let id = Uuid::new_v4();
    let put = format!("/xapi/statements?statementId={id}");
    let sends = (0..8).map(|i| {
        // Half send one statement, half another under the same id.
        let statement = completed(if i % 2 == 0 { "m-1" } else { "m-2" });
        let (app, ingest, put) = (&app, ingest.clone(), put.clone());
        async move {
            xapi(app, &ingest, Method::PUT, &put, Some(&statement), "2.0.0")
                .await
                .0
        }
    });
    let mut statuses = futures::future::join_all(sends).await;
    statuses.sort_unstable();
    assert_eq!(count(&app).await, 1, "one statement under the id");
    let stored = statuses.iter().filter(|s| **s == 204).count();
    assert_eq!(
        stored, 4,
        "those that sent the stored statement get 204: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        4,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn filters_find_statements_by_agent_activity_registration_and_verb() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let registration = Uuid::new_v4();
    let teacher = json!({"mbox": "mailto:teacher@example.org"});
    let mut in_class = completed("m-1");
    in_class["context"] = json!({
        "registration": registration.to_string().to_uppercase(),
        "instructor": teacher,
        "contextActivities": {"parent": [{"id": "https://courses.example/课程包"}]},
    });
    let mut attended = completed("m-2");
    attended["verb"] = json!({"id": "http://adlnet.gov/expapi/verbs/attended"});
    attended["object"] = json!({"id": "https://courses.example/课程包"});
    let batch = json!([in_class, attended, completed("m-2")]);
    let (status, _, ids) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&batch),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200, "{ids}");
    let found = |query: String| {
        let (app, ingest) = (&app, ingest.clone());
        async move {
            let path = format!("/xapi/statements?{query}");
            let (status, _, page) = xapi(app, &ingest, Method::GET, &path, None, "2.0.0").await;
            assert_eq!(status, 200, "{query}: {page}");
            let mut ids: Vec<Value> = page["statements"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|s| s["id"].clone())
                .collect();
            ids.reverse();
            ids
        }
    };
    let q = |pairs: &[(&str, String)]| serde_urlencoded::to_string(pairs).expect("a query");
    let m2 = json!({"account": {"homePage": "https://studyledger.invalid/", "name": "m-2"}});
    assert_eq!(
        found(q(&[("agent", m2.to_string())])).await,
        vec![ids[1].clone(), ids[2].clone()]
    );
    assert_eq!(
        found(q(&[
            ("agent", m2.to_string()),
            ("verb", "http://adlnet.gov/expapi/verbs/attended".into())
        ]))
        .await,
        vec![ids[1].clone()],
        "filters combine"
    );
    assert_eq!(
        found(q(&[("agent", teacher.to_string())])).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        found(q(&[
            ("agent", teacher.to_string()),
            ("related_agents", "true".into())
        ]))
        .await,
        vec![ids[0].clone()],
        "an instructor is a related agent"
    );
    let package = "https://courses.example/课程包".to_owned();
    assert_eq!(
        found(q(&[("activity", package.clone())])).await,
        vec![ids[1].clone()]
    );
    assert_eq!(
        found(q(&[
            ("activity", package),
            ("related_activities", "true".into())
        ]))
        .await,
        vec![ids[0].clone(), ids[1].clone()],
        "a parent activity is a related activity"
    );
    assert_eq!(
        found(q(&[("registration", registration.to_string())])).await,
        vec![ids[0].clone()],
        "registrations match whatever the case they were sent in"
    );
}

#[tokio::test]
async fn an_activity_reads_with_its_newest_definition_and_an_agent_as_a_person() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let course = "https://courses.example/党章";
    let query =
        |key: &str, value: &str| serde_urlencoded::to_string([(key, value)]).expect("a query");
    let activities = format!("/xapi/activities?{}", query("activityId", course));
    let (status, _, unknown) = xapi(&app, &ingest, Method::GET, &activities, None, "2.0.0").await;
    assert_eq!(
        status, 200,
        "an activity no statement named is still an activity"
    );
    assert_eq!(unknown, json!({"objectType": "Activity", "id": course}));
    for title in ["党章（旧）", "党章学习"] {
        let mut statement = completed("m-1");
        statement["object"]["definition"] = json!({"name": {"zh-CN": title}});
        let (status, _, _) = xapi(
            &app,
            &ingest,
            Method::POST,
            "/xapi/statements",
            Some(&statement),
            "2.0.0",
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, _, known) = xapi(&app, &ingest, Method::GET, &activities, None, "2.0.0").await;
    assert_eq!(
        known["definition"]["name"]["zh-CN"], "党章学习",
        "the newest definition"
    );

    let agent = json!({"name": "林晓", "mbox": "mailto:lin@example.org"}).to_string();
    let agents = format!("/xapi/agents?{}", query("agent", &agent));
    let (status, _, person) = xapi(&app, &ingest, Method::GET, &agents, None, "2.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(
        person,
        json!({"objectType": "Person", "name": ["林晓"], "mbox": ["mailto:lin@example.org"]})
    );
    let group = json!({"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]});
    let groups = format!("/xapi/agents?{}", query("agent", &group.to_string()));
    let (status, _, _) = xapi(&app, &ingest, Method::GET, &groups, None, "2.0.0").await;
    assert_eq!(status, 400, "a group is not a person");
}

#[tokio::test]
async fn every_statement_read_says_how_far_it_is_consistent_errors_included() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let target = Uuid::new_v4();
    let voiding = json!({
        "actor": {"mbox": "mailto:secretary@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target},
    });
    let batch = json!([with_id(&completed("m-1"), target), voiding]);
    let post = "/xapi/statements";
    let (status, _, _) = xapi(&app, &ingest, Method::POST, post, Some(&batch), "2.0.0").await;
    assert_eq!(status, 200);
    let verb = "http%3A%2F%2Fadlnet.gov%2Fexpapi%2Fverbs%2Fcompleted";
    let reads = [
        (
            format!("/xapi/statements?statementId={target}&verb={verb}"),
            400,
        ),
        ("/xapi/statements?related=1".to_owned(), 400),
        ("/xapi/statements?limit=-1".to_owned(), 400),
        (
            format!("/xapi/statements?statementId={}", Uuid::new_v4()),
            404,
        ),
        (format!("/xapi/statements?statementId={target}"), 404),
        (format!("/xapi/statements?voidedStatementId={target}"), 200),
        ("/xapi/statements".to_owned(), 200),
    ];
    for method in [Method::GET, Method::HEAD] {
        for (path, expected) in &reads {
            let (status, headers, _) =
                xapi(&app, &ingest, method.clone(), path, None, "2.0.0").await;
            assert_eq!(status, *expected, "{method} {path}");
            let through = headers
                .get("x-experience-api-consistent-through")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{method} {path} ({status}) names no instant"));
            assert!(
                chrono::DateTime::parse_from_rfc3339(through).is_ok(),
                "{method} {path}: {through}"
            );
        }
    }
    let (status, headers, _) = xapi(&app, &ingest, Method::GET, post, None, "").await;
    assert_eq!(status, 400, "no version header");
    assert!(headers.contains_key("x-experience-api-consistent-through"));
    let (_, headers, _) = xapi(
        &app,
        &ingest,
        Method::POST,
        post,
        Some(&completed("m-2")),
        "2.0.0",
    )
    .await;
    assert!(
        !headers.contains_key("x-experience-api-consistent-through"),
        "a write is not a read"
    );
}

#[tokio::test]
async fn an_activity_reads_with_the_definitions_of_every_statement_about_it_merged() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let course = "https://courses.example/党章";
    let definitions = [
        json!({"name": {"zh-CN": "党章（旧）", "en-US": "Party Constitution"},
               "description": {"en-US": "The charter, chapter by chapter"},
               "type": "http://adlnet.gov/expapi/activities/course",
               "moreInfo": "https://courses.example/info"}),
        json!({"name": {"zh-CN": "党章学习"},
               "type": "http://adlnet.gov/expapi/activities/module"}),
    ];
    for definition in &definitions {
        let mut statement = completed("m-1");
        statement["object"]["definition"] = definition.clone();
        let (status, _, _) = xapi(
            &app,
            &ingest,
            Method::POST,
            "/xapi/statements",
            Some(&statement),
            "2.0.0",
        )
        .await;
        assert_eq!(status, 200);
    }
    // A statement that gives no definition takes none away.
    let (status, _, _) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&completed("m-2")),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200);
    let query = serde_urlencoded::to_string([("activityId", course)]).expect("a query");
    let path = format!("/xapi/activities?{query}");
    let (status, _, activity) = xapi(&app, &ingest, Method::GET, &path, None, "2.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(
        activity,
        json!({"objectType": "Activity", "id": course, "definition": {
            "name": {"zh-CN": "党章学习", "en-US": "Party Constitution"},
            "description": {"en-US": "The charter, chapter by chapter"},
            "type": "http://adlnet.gov/expapi/activities/module",
            "moreInfo": "https://courses.example/info",
        }}),
        "languages merged, the newest text per language, the rest from the newest"
    );
}

/// A statement read with an `Accept-Language` header.
async fn read_in(app: &TestApp, token: &str, path: &str, languages: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("X-Experience-API-Version", "2.0.0")
        .header("Accept-Language", languages)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn statements_are_served_in_the_format_asked_for() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let id = Uuid::new_v4();
    let mut statement = with_id(&completed("m-1"), id);
    statement["actor"]["name"] = json!("林晓");
    statement["verb"]["display"] = json!({"zh-CN": "完成", "en-US": "completed"});
    statement["object"]["definition"] = json!({
        "name": {"zh-CN": "党章", "en-US": "Party Constitution"},
        "description": {"en-GB": "The charter", "zh": "说明"},
    });
    statement["context"] = json!({
        "team": {"objectType": "Group", "name": "一班",
                 "member": [{"name": "甲", "mbox": "mailto:a@example.org"}]},
        "contextActivities": {"parent": [{"id": "https://courses.example/课程包",
            "definition": {"name": {"zh-CN": "课程包", "en-US": "Package"}}}]},
    });
    let (status, _, body) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&statement),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let by_id = format!("/xapi/statements?statementId={id}&format=ids");
    let (status, _, ids) = xapi(&app, &ingest, Method::GET, &by_id, None, "2.0.0").await;
    assert_eq!(status, 200, "{ids}");
    let member = json!({"account": {"homePage": "https://studyledger.invalid/", "name": "m-1"}});
    assert_eq!(ids["actor"], member, "an agent is its identifier");
    assert_eq!(
        ids["verb"],
        json!({"id": "http://adlnet.gov/expapi/verbs/completed"})
    );
    assert_eq!(ids["object"], json!({"id": "https://courses.example/党章"}));
    assert_eq!(
        ids["context"]["team"],
        json!({"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]})
    );
    assert_eq!(
        ids["context"]["contextActivities"]["parent"],
        json!([{"id": "https://courses.example/课程包"}])
    );
    assert!(ids["authority"]["name"].is_null(), "{}", ids["authority"]);
    assert!(ids["authority"]["account"].is_object());
    assert_eq!(ids["result"], statement["result"], "the rest as stored");
    let (_, _, page) = xapi(
        &app,
        &ingest,
        Method::GET,
        "/xapi/statements?format=ids",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(page["statements"][0], ids, "a page in the same form");

    let canonical = read_in(
        &app,
        &ingest,
        &format!("/xapi/statements?statementId={id}&format=canonical"),
        "en;q=0.9, zh-CN",
    )
    .await;
    assert_eq!(canonical["verb"]["display"], json!({"zh-CN": "完成"}));
    let definition = &canonical["object"]["definition"];
    assert_eq!(definition["name"], json!({"zh-CN": "党章"}));
    assert_eq!(definition["description"], json!({"zh": "说明"}));
    assert_eq!(canonical["actor"]["name"], "林晓", "agents as stored");
    let page = read_in(&app, &ingest, "/xapi/statements?format=canonical", "en").await;
    let english = &page["statements"][0];
    assert_eq!(english["verb"]["display"], json!({"en-US": "completed"}));
    assert_eq!(
        english["object"]["definition"]["description"],
        json!({"en-GB": "The charter"})
    );
    assert_eq!(
        english["context"]["contextActivities"]["parent"][0]["definition"]["name"],
        json!({"en-US": "Package"})
    );
    let (_, _, exact) = xapi(
        &app,
        &ingest,
        Method::GET,
        &format!("/xapi/statements?statementId={id}"),
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(exact["verb"], statement["verb"], "exact by default");
    let (status, _, _) = xapi(
        &app,
        &ingest,
        Method::GET,
        "/xapi/statements?format=full",
        None,
        "2.0.0",
    )
    .await;
    assert_eq!(status, 400);
}

/// A statement of `actor` (an mbox) about the statement `target`.
fn about_statement(actor: &str, verb: &str, target: Uuid) -> Value {
    json!({
        "actor": {"mbox": format!("mailto:{actor}")},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
        "object": {"objectType": "StatementRef", "id": target},
    })
}

#[tokio::test]
async fn statements_that_target_others_are_found_by_their_targets_filters() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let store = |statement: Value| {
        let (app, ingest) = (&app, ingest.clone());
        async move {
            let path = "/xapi/statements";
            let (status, _, ids) =
                xapi(app, &ingest, Method::POST, path, Some(&statement), "2.0.0").await;
            assert_eq!(status, 200, "{ids}");
            ids[0].clone()
        }
    };
    let found = |query: String| {
        let (app, ingest) = (&app, ingest.clone());
        async move {
            let path = format!("/xapi/statements?{query}&ascending=true");
            let (status, _, page) = xapi(app, &ingest, Method::GET, &path, None, "2.0.0").await;
            assert_eq!(status, 200, "{query}: {page}");
            let ids: Vec<Value> = page["statements"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|s| s["id"].clone())
                .collect();
            ids
        }
    };
    let q = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).expect("a query");
    let course = "https://courses.example/党章";

    // A comment on a completion, and a reply to the comment: found by the completion's
    // activity and agent, as the completion is.
    let completion = Uuid::new_v4();
    store(with_id(&completed("m-1"), completion)).await;
    let comment = store(about_statement(
        "teacher@example.org",
        "commented",
        completion,
    ))
    .await;
    let comment_id = Uuid::parse_str(comment.as_str().expect("an id")).expect("a uuid");
    let reply = store(about_statement("lin@example.org", "responded", comment_id)).await;
    let all_three = vec![json!(completion), comment.clone(), reply.clone()];
    assert_eq!(found(q(&[("activity", course)])).await, all_three);
    let m1 = json!({"account": {"homePage": "https://studyledger.invalid/", "name": "m-1"}});
    assert_eq!(found(q(&[("agent", &m1.to_string())])).await, all_three);
    let commented = "http://adlnet.gov/expapi/verbs/commented";
    assert_eq!(
        found(q(&[("verb", commented)])).await,
        vec![comment.clone(), reply.clone()],
        "the reply's target is a comment"
    );
    let attended = "http://adlnet.gov/expapi/verbs/attended";
    assert_eq!(found(q(&[("verb", attended)])).await, Vec::<Value>::new());

    // A statement about one stored later is found once its target is.
    let later = Uuid::new_v4();
    let early = store(about_statement("teacher@example.org", "commented", later)).await;
    let mut attendance = with_id(&completed("m-2"), later);
    attendance["verb"] = json!({"id": attended});
    store(attendance).await;
    assert_eq!(
        found(q(&[("verb", attended)])).await,
        vec![early, json!(later)]
    );

    // A voided statement leaves the lists; its voiding statement is found in its place, as
    // far as its own time of storing is in the range asked for.
    let passed = Uuid::new_v4();
    let mut pass = with_id(&completed("m-3"), passed);
    pass["verb"] = json!({"id": "http://adlnet.gov/expapi/verbs/passed"});
    store(pass).await;
    let by_id = format!("/xapi/statements?statementId={passed}");
    let (_, _, kept) = xapi(&app, &ingest, Method::GET, &by_id, None, "2.0.0").await;
    let stored = kept["stored"].as_str().expect("stored").to_owned();
    let voiding = store(about_statement("secretary@example.org", "voided", passed)).await;
    let passed_verb = "http://adlnet.gov/expapi/verbs/passed";
    assert_eq!(
        found(q(&[("verb", passed_verb)])).await,
        vec![voiding.clone()]
    );
    assert_eq!(
        found(q(&[("verb", passed_verb), ("since", &stored)])).await,
        vec![voiding]
    );
    assert_eq!(
        found(q(&[("verb", passed_verb), ("until", &stored)])).await,
        Vec::<Value>::new(),
        "until applies to the voiding statement, stored after"
    );
}

#[tokio::test]
async fn a_batch_larger_than_the_json_api_takes_is_stored_and_one_over_4_mib_is_refused() {
    let app = TestApp::spawn().await;
    let ingest = app.token(Role::Ingest, None, None).await;
    let described = |n: usize| {
        let mut statement = completed(&format!("m-{n}"));
        statement["object"]["definition"] = json!({"description": {"zh-CN": "党史学习".repeat(100), "en-US": "history ".repeat(100)}});
        statement
    };
    // About 300 KiB: far over the 64 KiB of the JSON API, well under the LRS's 4 MiB.
    let batch: Vec<Value> = (0..150).map(described).collect();
    let (status, _, ids) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&json!(batch)),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 200, "{ids}");
    assert_eq!(ids.as_array().map(Vec::len), Some(150));
    let huge: Vec<Value> = (0..2_200).map(described).collect();
    let (status, _, body) = xapi(
        &app,
        &ingest,
        Method::POST,
        "/xapi/statements",
        Some(&json!(huge)),
        "2.0.0",
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(count(&app).await, 150);
}
