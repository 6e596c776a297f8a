//! A database outage under load (issue 14, item 5). On a PostgreSQL cluster of the test's own,
//! PostgreSQL is stopped for 30 s while clients send study sessions through the real binary,
//! then started again. While it is down every command is answered 503 with `Retry-After`
//! within 5 s and `/readyz` says not ready; once it is back the first command succeeds (the
//! service's dead connections are replaced, not reported), the projector resumes from its
//! checkpoint, and every command answered 2xx is in the log exactly once. The timeline is
//! printed: run with `--nocapture` to see it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use studyledger::app::App;
use studyledger::config::{DatabaseArgs, LedgerArgs};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::{
    assert_views_match_the_log, client_with_token, free_port, new_token, seed_over_http,
    start_binary, until,
};

/// How long PostgreSQL stays down: what the issue asks for.
const DOWN_FOR: Duration = Duration::from_secs(30);
/// The issue's bound on an answer while the database is down.
const ANSWER_BOUND: Duration = Duration::from_secs(5);
const CLIENTS: usize = 4;
const ADMIN: &str = "outage-test-administrator-token-0123456789";

/// A PostgreSQL cluster of the test's own in a temporary folder, run by an unprivileged user
/// when the tests run as root (initdb and postgres refuse root; scripts/private-postgres.sh
/// does the same); stopped at once and removed when dropped.
struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    owner: Option<String>,
}

