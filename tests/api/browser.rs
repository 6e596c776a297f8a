//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, run with
//! `--no-sandbox`) driven by `tests/browser/walk.mjs` through puppeteer-core, against the
//! service's real router on a database of its own with a small demo ledger, an evaluation and
//! an open appeal. What the walk checks is listed at the top of the script; it saves a
//! screenshot of every page under `target/tmp/browser-screenshots/` (git ignores `target/`).
//!
//! Chromium and puppeteer-core are installed by `scripts/browser-deps` (run by `scripts/test`):
//! without them this test fails and says so.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use studyledger::jobs::demo::{self, DemoPlan};
use studyledger::store::tokens::Role;
use studyledger_aggregates::values::{local_date, Quarter};
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the browser and its driver are; a clear failure when they are not.
fn browser_parts() -> (PathBuf, PathBuf) {
    let driver = checkout().join(".browser/node_modules/puppeteer-core");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    assert!(
        driver.is_dir() && chromium.exists(),
        "the browser test needs Chromium ({}) and puppeteer-core ({}): run scripts/browser-deps",
        chromium.display(),
        driver.display()
    );
    (chromium, driver)
}

#[tokio::test]
async fn every_role_walks_its_pages_in_chromium_and_sees_the_apis_figures() {
    let (chromium, _) = browser_parts();
    let app = TestApp::spawn().await;
    let plan = DemoPlan {
        members: 40,
        concurrency: 4,
        ..DemoPlan::default()
    };
    demo::load(&app.ledger(), &plan).await.expect("demo data");
    wait_until_projected(&app.pool).await;
    let members: Vec<Uuid> = sqlx::query_scalar(
        "SELECT member_id FROM member_view ORDER BY enrolled_on, member_id LIMIT 2",
    )
    .fetch_all(&app.pool)
    .await
    .expect("members");
    let (root, branch): (String, String) = sqlx::query_as(
        "SELECT p.org_id, c.org_id FROM org_view p JOIN org_view c ON c.parent_id = p.org_id
          WHERE p.parent_id IS NULL ORDER BY c.org_id LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("a root with a child");
    let today = local_date(Utc::now(), app.ledger().tz());
    let this_quarter = Quarter::of_date(today);
    let ended = this_quarter.previous();

    // An evaluation of the last ended quarter, decided by the bootstrap administrator, and the
    // member's appeal against it (the browser's administrator, another token, may resolve it).
    app.define_evaluation("browser-eval", &[&ended.to_string()])
        .await;
    let (status, body) = app
        .post(
            "/v1/evaluations/browser-eval/determinations",
            &json!({"determination_id": Uuid::new_v4(), "member_ids": [members[0]]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (appeal, member_token) = app
        .file_appeal(members[0], "browser-eval", "线下党课的签到表未录入")
        .await;
    wait_until_projected(&app.pool).await;

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let env = [
        ("BASE", app.address.clone()),
        ("SCREENSHOTS", shots.display().to_string()),
        ("CHROMIUM", chromium.display().to_string()),
        ("ADMIN_TOKEN", app.token(Role::Admin, None, None).await),
        (
            "ORG_ADMIN_TOKEN",
            app.token(Role::OrgAdmin, Some(&branch), None).await,
        ),
        ("AUDITOR_TOKEN", app.token(Role::Auditor, None, None).await),
        ("MEMBER_TOKEN", member_token),
        ("ROOT_ORG", root),
        ("BRANCH_ORG", branch),
        ("MEMBER_ID", members[0].to_string()),
        ("OTHER_MEMBER_ID", members[1].to_string()),
        ("APPEAL_MEMBER_ID", members[0].to_string()),
        ("APPEAL_ID", appeal.to_string()),
        ("QUARTER", ended.to_string()),
    ];
    let script = checkout().join("tests/browser/walk.mjs");
    let walk = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(checkout().join(".browser"))
            .env("DRIVER_DIR", checkout().join(".browser"))
            .envs(env)
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(180), walk)
        .await
        .expect("the walk ends within 3 minutes")
        .expect("joined")
        .expect("node runs (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser walk failed:\n{stdout}\n{}",
        stderr.chars().take(4000).collect::<String>()
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
