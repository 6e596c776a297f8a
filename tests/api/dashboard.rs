//! The dashboard through the real router: signing in and out with the session cookie and the
//! forms' CSRF values, sessions that end with their token, what each role may open (and the 403
//! that shows nothing of another member), the figures of the pages against the API's answers,
//! and an appeal resolved through the form. (The walk through every page in a real browser is
//! `scripts/browser`.)

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;
use studyledger::store::tokens::{self, Role};
use studyledger_aggregates::values::{local_date, Quarter};
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// A browser of sorts: no redirects followed, cookies kept by hand.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_owned()
    }

    /// The text of the element with `data-field="{field}"` inside the element with `id`.
    fn field(&self, id: &str, field: &str) -> String {
        let start = self
            .body
            .find(&format!("id=\"{id}\""))
            .expect("the element");
        let rest = &self.body[start..];
        let at = rest
            .find(&format!("data-field=\"{field}\">"))
            .expect("the field")
            + field.len()
            + 14;
        rest[at..at + rest[at..].find('<').expect("its end")].to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let raw = value.to_str().expect("cookie");
            let (pair, _) = raw.split_once(';').unwrap_or((raw, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.page(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"))
            .send()
            .await
            .expect("POST");
        self.page(response).await
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep(&headers);
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// Signs in with `token`; the page it lands on.
    async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        let signed = self
            .post("/sign-in", &[("token", token), ("csrf", &csrf)])
            .await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        let to = signed.location().to_owned();
        self.get(&to).await
    }
}

#[tokio::test]
async fn a_session_opens_with_a_token_and_ends_at_sign_out_or_with_its_token() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let token = app.token(Role::Member, None, Some(member)).await;
    let mut browser = Browser::new(&app);

    let form = browser.get("/").await;
    assert!(form
        .body
        .contains("<input id=\"token\" type=\"password\" name=\"token\""));
    // Without the form's CSRF value, or with a token the service does not accept: no session.
    let refused = browser
        .post("/sign-in", &[("token", &token), ("csrf", "")])
        .await;
    assert_eq!(refused.status, 403);
    let csrf = form.csrf();
    let wrong = browser
        .post("/sign-in", &[("token", "slt_not-a-token"), ("csrf", &csrf)])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(!browser.cookies.iter().any(|(n, _)| n == "sl_session"));

    let form = browser.get("/").await;
    let signed = browser
        .post("/sign-in", &[("token", &token), ("csrf", &form.csrf())])
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location(), format!("/members/{member}"));
    let cookie = signed.headers[SET_COOKIE].to_str().expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Over plain HTTP no cookie is `Secure` (a browser would drop it); behind a TLS proxy
    // every one is.
    assert!(!cookie.contains("Secure"), "{cookie}");
    for (header, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=10.0.0.1;proto=https"),
    ] {
        let over_https = reqwest::Client::new()
            .get(format!("{}/", app.address))
            .header(header, value)
            .send()
            .await
            .expect("request");
        let set: Vec<&str> = over_https
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("text"))
            .collect();
        assert!(
            !set.is_empty() && set.iter().all(|c| c.ends_with("; Secure")),
            "{header}: {set:?}"
        );
    }
    let own = browser.get(&format!("/members/{member}")).await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("林晓") && own.body.contains("M-1"));

    // Sign-out needs the session's CSRF value; then the cookie opens nothing.
    let kept = browser.cookies.clone();
    let refused = browser.post("/sign-out", &[("csrf", "forged")]).await;
    assert_eq!(refused.status, 403);
    let out = browser.post("/sign-out", &[("csrf", &own.csrf())]).await;
    assert_eq!((out.status, out.location()), (303, "/"));
    browser.cookies = kept;
    let after = browser.get(&format!("/members/{member}")).await;
    assert_eq!(after.status, 303);
    assert!(
        after.location().starts_with("/?next="),
        "{}",
        after.location()
    );

    // A revoked token ends its sessions within a second.
    browser.sign_in(&token).await;
    let found = tokens::by_secret(&app.pool, &token)
        .await
        .expect("lookup")
        .expect("token");
    assert!(tokens::revoke(&app.pool, found.token_id, "test")
        .await
        .expect("revoke"));
    let revoked = Instant::now();
    let mut status = 200;
    while status != 303 && revoked.elapsed() < Duration::from_secs(3) {
        status = browser.get(&format!("/members/{member}")).await.status;
    }
    assert_eq!(status, 303);
    assert!(revoked.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn each_role_opens_only_its_pages_and_a_403_shows_nothing_of_another_member() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let other = Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": other, "member_no": "M-2", "name": "陈默", "org_id": "fz",
                    "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .post("/v1/orgs", &json!({"org_id": "xm", "name": "厦门"}))
        .await;
    assert_eq!(status, 201);

    let mut as_member = Browser::new(&app);
    as_member
        .sign_in(&app.token(Role::Member, None, Some(member)).await)
        .await;
    for path in [
        format!("/members/{other}"),
        format!("/members/{}", Uuid::new_v4()),
        "/orgs/fz".to_owned(),
        "/orgs/fz/appeals".to_owned(),
    ] {
        let page = as_member.get(&path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(
            !page.body.contains("陈默") && !page.body.contains("M-2"),
            "{path}"
        );
    }
    // Both 403s read the same: one for a member who exists, one for nobody.
    let known = as_member.get(&format!("/members/{other}")).await.body;
    let unknown = as_member
        .get(&format!("/members/{}", Uuid::new_v4()))
        .await
        .body;
    assert_eq!(known, unknown);
    assert_eq!(as_member.get("/rules").await.status, 200);

    let mut branch = Browser::new(&app);
    let home = branch
        .sign_in(&app.token(Role::OrgAdmin, Some("fz"), None).await)
        .await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("福州"));
    assert_eq!(branch.get("/orgs/xm").await.status, 403);
    assert_eq!(branch.get("/orgs/nowhere").await.status, 403);
    assert_eq!(branch.get(&format!("/members/{other}")).await.status, 200);

    let mut ingest = Browser::new(&app);
    let landed = ingest
        .sign_in(&app.token(Role::Ingest, None, None).await)
        .await;
    assert_eq!(landed.status, 403, "ingest tokens have no pages");
}

