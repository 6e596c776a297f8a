//! `TestApp::spawn()`: the real service — built by `App::build` as `serve` builds it, with its
//! router, middleware, command path and projector — on a loopback port, over a fresh
//! PostgreSQL database of its own that is dropped afterwards.
//!
//! `DATABASE_URL` names the server (the README's test command starts the project's private
//! PostgreSQL and sets it); each test creates `test_<uuid>` on it.
//!
//! Tests run in parallel, but PostgreSQL's transaction horizon is cluster-wide: a test that
//! holds a transaction open on purpose holds back every other test's projector. Such a test
//! first takes [`holding_the_horizon`], which waits for the tests running and keeps others from
//! starting until it ends; every other test shares the horizon through its database.

use std::cell::Cell;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};
use studyledger::app::App;
use studyledger::config::{DatabaseArgs, LedgerArgs};
use studyledger::http::Access;
use studyledger::ledger::{Ledger, LedgerSettings};
use studyledger::store::tokens::{NewToken, Role};
use tokio::net::TcpListener;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};
use uuid::Uuid;

static HORIZON: LazyLock<Arc<RwLock<()>>> = LazyLock::new(|| Arc::new(RwLock::new(())));

thread_local! {
    /// Whether the test on this thread holds the horizon alone (each test has a thread).
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// The horizon held by one test alone, until dropped.
pub struct Alone {
    _guard: OwnedRwLockWriteGuard<()>,
}

impl Drop for Alone {
    fn drop(&mut self) {
        ALONE.with(|alone| alone.set(false));
    }
}

/// For a test that holds a transaction open on purpose: waits until it runs alone, and keeps
/// other tests from starting until the guard is dropped.
pub async fn holding_the_horizon() -> Alone {
    let guard = Arc::clone(&HORIZON).write_owned().await;
    ALONE.with(|alone| alone.set(true));
    Alone { _guard: guard }
}

/// The share of the horizon an ordinary test holds while its database lives; none for a test
/// that holds it alone.
async fn sharing_the_horizon() -> Option<OwnedRwLockReadGuard<()>> {
    if ALONE.with(Cell::get) {
        None
    } else {
        Some(Arc::clone(&HORIZON).read_owned().await)
    }
}

/// Polls `condition` every 10 ms until it holds; fails the test after 30 s.
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls a query answering a count until it is at least `at_least`; fails after 30 s.
pub async fn until_counted(pool: &PgPool, what: &str, query: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count: i64 = sqlx::query_scalar(query).fetch_one(pool).await.expect(what);
        if count >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct TestDatabase {
    pub name: String,
    pub options: PgConnectOptions,
    server: PgConnectOptions,
    _horizon: Option<OwnedRwLockReadGuard<()>>,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let horizon = sharing_the_horizon().await;
        let url = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must name a PostgreSQL server (run the tests with scripts/test)");
        let server: PgConnectOptions = url.parse().expect("DATABASE_URL is a PostgreSQL URL");
        let name = format!("test_{}", Uuid::new_v4().simple());
        let mut admin = server
            .clone()
            .connect()
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.ok();
        TestDatabase {
            options: server.clone().database(&name),
            name,
            server,
            _horizon: horizon,
        }
    }

    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }

    pub async fn pool(&self) -> PgPool {
        studyledger::store::database::pool_options(8)
            .connect_with(self.options.clone())
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; the database is dropped from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = server.connect().await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

pub struct TestApp {
    pub address: String,
    /// Sends the test administrator's token with every request.
    pub client: reqwest::Client,
    /// Sends no token (requests say which, if any, they carry).
    bare: reqwest::Client,
    /// The secret of the administrator token `client` sends (`test admin`).
    pub admin_token: String,
    pub pool: PgPool,
    app: App,
    ledger: Arc<Ledger>,
    // Dropped last: the database goes after the app's connections.
    pub database: std::sync::Arc<TestDatabase>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let database = std::sync::Arc::new(TestDatabase::create().await);
        TestApp::spawn_on(database).await
    }

    /// Another instance of the service on the same database (for multi-instance tests).
    pub async fn spawn_on(database: std::sync::Arc<TestDatabase>) -> TestApp {
        TestApp::spawn_with(database, None).await
    }

    /// An instance whose bootstrap administrator token (`LEDGER_ADMIN_TOKEN`) is
    /// `admin_token`.
    pub async fn spawn_with(
        database: std::sync::Arc<TestDatabase>,
        admin_token: Option<&str>,
    ) -> TestApp {
        let access = Access {
            admin_token: admin_token.map(str::to_owned),
            insecure_open: false,
        };
        TestApp::spawn_accessed(database, access).await
    }

    /// An instance run with `access` (the bootstrap token, `--insecure-open`).
    pub async fn spawn_accessed(database: std::sync::Arc<TestDatabase>, access: Access) -> TestApp {
        let app = App::build(
            &DatabaseArgs {
                database_url: database.url(),
                pool_size: 8,
                read_url: None,
            },
            &LedgerArgs {
                timezone: chrono_tz::Asia::Shanghai,
                member_cache: 1000,
                // Few, so that concurrent tests exercise batched appends.
                write_connections: 2,
                xapi_homepage: studyledger::config::XAPI_HOMEPAGE.to_owned(),
            },
        )
        .await
        .expect("build the app");
        let pool = app.ledger().pool().clone();
        let ledger = Arc::clone(app.ledger());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        app.start_projector();
        let router = app.router(&access);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let (_, admin_token) = app
            .issue_token(&new_token(Role::Admin, None, None, "test admin"))
            .await
            .expect("an administrator's token");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {admin_token}").parse().expect("a header"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a client");
        TestApp {
            ledger,
            address,
            client,
            bare: reqwest::Client::new(),
            admin_token,
            pool,
            app,
            database,
        }
    }

    /// A POST by another administrator than the one who recorded the facts: a reviewer, whom
    /// the separation of duties lets resolve appeals.
    pub async fn review(&self, path: &str, body: &Value) -> (u16, Value) {
        let reviewer = self.token(Role::Admin, None, None).await;
        let (status, _, body) = self.post_as(&reviewer, path, body).await;
        (status, body)
    }

    /// A fresh token of `role` (scoped to `org` or `member` as the role needs); its secret.
    pub async fn token(&self, role: Role, org: Option<&str>, member: Option<Uuid>) -> String {
        let name = format!("test {role}");
        let token = new_token(role, org.map(str::to_owned), member, &name);
        self.app.issue_token(&token).await.expect("a token").1
    }

    /// The app's own ledger (command path, pool, clock).
    pub fn ledger(&self) -> Arc<Ledger> {
        Arc::clone(&self.ledger)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// A POST with `Authorization: Bearer <token>` (none when `token` is empty); answers
    /// status, headers and body.
    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.bare.post(format!("{}{path}", self.address));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.json(body).send().await.expect("request");
        let headers = response.headers().clone();
        let (status, body) = read(response).await;
        (status, headers, body)
    }

    /// A request with `Authorization: Bearer <token>` (none when `token` is empty) and a JSON
    /// body when one is given; answers status, headers and body.
    pub async fn request_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.bare.request(method, format!("{}{path}", self.address));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let headers = response.headers().clone();
        let (status, body) = read(response).await;
        (status, headers, body)
    }

    /// A GET with `Authorization: Bearer <token>` (none when `token` is empty); answers status,
    /// headers and body.
    pub async fn get_as(
        &self,
        token: &str,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.bare.get(format!("{}{path}", self.address));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let headers = response.headers().clone();
        let (status, body) = read(response).await;
        (status, headers, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Starts a replay over HTTP; answers its id.
    pub async fn start_replay(&self, dry_run: bool) -> String {
        let (status, body) = self
            .post("/v1/replays", &serde_json::json!({"dry_run": dry_run}))
            .await;
        assert_eq!(status, 202, "{body}");
        body["replay_id"].as_str().expect("replay id").to_owned()
    }

    /// Waits for a replay to finish; answers its final state (first page of changes).
    /// Brings the views to the state `when` names: "as projected" waits for the projector;
    /// "after a replay" first rebuilds them from the log (and asserts the replay succeeded).
    pub async fn views(&self, when: &str) {
        if when == "after a replay" {
            let replay = self.start_replay(false).await;
            assert_eq!(self.replay_outcome(&replay).await["status"], "succeeded");
        }
        wait_until_projected(&self.pool).await;
    }

    pub async fn replay_outcome(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (status, body) = self.get(&format!("/v1/replays/{id}")).await;
            assert_eq!(status, 200, "{body}");
            if body["status"] != "running" {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the replay did not finish"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Records a study session with a fresh id; answers status and body.
    pub async fn record_session(
        &self,
        member: Uuid,
        course: &str,
        started_at: &str,
        ended_at: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/v1/members/{member}/study-sessions"),
            &serde_json::json!({"session_id": Uuid::new_v4(), "course_id": course,
                                "started_at": started_at, "ended_at": ended_at}),
        )
        .await
    }

    /// Records a study session that must be accepted (201); answers the body.
    pub async fn study(
        &self,
        member: Uuid,
        course: &str,
        started_at: &str,
        ended_at: &str,
    ) -> Value {
        let (status, body) = self
            .record_session(member, course, started_at, ended_at)
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Events recorded for one aggregate.
    pub async fn event_count(&self, aggregate_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(aggregate_id)
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    pub async fn total_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// Defines an evaluation over `quarters`, named after its id.
    pub async fn define_evaluation(&self, id: &str, quarters: &[&str]) {
        let (status, body) = self
            .post(
                "/v1/evaluations",
                &serde_json::json!({"evaluation_id": id, "name": id, "quarters": quarters}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// The member appeals their latest determination of `evaluation` with their own token;
    /// answers the appeal's id and that token.
    pub async fn file_appeal(
        &self,
        member: Uuid,
        evaluation: &str,
        reason: &str,
    ) -> (Uuid, String) {
        let appeal = Uuid::new_v4();
        let token = self.token(Role::Member, None, Some(member)).await;
        let (status, _, body) = self
            .post_as(
                &token,
                &format!("/v1/members/{member}/appeals"),
                &serde_json::json!({"appeal_id": appeal, "evaluation_id": evaluation,
                                    "reason": reason}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (appeal, token)
    }

    /// Registers an organisation, a required and an elective course, and enrols a member
    /// on `enrolled_on`; returns the member id.
    pub async fn seed_member(&self, enrolled_on: &str) -> Uuid {
        let (status, _) = self
            .post(
                "/v1/orgs",
                &serde_json::json!({"org_id": "fz", "name": "福州"}),
            )
            .await;
        assert_eq!(status, 201);
        for (id, category, hours, minutes) in [
            ("party-history", "required", 2.5, 60),
            ("ethics", "elective", 1.5, 30),
        ] {
            let (status, body) = self
                .post(
                    "/v1/courses",
                    &serde_json::json!({"course_id": id, "title": id, "category": category,
                                        "credit_hours": hours, "min_study_minutes": minutes}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        let member_id = Uuid::new_v4();
        // Numbers are unique among members: M-1 for the first, M-2 for the next, …
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM member_numbers")
            .fetch_one(&self.pool)
            .await
            .expect("member numbers");
        let number = format!("M-{}", held + 1);
        let (status, body) = self
            .post(
                "/v1/members",
                &serde_json::json!({"member_id": member_id, "member_no": number, "name": "林晓",
                                    "org_id": "fz", "enrolled_on": enrolled_on}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        member_id
    }
}

/// What a test token is for.
pub fn new_token(role: Role, org: Option<String>, member: Option<Uuid>, name: &str) -> NewToken {
    NewToken {
        role,
        org_id: org,
        member_id: member,
        name: name.to_owned(),
        expires_at: None,
        issued_by: "test".to_owned(),
    }
}

/// Runs statements as a superuser with the append-only triggers set aside.
pub async fn behind_the_services_back(pool: &PgPool, statements: &[&str]) {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .expect("disable triggers");
    for statement in statements {
        let done = sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .expect(statement);
        assert!(done.rows_affected() > 0, "{statement}");
    }
    sqlx::query("ALTER TABLE events ENABLE TRIGGER USER")
        .execute(&mut *tx)
        .await
        .expect("enable triggers");
    tx.commit().await.expect("commit");
}

/// An instant as a query value: `+` and `:` escaped.
pub fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    if status >= 400 {
        assert_eq!(
            content_type, "application/problem+json",
            "errors are problem+json: {status} {text}"
        );
    }
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Proves every member's view rows equal a recomputation from the event log: the quarter
/// rows (totals and minutes) and the organisation history.
pub async fn assert_views_match_the_log(pool: &PgPool) {
    use studyledger_aggregates::member::Member;
    use studyledger_projections::fold::MemberFold;
    // Once the projector has applied everything committed so far.
    wait_until_projected(pool).await;
    let ledger = Ledger::new(
        pool.clone(),
        chrono_tz::Asia::Shanghai,
        &LedgerSettings::default(),
    );
    let rulesets = ledger.rulesets().await.expect("rulesets");
    let member_ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'member' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("members");
    assert!(!member_ids.is_empty());
    for member_id in member_ids {
        let (member, sequence) = ledger.read::<Member>(&member_id).await.expect("member");
        let fold = MemberFold::new(&member, &rulesets, chrono_tz::Asia::Shanghai);
        let expected: Vec<(String, i64, i64, i64)> = fold
            .active_quarters()
            .into_iter()
            .map(|(q, t, m)| {
                (
                    q.to_string(),
                    t.required.hundredths(),
                    t.elective.hundredths(),
                    m,
                )
            })
            .collect();
        let id = Uuid::parse_str(&member_id).expect("uuid");
        let stored: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT quarter, required_hundredths, elective_hundredths, study_minutes
               FROM member_quarter_view WHERE member_id = $1 ORDER BY quarter",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("view rows");
        assert_eq!(stored, expected, "member {member_id}");
        let (last, rules_version): (i64, i32) = sqlx::query_as(
            "SELECT last_sequence, rules_version FROM member_view WHERE member_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("member row");
        assert_eq!(
            usize::try_from(last).ok(),
            Some(sequence),
            "member {member_id} is up to date"
        );
        assert_eq!(
            u32::try_from(rules_version).ok(),
            rulesets.iter().map(|r| r.version).max(),
            "member {member_id} folded under every ruleset"
        );
        let orgs: Vec<(chrono::NaiveDate, String)> = sqlx::query_as(
            "SELECT effective_on, org_id FROM member_org_view WHERE member_id = $1
              ORDER BY sequence",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("org rows");
        // The enrolment, each transfer and each rejoining, in the order recorded.
        let mut placements = member.placements();
        placements.sort_by_key(|(_, sequence, _)| *sequence);
        let expected: Vec<(chrono::NaiveDate, String)> = placements
            .into_iter()
            .map(|(day, _, org)| (day, org.to_string()))
            .collect();
        let away: sqlx::types::Json<Vec<studyledger_aggregates::rules::tenure::Away>> =
            sqlx::query_scalar("SELECT away FROM member_view WHERE member_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .expect("member row");
        assert_eq!(
            away.0,
            member.tenure().expect("enrolled").away,
            "member {member_id}'s periods away"
        );
        assert_eq!(orgs, expected, "member {member_id}'s organisations");
    }
    // Every stream's hash chain, as the database computed it, recomputed independently.
    let (checked, broken) = studyledger::store::chain::verify(pool, None)
        .await
        .expect("verify");
    assert!(checked > 0);
    assert_eq!(broken, [], "every hash chain holds");
    // The organisation tree: every registered organisation with its path from the root.
    let registered: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'organisation' ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .expect("organisations");
    // Each organisation under its parent of today (its last move's, or the registered one).
    let mut parents: std::collections::HashMap<String, Option<String>> = Default::default();
    for org_id in &registered {
        let (org, _) = ledger
            .read::<studyledger_aggregates::organisation::Organisation>(org_id)
            .await
            .expect("organisation");
        assert!(org.record().is_some(), "{org_id} registered");
        parents.insert(org_id.clone(), org.parent().map(|p| p.to_string()));
    }
    let mut paths: std::collections::HashMap<String, Vec<String>> = Default::default();
    for org_id in parents.keys() {
        let mut path = vec![org_id.clone()];
        while let Some(Some(parent)) = parents.get(path.last().expect("one")) {
            assert!(path.len() < 64, "the tree holds no cycle");
            path.push(parent.clone());
        }
        path.reverse();
        paths.insert(org_id.clone(), path);
    }
    let stored: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT org_id, path FROM org_view ORDER BY org_id")
            .fetch_all(pool)
            .await
            .expect("org view");
    let mut expected: Vec<(String, Vec<String>)> = paths.into_iter().collect();
    expected.sort();
    assert_eq!(stored, expected, "the organisation tree");
}

/// Waits until the projector has applied every committed event.
pub async fn wait_until_projected(pool: &PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let horizon = studyledger::store::commit_order::horizon(pool)
            .await
            .expect("horizon");
        if studyledger::store::commit_order::caught_up_to(pool, horizon)
            .await
            .expect("caught up")
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the projector did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The real binary, `studyledger serve` on `database_url` at 127.0.0.1:`port` with the bootstrap
/// administrator token `admin` and the extra environment `env`, once `/readyz` answers 200.
pub async fn start_binary(
    database_url: &str,
    port: u16,
    admin: &str,
    env: &[(&str, &str)],
) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_studyledger"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LEDGER_ADMIN_TOKEN", admin)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start studyledger serve");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return child;
        }
        assert!(Instant::now() < deadline, "the service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Over HTTP, as an administrator's `client`: the organisation `fz`, the elective course
/// `ethics` (1.5 hours, 10 minutes' study) and `members` enrolled in `fz` on 2018-01-01 with
/// member numbers `{prefix}-{n}`.
pub async fn seed_over_http(client: &reqwest::Client, base: &str, members: &[Uuid], prefix: &str) {
    let course = json!({"course_id": "ethics", "title": "ethics", "category": "elective",
                        "credit_hours": 1.5, "min_study_minutes": 10});
    let enrolments = members.iter().enumerate().map(|(n, member)| {
        let body = json!({"member_id": member, "member_no": format!("{prefix}-{n}"),
                          "name": "甲", "org_id": "fz", "enrolled_on": "2018-01-01"});
        ("/v1/members", body)
    });
    let setup = [
        ("/v1/orgs", json!({"org_id": "fz", "name": "福州"})),
        ("/v1/courses", course),
    ];
    for (path, body) in setup.into_iter().chain(enrolments) {
        let url = format!("{base}{path}");
        let response = client.post(url).json(&body).send().await.expect("setup");
        assert_eq!(response.status(), 201, "{path}");
    }
}

/// The service's `/metrics` page, as `client` reads it.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}
