//! Replay as an operation: readers during rebuilds, failures and interruptions that leave the
//! live views serving, one replay at a time, and the command line.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{
    assert_views_match_the_log, holding_the_horizon, until, until_counted, wait_until_projected,
    TestApp,
};
use serde_json::{json, Value};
use sqlx::Connection;
use uuid::Uuid;

/// An organisation, two courses, and `n` members with 8 + 3 class hours in 2018-Q3.
async fn members_compliant_in_2018_q3(app: &TestApp, n: usize) -> Vec<Uuid> {
    let (status, _) = app
        .post("/v1/orgs", &json!({"org_id": "fz", "name": "福州"}))
        .await;
    assert_eq!(status, 201);
    for (id, category, hours) in [("r8", "required", 8), ("e3", "elective", 3)] {
        let (status, _) = app
            .post(
                "/v1/courses",
                &json!({"course_id": id, "title": id, "category": category, "credit_hours": hours}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let mut members = Vec::new();
    for i in 0..n {
        let member = Uuid::new_v4();
        let (status, body) = app
            .post(
                "/v1/members",
                &json!({"member_id": member, "member_no": format!("M-{i}"), "name": "党员",
                        "org_id": "fz", "enrolled_on": "2018-01-01"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        for course in ["r8", "e3"] {
            let (status, body) = app
                .post(
                    &format!("/v1/members/{member}/course-completions"),
                    &json!({"completion_id": Uuid::new_v4(), "course_id": course,
                            "completed_at": "2018-08-15T04:00:00Z"}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        members.push(member);
    }
    wait_until_projected(&app.pool).await;
    members
}

/// Version 2 asks 10 required hours from 2018-Q3 on: every member above falls short.
async fn raise_the_requirement(app: &TestApp) {
    let (status, body) = app
        .post(
            "/v1/rulesets",
            &json!({"version": 2, "effective_from": "2018-Q3", "required_hours": 10,
                    "elective_hours": 3, "excess_required_counts_as_elective": false,
                    "enforce_min_study_time": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn member_answer(body: &Value) -> (Value, Value, Value) {
    (
        body["status"].clone(),
        body["ruleset_version"].clone(),
        body["stale"].clone(),
    )
}

fn rollup_answer(body: &Value) -> (Value, Value, Value, Value) {
    (
        body["members"].clone(),
        body["compliant"].clone(),
        body["non_compliant"].clone(),
        body["stale"].clone(),
    )
}

#[tokio::test]
async fn readers_during_replays_get_complete_answers_from_the_old_views_or_the_new() {
    let app = Arc::new(TestApp::spawn().await);
    let members = Arc::new(members_compliant_in_2018_q3(&app, 60).await);
    raise_the_requirement(&app).await;
    let n = json!(members.len());
    let old_member = (json!("compliant"), json!(1), json!(true));
    let new_member = (json!("non_compliant"), json!(2), json!(false));
    let old_rollup = (n.clone(), n.clone(), json!(0), n.clone());
    let new_rollup = (n.clone(), json!(0), n.clone(), json!(0));

    let stop = Arc::new(AtomicBool::new(false));
    let seen_old = Arc::new(AtomicUsize::new(0));
    let seen_new = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for reader in 0..4 {
        let (app, members, stop) = (app.clone(), members.clone(), stop.clone());
        let (seen_old, seen_new) = (seen_old.clone(), seen_new.clone());
        let (old_member, new_member) = (old_member.clone(), new_member.clone());
        let (old_rollup, new_rollup) = (old_rollup.clone(), new_rollup.clone());
        readers.push(tokio::spawn(async move {
            let mut i = reader;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let member = members[i % members.len()];
                let (status, body) = app
                    .get(&format!("/v1/members/{member}/compliance?quarter=2018-Q3"))
                    .await;
                assert_eq!(status, 200, "{body}");
                let answer = member_answer(&body);
                if answer == old_member {
                    seen_old.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert_eq!(answer, new_member, "a complete answer, old or new");
                    seen_new.fetch_add(1, Ordering::Relaxed);
                }
                let (status, body) = app.get("/v1/orgs/fz/compliance?quarter=2018-Q3").await;
                assert_eq!(status, 200, "{body}");
                let answer = rollup_answer(&body);
                assert!(
                    answer == old_rollup || answer == new_rollup,
                    "a roll-up never mixes old and new views: {body}"
                );
            }
        }));
    }
    // Writes go on during the replays, outside the subtree the readers check: each swap rewinds
    // the projector to the replay's last event, and whatever came after is applied again.
    let (status, _) = app
        .post(
            "/v1/orgs",
            &json!({"org_id": "newcomers", "name": "新成员"}),
        )
        .await;
    assert_eq!(status, 201);
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (app, stop, written) = (app.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = written.load(Ordering::Relaxed);
                let member = Uuid::new_v4();
                let (status, body) = app
                    .post(
                        "/v1/members",
                        &json!({"member_id": member, "member_no": format!("N-{n}"),
                                "name": "新人", "org_id": "newcomers", "enrolled_on": "2018-01-01"}),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
                let (status, body) = app
                    .post(
                        &format!("/v1/members/{member}/course-completions"),
                        &json!({"completion_id": Uuid::new_v4(), "course_id": "r8",
                                "completed_at": "2018-08-15T04:00:00Z"}),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    until("readers saw the old views and a member was written", || {
        seen_old.load(Ordering::Relaxed) > 0 && written.load(Ordering::Relaxed) > 0
    })
    .await;
    for _ in 0..4 {
        let id = app.start_replay(false).await;
        let done = app.replay_outcome(&id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let after_the_replays = written.load(Ordering::Relaxed);
    until("readers saw the new views and writes went on", || {
        seen_new.load(Ordering::Relaxed) > 0 && written.load(Ordering::Relaxed) > after_the_replays
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("a reader failed");
    }
    writer.await.expect("the writer failed");
    assert!(
        written.load(Ordering::Relaxed) > 0,
        "members enrolled during the replays"
    );
    wait_until_projected(&app.pool).await;
    assert!(
        seen_old.load(Ordering::Relaxed) > 0,
        "reads before the first swap"
    );
    assert!(seen_new.load(Ordering::Relaxed) > 0, "reads after it");
    assert_views_match_the_log(&app.pool).await;
}

/// The indexes of the live view tables, with their definitions' shape.
async fn live_indexes(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes
          WHERE schemaname = 'public'
            AND tablename IN ('org_view', 'member_view', 'member_org_view', 'member_quarter_view')
          ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("indexes")
}

async fn schema_exists(app: &TestApp, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .expect("schema")
}

#[tokio::test]
async fn a_failed_replay_leaves_the_live_views_serving_and_simply_runs_again() {
    let app = TestApp::spawn().await;
    let members = members_compliant_in_2018_q3(&app, 3).await;
    raise_the_requirement(&app).await;
    // A constraint the live rows need not meet (NOT VALID) but every new row breaks: the
    // replay's fresh tables copy it, and its first bulk write fails.
    sqlx::query("ALTER TABLE member_view ADD CONSTRAINT sabotage CHECK (false) NOT VALID")
        .execute(&app.pool)
        .await
        .expect("sabotage");
    let id = app.start_replay(false).await;
    let failed = app.replay_outcome(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("sabotage")),
        "{failed}"
    );
    assert!(
        !schema_exists(&app, "replay_next").await,
        "nothing left behind"
    );
    let views: i64 = sqlx::query_scalar("SELECT count(*) FROM member_quarter_view")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(views, 3, "the live views still serve");
    let (status, body) = app
        .get(&format!(
            "/v1/members/{}/compliance?quarter=2018-Q3",
            members[0]
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        member_answer(&body),
        (json!("compliant"), json!(1), json!(true))
    );

    // Repaired, the same replay simply runs again.
    sqlx::query("ALTER TABLE member_view DROP CONSTRAINT sabotage")
        .execute(&app.pool)
        .await
        .expect("repair");
    let id = app.start_replay(false).await;
    assert_eq!(app.replay_outcome(&id).await["status"], "succeeded");
    let (_, body) = app
        .get(&format!(
            "/v1/members/{}/compliance?quarter=2018-Q3",
            members[0]
        ))
        .await;
    assert_eq!(
        member_answer(&body),
        (json!("non_compliant"), json!(2), json!(false))
    );
    assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn one_replay_runs_at_a_time_and_an_interrupted_one_is_cleaned_up() {
    let app = TestApp::spawn().await;
    members_compliant_in_2018_q3(&app, 2).await;
    // Another replay holds the lock and is marked running: refused at once.
    let mut other = app.pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(studyledger::store::lock::REPLAY)
        .execute(&mut *other)
        .await
        .expect("lock");
    let running = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO replays (replay_id, dry_run, status, actor) VALUES ($1, true, 'running', 'x')",
    )
    .bind(running)
    .execute(&mut *other)
    .await
    .expect("row");
    let asked = std::time::Instant::now();
    let (status, body) = app.post("/v1/replays", &json!({"dry_run": true})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "refused without waiting"
    );
    // It finishes: marked succeeded a moment before its lock goes. A replay asked for in
    // between waits for the lock instead of being refused.
    sqlx::query("UPDATE replays SET status = 'succeeded' WHERE replay_id = $1")
        .bind(running)
        .execute(&mut *other)
        .await
        .expect("finish");
    let pool = app.pool.clone();
    let releasing = tokio::spawn(async move {
        // Once the next replay is waiting for the lock (asking, between tries, whether a replay
        // is still marked running), the finishing one lets it go.
        until_counted(
            &pool,
            "the next replay waits for the lock",
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE '%status = ''running''%'
                AND pid <> pg_backend_pid()",
            1,
        )
        .await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(studyledger::store::lock::REPLAY)
            .execute(&mut *other)
            .await
            .expect("unlock");
    });
    let next = app.start_replay(true).await;
    assert_eq!(app.replay_outcome(&next).await["status"], "succeeded");
    releasing.await.expect("released");

    // What a replay killed half-way leaves: its row marked running, and half-built tables.
    let interrupted = Uuid::new_v4();
    for statement in [
        "CREATE SCHEMA replay_next",
        "CREATE TABLE replay_next.member_view (half_built int)",
    ] {
        sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect(statement);
    }
    sqlx::query("INSERT INTO replays (replay_id, dry_run, status, actor) VALUES ($1, false, 'running', 'x')")
        .bind(interrupted)
        .execute(&app.pool)
        .await
        .expect("row");
    let indexes = live_indexes(&app).await;
    assert!(
        indexes.contains(&"member_org_view_by_org".to_owned()),
        "{indexes:?}"
    );
    let id = app.start_replay(false).await;
    assert_eq!(app.replay_outcome(&id).await["status"], "succeeded");
    assert_eq!(
        live_indexes(&app).await,
        indexes,
        "the rebuilt tables carry the same indexes under the same names"
    );
    let (_, old) = app.get(&format!("/v1/replays/{interrupted}")).await;
    assert_eq!(
        (&old["status"], &old["error"]),
        (&json!("failed"), &json!("interrupted"))
    );
    assert!(!schema_exists(&app, "replay_next").await);
    assert_views_match_the_log(&app.pool).await;

    let (status, _) = app.get(&format!("/v1/replays/{}", Uuid::new_v4())).await;
    assert_eq!(status, 404);
    let (status, _) = app.post("/v1/replays", &json!({})).await;
    assert_eq!(status, 400, "dry_run must be said");
}

#[tokio::test]
async fn the_command_line_lists_changes_then_rebuilds() {
    let app = TestApp::spawn().await;
    let members = members_compliant_in_2018_q3(&app, 2).await;
    app.define_evaluation("2018-q3", &["2018-Q3"]).await;
    let (status, body) = app
        .post(
            "/v1/evaluations/2018-q3/determinations",
            &json!({"determination_id": Uuid::new_v4(), "member_ids": [members[0]]}),
        )
        .await;
    assert_eq!((status, &body["eligible"]), (200, &json!(1)));
    wait_until_projected(&app.pool).await;
    raise_the_requirement(&app).await;

    let run = |dry_run: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_studyledger"));
        command
            .arg("replay")
            .env("DATABASE_URL", app.database.url())
            .env("RUST_LOG", "error");
        if dry_run {
            command.arg("--dry-run");
        }
        command.output().expect("run studyledger replay")
    };
    let dry = run(true);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let summary: Value = serde_json::from_slice(&dry.stdout).expect("summary JSON");
    assert_eq!(
        (&summary["dry_run"], &summary["changes"]),
        (&json!(true), &json!(1))
    );
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("replay: "),
        "progress lines without a terminal"
    );
    let id = summary["replay_id"].as_str().expect("id");
    let (status, listed) = app.get(&format!("/v1/replays/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["changes"][0]["member_id"], json!(members[0]));
    assert_eq!(listed["changes"][0]["quarters_changed"], json!(["2018-Q3"]));
    let csv = app
        .client
        .get(format!("{}/v1/replays/{id}", app.address))
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "\u{feff}member_id,member_no,name,evaluation_id,determination_id,recorded_eligible,eligible_now,quarters_changed"
    );
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1].starts_with(&format!("{},M-0,党员,2018-q3,", members[0])),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",true,false,2018-Q3"), "{}", lines[1]);

    let rebuild = run(false);
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    let (_, body) = app
        .get(&format!(
            "/v1/members/{}/compliance?quarter=2018-Q3",
            members[1]
        ))
        .await;
    assert_eq!(
        member_answer(&body),
        (json!("non_compliant"), json!(2), json!(false))
    );
}

#[tokio::test]
async fn a_replay_covers_everything_committed_before_it_was_asked() {
    // It holds a transaction of another database open throughout.
    let _alone = holding_the_horizon().await;
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    let determine = |id: Uuid| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    "/v1/evaluations/2018-q2/determinations",
                    &json!({"determination_id": id, "member_ids": [member]}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    assert_eq!(determine(Uuid::new_v4()).await["eligible"], 0);
    for (category, hours) in [("required", 8), ("elective", 3)] {
        let (status, body) = app
            .post(
                &format!("/v1/members/{member}/credit-adjustments"),
                &json!({"adjustment_id": Uuid::new_v4(), "category": category, "hours": hours,
                        "effective_at": "2018-05-15T02:00:00Z", "reason": "补录"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // A transaction in another database of the server, open throughout: it cannot write these
    // events, so the replay does not wait for it.
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut elsewhere = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the server's own database");
    sqlx::query("BEGIN")
        .execute(&mut elsewhere)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut elsewhere)
        .await
        .expect("take a transaction id");
    // Somebody else's transaction in this database, open before the re-determination commits
    // and still open when the dry run is asked for: the replay waits for it.
    let mut other = app.pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *other)
        .await
        .expect("take a transaction id");
    assert_eq!(determine(Uuid::new_v4()).await["eligible"], 1);
    let id = app.start_replay(true).await;
    // The replay has taken its snapshot and waits for the transactions open then.
    until_counted(
        &app.pool,
        "the replay waits for the open transaction",
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE '%pg_xact_status%'
            AND pid <> pg_backend_pid()",
        1,
    )
    .await;
    other.commit().await.expect("commit");
    let dry = app.replay_outcome(&id).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(
        dry["changes"],
        json!([]),
        "the re-determination is covered: nothing left to re-determine"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut elsewhere)
        .await
        .expect("rollback");
}