#[tokio::test]
async fn pages_show_the_apis_figures_and_an_appeal_is_resolved_through_the_form() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.study(
        member,
        "party-history",
        "2018-05-02T09:00:00Z",
        "2018-05-02T10:00:00Z",
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &json!({"completion_id": Uuid::new_v4(), "course_id": "party-history",
                    "completed_at": "2018-05-02T10:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    let (status, body) = app
        .post(
            "/v1/evaluations/2018-q2/determinations",
            &json!({"determination_id": Uuid::new_v4(), "member_ids": [member]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (appeal, _) = app.file_appeal(member, "2018-q2", "线下学习未计入").await;

    let mut admin = Browser::new(&app);
    admin
        .sign_in(&app.token(Role::Admin, None, None).await)
        .await;
    let (_, api) = app.get("/v1/orgs/fz/compliance?quarter=2018-Q2").await;
    let page = admin.get("/orgs/fz?quarter=2018-Q2").await;
    assert_eq!(page.status, 200);
    for field in [
        "members",
        "compliant",
        "non_compliant",
        "in_progress",
        "exempt",
    ] {
        assert_eq!(
            page.field("rollup", field),
            api[field].to_string(),
            "{field}"
        );
    }
    let rate = api["compliance_rate"]
        .as_f64()
        .map_or("—".to_owned(), |r| format!("{:.1}%", r * 100.0));
    assert_eq!(page.field("rollup", "compliance_rate"), rate);
    assert!(page.body.contains("<svg"), "the chart");
    // The picker offers up to today's quarter in the ledger's time zone, and the one shown.
    let today = local_date(chrono::Utc::now(), app.ledger().tz());
    let current = format!("<option value=\"{}\"", Quarter::of_date(today));
    assert!(page.body.contains(&current), "{current}");
    assert!(page.body.contains("<option value=\"2018-Q2\" selected>"));

    let (_, profile) = app.get(&format!("/v1/members/{member}")).await;
    let mine = admin.get(&format!("/members/{member}")).await;
    let total = format!(
        "{:.2}",
        profile["credited_hours"]["total"].as_f64().expect("hours")
    );
    assert_eq!(mine.field("profile", "total"), total);
    assert!(mine.body.contains("party-history"));

    let queue = admin.get("/orgs/fz/appeals").await;
    assert!(queue.body.contains("线下学习未计入"));
    let action = format!("/members/{member}/appeals/{appeal}/resolution");
    let before = app.event_count(&member.to_string()).await;
    let forged = admin
        .post(
            &action,
            &[
                ("csrf", "x"),
                ("org_id", "fz"),
                ("outcome", "upheld"),
                ("note", "n"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        app.event_count(&member.to_string()).await,
        before,
        "nothing recorded"
    );
    let csrf = queue.csrf();
    let done = admin
        .post(
            &action,
            &[
                ("csrf", &csrf),
                ("org_id", "fz"),
                ("outcome", "upheld"),
                ("note", "学时记录无误"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done
        .location()
        .starts_with("/orgs/fz/appeals?min_position="));
    let (_, eligibility) = app
        .get(&format!("/v1/members/{member}/eligibility/2018-q2"))
        .await;
    assert_eq!(eligibility["appeal"]["status"], "upheld");
    assert_eq!(eligibility["appeal"]["note"], "学时记录无误");
    let to = done.location().to_owned();
    let queue = admin.get(&to).await;
    assert!(
        !queue.body.contains("线下学习未计入"),
        "resolved: off the queue"
    );

    // English by the switch, kept in a cookie.
    let english = admin.get("/orgs/fz?quarter=2018-Q2&lang=en").await;
    assert!(english.body.contains("Compliance rate"));
    let again = admin.get("/rules").await;
    assert!(again.body.contains("<html lang=\"en\"") && again.body.contains("Rules"));
}

#[tokio::test]
async fn the_org_tree_is_read_a_level_at_a_time_and_an_administrator_sees_no_higher() {
    let app = TestApp::spawn().await;
    for (id, parent) in [
        ("fz", None),
        ("fz-b", Some("fz")),
        ("fz-a", Some("fz")),
        ("fz-a-1", Some("fz-a")),
    ] {
        let (status, body) = app
            .post(
                "/v1/orgs",
                &json!({"org_id": id, "name": id, "parent_id": parent}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    wait_until_projected(&app.pool).await;
    let (status, node) = app.get("/v1/orgs/fz?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        node["children"],
        json!([{"org_id": "fz-a", "name": "fz-a"}])
    );
    assert_eq!(node["next_cursor"], "fz-a");
    let (_, rest) = app.get("/v1/orgs/fz?limit=1&cursor=fz-a").await;
    assert_eq!(
        rest["children"],
        json!([{"org_id": "fz-b", "name": "fz-b"}])
    );
    let (_, roots) = app.get("/v1/orgs").await;
    assert_eq!(roots["orgs"], json!([{"org_id": "fz", "name": "fz"}]));
    let scoped = app.token(Role::OrgAdmin, Some("fz-a"), None).await;
    let (status, _, leaf) = app.get_as(&scoped, "/v1/orgs/fz-a-1").await;
    assert_eq!(status, 200);
    let path: Vec<&str> = leaf["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|o| o["org_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(path, ["fz-a", "fz-a-1"], "nothing above their subtree");
    assert_eq!(app.get_as(&scoped, "/v1/orgs/fz").await.0, 403);
    assert_eq!(app.get("/v1/orgs/nowhere").await.0, 404);
    assert_eq!(app.get_as(&scoped, "/v1/orgs/nowhere").await.0, 403);
}

#[tokio::test]
async fn sign_in_goes_back_only_to_a_page_of_the_service_and_every_form_needs_its_csrf_value() {
    let app = TestApp::spawn().await;
    app.seed_member("2018-01-01").await;
    wait_until_projected(&app.pool).await;
    let token = app.token(Role::Admin, None, None).await;
    for (next, lands) in [
        ("/rules", "/rules"),
        ("//evil.example/", "/orgs/fz"),
        ("/\\evil.example", "/orgs/fz"),
        ("/\tevil", "/orgs/fz"),
        ("/rules\r\nSet-Cookie: x=y", "/orgs/fz"),
        ("https://evil.example/", "/orgs/fz"),
    ] {
        let mut browser = Browser::new(&app);
        let form = browser.get("/").await;
        let signed = browser
            .post(
                "/sign-in",
                &[("token", &token), ("csrf", &form.csrf()), ("next", next)],
            )
            .await;
        assert_eq!((signed.status, signed.location()), (303, lands), "{next:?}");
    }

    let mut admin = Browser::new(&app);
    admin.sign_in(&token).await;
    let rules = admin.get("/rules").await;
    assert!(
        rules.body.contains("action=\"/what-ifs\""),
        "the what-if form"
    );
    let proposal = [
        ("effective_from", "2018-Q2"),
        ("required_hours", "2"),
        ("elective_hours", "1"),
        ("enforce_min_study_time", "true"),
    ];
    let mut forged = vec![("csrf", "forged")];
    forged.extend(proposal);
    assert_eq!(admin.post("/what-ifs", &forged).await.status, 403);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM what_ifs")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(rows, 0, "a forged form starts nothing");
    let csrf = rules.csrf();
    let mut sent = vec![("csrf", csrf.as_str())];
    sent.extend(proposal);
    let started = admin.post("/what-ifs", &sent).await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert!(started.location().starts_with("/what-ifs/"));
}
