//! Through a failover: a pg_auto_failover formation (`scripts/ha`: a monitor, a primary and a
//! synchronous standby on loopback), two instances of the real binary on its multi-host URL,
//! and eight clients sending study sessions and completions through both while the primary's
//! "machine" (its keeper and its PostgreSQL) is killed with SIGKILL.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, client_with_token, metrics_text, start_binary};

const ADMIN: &str = "failover-test-administrator-token-0123456789";
/// Sessions each client sends (a completion follows every fifth).
const SESSIONS: i64 = 30;
const CLIENTS: i64 = 8;

/// A formation of `scripts/ha` in a folder of its own, destroyed on drop.
struct Formation {
    dir: PathBuf,
    port: u16,
    url: String,
}

/// Three consecutive ports nobody listens on (the monitor's and the two nodes'), below the
/// range the kernel hands out to outgoing connections (32768 and up), so that no test's
/// client takes one between this check and the formation's start.
fn three_free_ports() -> u16 {
    let seed = u16::try_from(std::process::id() % 400).unwrap_or(0);
    (0..400)
        .map(|n| 27_000 + 3 * ((seed + n) % 400))
        .find(|base| (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
        .expect("three free ports")
}

impl Formation {
    async fn start() -> Formation {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("studyledger-ha-{}-{nanos}", std::process::id()));
        let port = three_free_ports();
        let mut formation = Formation {
            dir,
            port,
            url: String::new(),
        };
        let line = formation.ha(&["start"]).await;
        formation.url = line
            .strip_prefix("DATABASE_URL=")
            .unwrap_or_else(|| panic!("scripts/ha start printed {line:?}"))
            .to_owned();
        formation
    }

    /// Runs `scripts/ha ARGS` on this formation; its last line of output.
    async fn ha(&self, args: &[&str]) -> String {
        let output =
            tokio::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ha"))
                .args(args)
                .env("STUDYLEDGER_HA_DIR", &self.dir)
                .env("STUDYLEDGER_HA_PORT", self.port.to_string())
                .output()
                .await
                .expect("run scripts/ha");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "scripts/ha {args:?}: {stderr}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned()
    }

    /// The URL with an application name, so that each instance's sessions can be told apart.
    fn url_named(&self, name: &str) -> String {
        format!("{}&application_name={name}", self.url)
    }

    /// The URL for reads from the standby (the primary when there is none).
    fn read_url(&self, name: &str) -> String {
        self.url_named(name).replace(
            "target_session_attrs=read-write",
            "target_session_attrs=prefer-standby",
        )
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        let _ = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ha"))
            .arg("destroy")
            .env("STUDYLEDGER_HA_DIR", &self.dir)
            .env("STUDYLEDGER_HA_PORT", self.port.to_string())
            .output();
    }
}

/// What the clients saw.
#[derive(Default)]
struct Outcomes {
    /// Session ids answered 2xx, each with when its request was sent and answered.
    accepted: Vec<(Uuid, Instant, Instant)>,
    /// Answers that were neither a success nor "try again" (none should come).
    refused: Vec<String>,
    /// Resends after a 503 or a lost connection.
    resends: usize,
}

/// Sends `body` to `url` until it is answered 2xx (resending with the same ids on a 503 or a
/// lost connection); the time the accepted request was sent.
async fn until_accepted(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    outcomes: &Mutex<Outcomes>,
) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let sent = Instant::now();
        match client
            .post(url)
            .json(body)
            .timeout(Duration::from_secs(40))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => return Some(sent),
            Ok(response) if response.status() == 503 => {
                let retry = response.headers().get("retry-after").is_some();
                assert!(retry, "a 503 says when to retry");
                let problem: serde_json::Value = response.json().await.unwrap_or_default();
                if problem["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("unavailable"))
                {
                    let detail = problem["detail"].as_str().unwrap_or_default();
                    assert!(
                        detail.contains("may or may not have been recorded"),
                        "{detail}"
                    );
                }
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                outcomes
                    .lock()
                    .expect("lock")
                    .refused
                    .push(format!("{status}: {text}"));
                return None;
            }
            Err(_) => {}
        }
        outcomes.lock().expect("lock").resends += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    outcomes
        .lock()
        .expect("lock")
        .refused
        .push(format!("{url}: never accepted"));
    None
}

