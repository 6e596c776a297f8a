//! Nothing lost, nothing counted twice: the real binary killed with SIGKILL under load, and
//! many concurrent writers; afterwards the views equal a recomputation from the event log.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{assert_views_match_the_log, wait_until_projected, TestApp, TestDatabase};
use serde_json::json;
use uuid::Uuid;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The bootstrap administrator of the services these tests start.
const ADMIN: &str = "crash-test-administrator-token-0123456789";

/// A client that sends the administrator's token.
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {ADMIN}").parse().expect("a header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

async fn start_service(database: &TestDatabase, port: u16) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_studyledger"))
        .arg("serve")
        .env("DATABASE_URL", database.url())
        .env("LEDGER_ADMIN_TOKEN", ADMIN)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start studyledger serve");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if response.status().is_success() {
                return child;
            }
        }
        assert!(Instant::now() < deadline, "the service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_service_killed_mid_load_loses_no_accepted_fact_and_its_views_heal() {
    let database = TestDatabase::create().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = start_service(&database, port).await;
    let client = client();
    let members: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    crate::helpers::seed_over_http(&client, &base, &members, "K").await;

    // Eight clients, two per member, each sending sessions (and completions) until the
    // service dies under them.
    let accepted: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    // Every answer that arrived and was not a success (none should).
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..8_i64 {
        let member = members[usize::try_from(c).unwrap_or(0) % members.len()];
        let accepted = accepted.clone();
        let refused = refused.clone();
        let client = client.clone();
        let base = base.clone();
        clients.push(tokio::spawn(async move {
            for n in 0..10_000_i64 {
                let start = chrono::DateTime::parse_from_rfc3339("2018-04-01T00:00:00Z").expect("instant")
                    + chrono::Duration::minutes(20 * (n * 8 + c));
                let session_id = Uuid::new_v4();
                let body = json!({"session_id": session_id, "course_id": "ethics",
                                  "started_at": start, "ended_at": start + chrono::Duration::minutes(15)});
                match client.post(format!("{base}/v1/members/{member}/study-sessions")).json(&body).send().await {
                    Ok(response) if response.status().is_success() => {
                        accepted.lock().expect("lock").push(session_id);
                    }
                    Ok(response) => refused.lock().expect("lock").push(format!("session: {}", response.status())),
                    Err(_) => return,
                }
                if n % 5 == 4 {
                    let completion = json!({"completion_id": Uuid::new_v4(), "course_id": "ethics",
                                            "completed_at": start + chrono::Duration::minutes(16)});
                    match client.post(format!("{base}/v1/members/{member}/course-completions")).json(&completion).send().await {
                        Ok(response) if response.status().is_success() => {}
                        Ok(response) => refused.lock().expect("lock").push(format!("completion: {}", response.status())),
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    crate::helpers::until("a few hundred sessions were accepted", || {
        accepted.lock().expect("lock").len() >= 200
    })
    .await;
    service.start_kill().expect("SIGKILL");
    service.wait().await.expect("the service is gone");
    for client in clients {
        client.await.expect("client task");
    }
    let accepted = accepted.lock().expect("lock").clone();
    assert_eq!(
        *refused.lock().expect("lock"),
        Vec::<String>::new(),
        "every answer before the kill was a success"
    );
    assert!(
        accepted.len() > 50,
        "the load ran: {} accepted",
        accepted.len()
    );

    let mut restarted = start_service(&database, port).await;
    let pool = database.pool().await;
    wait_until_projected(&pool).await;
    let recorded: HashSet<Uuid> = sqlx::query_scalar::<_, String>(
        "SELECT payload->'StudySessionRecorded'->>'session_id' FROM events WHERE event_type = 'StudySessionRecorded'",
    )
    .fetch_all(&pool)
    .await
    .expect("sessions")
    .into_iter()
    .filter_map(|s| Uuid::parse_str(&s).ok())
    .collect();
    for session in &accepted {
        assert!(
            recorded.contains(session),
            "accepted session {session} is in the log"
        );
    }
    let (events, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT payload->'StudySessionRecorded'->>'session_id')
           FROM events WHERE event_type = 'StudySessionRecorded'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(events, distinct, "no session recorded twice");
    assert_views_match_the_log(&pool).await;
    restarted.start_kill().expect("stop");
}

#[tokio::test]
async fn sixteen_concurrent_writers_leave_views_equal_to_the_log() {
    let app = TestApp::spawn().await;
    let first = app.seed_member("2018-01-01").await;
    let mut members = vec![first];
    for n in 0..7 {
        let member = Uuid::new_v4();
        let (status, _) = app
            .post("/v1/members", &json!({"member_id": member, "member_no": format!("W-{n}"), "name": "乙", "org_id": "fz", "enrolled_on": "2018-01-01"}))
            .await;
        assert_eq!(status, 201);
        members.push(member);
    }
    // Sixteen writers: two on each member, so some race on the same stream.
    let writers = (0..16_i64).map(|w| {
        let app = &app;
        let member = members[usize::try_from(w).unwrap_or(0) % members.len()];
        async move {
            for n in 0..12_i64 {
                let start = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z")
                    .expect("instant")
                    + chrono::Duration::hours(n * 2 + w / 8);
                app.study(
                    member,
                    "ethics",
                    &start.to_rfc3339(),
                    &(start + chrono::Duration::minutes(40)).to_rfc3339(),
                )
                .await;
                let (status, body) = app
                    .post(
                        &format!("/v1/members/{member}/course-completions"),
                        &json!({"completion_id": Uuid::new_v4(), "course_id": "ethics",
                                  "completed_at": start + chrono::Duration::minutes(41)}),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        }
    });
    futures::future::join_all(writers).await;
    assert_views_match_the_log(&app.pool).await;
    for member in &members {
        assert_eq!(app.event_count(&member.to_string()).await, 1 + 2 * 2 * 12);
    }
}
