//! The LRS's state documents over HTTP: stored and read back with their content type and
//! ETag, merged by POST, guarded by If-Match / If-None-Match, listed and removed per scope.

use reqwest::Method;
use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::TestApp;

struct Lrs<'a> {
    app: &'a TestApp,
    token: String,
}

impl Lrs<'_> {
    /// A request to the state resource; answers status, headers and body text.
    async fn send(
        &self,
        method: Method,
        query: &[(&str, String)],
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let query = serde_urlencoded::to_string(query).expect("a query");
        let mut request = reqwest::Client::new()
            .request(
                method,
                format!("{}/xapi/activities/state?{query}", self.app.address),
            )
            .bearer_auth(&self.token)
            .header("X-Experience-API-Version", "2.0.0");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            request = request
                .header("Content-Type", content_type)
                .body(bytes.to_vec());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }
}

fn scope(registration: Option<Uuid>, state_id: Option<&str>) -> Vec<(&'static str, String)> {
    let agent = json!({"account": {"homePage": "https://studyledger.invalid/", "name": "m-1"}});
    let mut query = vec![
        ("activityId", "https://courses.example/党章".to_owned()),
        ("agent", agent.to_string()),
    ];
    if let Some(registration) = registration {
        query.push(("registration", registration.to_string()));
    }
    if let Some(id) = state_id {
        query.push(("stateId", id.to_owned()));
    }
    query
}

#[tokio::test]
async fn state_documents_are_kept_merged_and_guarded_by_their_etags() {
    let app = TestApp::spawn().await;
    let lrs = Lrs {
        app: &app,
        token: app.token(Role::Ingest, None, None).await,
    };
    let registration = Uuid::new_v4();
    let launch = scope(Some(registration), Some("LMS.LaunchData"));
    let launch_data = br#"{"launchMode":"Normal","moveOn":"Completed"}"#;

    let (status, headers, _) = lrs
        .send(
            Method::PUT,
            &launch,
            Some(("application/json", launch_data)),
            &[],
        )
        .await;
    assert_eq!(status, 204);
    let etag = headers["etag"].to_str().expect("an etag").to_owned();
    let (status, headers, body) = lrs.send(Method::GET, &launch, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["etag"].to_str().expect("etag"), etag);
    assert!(headers.contains_key("last-modified"));
    assert_eq!(body.as_bytes(), launch_data);

    // Guarded writes: 412 when the document is not as the client believes, nothing changed.
    let other = b"{\"launchMode\":\"Review\"}";
    for guard in [("If-None-Match", "*"), ("If-Match", "\"not-the-etag\"")] {
        let (status, _, _) = lrs
            .send(
                Method::PUT,
                &launch,
                Some(("application/json", other)),
                &[guard],
            )
            .await;
        assert_eq!(status, 412, "{guard:?}");
    }
    let (_, _, body) = lrs.send(Method::GET, &launch, None, &[]).await;
    assert_eq!(
        body.as_bytes(),
        launch_data,
        "refused writes change nothing"
    );
    let (status, _, _) = lrs
        .send(
            Method::POST,
            &launch,
            Some(("application/json", other)),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, 204, "the right ETag lets the write through");
    let (_, headers, body) = lrs.send(Method::GET, &launch, None, &[]).await;
    let merged: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        merged,
        json!({"launchMode": "Review", "moveOn": "Completed"}),
        "POST merges"
    );
    assert_ne!(
        headers["etag"].to_str().expect("etag"),
        etag,
        "a change makes a new ETag"
    );

    let bookmark = scope(Some(registration), Some("bookmark"));
    let (status, _, _) = lrs
        .send(Method::PUT, &bookmark, Some(("text/plain", b"page 7")), &[])
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = lrs
        .send(
            Method::POST,
            &bookmark,
            Some(("application/json", b"{}")),
            &[],
        )
        .await;
    assert_eq!(status, 400, "text is not merged with JSON: {body}");
    let (status, _, _) = lrs
        .send(
            Method::PUT,
            &scope(None, Some("bookmark")),
            Some(("text/plain", b"x")),
            &[],
        )
        .await;
    assert_eq!(status, 204, "without a registration is another scope");

    let (status, _, ids) = lrs
        .send(Method::GET, &scope(Some(registration), None), None, &[])
        .await;
    assert_eq!(status, 200);
    let ids: Value = serde_json::from_str(&ids).expect("JSON");
    assert_eq!(ids, json!(["LMS.LaunchData", "bookmark"]));
    let (status, _, _) = lrs.send(Method::DELETE, &bookmark, None, &[]).await;
    assert_eq!(status, 204);
    let (status, _, _) = lrs.send(Method::GET, &bookmark, None, &[]).await;
    assert_eq!(status, 404);
    let (status, _, _) = lrs
        .send(Method::DELETE, &scope(Some(registration), None), None, &[])
        .await;
    assert_eq!(status, 204);
    let (_, _, ids) = lrs
        .send(Method::GET, &scope(Some(registration), None), None, &[])
        .await;
    assert_eq!(ids, "[]", "every document of the scope removed");
    let (_, _, ids) = lrs.send(Method::GET, &scope(None, None), None, &[]).await;
    assert_eq!(ids, "[\"bookmark\"]", "other scopes keep theirs");

    let mut bad = scope(None, Some("x"));
    bad[1].1 = "{\"name\":\"nobody\"}".to_owned();
    let (status, _, _) = lrs.send(Method::GET, &bad, None, &[]).await;
    assert_eq!(status, 400, "an agent without an identifier");
    let (status, _, _) = lrs
        .send(
            Method::PUT,
            &scope(None, None),
            Some(("text/plain", b"x")),
            &[],
        )
        .await;
    assert_eq!(status, 400, "a PUT names its stateId");
}