/// One client: sessions of one member through one instance, each resent until accepted, and
/// a completion after every fifth; at least `SESSIONS` of them, and on until five were sent
/// after `killed` was set.
async fn client_run(
    c: i64,
    from: &'static str,
    base: String,
    member: Uuid,
    outcomes: Arc<Mutex<Outcomes>>,
    killed: Arc<AtomicBool>,
) {
    let client = client_with_token(ADMIN);
    let mut after_kill = 0;
    for n in 0.. {
        if n >= SESSIONS && after_kill >= 5 {
            break;
        }
        if killed.load(Ordering::SeqCst) {
            after_kill += 1;
        }
        let start = chrono::DateTime::parse_from_rfc3339(from).expect("instant")
            + chrono::Duration::minutes(20 * (n * CLIENTS + c));
        let session_id = Uuid::new_v4();
        let body = json!({"session_id": session_id, "course_id": "ethics", "started_at": start,
                          "ended_at": start + chrono::Duration::minutes(15)});
        let url = format!("{base}/v1/members/{member}/study-sessions");
        let Some(sent) = until_accepted(&client, &url, &body, &outcomes).await else {
            return;
        };
        outcomes
            .lock()
            .expect("lock")
            .accepted
            .push((session_id, sent, Instant::now()));
        if n % 5 == 4 {
            let completion = json!({"completion_id": Uuid::new_v4(), "course_id": "ethics",
                                    "completed_at": start + chrono::Duration::minutes(16)});
            let url = format!("{base}/v1/members/{member}/course-completions");
            until_accepted(&client, &url, &completion, &outcomes).await;
        }
    }
}

/// The application name of the session holding the projector's lock, if any.
async fn projector_holder(pool: &sqlx::PgPool) -> Option<String> {
    let key = studyledger::store::lock::PROJECTOR;
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.locktype = 'advisory' AND l.granted
            AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
    .expect("locks")
}

/// Sessions recorded through an instance with a standby for reads, each read back at once
/// through it: every read sees the sessions before it, and the standby answered reads.
async fn reads_from_the_standby_see_their_own_writes(base: &str, member: Uuid) -> Vec<Uuid> {
    let client = client_with_token(ADMIN);
    let mut recorded = Vec::new();
    // Years after the clients' sessions of the same member (2018 on, 160 minutes apart per
    // client and member), so that no session of theirs can overlap these.
    let first = chrono::DateTime::parse_from_rfc3339("2025-01-06T08:00:00Z").expect("instant");
    let standby_reads_before = view_reads(&client, base, "standby").await;
    for n in 0..10_i64 {
        let start = first + chrono::Duration::days(n);
        let session_id = Uuid::new_v4();
        let body = json!({"session_id": session_id, "course_id": "ethics", "started_at": start,
                          "ended_at": start + chrono::Duration::minutes(15)});
        let url = format!("{base}/v1/members/{member}/study-sessions");
        let response = client.post(url).json(&body).send().await.expect("session");
        assert!(response.status().is_success(), "{}", response.status());
        recorded.push(session_id);
        let url = format!("{base}/v1/members/{member}/compliance?quarter=2025-Q1");
        let response = client.get(url).send().await.expect("read");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers().get("x-views-behind").is_none(),
            "caught up"
        );
        let quarter: serde_json::Value = response.json().await.expect("json");
        assert_eq!(
            quarter["study_minutes"],
            15 * (n + 1),
            "read {n} sees its writes"
        );
    }
    // Every one of the ten reads was the standby's (none fell back to the primary).
    let from_standby = view_reads(&client, base, "standby").await - standby_reads_before;
    assert_eq!(from_standby, 10, "the standby answered every read");
    recorded
}

