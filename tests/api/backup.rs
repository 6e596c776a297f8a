//! Backup and restore (README "Backup and restore"): a ledger dumped with `pg_dump` and
//! restored by `scripts/restore` into a throwaway cluster of its own verifies clean against the
//! heads saved with the dump, assigns transaction ids beyond its log's, and rebuilds the very
//! views the original holds; a dump missing the last events is caught by the heads.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sqlx::PgPool;
use studyledger_projections::sql::VIEW_TABLES;
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// The folder of the repository's scripts.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// `pg_dump --format=custom` of the database at `url` into `file`.
fn dump(url: &str, file: &Path) {
    // Debian keeps the server's own pg_dump off PATH.
    let debian = "/usr/lib/postgresql/15/bin/pg_dump";
    let pg_dump = if Path::new(debian).exists() {
        debian
    } else {
        "pg_dump"
    };
    let output = Command::new(pg_dump)
        .args(["--format=custom", "--file"])
        .arg(file)
        .arg(url)
        .output()
        .expect("run pg_dump");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The throwaway clusters of the test, stopped and removed however it ends.
struct Clusters(Vec<PathBuf>);

impl Drop for Clusters {
    fn drop(&mut self) {
        for folder in &self.0 {
            let _ = Command::new(scripts().join("private-postgres.sh"))
                .arg("stop")
                .env("STUDYLEDGER_PG_DIR", folder)
                .output();
            if let Ok(target) = std::fs::canonicalize(folder) {
                let _ = std::fs::remove_dir_all(target);
            }
            let _ = std::fs::remove_file(folder);
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// Runs `scripts/restore`: whether it succeeded, the restored ledger's URL, and what it said.
fn restore(dump: &Path, heads: &Path, folder: &Path) -> (bool, Option<String>, String) {
    let output = Command::new(scripts().join("restore"))
        .arg(dump)
        .arg(heads)
        .arg(folder)
        .env("STUDYLEDGER_BIN", env!("CARGO_BIN_EXE_studyledger"))
        .env("RUST_LOG", "error")
        .env_remove("STUDYLEDGER_PG_PORT")
        .output()
        .expect("run scripts/restore");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let url = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("DATABASE_URL="))
        .map(str::to_owned);
    let said = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), url, said)
}

/// Every row of a view table, as text, in order.
async fn rows(pool: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT t::text FROM {table} t ORDER BY t::text COLLATE \"C\""
    ))
    .fetch_all(pool)
    .await
    .expect(table)
}

#[tokio::test]
async fn a_restored_ledger_verifies_against_its_heads_and_rebuilds_the_same_views() {
    let app = TestApp::spawn().await;
    // The original cluster has assigned more transaction ids than a new one: the restore must
    // move the new cluster's past the log's.
    for _ in 0..1000 {
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&app.pool)
            .await
            .expect("a transaction");
    }
    let member = app.seed_member("2018-01-01").await;
    app.study(
        member,
        "party-history",
        "2018-04-02T01:00:00Z",
        "2018-04-02T02:30:00Z",
    )
    .await;
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &json!({"completion_id": Uuid::new_v4(), "course_id": "party-history",
                    "completed_at": "2018-04-02T03:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("restore-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&work).expect("a work folder");
    // libpq's form of the test database's URL (sqlx's carries options libpq refuses).
    let options = &app.database.options;
    let url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        app.database.name
    );
    let stale_dump = work.join("before-the-last-events.dump");
    dump(&url, &stale_dump);

    app.study(
        member,
        "ethics",
        "2018-05-02T01:00:00Z",
        "2018-05-02T02:00:00Z",
    )
    .await;
    wait_until_projected(&app.pool).await;
    let heads = work.join("heads.csv");
    let saved = Command::new(env!("CARGO_BIN_EXE_studyledger"))
        .args(["verify", "--save-heads"])
        .arg(&heads)
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "error")
        .output()
        .expect("run studyledger verify");
    assert!(saved.status.success(), "{saved:?}");
    let ledger_dump = work.join("ledger.dump");
    dump(&url, &ledger_dump);

    let clusters = Clusters(vec![work.join("restored"), work.join("stale")]);
    let (restored, restored_url, said) = restore(&ledger_dump, &heads, &clusters.0[0]);
    assert!(restored, "{said}");
    assert!(
        said.contains("pg_resetwal"),
        "the transaction ids moved: {said}"
    );
    let copy = studyledger::store::database::connect(&restored_url.expect("a URL"), 2)
        .await
        .expect("connect to the restored ledger");
    for table in VIEW_TABLES {
        assert_eq!(
            rows(&copy, table).await,
            rows(&app.pool, table).await,
            "{table} rebuilt from the restored log"
        );
    }
    let ahead: bool = sqlx::query_scalar(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::numeric
                > (SELECT max(transaction_id)::text::numeric FROM events)",
    )
    .fetch_one(&copy)
    .await
    .expect("transaction ids");
    assert!(ahead, "new events sort after the restored ones");
    copy.close().await;

    let (stale, _, said) = restore(&stale_dump, &heads, &clusters.0[1]);
    assert!(!stale, "a copy missing its last events passes: {said}");
    assert!(said.contains("moved head"), "{said}");
    drop(clusters);
    let _ = std::fs::remove_dir_all(&work);
}
