//! The projector against a real PostgreSQL: commit order, resuming from its checkpoint, and
//! reads that say when the views are behind.
//!
//! These tests hold transactions open on purpose, and PostgreSQL's transaction horizon is
//! cluster-wide, so each runs alone (`holding_the_horizon`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{holding_the_horizon, metrics_text, TestApp, TestDatabase};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use studyledger::jobs::projector::Projector;
use studyledger::ledger::{Ledger, LedgerSettings};
use studyledger::store::commit_order;

async fn ledger_without_projector(database: &TestDatabase) -> Arc<Ledger> {
    let pool = database.pool().await;
    studyledger::store::database::migrate(&pool)
        .await
        .expect("migrate");
    let ledger = Ledger::new(pool, chrono_tz::Asia::Shanghai, &LedgerSettings::default());
    ledger.publish_initial_rules().await.expect("ruleset 1");
    ledger
}

/// Applies batches until every event committed before the call is in the views (PostgreSQL's
/// horizon is cluster-wide, so another database's transaction may delay that); answers how
/// many events were applied.
async fn catch_up(ledger: &Arc<Ledger>) -> usize {
    let projector = Projector::new(ledger.clone(), 100);
    let horizon = commit_order::horizon(ledger.pool()).await.expect("horizon");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut applied = 0;
    loop {
        let n = projector.step().await.expect("step");
        applied += n;
        if n == 0
            && commit_order::caught_up_to(ledger.pool(), horizon)
                .await
                .expect("caught up")
        {
            return applied;
        }
        assert!(Instant::now() < deadline, "the projector does not catch up");
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn applied_so_far(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT events_applied, batches FROM projector_checkpoints WHERE projector = 'views'",
    )
    .fetch_one(pool)
    .await
    .expect("checkpoint")
}

async fn insert_organisation(connection: &mut PgConnection, org: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('organisation', $1, 1, 'OrganisationRegistered', '1', $2::json, '{}') RETURNING position",
    )
    .bind(org)
    .bind(json!({"OrganisationRegistered": {"org_id": org, "name": org, "parent_id": null}}).to_string())
    .fetch_one(connection)
    .await
    .expect("insert")
}

async fn organisations(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT org_id FROM org_view ORDER BY org_id")
        .fetch_all(pool)
        .await
        .expect("orgs")
}

#[tokio::test]
async fn an_event_that_commits_late_is_neither_skipped_nor_repeated() {
    let _alone = holding_the_horizon().await;
    let database = TestDatabase::create().await;
    let ledger = ledger_without_projector(&database).await;
    catch_up(&ledger).await;
    let (before, _) = applied_so_far(ledger.pool()).await;

    // T1 takes the lower position, T2 the higher one; T2 commits first.
    let mut t1 = PgConnection::connect_with(&database.options)
        .await
        .expect("t1");
    let mut t2 = PgConnection::connect_with(&database.options)
        .await
        .expect("t2");
    sqlx::query("BEGIN").execute(&mut t1).await.expect("begin");
    let low = insert_organisation(&mut t1, "early-position").await;
    sqlx::query("BEGIN").execute(&mut t2).await.expect("begin");
    let high = insert_organisation(&mut t2, "late-position").await;
    assert!(low < high);
    sqlx::query("COMMIT")
        .execute(&mut t2)
        .await
        .expect("commit t2");

    // A reader following positions would take `high` now and never look back at `low`.
    let projector = Projector::new(ledger.clone(), 100);
    assert_eq!(
        projector.step().await.expect("step"),
        0,
        "nothing is safe to read while T1 is open"
    );
    assert!(organisations(ledger.pool()).await.is_empty());

    sqlx::query("COMMIT")
        .execute(&mut t1)
        .await
        .expect("commit t1");
    assert_eq!(catch_up(&ledger).await, 2);
    assert_eq!(
        organisations(ledger.pool()).await,
        ["early-position", "late-position"]
    );
    let (after, _) = applied_so_far(ledger.pool()).await;
    assert_eq!(after - before, 2, "each event applied exactly once");
    let checkpoint = commit_order::checkpoint(ledger.pool())
        .await
        .expect("checkpoint");
    assert_eq!(
        checkpoint.position, high,
        "T2 committed last in transaction order too"
    );
    assert_eq!(catch_up(&ledger).await, 0, "and nothing is applied again");
}

#[tokio::test]
async fn a_restarted_projector_resumes_from_its_checkpoint() {
    let _alone = holding_the_horizon().await;
    let database = TestDatabase::create().await;
    let first = ledger_without_projector(&database).await;
    let meta = studyledger::store::record::Metadata::system("test");
    for org in ["r1", "r2", "r3"] {
        first
            .execute::<studyledger_aggregates::organisation::Organisation, ()>(
                org,
                studyledger_aggregates::organisation::OrganisationCommand::Register(
                    studyledger_aggregates::organisation::OrganisationRecord {
                        org_id: org.parse().expect("slug"),
                        name: org.parse().expect("a name"),
                        parent_id: None,
                    },
                ),
                &meta,
                |_| (),
            )
            .await
            .expect("register");
    }
    let applied = catch_up(&first).await;
    assert_eq!(applied, 4, "ruleset 1 and three organisations");
    let (events_before, batches_before) = applied_so_far(first.pool()).await;

    // A new process: a new pool, a new ledger, the same database.
    let second = ledger_without_projector(&database).await;
    let mut connection = PgConnection::connect_with(&database.options)
        .await
        .expect("connect");
    insert_organisation(&mut connection, "r4").await;
    assert_eq!(catch_up(&second).await, 1, "only the new event");
    let (events_after, batches_after) = applied_so_far(second.pool()).await;
    assert_eq!(events_after, events_before + 1);
    assert_eq!(batches_after, batches_before + 1);
    assert_eq!(organisations(second.pool()).await, ["r1", "r2", "r3", "r4"]);
}

#[tokio::test]
async fn a_read_waits_for_the_views_and_says_when_they_are_behind() {
    let _alone = holding_the_horizon().await;
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let path = format!(
        "{}/v1/members/{member}/compliance?quarter=2018-Q2",
        app.address
    );
    // The views hold the enrolment first, so that nothing later can be folded in early.
    crate::helpers::wait_until_projected(&app.pool).await;

    // A transaction that holds the horizon back keeps the projector from the next session.
    let mut blocker = PgConnection::connect_with(&app.database.options)
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut blocker)
        .await
        .expect("xid");
    app.study(
        member,
        "ethics",
        "2018-05-02T01:00:00Z",
        "2018-05-02T02:00:00Z",
    )
    .await;
    let started = Instant::now();
    let response = app.client.get(&path).send().await.expect("request");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited for the views"
    );
    assert_eq!(response.headers()["x-views-behind"], "true");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        body["study_minutes"], 0,
        "the views do not have the session yet"
    );

    sqlx::query("COMMIT")
        .execute(&mut blocker)
        .await
        .expect("commit");
    let response = app.client.get(&path).send().await.expect("request");
    assert!(response.headers().get("x-views-behind").is_none());
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["study_minutes"], 60, "read your writes");

    let metrics = metrics_text(&app.client, &app.address).await;
    for line in [
        "studyledger_projector_events_behind 0",
        "studyledger_projector_seconds_behind 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    for name in [
        "studyledger_projector_batches_total",
        "studyledger_http_requests_total{method=\"GET\",route=\"/v1/members/{member_id}/compliance\",status=\"200\"}",
        "studyledger_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} in\n{metrics}");
    }
}
