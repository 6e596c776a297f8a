//! Transport limits (issue 14, item 2), on the server `serve` runs (`http::server` and
//! `http::in_flight` around the real router) with short bounds: a connection that sends no
//! headers, trickles them or sits idle is closed, while a request in progress is never cut;
//! beyond the bound on requests in flight a request is answered 503 with `Retry-After` at once,
//! while `/healthz` and `/readyz` still answer.
//!
//! The requests in flight are real ones held open by their client: headers sent with
//! `Expect: 100-continue`, and the body only once the test lets it go. hyper answers
//! `100 Continue` when the handler starts reading the body, so the test knows it is in flight.

use std::time::Duration;

use serde_json::json;
use studyledger::app::App;
use studyledger::config::{DatabaseArgs, LedgerArgs};
use studyledger::http::server::{self, Timeouts};
use studyledger::http::{in_flight, Access};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{client_with_token, TestDatabase};

const ADMIN: &str = "transport-test-administrator-token-0123456";
/// Long enough for any answer here; a guard against a test that would hang.
const GUARD: Duration = Duration::from_secs(20);

/// A request whose headers are sent and whose handler is reading its body, which the test
/// sends when it likes.
pub struct HeldRequest {
    stream: TcpStream,
    body: Vec<u8>,
}

impl HeldRequest {
    /// Sends the headers of `POST path` with `body`, and waits until the handler reads it.
    pub async fn open(port: u16, token: &str, path: &str, body: &serde_json::Value) -> HeldRequest {
        let body = body.to_string().into_bytes();
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("send headers");
        let interim = read_head(&mut stream).await;
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
        HeldRequest { stream, body }
    }

    /// Sends the body; answers the status and the whole answer as text.
    pub async fn finish(mut self) -> (u16, String) {
        self.stream.write_all(&self.body).await.expect("send body");
        let answer = read_answer(&mut self.stream).await;
        (status_of(&answer), answer)
    }

    /// What arrives without sending the body: nothing, until the server closes.
    pub async fn abandoned(mut self) -> String {
        read_until_closed(&mut self.stream).await
    }
}

/// The status of a raw HTTP answer (0 when there is none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Reads up to the end of one head (`\r\n\r\n`).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(GUARD, stream.read(&mut byte)).await;
        match read.expect("a head in time").expect("read") {
            0 => break,
            _ => head.push(byte[0]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads one answer: its head, and a body of the length the head gives.
async fn read_answer(stream: &mut TcpStream) -> String {
    let head = read_head(stream).await;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let lower = l.to_ascii_lowercase();
            lower.strip_prefix("content-length:")?.trim().parse().ok()
        })
        .expect("a content-length");
    let mut body = vec![0; length];
    let read = stream.read_exact(&mut body);
    tokio::time::timeout(GUARD, read)
        .await
        .expect("a body in time")
        .expect("read the body");
    head + &String::from_utf8_lossy(&body)
}

/// Reads until the server closes the connection (an error, a reset, counts as closed too);
/// answers what arrived.
pub async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = stream.read_to_end(&mut received);
    let _ = tokio::time::timeout(GUARD, read)
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// A GET /healthz on an open connection; answers the status.
async fn health_on(stream: &mut TcpStream) -> u16 {
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("send");
    status_of(&read_answer(stream).await)
}

/// The service as `serve` runs it (without the projector) on a database of its own: its port.
async fn serve(database: &TestDatabase, timeouts: Timeouts, max_in_flight: u32) -> u16 {
    let app = App::build(
        &DatabaseArgs {
            database_url: database.url(),
            pool_size: 8,
            read_url: None,
        },
        &LedgerArgs::quiet(),
    )
    .await
    .expect("the app");
    let access = Access {
        admin_token: Some(ADMIN.to_owned()),
        insecure_open: false,
    };
    let router = in_flight::bound(app.router(&access), max_in_flight);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(server::serve(
        listener,
        router,
        timeouts,
        std::future::pending(),
    ));
    port
}

