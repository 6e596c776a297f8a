//! Access: every route against every role (the matrix below, which the README shows), scope
//! at every depth of the tree and across a transfer, separation of duties, revocation and
//! expiry, the 403 that hides existence, the read log, the token command and the OpenAPI
//! document.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use studyledger::store::tokens::{self, Role};
use uuid::Uuid;

use crate::helpers::{new_token, TestApp, TestDatabase};

const OPEN: &str = "open";

/// Every route with the roles it admits (`open`: no token needed). The README's table of
/// roles is rendered from this one, and the service's OpenAPI document must say the same.
pub const MATRIX: &[(&str, &str, &[&str])] = &[
    ("GET", "/healthz", &[OPEN]),
    ("GET", "/readyz", &[OPEN]),
    ("GET", "/openapi.json", &[OPEN]),
    ("GET", "/docs", &[OPEN]),
    ("GET", "/favicon.ico", &[OPEN]),
    ("GET", "/metrics", &["auditor", "admin"]),
    ("GET", "/v1/health", &["auditor", "admin"]),
    ("POST", "/v1/orgs", &["admin"]),
    ("GET", "/v1/orgs", &["auditor", "admin"]),
    (
        "GET",
        "/v1/orgs/{org_id}",
        &["org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/orgs/{org_id}/compliance",
        &["org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/orgs/{org_id}/members",
        &["org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/orgs/{org_id}/members.csv",
        &["org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/orgs/{org_id}/appeals",
        &["org_admin", "auditor", "admin"],
    ),
    ("POST", "/v1/orgs/{org_id}/renames", &["admin"]),
    ("POST", "/v1/orgs/{org_id}/closures", &["admin"]),
    ("POST", "/v1/orgs/{org_id}/merges", &["admin"]),
    ("POST", "/v1/orgs/{org_id}/moves", &["admin"]),
    (
        "GET",
        "/v1/orgs/{org_id}/names",
        &["org_admin", "auditor", "admin"],
    ),
    ("POST", "/v1/courses", &["admin"]),
    ("POST", "/v1/courses/{course_id}/activities", &["admin"]),
    ("POST", "/v1/courses/{course_id}/terms", &["admin"]),
    ("POST", "/v1/courses/{course_id}/retirements", &["admin"]),
    ("GET", "/v1/courses", &["org_admin", "auditor", "admin"]),
    (
        "GET",
        "/v1/courses/{course_id}",
        &["org_admin", "auditor", "admin"],
    ),
    ("POST", "/v1/members", &["org_admin", "admin"]),
    (
        "GET",
        "/v1/members/{member_id}",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/transfers",
        &["org_admin", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/corrections",
        &["org_admin", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/departures",
        &["org_admin", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/rejoinings",
        &["org_admin", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/study-sessions",
        &["ingest", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/course-completions",
        &["ingest", "admin"],
    ),
    (
        "GET",
        "/v1/members/{member_id}/compliance",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/members/{member_id}/ledger",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/members/{member_id}/ledger.csv",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/members/{member_id}/events",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "GET",
        "/v1/members/{member_id}/eligibility/{evaluation_id}",
        &["member", "org_admin", "auditor", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/credit-adjustments",
        &["org_admin", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/appeals",
        &["member", "admin"],
    ),
    (
        "POST",
        "/v1/members/{member_id}/appeals/{appeal_id}/resolution",
        &["org_admin", "admin"],
    ),
    (
        "GET",
        "/v1/rulesets",
        &["member", "org_admin", "auditor", "admin"],
    ),
    ("POST", "/v1/rulesets", &["admin"]),
    ("POST", "/v1/evaluations", &["admin"]),
    (
        "POST",
        "/v1/evaluations/{evaluation_id}/determinations",
        &["org_admin", "admin"],
    ),
    (
        "GET",
        "/v1/evaluations/{evaluation_id}/determinations/{determination_id}",
        &["org_admin", "auditor", "admin"],
    ),
    ("POST", "/v1/replays", &["admin"]),
    ("GET", "/v1/replays/{replay_id}", &["auditor", "admin"]),
    (
        "GET",
        "/v1/replays/{replay_id}/changes.csv",
        &["auditor", "admin"],
    ),
    ("POST", "/v1/verifications", &["auditor", "admin"]),
    (
        "GET",
        "/v1/verifications/{verification_id}",
        &["auditor", "admin"],
    ),
    ("GET", "/v1/access-log", &["member", "auditor", "admin"]),
    ("GET", "/v1/skipped-events", &["auditor", "admin"]),
    ("GET", "/v1/statement-mappings", &["auditor", "admin"]),
    ("POST", "/v1/statement-mappings/remaps", &["admin"]),
    ("POST", "/v1/imports", &["admin"]),
    ("GET", "/v1/imports/{import_id}", &["auditor", "admin"]),
    (
        "GET",
        "/v1/imports/{import_id}/refused.csv",
        &["auditor", "admin"],
    ),
    ("GET", "/xapi/about", &[OPEN]),
    ("GET", "/xapi/statements", &["ingest", "auditor", "admin"]),
    ("POST", "/xapi/statements", &["ingest", "admin"]),
    ("PUT", "/xapi/statements", &["ingest", "admin"]),
    ("GET", "/xapi/activities", &["ingest", "auditor", "admin"]),
    ("GET", "/xapi/agents", &["ingest", "auditor", "admin"]),
    (
        "GET",
        "/xapi/activities/state",
        &["ingest", "auditor", "admin"],
    ),
    ("PUT", "/xapi/activities/state", &["ingest", "admin"]),
    ("POST", "/xapi/activities/state", &["ingest", "admin"]),
    ("DELETE", "/xapi/activities/state", &["ingest", "admin"]),
    (
        "GET",
        "/xapi/activities/profile",
        &["ingest", "auditor", "admin"],
    ),
    ("PUT", "/xapi/activities/profile", &["ingest", "admin"]),
    ("POST", "/xapi/activities/profile", &["ingest", "admin"]),
    ("DELETE", "/xapi/activities/profile", &["ingest", "admin"]),
    (
        "GET",
        "/xapi/agents/profile",
        &["ingest", "auditor", "admin"],
    ),
    ("PUT", "/xapi/agents/profile", &["ingest", "admin"]),
    ("POST", "/xapi/agents/profile", &["ingest", "admin"]),
    ("DELETE", "/xapi/agents/profile", &["ingest", "admin"]),
    (
        "POST",
        "/v1/members/{member_id}/skipped-events/{sequence}/set-aside",
        &["admin"],
    ),
    ("POST", "/v1/what-ifs", &["admin"]),
    ("GET", "/v1/what-ifs/{what_if_id}", &["auditor", "admin"]),
    (
        "GET",
        "/v1/what-ifs/{what_if_id}/changes.csv",
        &["auditor", "admin"],
    ),
];

const ROLES: [&str; 5] = ["member", "ingest", "org_admin", "auditor", "admin"];

/// The matrix as the README shows it.
pub fn render_matrix() -> String {
    let mut table = String::from(
        "| route | no token | member | ingest | org_admin | auditor | admin |\n\
         |---|:-:|:-:|:-:|:-:|:-:|:-:|\n",
    );
    for (method, path, roles) in MATRIX {
        let open = roles.contains(&OPEN);
        let mark = |yes: bool| if yes { "✓" } else { "·" };
        let cells: Vec<&str> = ROLES
            .iter()
            .map(|r| mark(open || roles.contains(r)))
            .collect();
        table.push_str(&format!(
            "| `{method} {path}` | {} | {} |\n",
            mark(open),
            cells.join(" | ")
        ));
    }
    table
}

/// A ledger to probe: organisation `fz` with a child `fz-sub`, a member of `fz`, an evaluation
/// of 2018-Q2, a token of every role (the organisation administrator's over `fz`, the
/// member's for the member), and a determination job, a replay and a verification to look at.
struct World {
    app: TestApp,
    member: Uuid,
    tokens: BTreeMap<&'static str, String>,
    job: String,
    replay: String,
    verification: String,
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn().await;
        let member = app.seed_member("2018-01-01").await;
        let (status, body) = app
            .post(
                "/v1/orgs",
                &json!({"org_id": "fz-sub", "name": "支部", "parent_id": "fz"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        app.define_evaluation("2018-q2", &["2018-Q2"]).await;
        let mut tokens = BTreeMap::new();
        tokens.insert("admin", app.admin_token.clone());
        tokens.insert("member", app.token(Role::Member, None, Some(member)).await);
        tokens.insert(
            "org_admin",
            app.token(Role::OrgAdmin, Some("fz"), None).await,
        );
        tokens.insert("ingest", app.token(Role::Ingest, None, None).await);
        tokens.insert("auditor", app.token(Role::Auditor, None, None).await);
        let job = Uuid::new_v4();
        let (status, _, body) = app
            .post_as(
                &tokens["org_admin"],
                "/v1/evaluations/2018-q2/determinations",
                &json!({"determination_id": job, "org_id": "fz"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let replay = app.start_replay(true).await;
        app.replay_outcome(&replay).await;
        let (status, body) = app.post("/v1/verifications", &json!({})).await;
        assert_eq!(status, 202, "{body}");
        World {
            verification: body["verification_id"].as_str().expect("id").to_owned(),
            app,
            member,
            tokens,
            job: job.to_string(),
            replay,
        }
    }

    /// The route's path with this world's ids, and its query.
    fn path(&self, template: &str) -> String {
        let path = template
            .replace("{member_id}", &self.member.to_string())
            .replace("{org_id}", "fz")
            .replace("{evaluation_id}", "2018-q2")
            .replace("{appeal_id}", &Uuid::new_v4().to_string())
            .replace("{replay_id}", &self.replay)
            .replace("{determination_id}", &self.job)
            .replace("{verification_id}", &self.verification)
            .replace("{sequence}", "1")
            .replace("{course_id}", "ethics")
            .replace("{import_id}", &Uuid::new_v4().to_string())
            .replace("{what_if_id}", &Uuid::new_v4().to_string());
        if template.starts_with("/v1/orgs/{org_id}/") && !template.ends_with("/appeals") {
            format!("{path}?quarter=2018-Q2")
        } else if template == "/v1/access-log" {
            format!("{path}?member_id={}", self.member)
        } else {
            path
        }
    }

    /// A body the route would accept, fresh ids each time.
    fn body(&self, method: &str, template: &str, n: i64) -> Option<Value> {
        if method != "POST" {
            return None;
        }
        let id = Uuid::new_v4();
        let start = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z").expect("instant")
            + chrono::Duration::hours(n);
        Some(match template {
            "/v1/orgs" => json!({"org_id": format!("m-{n}"), "name": "组", "parent_id": "fz"}),
            "/xapi/activities/state" | "/xapi/activities/profile" | "/xapi/agents/profile" => {
                json!({"bookmark": n})
            }
            "/xapi/statements" => json!({"actor": {"mbox": "mailto:a@example.org"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
                "object": {"id": "https://courses.example/ethics"}}),
            "/v1/courses" => json!({"course_id": format!("c-{n}"), "title": "课",
                                    "category": "required", "credit_hours": 1}),
            "/v1/members" => json!({"member_id": id, "member_no": format!("N-{n}"),
                                    "name": "新", "org_id": "fz", "enrolled_on": "2018-01-01"}),
            "/v1/members/{member_id}/transfers" => json!({"transfer_id": id,
                "to_org_id": "fz-sub", "effective_on": "2018-03-01"}),
            "/v1/members/{member_id}/corrections" => json!({"correction_id": id,
                "name": format!("名{n}"), "reason": "更正"}),
            "/v1/members/{member_id}/departures" => json!({"departure_id": id,
                "left_on": "2018-06-01", "reason": "调离"}),
            "/v1/members/{member_id}/rejoinings" => json!({"rejoining_id": id,
                "rejoined_on": "2018-09-01", "org_id": "fz-sub"}),
            "/v1/members/{member_id}/study-sessions" => json!({"session_id": id,
                "course_id": "ethics", "started_at": start,
                "ended_at": start + chrono::Duration::minutes(30)}),
            "/v1/members/{member_id}/course-completions" => json!({"completion_id": id,
                "course_id": "ethics", "completed_at": "2018-05-20T01:00:00Z"}),
            "/v1/members/{member_id}/credit-adjustments" => json!({"adjustment_id": id,
                "category": "required", "hours": 1, "effective_at": "2018-05-02T00:00:00Z",
                "reason": "补录"}),
            "/v1/members/{member_id}/appeals" => json!({"appeal_id": id,
                "evaluation_id": "2018-q2", "reason": "复核"}),
            "/v1/members/{member_id}/appeals/{appeal_id}/resolution" => {
                json!({"outcome": "upheld", "note": "维持"})
            }
            "/v1/rulesets" => json!({"version": 1, "effective_from": "2000-Q1",
                "required_hours": 8, "elective_hours": 3,
                "excess_required_counts_as_elective": false, "enforce_min_study_time": true}),
            "/v1/evaluations" => json!({"evaluation_id": format!("e-{n}"), "name": "评",
                                        "quarters": ["2018-Q1"]}),
            "/v1/evaluations/{evaluation_id}/determinations" => {
                json!({"determination_id": id, "member_ids": [self.member]})
            }
            "/v1/replays" => json!({"dry_run": true}),
            "/v1/what-ifs" => json!({"effective_from": "2018-Q1", "required_hours": 10,
                "elective_hours": 3, "excess_required_counts_as_elective": false,
                "enforce_min_study_time": true}),
            "/v1/courses/{course_id}/activities" => {
                json!({"activity_id": format!("https://courses.example/ethics/{n}")})
            }
            "/v1/orgs/{org_id}/renames" => {
                json!({"rename_id": id, "name": format!("组{n}")})
            }
            // Members belong to the organisation: an admin's closing is admitted, then 409.
            "/v1/orgs/{org_id}/closures" => {
                json!({"closure_id": id, "closed_on": "2018-01-01", "reason": "撤销"})
            }
            // Into an organisation never registered: admitted, then 422, nobody moved.
            "/v1/orgs/{org_id}/merges" => json!({"merge_id": id, "into_org_id": "nowhere",
                "merged_on": "2018-01-01", "reason": "合并"}),
            // Under an organisation never registered: admitted, then 422, nothing moved.
            "/v1/orgs/{org_id}/moves" => json!({"move_id": id, "parent_id": "nowhere",
                "moved_on": "2018-01-01", "reason": "改隶"}),
            "/v1/courses/{course_id}/terms" => json!({"effective_from": "2990-01-01",
                "title": "伦理", "category": "elective", "credit_hours": 2}),
            "/v1/courses/{course_id}/retirements" => {
                json!({"retired_from": "2995-01-01", "reason": "下线"})
            }
            "/v1/statement-mappings/remaps" => json!({}),
            // JSON is not a format an import takes: admitted, then refused with 400.
            "/v1/imports" => json!({"kind": "session"}),
            "/v1/verifications" => json!({"member_id": self.member}),
            "/v1/members/{member_id}/skipped-events/{sequence}/set-aside" => {
                json!({"note": "已核对"})
            }
            other => panic!("no body for {other}"),
        })
    }
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_of_the_matrix() {
    let world = World::new().await;
    let app = &world.app;
    let mut n = 0;
    let mut wrong = Vec::new();
    for (method, template, roles) in MATRIX {
        let open = roles.contains(&OPEN);
        for who in std::iter::once("none").chain(ROLES) {
            n += 1;
            let token = world.tokens.get(who).map_or("", String::as_str);
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            let body = world.body(method.as_str(), template, n);
            let (status, _, answer) = app
                .request_as(token, method.clone(), &world.path(template), body.as_ref())
                .await;
            let expected = if open || roles.contains(&who) {
                "admitted"
            } else if who == "none" {
                "401"
            } else {
                "403"
            };
            let seen = match status {
                401 => "401",
                403 if answer["type"] == "/problems/forbidden" => "403",
                404 if answer["detail"] == "no such route" => "no such route",
                _ => "admitted",
            };
            if seen != expected {
                wrong.push(format!("{method} {template} as {who}: {status} {answer}"));
            }
        }
    }
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "routes that admit the wrong callers"
    );
}

#[tokio::test]
async fn the_openapi_document_names_every_route_with_its_roles_and_the_docs_are_served() {
    let app = TestApp::spawn().await;
    let (status, _, document) = app.get_as("", "/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeMap::new();
    let mut operation_ids = BTreeMap::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            // OpenAPI: "The id MUST be unique among all operations described in the API";
            // tools (schemathesis's links, client generators) key operations by it.
            let id = operation["operationId"].as_str().expect("an operationId");
            if let Some(other) = operation_ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} names both {other} and {method} {path}");
            }
            let requirement = &operation["security"][0];
            let mut roles: Vec<String> = match requirement.as_object() {
                Some(r) if r.is_empty() => vec![OPEN.to_owned()],
                _ => requirement["bearer"]
                    .as_array()
                    .expect("roles")
                    .iter()
                    .map(|r| r.as_str().expect("a role").to_owned())
                    .collect(),
            };
            roles.sort();
            documented.insert((method.to_uppercase(), path.clone()), roles);
        }
    }
    let matrix: BTreeMap<(String, String), Vec<String>> = MATRIX
        .iter()
        .map(|(method, path, roles)| {
            let mut roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
            roles.sort();
            ((method.to_string(), path.to_string()), roles)
        })
        .collect();
    assert_eq!(documented, matrix, "the document and the matrix agree");
    // Two `ToSchema` types of one name (`Register` in `orgs` and in `courses`) would be one
    // component, the last one merged: every body is a type of its own, and answers say
    // what they hold.
    let mut bodies = BTreeMap::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if let Some(body) = schema["$ref"].as_str() {
                if let Some(other) = bodies.insert(body.to_owned(), format!("{method} {path}")) {
                    panic!("{body} is the body of both {other} and {method} {path}");
                }
            }
        }
    }
    let component = |operation: &Value, status: &str| {
        let reference = operation["responses"][status]["content"]["application/json"]["schema"]
            ["$ref"]
            .as_str()
            .expect("a schema")
            .rsplit('/')
            .next()
            .expect("a name")
            .to_owned();
        document["components"]["schemas"][reference].clone()
    };
    let verification = &document["paths"]["/v1/verifications"]["post"];
    assert!(component(verification, "202")["properties"]["verification_id"].is_object());
    let replay = &document["paths"]["/v1/replays"]["post"];
    assert!(component(replay, "202")["properties"]["replay_id"].is_object());
    let responses = &document["paths"]["/v1/members"]["post"]["responses"];
    for status in ["201", "400", "401", "403", "409", "422", "503"] {
        assert!(
            responses.get(status).is_some(),
            "POST /v1/members answers {status}"
        );
    }
    let (status, _, page) = app.get_as("", "/docs").await;
    assert_eq!(status, 200);
    let page = page.as_str().expect("html");
    assert!(
        page.contains("swagger-ui") && page.contains("/openapi.json"),
        "{page}"
    );
    assert!(!page.contains("https://"), "nothing fetched from elsewhere");
    let (status, _, script) = app.get_as("", "/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, 200);
    assert!(script.as_str().is_some_and(|s| s.len() > 100_000));
    let (status, headers, _) = app.get_as("", "/favicon.ico").await;
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &"image/svg+xml".parse().expect("h"))
    );
}

#[test]
fn the_readme_shows_the_matrix_of_roles() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("the README");
    let table = render_matrix();
    assert!(
        readme.contains(&table),
        "the README's table of roles is the test's matrix; put this in it:\n{table}"
    );
}

/// Registers `org_id` under `parent` and enrols a member there; answers the member.
async fn member_in(app: &TestApp, org_id: &str, parent: Option<&str>, n: u32) -> Uuid {
    let (status, body) = app
        .post(
            "/v1/orgs",
            &json!({"org_id": org_id, "name": org_id, "parent_id": parent}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let member = Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": member, "member_no": format!("T-{n}"), "name": "成员",
                    "org_id": org_id, "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    member
}

#[tokio::test]
async fn an_organisation_administrator_reaches_their_subtree_at_every_depth_and_no_further() {
    let app = TestApp::spawn().await;
    let city = member_in(&app, "city", None, 1).await;
    let company = member_in(&app, "company", Some("city"), 2).await;
    let branch = member_in(&app, "branch", Some("company"), 3).await;
    let cell = member_in(&app, "cell", Some("branch"), 4).await;
    let other = member_in(&app, "other-branch", Some("company"), 5).await;
    let of_company = app.token(Role::OrgAdmin, Some("company"), None).await;
    let of_branch = app.token(Role::OrgAdmin, Some("branch"), None).await;
    let sees = |token: String, member: Uuid| {
        let app = &app;
        async move {
            let (status, _, _) = app.get_as(&token, &format!("/v1/members/{member}")).await;
            status
        }
    };
    assert_eq!(sees(of_company.clone(), company).await, 200);
    assert_eq!(sees(of_company.clone(), branch).await, 200);
    assert_eq!(sees(of_company.clone(), cell).await, 200);
    assert_eq!(sees(of_company.clone(), other).await, 200);
    assert_eq!(
        sees(of_company.clone(), city).await,
        403,
        "above the subtree"
    );
    assert_eq!(sees(of_branch.clone(), cell).await, 200);
    assert_eq!(sees(of_branch.clone(), branch).await, 200);
    assert_eq!(
        sees(of_branch.clone(), other).await,
        403,
        "a sibling's member"
    );
    assert_eq!(sees(of_branch.clone(), company).await, 403);
    for (org, expected) in [
        ("branch", 200),
        ("cell", 200),
        ("company", 403),
        ("other-branch", 403),
    ] {
        let path = format!("/v1/orgs/{org}/compliance?quarter=2018-Q2");
        let (status, _, body) = app.get_as(&of_branch, &path).await;
        assert_eq!(status, expected, "{org}: {body}");
    }
    // Writing follows the same scope: enrolling into a sibling is refused, and a transfer
    // needs both of its ends inside.
    let (status, _, _) = app
        .post_as(
            &of_branch,
            "/v1/members",
            &json!({"member_id": Uuid::new_v4(), "member_no": "T-9", "name": "外",
                    "org_id": "other-branch", "enrolled_on": "2018-01-01"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .post_as(
            &of_branch,
            &format!("/v1/members/{cell}/transfers"),
            &json!({"transfer_id": Uuid::new_v4(), "to_org_id": "other-branch",
                    "effective_on": "2018-03-01"}),
        )
        .await;
    assert_eq!(status, 403, "the other end is outside");
    let (status, _, body) = app
        .post_as(
            &of_company,
            &format!("/v1/members/{cell}/transfers"),
            &json!({"transfer_id": Uuid::new_v4(), "to_org_id": "other-branch",
                    "effective_on": "2018-03-01"}),
        )
        .await;
    assert_eq!(status, 201, "both ends inside the company: {body}");
}

#[tokio::test]
async fn a_transferred_member_leaves_the_old_branch_from_the_transfers_day_but_not_its_past() {
    let app = TestApp::spawn().await;
    let member = member_in(&app, "branch-1", None, 1).await;
    member_in(&app, "branch-2", None, 2).await;
    for day in 1..=3 {
        let (status, body) = app
            .post(
                &format!("/v1/members/{member}/credit-adjustments"),
                &json!({"adjustment_id": Uuid::new_v4(), "category": "required", "hours": 3,
                        "effective_at": format!("2018-05-0{day}T02:00:00Z"), "reason": "补录"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let of_old = app.token(Role::OrgAdmin, Some("branch-1"), None).await;
    let profile = format!("/v1/members/{member}");
    assert_eq!(app.get_as(&of_old, &profile).await.0, 200);
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let (status, transfer) = app
        .post(
            &format!("/v1/members/{member}/transfers"),
            &json!({"transfer_id": Uuid::new_v4(), "to_org_id": "branch-2",
                    "effective_on": today.to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{transfer}");
    let (status, _, body) = app.get_as(&of_old, &profile).await;
    assert_eq!(status, 403, "gone from the old branch from today: {body}");
    let of_new = app.token(Role::OrgAdmin, Some("branch-2"), None).await;
    assert_eq!(app.get_as(&of_new, &profile).await.0, 200);
    // The past stays where rule 7 counts it: 2018-Q2 in the old branch.
    let path = format!(
        "/v1/orgs/branch-1/compliance?quarter=2018-Q2&min_position={}",
        transfer["position"]
    );
    let (status, _, rollup) = app.get_as(&of_old, &path).await;
    assert_eq!(status, 200, "{rollup}");
    assert_eq!(
        (&rollup["members"], &rollup["credit_hours_total"]),
        (&json!(1), &json!(9.0)),
        "{rollup}"
    );
}

#[tokio::test]
async fn a_403_never_tells_whether_a_member_exists() {
    let app = TestApp::spawn().await;
    let mine = member_in(&app, "branch-1", None, 1).await;
    let someone = member_in(&app, "branch-2", None, 2).await;
    let nobody = Uuid::new_v4();
    let member = app.token(Role::Member, None, Some(mine)).await;
    let org_admin = app.token(Role::OrgAdmin, Some("branch-1"), None).await;
    for token in [&member, &org_admin] {
        for route in [
            "",
            "/compliance",
            "/ledger",
            "/events",
            "/eligibility/2018-q2",
        ] {
            let (existing, _, existing_body) = app
                .get_as(token, &format!("/v1/members/{someone}{route}"))
                .await;
            let (missing, _, missing_body) = app
                .get_as(token, &format!("/v1/members/{nobody}{route}"))
                .await;
            assert_eq!((existing, missing), (403, 403), "{route}");
            assert_eq!(existing_body, missing_body, "{route}: the same answer");
        }
    }
    let (existing, _, a) = app
        .get_as(&org_admin, "/v1/orgs/branch-2/compliance?quarter=2018-Q2")
        .await;
    let (missing, _, b) = app
        .get_as(
            &org_admin,
            "/v1/orgs/no-such-org/compliance?quarter=2018-Q2",
        )
        .await;
    assert_eq!((existing, missing, &a), (403, 403, &b));
    // Administrators and auditors are told: an unknown member is 404.
    let auditor = app.token(Role::Auditor, None, None).await;
    let (status, _, _) = app.get_as(&auditor, &format!("/v1/members/{nobody}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_token_that_decided_or_corrected_cannot_resolve_the_appeal_against_it() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    let decider = app.token(Role::Admin, None, None).await;
    let (status, _, body) = app
        .post_as(
            &decider,
            "/v1/evaluations/2018-q2/determinations",
            &json!({"determination_id": Uuid::new_v4(), "member_ids": [member]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (appeal, _) = app.file_appeal(member, "2018-q2", "线下学习未计入").await;
    let corrector = app.token(Role::OrgAdmin, Some("fz"), None).await;
    let (status, _, body) = app
        .post_as(
            &corrector,
            &format!("/v1/members/{member}/credit-adjustments"),
            &json!({"adjustment_id": Uuid::new_v4(), "category": "required", "hours": 8,
                    "effective_at": "2018-05-02T00:00:00Z", "reason": "签到表",
                    "appeal_id": appeal}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let resolution = format!("/v1/members/{member}/appeals/{appeal}/resolution");
    let decision = json!({"outcome": "overturned", "note": "补录后满足"});
    for (token, what) in [(&decider, "the determination"), (&corrector, "adjustment")] {
        let (status, _, body) = app.post_as(token, &resolution, &decision).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["type"], "/problems/separation-of-duties");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(what)),
            "{body}"
        );
    }
    let before = app.event_count(&member.to_string()).await;
    let reviewer = app.token(Role::OrgAdmin, Some("fz"), None).await;
    let (status, _, body) = app.post_as(&reviewer, &resolution, &decision).await;
    assert_eq!(status, 200, "another token may: {body}");
    assert_eq!(app.event_count(&member.to_string()).await, before + 1);
    // The trail names who did what.
    let (_, stream) = app.get(&format!("/v1/members/{member}/events")).await;
    let roles: Vec<&str> = stream["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["role"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        roles,
        ["admin", "admin", "member", "org_admin", "org_admin"]
    );
}

#[tokio::test]
async fn a_revoked_token_stops_within_a_second_and_an_expired_one_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Auditor, None, None).await;
    assert_eq!(app.get_as(&token, "/v1/rulesets").await.0, 200);
    let found = tokens::by_secret(&app.pool, &token)
        .await
        .expect("lookup")
        .expect("the token");
    assert!(tokens::revoke(&app.pool, found.token_id, "test")
        .await
        .expect("revoke"));
    let revoked = Instant::now();
    let mut status = 200;
    while status != 401 && revoked.elapsed() < Duration::from_secs(3) {
        status = app.get_as(&token, "/v1/rulesets").await.0;
    }
    assert_eq!(status, 401);
    assert!(
        revoked.elapsed() < Duration::from_millis(1500),
        "{:?}",
        revoked.elapsed()
    );

    let mut expired = new_token(Role::Auditor, None, None, "expired");
    expired.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    let (_, secret) = tokens::issue(&app.pool, &expired).await.expect("issue");
    let (status, headers, _) = app.get_as(&secret, "/v1/rulesets").await;
    assert_eq!(
        (status, &headers["www-authenticate"]),
        (401, &"Bearer".parse().expect("h"))
    );
}

#[tokio::test]
async fn reads_of_a_members_record_by_others_are_on_record_and_the_member_sees_them() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let own = app.token(Role::Member, None, Some(member)).await;
    let auditor = app.token(Role::Auditor, None, None).await;
    let log = format!("/v1/access-log?member_id={member}");
    let (status, _, before) = app.get_as(&own, &log).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["entries"], json!([]));
    // The member's own reads are not on record; an auditor's are, before the answer.
    assert_eq!(
        app.get_as(&own, &format!("/v1/members/{member}")).await.0,
        200
    );
    assert_eq!(
        app.get_as(&auditor, &format!("/v1/members/{member}/ledger"))
            .await
            .0,
        200
    );
    let (status, _, _) = app
        .get_as(&auditor, "/v1/orgs/fz/members?quarter=2018-Q2")
        .await;
    assert_eq!(status, 200);
    let (_, _, after) = app.get_as(&own, &log).await;
    let entries = after["entries"].as_array().expect("entries");
    let routes: Vec<&str> = entries
        .iter()
        .map(|e| e["route"].as_str().expect("route"))
        .collect();
    assert_eq!(
        routes,
        [
            "/v1/orgs/{org_id}/members",
            "/v1/members/{member_id}/ledger"
        ],
        "newest first, the member's own read absent"
    );
    assert!(entries
        .iter()
        .all(|e| e["role"] == "auditor" && e["name"] == "test auditor"));
    assert!(entries.iter().all(|e| e["member_ids"] == json!([member])));
    // Nobody else's log for a member, and the log itself cannot be edited.
    let someone_else = member_in(&app, "fz-2", None, 2).await;
    let other = app.token(Role::Member, None, Some(someone_else)).await;
    assert_eq!(app.get_as(&other, &log).await.0, 403);
    assert_eq!(app.get_as(&own, "/v1/access-log").await.0, 403);
    let refused = sqlx::query("DELETE FROM access_log")
        .execute(&app.pool)
        .await;
    assert!(refused.is_err(), "append-only");
    let token_id = entries[0]["token_id"].as_str().expect("token id");
    let (_, _, by_token) = app
        .get_as(&auditor, &format!("/v1/access-log?token_id={token_id}"))
        .await;
    assert_eq!(by_token["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_token_command_shows_the_secret_once_and_revokes_by_secret() {
    let database = TestDatabase::create().await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_studyledger"))
            .args(args)
            .env("DATABASE_URL", database.url())
            .env("RUST_LOG", "error")
            .output()
            .expect("studyledger token");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (ok, issued) = run(&[
        "token",
        "issue",
        "--role",
        "auditor",
        "--name",
        "审计员",
        "--expires",
        "30",
    ]);
    assert!(ok, "{issued}");
    let secret = issued.lines().last().expect("a last line").to_owned();
    assert!(secret.len() >= 32, "{secret}");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    assert!(issued.lines().any(|l| l == "role auditor"), "{issued}");
    let (ok, listed) = run(&["token", "list"]);
    assert!(
        ok && listed.contains("审计员") && !listed.contains(&secret),
        "{listed}"
    );
    let (ok, refused) = run(&["token", "issue", "--role", "org_admin"]);
    assert!(!ok, "an org_admin token needs --org: {refused}");
    let (ok, revoked) = run(&["token", "revoke", "--token", &secret]);
    assert!(ok, "{revoked}");
    let (_, listed) = run(&["token", "list"]);
    assert!(listed.contains("revoked"), "{listed}");
}

#[tokio::test]
async fn an_insecure_open_service_admits_callers_without_a_token_as_an_administrator() {
    let database = std::sync::Arc::new(TestDatabase::create().await);
    let access = studyledger::http::Access {
        admin_token: None,
        insecure_open: true,
    };
    let app = TestApp::spawn_accessed(database, access).await;
    let (status, _, body) = app
        .post_as("", "/v1/orgs", &json!({"org_id": "open", "name": "开放"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = app.get_as("wrong", "/v1/rulesets").await;
    assert_eq!(status, 401, "a wrong token is still refused");
}

#[tokio::test]
async fn auditors_verify_the_hash_chains_over_http() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let auditor = app.token(Role::Auditor, None, None).await;
    crate::helpers::behind_the_services_back(
        &app.pool,
        &[&format!(
            "UPDATE events SET payload = '{{\"MemberEnrolled\": {{}}}}' WHERE aggregate_id = '{member}'"
        )],
    )
    .await;
    let (status, headers, started) = app.post_as(&auditor, "/v1/verifications", &json!({})).await;
    assert_eq!(status, 202, "{started}");
    let location = headers["location"].to_str().expect("location").to_owned();
    let mut outcome = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while outcome["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "{outcome}");
        outcome = app.get_as(&auditor, &location).await.2;
    }
    assert_eq!(
        outcome["broken_links"],
        json!([{"aggregate_type": "member", "aggregate_id": member.to_string(), "sequence": 1}])
    );
    assert_eq!(outcome["events_checked"], outcome["events_total"]);
    let (status, _, _) = app
        .post_as(&auditor, "/v1/orgs", &json!({"org_id": "x", "name": "x"}))
        .await;
    assert_eq!(status, 403, "an auditor writes nothing");
}
