//! Tamper evidence: every event carries its link of its stream's hash chain, and
//! `studyledger verify` names exactly the event changed behind the service's back.

mod common;

use common::TestApp;
use serde_json::Value;

fn verify(app: &TestApp, member: Option<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_studyledger"));
    command
        .arg("verify")
        .env("DATABASE_URL", app.database.url())
        .env("RUST_LOG", "error");
    if let Some(member) = member {
        command.args(["--member", member]);
    }
    let output = command.output().expect("run studyledger verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn verify_names_exactly_the_event_changed_behind_the_services_back() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let other = app.seed_member("2018-01-01").await;
    for (start, end) in [
        ("2018-03-01T01:00:00Z", "2018-03-01T02:00:00Z"),
        ("2018-03-02T01:00:00Z", "2018-03-02T02:00:00Z"),
        ("2018-03-03T01:00:00Z", "2018-03-03T02:00:00Z"),
    ] {
        for m in [member, other] {
            let (status, body) = app.record_session(m, "party-history", start, end).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    let (status, body) = app.get(&format!("/v1/members/{member}/events")).await;
    assert_eq!(status, 200);
    let hashes: Vec<&str> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["hash"].as_str().expect("hash"))
        .collect();
    assert_eq!(hashes.len(), 4);
    assert!(hashes
        .iter()
        .all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())));
    let mut distinct = hashes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "every link differs");

    let (clean, report) = verify(&app, None);
    assert!(clean, "{report}");
    assert!(report.contains(": 0 broken links"), "{report}");

    // A superuser moves the second session by an hour, bypassing the append-only trigger.
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER USER",
        "UPDATE events SET payload = replace(payload::text, '2018-03-02T01:00:00Z', '2018-03-02T00:00:00Z')::json
          WHERE aggregate_type = 'member' AND aggregate_id = $1 AND sequence = 3",
        "ALTER TABLE events ENABLE TRIGGER USER",
    ] {
        let result = sqlx::query(statement)
            .bind(member.to_string())
            .execute(&app.pool)
            .await
            .expect(statement);
        if statement.starts_with("UPDATE") {
            assert_eq!(result.rows_affected(), 1);
        }
    }
    let (clean, report) = verify(&app, None);
    assert!(!clean, "verify fails: {report}");
    let broken: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("broken link"))
        .collect();
    assert_eq!(broken, [format!("broken link: member {member} sequence 3")]);
    let (clean, report) = verify(&app, Some(&other.to_string()));
    assert!(clean, "the other member's chain holds: {report}");
    let (clean, _) = verify(&app, Some(&member.to_string()));
    assert!(!clean);

    // The stream shown to auditors still carries the stored links.
    let (_, after) = app.get(&format!("/v1/members/{member}/events")).await;
    let shown: Vec<&Value> = after["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["hash"])
        .collect();
    assert_eq!(shown.len(), 4);
}