/// An organisation, a course and a member, through the API; answers the member.
async fn seed(port: u16) -> Uuid {
    let admin = client_with_token(ADMIN);
    let member = Uuid::new_v4();
    let posts = [
        ("/v1/orgs", json!({"org_id": "fz", "name": "福州"})),
        (
            "/v1/courses",
            json!({"course_id": "ethics", "title": "ethics", "category": "elective",
                   "credit_hours": 1.5}),
        ),
        (
            "/v1/members",
            json!({"member_id": member, "member_no": "T-1", "name": "丁", "org_id": "fz",
                   "enrolled_on": "2018-01-01"}),
        ),
    ];
    for (path, body) in posts {
        let response = admin
            .post(format!("http://127.0.0.1:{port}{path}"))
            .json(&body)
            .send()
            .await
            .expect("setup");
        assert_eq!(response.status(), 201, "{path}");
    }
    member
}

/// A study session of the member, the `n`th of a series that never overlaps.
pub fn session(n: i64) -> serde_json::Value {
    let start = chrono::DateTime::parse_from_rfc3339("2018-04-01T00:00:00Z").expect("instant")
        + chrono::Duration::hours(n);
    json!({"session_id": Uuid::new_v4(), "course_id": "ethics", "started_at": start,
           "ended_at": start + chrono::Duration::minutes(30)})
}

#[tokio::test]
async fn silent_trickling_and_idle_connections_are_closed_but_a_slow_request_is_not_cut() {
    let database = TestDatabase::create().await;
    let timeouts = Timeouts {
        header: Duration::from_millis(500),
        idle: Duration::from_millis(1_000),
    };
    let port = serve(&database, timeouts, 256).await;
    let member = seed(port).await;
    let path = format!("/v1/members/{member}/study-sessions");
    // A slow upload: its headers are in, its body comes after both bounds have passed.
    let slow = HeldRequest::open(port, ADMIN, &path, &session(1)).await;

    let mut silent = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut trickling = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0")
        .await
        .expect("send part of the headers");
    let mut idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    assert_eq!(health_on(&mut idle).await, 200);
    assert_eq!(
        health_on(&mut idle).await,
        200,
        "kept alive between requests"
    );

    assert_eq!(
        read_until_closed(&mut silent).await,
        "",
        "no headers: closed"
    );
    assert_eq!(
        read_until_closed(&mut trickling).await,
        "",
        "headers too slow: closed"
    );
    assert_eq!(read_until_closed(&mut idle).await, "", "idle: closed");

    let (status, answer) = slow.finish().await;
    assert_eq!(status, 201, "a request in progress is not cut: {answer}");
}

#[tokio::test]
async fn beyond_the_bound_on_requests_in_flight_a_request_is_refused_at_once_but_probes_answer() {
    let database = TestDatabase::create().await;
    let timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };
    let port = serve(&database, timeouts, 2).await;
    let member = seed(port).await;
    let path = format!("/v1/members/{member}/study-sessions");
    let first = HeldRequest::open(port, ADMIN, &path, &session(1)).await;
    let second = HeldRequest::open(port, ADMIN, &path, &session(2)).await;

    let admin = client_with_token(ADMIN);
    let third = session(3);
    let refused = admin
        .post(format!("http://127.0.0.1:{port}{path}"))
        .json(&third)
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_eq!(
        refused.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    let problem: serde_json::Value = refused.json().await.expect("problem+json");
    assert_eq!(problem["type"], "/problems/overloaded");
    for probe in ["/healthz", "/readyz"] {
        let answer = reqwest::get(format!("http://127.0.0.1:{port}{probe}"))
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200, "{probe} answers under load");
    }

    assert_eq!(first.finish().await.0, 201);
    assert_eq!(second.finish().await.0, 201);
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'StudySessionRecorded'->>'session_id' FROM events
          WHERE event_type = 'StudySessionRecorded'",
    )
    .fetch_all(&database.pool().await)
    .await
    .expect("sessions");
    assert_eq!(recorded.len(), 2);
    let refused_id = third["session_id"].as_str().expect("an id").to_owned();
    assert!(
        !recorded.contains(&refused_id),
        "the refused request recorded nothing"
    );
    let again = admin
        .post(format!("http://127.0.0.1:{port}{path}"))
        .json(&third)
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        again.status(),
        201,
        "the places are free again, and the refused one can be resent"
    );
}
