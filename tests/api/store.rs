//! The event store's own guarantees, checked in the database: append-only events, global
//! positions, metadata, and snapshots of long member streams.

use crate::helpers::TestApp;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn the_database_refuses_to_update_delete_or_truncate_events() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let before = app.total_events().await;
    let update = sqlx::query("UPDATE events SET payload = '{}'::json WHERE aggregate_id = $1")
        .bind(member.to_string())
        .execute(&app.pool)
        .await;
    let delete = sqlx::query("DELETE FROM events").execute(&app.pool).await;
    let truncate = sqlx::query("TRUNCATE events").execute(&app.pool).await;
    for (what, outcome) in [
        ("UPDATE", update),
        ("DELETE", delete),
        ("TRUNCATE", truncate),
    ] {
        let error = outcome.expect_err("refused");
        let database_error = error.as_database_error().expect("refused by the database");
        assert_eq!(
            database_error.code().as_deref(),
            Some("23001"),
            "{what}: {error}"
        );
        assert!(
            database_error
                .message()
                .contains(&format!("append-only: {what} refused")),
            "{what}: {error}"
        );
    }
    assert_eq!(app.total_events().await, before);
    let enrolled: String = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("enrolment");
    assert!(enrolled.contains("林晓"));
}

#[tokio::test]
async fn events_carry_position_transaction_and_request_metadata() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let before = chrono::Utc::now();
    let response = app
        .client
        .post(format!(
            "{}/v1/members/{member}/study-sessions",
            app.address
        ))
        .header("x-request-id", "req-42")
        .json(&json!({"session_id": Uuid::new_v4(), "course_id": "ethics",
                      "started_at": "2018-05-02T01:00:00Z", "ended_at": "2018-05-02T02:00:00Z"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let body: serde_json::Value = response.json().await.expect("json");
    let after = chrono::Utc::now();
    let row: (i64, String, bool, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT position, metadata::text, transaction_id IS NOT NULL, recorded_at FROM events
          WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("event");
    assert_eq!(Some(row.0), body["position"].as_i64());
    let metadata: serde_json::Value = serde_json::from_str(&row.1).expect("metadata");
    assert_eq!(metadata["request_id"], "req-42");
    assert_eq!(
        (&metadata["actor"], &metadata["role"]),
        (&json!("test admin"), &json!("admin"))
    );
    assert!(metadata["token_id"].as_str().is_some_and(|t| t.len() == 36));
    let recorded_at = chrono::DateTime::parse_from_rfc3339(
        metadata["recorded_at"].as_str().expect("recorded_at"),
    )
    .expect("an instant");
    assert!(
        before <= recorded_at && recorded_at <= after,
        "{recorded_at}"
    );
    assert_eq!(recorded_at, row.3, "metadata and column agree");
    assert!(row.2);
}

#[tokio::test]
async fn a_long_member_stream_is_snapshotted_and_reloads_to_the_same_state() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let path = format!("/v1/members/{member}/study-sessions");
    for i in 0..120 {
        let start = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z").expect("instant")
            + chrono::Duration::minutes(20 * i);
        let (status, _) = app
            .post(&path, &json!({"session_id": Uuid::new_v4(), "course_id": "ethics",
                                 "started_at": start, "ended_at": start + chrono::Duration::minutes(10)}))
            .await;
        assert_eq!(status, 201);
    }
    let snapshot: (i64, i64) = sqlx::query_as(
        "SELECT last_sequence, current_snapshot FROM snapshots WHERE aggregate_type = 'member' AND aggregate_id = $1",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("a snapshot exists");
    assert_eq!(snapshot, (100, 1));
    let payload: String = sqlx::query_scalar(
        "SELECT payload::text FROM snapshots WHERE aggregate_type = 'member' AND aggregate_id = $1",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("snapshot payload");
    let state: studyledger_aggregates::member::Member =
        serde_json::from_str(&payload).expect("a snapshot is a Member");
    assert_eq!(state.version(), 100);
    assert_eq!(state.sessions().len(), 99, "enrolment + 99 sessions");
    // Large enough to be compressed, and compressed with lz4 (migration 0026).
    let compression: Option<String> = sqlx::query_scalar(
        "SELECT pg_column_compression(payload) FROM snapshots
          WHERE aggregate_type = 'member' AND aggregate_id = $1",
    )
    .bind(member.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("compression");
    assert_eq!(compression.as_deref(), Some("lz4"));

    // A fresh instance has no cache: it loads snapshot + 21 events, and must still see every
    // session (an overlap with the first one is refused) and count all the minutes.
    let fresh = TestApp::spawn_on(app.database.clone()).await;
    assert_overlap_with_the_first_session_refused(&fresh, &path).await;
    let (_, q2) = fresh
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(q2["study_minutes"], 1200);
}

/// A session overlapping the first of the long streams above (2018-05-01, 00:00-00:10) is
/// refused: the instance sees the whole stream.
async fn assert_overlap_with_the_first_session_refused(app: &TestApp, path: &str) {
    let (status, _) = app
        .post(path, &json!({"session_id": Uuid::new_v4(), "course_id": "ethics",
                            "started_at": "2018-05-01T00:05:00Z", "ended_at": "2018-05-01T00:15:00Z"}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_snapshot_of_another_layout_is_rebuilt_from_the_events_and_replaced() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let path = format!("/v1/members/{member}/study-sessions");
    let session_at = |i: i64| {
        let start = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z").expect("instant")
            + chrono::Duration::minutes(20 * i);
        json!({"session_id": Uuid::new_v4(), "course_id": "ethics",
               "started_at": start, "ended_at": start + chrono::Duration::minutes(10)})
    };
    for i in 0..120 {
        assert_eq!(app.post(&path, &session_at(i)).await.0, 201);
    }
    // The snapshot at 100 as an older build wrote it: no layout of this build's.
    let strip_layout = || async {
        sqlx::query(
            "UPDATE snapshots SET payload = (payload::jsonb - 'layout')::json
              WHERE aggregate_type = 'member' AND aggregate_id = $1",
        )
        .bind(member.to_string())
        .execute(&app.pool)
        .await
        .expect("an old snapshot");
    };
    let snapshot_row = || async {
        let row: (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT last_sequence, current_snapshot, (payload->>'layout')::bigint FROM snapshots
              WHERE aggregate_type = 'member' AND aggregate_id = $1",
        )
        .bind(member.to_string())
        .fetch_one(&app.pool)
        .await
        .expect("the snapshot");
        row
    };
    strip_layout().await;

    // Loaded as of an earlier sequence in a transaction (as the projector loads), the member
    // comes from its events through that sequence, not past it.
    let ledger = app.ledger();
    let mut tx = app.pool.begin().await.expect("tx");
    let loaded = ledger
        .load_members_on(&mut tx, &[member.to_string()], &[110])
        .await
        .expect("loaded");
    tx.rollback().await.expect("rollback");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].sequence, 110);
    assert!(loaded[0].stale_snapshot);
    assert_eq!(loaded[0].aggregate.sessions().len(), 109);

    // A fresh instance (no cache) reads the whole stream, counts the unreadable snapshot, and
    // writes nothing for a read.
    let fresh = TestApp::spawn_on(app.database.clone()).await;
    let unreadable = || async {
        let text = crate::helpers::metrics_text(&fresh.client, &fresh.address).await;
        text.lines()
            .find_map(|l| l.strip_prefix("studyledger_snapshots_unreadable_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = unreadable().await;
    let (state, sequence) = fresh
        .ledger()
        .read::<studyledger_aggregates::member::Member>(&member.to_string())
        .await
        .expect("read");
    assert_eq!((sequence, state.sessions().len()), (121, 120));
    assert!(unreadable().await > before);
    assert_eq!(snapshot_row().await, (100, 1, None));
    // It sees every session: an overlap with the first is refused.
    assert_overlap_with_the_first_session_refused(&fresh, &path).await;
    // Its next append writes a snapshot of this layout, though no hundred is crossed; the one
    // after writes none.
    assert_eq!(fresh.post(&path, &session_at(120)).await.0, 201);
    assert_eq!(snapshot_row().await, (122, 2, Some(2)));
    assert_eq!(fresh.post(&path, &session_at(121)).await.0, 201);
    assert_eq!(snapshot_row().await, (122, 2, Some(2)));
    let (_, q2) = fresh
        .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q2"))
        .await;
    assert_eq!(q2["study_minutes"], 1220);

    // A bulk import loads the member in its own way, and replaces such a snapshot too.
    strip_layout().await;
    let mut rows = String::from("kind,member_id,session_id,course_id,started_at,ended_at\n");
    rows.push_str(&format!(
        "session,{member},{},ethics,2018-06-01T00:00:00Z,2018-06-01T00:10:00Z\n",
        Uuid::new_v4()
    ));
    let record = crate::import::import(&fresh, "text/csv", rows).await;
    assert_eq!(record["rows_recorded"], 1, "{record}");
    assert_eq!(snapshot_row().await, (124, 3, Some(2)));
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, _) = app.get("/v1/no-such-thing").await;
    assert_eq!(status, 404);
}