/// A request to a profile resource (`activities/profile` or `agents/profile`).
async fn profile(
    app: &TestApp,
    token: &str,
    method: Method,
    path_and_query: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path_and_query}", app.address))
        .bearer_auth(token)
        .header("X-Experience-API-Version", "2.0.0");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(bytes) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(bytes.to_vec());
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn a_profile_that_exists_is_replaced_only_by_a_writer_who_names_its_version() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Ingest, None, None).await;
    let agent = json!({"mbox": "mailto:lin@example.org"}).to_string();
    let resources = [
        format!(
            "/xapi/activities/profile?{}",
            serde_urlencoded::to_string([("activityId", "https://courses.example/c-1")])
                .expect("query")
        ),
        format!(
            "/xapi/agents/profile?{}",
            serde_urlencoded::to_string([("agent", agent.as_str())]).expect("query")
        ),
    ];
    for resource in resources {
        let one = format!("{resource}&profileId=preferences");
        let (status, headers, _) = profile(
            &app,
            &token,
            Method::PUT,
            &one,
            Some(b"{\"lang\":\"zh-CN\"}"),
            &[],
        )
        .await;
        assert_eq!(
            status, 204,
            "{resource}: a new profile needs no precondition"
        );
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        let (status, _, _) = profile(
            &app,
            &token,
            Method::PUT,
            &one,
            Some(b"{\"lang\":\"en\"}"),
            &[],
        )
        .await;
        assert_eq!(
            status, 409,
            "{resource}: replacing without naming the version"
        );
        let (status, _, _) = profile(
            &app,
            &token,
            Method::PUT,
            &one,
            Some(b"{\"lang\":\"en\"}"),
            &[("If-None-Match", "*")],
        )
        .await;
        assert_eq!(status, 412, "{resource}: it exists");
        let (status, _, _) = profile(
            &app,
            &token,
            Method::PUT,
            &one,
            Some(b"{\"lang\":\"en\"}"),
            &[("If-Match", &etag)],
        )
        .await;
        assert_eq!(status, 204, "{resource}: the version named");
        let (status, _, _) =
            profile(&app, &token, Method::POST, &one, Some(b"{\"size\":2}"), &[]).await;
        assert_eq!(
            status, 204,
            "{resource}: POST merges without a precondition"
        );
        let (status, _, body) = profile(&app, &token, Method::GET, &one, None, &[]).await;
        assert_eq!(status, 200);
        let kept: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(kept, json!({"lang": "en", "size": 2}), "{resource}");
        let (_, _, ids) = profile(&app, &token, Method::GET, &resource, None, &[]).await;
        assert_eq!(ids, "[\"preferences\"]");
        let (status, _, _) = profile(&app, &token, Method::DELETE, &one, None, &[]).await;
        assert_eq!(status, 204);
        let (status, _, _) = profile(&app, &token, Method::GET, &one, None, &[]).await;
        assert_eq!(status, 404, "{resource}: removed");
    }
}

