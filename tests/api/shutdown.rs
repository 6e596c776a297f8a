//! Graceful shutdown (issue 14, item 6): the real binary, sent SIGTERM with a request in flight
//! and a connection idle, stops accepting at once, closes the idle connection, finishes the
//! request whose client goes on, or gives up on one whose client stalls once
//! `LEDGER_SHUTDOWN_TIMEOUT` has passed; either way it leaves the projector's checkpoint at the
//! last event committed, and exits 0.

use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;

use crate::helpers::{
    assert_views_match_the_log, client_with_token, free_port, start_binary, TestDatabase,
};
use crate::transport::{read_until_closed, session, status_of, HeldRequest};

const ADMIN: &str = "shutdown-test-administrator-token-012345";
/// Long enough for the service to stop; a guard against a test that would hang.
const GUARD: Duration = Duration::from_secs(60);

async fn seed(base: &str) -> uuid::Uuid {
    let admin = client_with_token(ADMIN);
    let member = uuid::Uuid::new_v4();
    let posts = [
        ("/v1/orgs", json!({"org_id": "fz", "name": "福州"})),
        (
            "/v1/courses",
            json!({"course_id": "ethics", "title": "ethics", "category": "elective",
                   "credit_hours": 1.5}),
        ),
        (
            "/v1/members",
            json!({"member_id": member, "member_no": "S-1", "name": "戊", "org_id": "fz",
                   "enrolled_on": "2018-01-01"}),
        ),
    ];
    for (path, body) in posts {
        let response = admin
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .expect("setup");
        assert_eq!(response.status(), 201, "{path}");
    }
    for n in 0..5 {
        let response = admin
            .post(format!("{base}/v1/members/{member}/study-sessions"))
            .json(&session(100 + n))
            .send()
            .await
            .expect("a session");
        assert_eq!(response.status(), 201);
    }
    member
}

fn terminate(service: &tokio::process::Child) {
    let pid = service.id().expect("the service runs");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "SIGTERM sent");
}

/// Waits until connecting to `port` is refused.
async fn until_refused(port: u16) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The sessions recorded in the log.
async fn recorded_sessions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload->'StudySessionRecorded'->>'session_id' FROM events
          WHERE event_type = 'StudySessionRecorded'",
    )
    .fetch_all(pool)
    .await
    .expect("sessions")
}

fn session_id(body: &serde_json::Value) -> String {
    body["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned()
}

/// The service exited 0, and its projector stopped at the last event committed: nothing left
/// for a restart to apply, and the views equal the log.
async fn assert_stopped_in_order(service: &mut tokio::process::Child, pool: &sqlx::PgPool) {
    let exit = tokio::time::timeout(GUARD, service.wait())
        .await
        .expect("the service stops")
        .expect("its exit status");
    assert_eq!(exit.code(), Some(0), "exits 0");
    let (checkpoint, last): ((String, i64), (String, i64)) = (
        sqlx::query_as("SELECT transaction_id::text, position FROM projector_checkpoints")
            .fetch_one(pool)
            .await
            .expect("checkpoint"),
        sqlx::query_as(
            "SELECT transaction_id::text, position FROM events
              ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_one(pool)
        .await
        .expect("last event"),
    );
    assert_eq!(
        checkpoint, last,
        "the projector stopped at the last event committed"
    );
    assert_views_match_the_log(pool).await;
}

#[tokio::test]
async fn on_sigterm_the_service_stops_accepting_finishes_the_request_in_flight_and_exits_0() {
    let database = TestDatabase::create().await;
    let port = free_port();
    let mut service = start_binary(&database.url(), port, ADMIN, &[]).await;
    let member = seed(&format!("http://127.0.0.1:{port}")).await;
    let path = format!("/v1/members/{member}/study-sessions");
    let body = session(1);
    let in_flight = HeldRequest::open(port, ADMIN, &path, &body).await;
    let mut idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");

    terminate(&service);
    until_refused(port).await;
    assert_eq!(
        read_until_closed(&mut idle).await,
        "",
        "an idle connection is closed"
    );
    // Committed after the signal, right before the projector is stopped.
    let (status, answer) = in_flight.finish().await;
    assert_eq!(status, 201, "the request in flight is finished: {answer}");

    let pool = database.pool().await;
    assert_stopped_in_order(&mut service, &pool).await;
    let recorded = recorded_sessions(&pool).await;
    assert_eq!(
        recorded.len(),
        6,
        "five before the signal, and the one in flight"
    );
    assert!(
        recorded.contains(&session_id(&body)),
        "the one in flight is committed"
    );
}

#[tokio::test]
async fn on_sigterm_a_request_whose_client_stalls_is_given_up_after_the_shutdown_timeout() {
    let database = TestDatabase::create().await;
    let port = free_port();
    let env = [("LEDGER_SHUTDOWN_TIMEOUT", "2")];
    let mut service = start_binary(&database.url(), port, ADMIN, &env).await;
    let member = seed(&format!("http://127.0.0.1:{port}")).await;
    let path = format!("/v1/members/{member}/study-sessions");
    let body = session(1);
    let stalled = HeldRequest::open(port, ADMIN, &path, &body).await;

    terminate(&service);
    until_refused(port).await;
    let abandoned = stalled.abandoned().await;
    assert_eq!(
        status_of(&abandoned),
        0,
        "given up, unanswered: {abandoned}"
    );

    let pool = database.pool().await;
    assert_stopped_in_order(&mut service, &pool).await;
    let recorded = recorded_sessions(&pool).await;
    assert_eq!(recorded.len(), 5, "only the five before the signal");
    assert!(
        !recorded.contains(&session_id(&body)),
        "the stalled one is not recorded"
    );
}