impl Cluster {
    async fn create() -> Cluster {
        let owner = is_root().then(service_user);
        let dir = std::env::temp_dir().join(format!("studyledger-outage-{}", Uuid::new_v4()));
        let cluster = Cluster {
            bindir: server_bindir(),
            dir,
            port: free_port(),
            owner,
        };
        let dir = cluster.path(&cluster.dir);
        cluster.run(Path::new("mkdir"), &["-m", "700", &dir]).await;
        let data = cluster.path(&cluster.data());
        let initdb = cluster.bindir.join("initdb");
        let options = [
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ];
        let mut args = vec!["-D", &data, "--no-sync"];
        args.extend(options);
        cluster.run(&initdb, &args).await;
        // fsync off: the outage is a clean stop, not a crash of the machine.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{dir}'\n\
             fsync = off\nmax_connections = 100\n",
            cluster.port
        );
        let conf = cluster.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("write postgresql.conf");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn path(&self, path: &Path) -> String {
        path.to_str().expect("a UTF-8 temporary path").to_owned()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_owner(&self, program: &Path) -> tokio::process::Command {
        match &self.owner {
            Some(user) => {
                let mut command = tokio::process::Command::new("runuser");
                command
                    .args(["-u", user, "--"])
                    .arg(program)
                    .current_dir("/");
                command
            }
            None => tokio::process::Command::new(program),
        }
    }

    async fn run(&self, program: &Path, args: &[&str]) {
        let output = self
            .as_owner(program)
            .args(args)
            .output()
            .await
            .expect("run a PostgreSQL tool");
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        assert!(
            output.status.success(),
            "{} {args:?}: {}\n{log}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let data = self.path(&self.data());
        let mut all = vec!["-D", &data, "-w", "-t", "60"];
        all.extend(args);
        self.run(&self.bindir.join("pg_ctl"), &all).await;
    }

    async fn start(&self) {
        let log = self.path(&self.dir.join("postgres.log"));
        self.pg_ctl(&["-l", &log, "start"]).await;
    }

    /// A fast shutdown, PostgreSQL's default: sessions are ended, then the server stops.
    async fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        let data = self.data();
        let mut command = match &self.owner {
            Some(user) => {
                let mut command = std::process::Command::new("runuser");
                command
                    .args(["-u", user, "--"])
                    .arg(pg_ctl)
                    .current_dir("/");
                command
            }
            None => std::process::Command::new(pg_ctl),
        };
        let _ = command
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The unprivileged user that runs the test's cluster when the tests run as root.
fn service_user() -> String {
    ["postgres", "studyledger-pg"]
        .into_iter()
        .find(|user| {
            std::process::Command::new("id")
                .arg("-u")
                .arg(user)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a user to run PostgreSQL as (postgres, or studyledger-pg: run scripts/test once)")
        .to_owned()
}

/// initdb and pg_ctl: `STUDYLEDGER_PG_BINDIR`, Debian's folders (newest first), `pg_config`.
fn server_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("STUDYLEDGER_PG_BINDIR") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    let mut candidates: Vec<PathBuf> = versions
        .into_iter()
        .rev()
        .map(|v| v.1.join("bin"))
        .collect();
    if let Ok(output) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        candidates.push(String::from_utf8_lossy(&output.stdout).trim().into());
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .expect(
            "PostgreSQL's initdb and pg_ctl (apt-get install postgresql, or STUDYLEDGER_PG_BINDIR)",
        )
}

/// One command as a client saw it: when it was sent, how long its answer took, its status
/// (none: no answer at all) and whether a 503 said when to retry.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    took: Duration,
    status: Option<u16>,
    retry_after: bool,
}

/// The clients' shared state: what they saw, and the test's hand on them.
#[derive(Default)]
struct Load {
    answers: Mutex<Vec<Answer>>,
    /// (session id, when its 2xx arrived).
    accepted: Mutex<Vec<(Uuid, Instant)>>,
    paused: AtomicBool,
    stopped: AtomicBool,
    in_flight: AtomicUsize,
}

impl Load {
    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().expect("lock").clone()
    }

    fn accepted(&self) -> Vec<(Uuid, Instant)> {
        self.accepted.lock().expect("lock").clone()
    }
}

fn session(n: i64) -> Value {
    let start = chrono::DateTime::parse_from_rfc3339("2018-04-01T00:00:00Z").expect("instant")
        + chrono::Duration::minutes(20 * n);
    json!({"session_id": Uuid::new_v4(), "course_id": "ethics", "started_at": start,
           "ended_at": start + chrono::Duration::minutes(15)})
}

/// A client as a learning app would be: it sends sessions one after another and resends the
/// same one (same id) after an error, waiting as long as `Retry-After` says.
async fn client_loop(load: Arc<Load>, client: reqwest::Client, url: String) {
    let mut next = 0;
    let mut pending: Option<Value> = None;
    while !load.stopped.load(Ordering::SeqCst) {
        // Counted before the pause is checked, so that the test can wait for quiet.
        load.in_flight.fetch_add(1, Ordering::SeqCst);
        if load.paused.load(Ordering::SeqCst) {
            load.in_flight.fetch_sub(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let body = pending.take().unwrap_or_else(|| {
            next += 1;
            session(next)
        });
        let sent = Instant::now();
        let response = client.post(&url).json(&body).send().await;
        let took = sent.elapsed();
        load.in_flight.fetch_sub(1, Ordering::SeqCst);
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        let retry_after = response.as_ref().ok().and_then(|r| {
            r.headers()
                .get("retry-after")?
                .to_str()
                .ok()?
                .parse::<u64>()
                .ok()
        });
        load.answers.lock().expect("lock").push(Answer {
            sent,
            took,
            status,
            retry_after: retry_after.is_some(),
        });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            let id = body["session_id"].as_str().and_then(|s| s.parse().ok());
            let id = id.expect("a session id");
            load.accepted
                .lock()
                .expect("lock")
                .push((id, Instant::now()));
        } else {
            pending = Some(body);
            let pause =
                Duration::from_secs(retry_after.unwrap_or(0)).max(Duration::from_millis(100));
            tokio::time::sleep(pause).await;
        }
    }
}

/// An organisation, a course, and `count` members; answers their ids.
async fn seed(admin: &reqwest::Client, base: &str, count: usize) -> Vec<Uuid> {
    let members: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    seed_over_http(admin, base, &members, "O").await;
    members
}

/// An `ingest` token, as a learning app holds: looked up in the database (the bootstrap
/// administrator's would never be).
async fn ingest_token(database_url: &str) -> String {
    let database = DatabaseArgs {
        database_url: database_url.to_owned(),
        pool_size: 2,
        read_url: None,
    };
    let app = App::build(&database, &LedgerArgs::quiet())
        .await
        .expect("the app");
    let token = new_token(Role::Ingest, None, None, "outage test app");
    app.issue_token(&token).await.expect("a token").1
}

/// `/readyz` every 250 ms until `until`: (when sent, how long it took, status).
async fn watch_readiness(base: String, until: Instant) -> Vec<(Instant, Duration, u16)> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        let response = client.get(format!("{base}/readyz")).send().await;
        let status = response.map_or(0, |r| r.status().as_u16());
        seen.push((sent, sent.elapsed(), status));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

/// The instants of the outage, as the test lived them.
struct Timeline {
    stop_asked: Instant,
    stopped: Instant,
    start_asked: Instant,
    started: Instant,
}

#[tokio::test]
async fn a_database_outage_under_load_is_answered_503_and_heals_without_a_restart() {
    let cluster = Cluster::create().await;
    cluster.start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = start_binary(
        &cluster.url(),
        port,
        ADMIN,
        &[("RUST_LOG", "error,tower_http=off")],
    )
    .await;
    let members = seed(&client_with_token(ADMIN), &base, CLIENTS + 1).await;
    let app = client_with_token(&ingest_token(&cluster.url()).await);
    let load = Arc::new(Load::default());
    let clients: Vec<_> = members[..CLIENTS]
        .iter()
        .map(|member| {
            let url = format!("{base}/v1/members/{member}/study-sessions");
            tokio::spawn(client_loop(load.clone(), app.clone(), url))
        })
        .collect();
    until("the load runs", || load.accepted().len() >= 40).await;
    let before = load.accepted().len();

    let stop_asked = Instant::now();
    cluster.stop().await;
    let stopped = Instant::now();
    let readiness = tokio::spawn(watch_readiness(base.clone(), stop_asked + DOWN_FOR));
    tokio::time::sleep_until((stop_asked + DOWN_FOR).into()).await;
    // Quiet, so that the first command after the restart is one the test sends and times.
    load.paused.store(true, Ordering::SeqCst);
    until("the clients are quiet", || {
        load.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
    let start_asked = Instant::now();
    cluster.start().await;
    let started = Instant::now();
    let timeline = Timeline {
        stop_asked,
        stopped,
        start_asked,
        started,
    };

    let probe = format!("{base}/v1/members/{}/study-sessions", members[CLIENTS]);
    let first = app
        .post(&probe)
        .json(&session(1))
        .send()
        .await
        .expect("an answer");
    let first_took = started.elapsed();
    let first_status = first.status().as_u16();
    let first_body = first.text().await.unwrap_or_default();
    assert_eq!(
        first_status, 201,
        "the first command after the restart: {first_body}"
    );
    load.paused.store(false, Ordering::SeqCst);
    let recovered = || {
        load.accepted()
            .iter()
            .filter(|(_, at)| *at > started)
            .count()
            >= 20
    };
    until("the clients' commands are accepted again", recovered).await;
    load.stopped.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client task");
    }
    let readiness = readiness.await.expect("readiness task");
    let ready_again = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("/readyz");
    assert_eq!(ready_again.status(), 200, "ready again after the restart");

    let answers = load.answers();
    check_answers(&answers, &timeline);
    check_readiness(&readiness, &timeline);
    let lost = check_log(&cluster.url(), &load.accepted()).await;
    print_timeline(
        &timeline,
        &answers,
        &readiness,
        &load.accepted(),
        before,
        first_took,
        lost,
    );
    quiet_restart(&cluster, &app, &base, members[CLIENTS]).await;
    service.start_kill().expect("stop the service");
    service.wait().await.expect("the service is gone");
}

/// PostgreSQL restarted while the service sat idle: every connection it holds died quietly,
/// and nothing has told it so. The first command and the first read after the restart
/// succeed all the same.
async fn quiet_restart(cluster: &Cluster, app: &reqwest::Client, base: &str, member: Uuid) {
    let asked = Instant::now();
    cluster.stop().await;
    cluster.start().await;
    let restarted = asked.elapsed();
    let command = app
        .post(format!("{base}/v1/members/{member}/study-sessions"))
        .json(&session(1_000))
        .send()
        .await
        .expect("an answer");
    let status = command.status().as_u16();
    assert_eq!(
        status,
        201,
        "the first command: {}",
        command.text().await.unwrap_or_default()
    );
    let read = client_with_token(ADMIN)
        .get(format!("{base}/v1/members/{member}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(read.status(), 200, "the first read");
    println!(
        "quick restart while idle: PostgreSQL stopped and started in {} ms; the first command \
         after it answered 201, the first read 200",
        restarted.as_millis()
    );
}

/// No 500, no hang, no dropped connection: every answer is 201 or a 503 with `Retry-After`,
/// and while PostgreSQL was down every command got its 503 within the bound.
fn check_answers(answers: &[Answer], timeline: &Timeline) {
    for answer in answers {
        assert!(
            matches!(answer.status, Some(201 | 503)),
            "only 201 and 503 are answered: {answer:?}"
        );
        if answer.status == Some(503) {
            assert!(answer.retry_after, "a 503 says when to retry: {answer:?}");
        }
        if answer.sent >= timeline.stopped && answer.sent < timeline.start_asked {
            assert_eq!(answer.status, Some(503), "down: {answer:?}");
            assert!(
                answer.took < ANSWER_BOUND,
                "answered within 5 s: {answer:?}"
            );
        }
    }
    let down = answers
        .iter()
        .filter(|a| a.sent >= timeline.stopped && a.sent < timeline.start_asked)
        .count();
    assert!(
        down >= CLIENTS,
        "commands were sent while it was down: {down}"
    );
}

/// `/readyz` asked and answered while PostgreSQL was down said not ready.
fn check_readiness(readiness: &[(Instant, Duration, u16)], timeline: &Timeline) {
    let down: Vec<_> = readiness
        .iter()
        .filter(|(sent, took, _)| *sent >= timeline.stopped && *sent + *took < timeline.start_asked)
        .collect();
    assert!(!down.is_empty(), "/readyz was asked while down");
    for (_, took, status) in down {
        assert_eq!(*status, 503, "not ready while down (after {took:?})");
    }
}

/// Every command answered 2xx is in the log exactly once, the projector resumed from its
/// checkpoint and caught up to the last event, and the views equal the log. Answers how many
/// accepted facts are missing from the log.
async fn check_log(database_url: &str, accepted: &[(Uuid, Instant)]) -> usize {
    let pool = sqlx::PgPool::connect(database_url).await.expect("connect");
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'StudySessionRecorded'->>'session_id' FROM events
          WHERE event_type = 'StudySessionRecorded'",
    )
    .fetch_all(&pool)
    .await
    .expect("sessions");
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for id in recorded {
        *counts.entry(id).or_default() += 1;
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "no session is recorded twice"
    );
    let lost = accepted
        .iter()
        .filter(|(id, _)| !counts.contains_key(&id.to_string()))
        .count();
    assert_eq!(lost, 0, "every accepted session is in the log");
    assert_views_match_the_log(&pool).await;
    let (checkpoint, last): ((String, i64), (String, i64)) = (
        sqlx::query_as("SELECT transaction_id::text, position FROM projector_checkpoints")
            .fetch_one(&pool)
            .await
            .expect("checkpoint"),
        sqlx::query_as(
            "SELECT transaction_id::text, position FROM events
              ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .expect("last event"),
    );
    assert_eq!(
        checkpoint, last,
        "the projector's checkpoint is the last event"
    );
    lost
}

fn print_timeline(
    timeline: &Timeline,
    answers: &[Answer],
    readiness: &[(Instant, Duration, u16)],
    accepted: &[(Uuid, Instant)],
    before: usize,
    first_took: Duration,
    lost: usize,
) {
    let ms = |d: Duration| d.as_millis();
    let since_stop = |at: Instant| ms(at.saturating_duration_since(timeline.stop_asked));
    let first_503 = answers
        .iter()
        .filter(|a| a.status == Some(503))
        .map(|a| a.sent + a.took)
        .min();
    let down: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent >= timeline.stopped && a.sent < timeline.start_asked)
        .collect();
    let slowest = down.iter().map(|a| a.took).max().unwrap_or_default();
    let not_ready = readiness
        .iter()
        .find(|(_, _, status)| *status == 503)
        .map(|(sent, took, _)| *sent + *took);
    let per_client_recovery = accepted
        .iter()
        .filter(|(_, at)| *at > timeline.started)
        .map(|(_, at)| *at)
        .min();
    println!(
        "outage timeline ({CLIENTS} clients; PostgreSQL stopped with pg_ctl -m fast):\n  \
         accepted before the stop: {before}\n  \
         pg_ctl stop returned after {} ms\n  \
         first 503 answered {} ms after the stop was asked\n  \
         /readyz not ready {} ms after the stop was asked\n  \
         while down: {} commands answered, all 503 with Retry-After, slowest in {} ms\n  \
         PostgreSQL down for {} ms (stop asked → start returned)\n  \
         first command after the restart: 201 in {} ms after pg_ctl start returned\n  \
         clients' first 2xx after the restart: {} ms after pg_ctl start returned\n  \
         accepted in all: {}; in the log exactly once: {}; facts lost: {lost}",
        ms(timeline.stopped - timeline.stop_asked),
        first_503.map_or(0, since_stop),
        not_ready.map_or(0, since_stop),
        down.len(),
        ms(slowest),
        ms(timeline.started - timeline.stop_asked),
        ms(first_took),
        per_client_recovery.map_or(0, |at| ms(at - timeline.started)),
        accepted.len(),
        accepted.len() - lost,
    );
}