#[tokio::test]
async fn a_2_0_put_over_a_state_document_that_exists_must_name_its_version() {
    let app = TestApp::spawn().await;
    let lrs = Lrs {
        app: &app,
        token: app.token(Role::Ingest, None, None).await,
    };
    let bookmark = scope(Some(Uuid::new_v4()), Some("bookmark"));
    let json = "application/json";
    let (status, headers, _) = lrs
        .send(Method::PUT, &bookmark, Some((json, b"{\"page\":7}")), &[])
        .await;
    assert_eq!(status, 204, "a new document needs no precondition");
    let etag = headers["etag"].to_str().expect("an etag").to_owned();

    let (status, _, body) = lrs
        .send(Method::PUT, &bookmark, Some((json, b"{\"page\":8}")), &[])
        .await;
    assert_eq!(status, 409, "replacing without naming the version: {body}");
    let (_, _, kept) = lrs.send(Method::GET, &bookmark, None, &[]).await;
    assert_eq!(kept, "{\"page\":7}", "the refused PUT changed nothing");
    let (status, _, _) = lrs
        .send(
            Method::PUT,
            &bookmark,
            Some((json, b"{\"page\":8}")),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, 204, "the version named");
    let (status, _, _) = lrs
        .send(Method::POST, &bookmark, Some((json, b"{\"size\":2}")), &[])
        .await;
    assert_eq!(status, 204, "POST merges without a precondition");

    // xAPI 1.0.x let state be replaced freely, and its clients (cmi5 content) rely on it.
    let query = serde_urlencoded::to_string(&bookmark).expect("a query");
    let response = reqwest::Client::new()
        .put(format!("{}/xapi/activities/state?{query}", app.address))
        .bearer_auth(&lrs.token)
        .header("X-Experience-API-Version", "1.0.3")
        .header("Content-Type", json)
        .body("{\"page\":9}")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 204, "a 1.0.3 client");
    let (_, _, kept) = lrs.send(Method::GET, &bookmark, None, &[]).await;
    assert_eq!(kept, "{\"page\":9}");
}

#[tokio::test]
async fn a_post_of_json_that_is_not_an_object_is_refused_even_where_no_document_is() {
    let app = TestApp::spawn().await;
    let lrs = Lrs {
        app: &app,
        token: app.token(Role::Ingest, None, None).await,
    };
    let not_objects: [&[u8]; 3] = [b"[1, 2]", b"\"page 7\"", b"{not json"];
    for body in not_objects {
        let new = scope(None, Some("new"));
        let (status, _, answer) = lrs
            .send(Method::POST, &new, Some(("application/json", body)), &[])
            .await;
        assert_eq!(status, 400, "state: {answer}");
        let (status, _, _) = lrs.send(Method::GET, &new, None, &[]).await;
        assert_eq!(status, 404, "nothing stored");
    }
    let (status, _, _) = lrs
        .send(
            Method::POST,
            &scope(None, Some("new")),
            Some(("application/json", b"{\"page\":7}")),
            &[],
        )
        .await;
    assert_eq!(status, 204, "an object is stored as a PUT would");

    let agent = json!({"mbox": "mailto:lin@example.org"}).to_string();
    let resources = [
        format!(
            "/xapi/activities/profile?{}",
            serde_urlencoded::to_string([
                ("activityId", "https://courses.example/c-1"),
                ("profileId", "new")
            ])
            .expect("query")
        ),
        format!(
            "/xapi/agents/profile?{}",
            serde_urlencoded::to_string([("agent", agent.as_str()), ("profileId", "new")])
                .expect("query")
        ),
    ];
    for resource in resources {
        for body in not_objects {
            let (status, _, answer) =
                profile(&app, &lrs.token, Method::POST, &resource, Some(body), &[]).await;
            assert_eq!(status, 400, "{resource}: {answer}");
        }
        let (status, _, _) = profile(&app, &lrs.token, Method::GET, &resource, None, &[]).await;
        assert_eq!(status, 404, "{resource}: nothing stored");
    }
}