/// `studyledger_view_reads_total{from}` of the instance at `base`.
async fn view_reads(client: &reqwest::Client, base: &str, from: &str) -> u64 {
    let text = metrics_text(client, base).await;
    let prefix = format!("studyledger_view_reads_total{{from=\"{from}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_primary_killed_under_load_loses_no_acknowledged_command_and_both_instances_carry_on() {
    let formation = Formation::start().await;
    let ports = [crate::helpers::free_port(), crate::helpers::free_port()];
    let small_pool = [("DATABASE_POOL_SIZE", "6")];
    let (url_a, url_b) = (
        formation.url_named("instance-a"),
        formation.url_named("instance-b"),
    );
    let mut instances = vec![start_binary(&url_a, ports[0], ADMIN, &small_pool).await];
    // The second instance reads its views from the standby.
    let read_url = formation.read_url("instance-b-reads");
    let reads = [
        ("DATABASE_POOL_SIZE", "6"),
        ("DATABASE_READ_URL", read_url.as_str()),
    ];
    instances.push(start_binary(&url_b, ports[1], ADMIN, &reads).await);
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let members: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let admin = client_with_token(ADMIN);
    crate::helpers::seed_over_http(&admin, &bases[0], &members, "HA").await;
    let read_back = reads_from_the_standby_see_their_own_writes(&bases[1], members[1]).await;
    let pool = studyledger::store::database::connect(&formation.url, 4)
        .await
        .expect("pool");
    let gap = studyledger::store::database::durability_gap(&pool).await;
    assert_eq!(gap.expect("checked"), None, "commits wait for the standby");

    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let index = usize::try_from(c).unwrap_or(0);
            let base = bases[index % 2].clone();
            tokio::spawn(client_run(
                c,
                "2018-04-01T00:00:00Z",
                base,
                members[index % 4],
                outcomes.clone(),
                killed.clone(),
            ))
        })
        .collect();
    crate::helpers::until("some sessions were accepted", || {
        outcomes.lock().expect("lock").accepted.len() >= 40
    })
    .await;
    let killed_node = formation.ha(&["kill-primary"]).await;
    let killed_at = Instant::now();
    killed.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client task");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("lock"));
    assert_eq!(
        outcomes.refused,
        Vec::<String>::new(),
        "every command ended accepted"
    );
    let least = usize::try_from(CLIENTS * SESSIONS).unwrap_or(0);
    assert!(
        outcomes.accepted.len() >= least,
        "every client's sessions were accepted"
    );
    let first_after = outcomes
        .accepted
        .iter()
        .filter(|(_, sent, _)| *sent > killed_at)
        .map(|(_, _, answered)| answered.duration_since(killed_at))
        .min()
        .expect("sessions accepted after the kill");
    assert!(
        outcomes.resends > 0,
        "the kill interrupted commands in flight (else the test showed no failover)"
    );
    eprintln!(
        "failover: {killed_node} killed; first command sent afterwards accepted {:.1} s after the kill; {} resends",
        first_after.as_secs_f64(),
        outcomes.resends
    );
    for instance in &mut instances {
        assert!(
            instance.try_wait().expect("status").is_none(),
            "no instance restarted"
        );
    }

    // The pool found the new primary, as the instances did; no standby replicates from it.
    let gap = studyledger::store::database::durability_gap(&pool).await;
    assert!(
        gap.expect("checked").is_some(),
        "a lone primary is reported"
    );
    let on: (bool, i32) =
        sqlx::query_as("SELECT pg_is_in_recovery(), current_setting('port')::int")
            .fetch_one(&pool)
            .await
            .expect("role");
    assert!(!on.0, "connected to a primary");
    let killed_port = if killed_node == "node1" { 1 } else { 2 };
    assert_ne!(
        on.1,
        i32::from(formation.port + killed_port),
        "the primary is the old standby"
    );
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT payload->'StudySessionRecorded'->>'session_id', count(*) FROM events
          WHERE event_type = 'StudySessionRecorded' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("sessions");
    let counts: HashMap<String, i64> = counts.into_iter().collect();
    let accepted: HashSet<String> = outcomes
        .accepted
        .iter()
        .map(|(id, _, _)| *id)
        .chain(read_back)
        .map(|id| id.to_string())
        .collect();
    let logged: HashSet<String> = counts.keys().cloned().collect();
    assert_eq!(
        logged, accepted,
        "the log holds exactly the accepted sessions"
    );
    assert!(counts.values().all(|n| *n == 1), "each session once");
    // The projector runs on the new primary: every member's views equal the log.
    assert_views_match_the_log(&pool).await;
    let holder = projector_holder(&pool)
        .await
        .expect("a projector holds the lock");
    assert!(
        ["instance-a", "instance-b"].contains(&holder.as_str()),
        "one of the instances holds the lock: {holder}"
    );

    // The instance holding the projector's lock dies; the other takes the lock over.
    let (dying, surviving) = if holder == "instance-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    instances[dying].start_kill().expect("SIGKILL");
    instances[dying].wait().await.expect("gone");
    let survivor = format!("instance-{}", if surviving == 0 { "a" } else { "b" });
    let outcomes: Arc<Mutex<Outcomes>> = Arc::default();
    client_run(
        0,
        "2024-07-01T00:00:00Z",
        bases[surviving].clone(),
        members[0],
        outcomes.clone(),
        Arc::new(AtomicBool::new(true)),
    )
    .await;
    assert_eq!(
        outcomes.lock().expect("lock").accepted.len(),
        usize::try_from(SESSIONS).unwrap_or(0)
    );
    assert_views_match_the_log(&pool).await;
    assert_eq!(
        projector_holder(&pool).await,
        Some(survivor),
        "the lock moved"
    );
}
