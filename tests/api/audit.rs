//! Tamper evidence: every event carries its link of its stream's hash chain, and
//! `studyledger verify` names exactly the event changed behind the service's back.

use crate::helpers::{behind_the_services_back, TestApp, TestDatabase};
use chrono::SubsecRound;
use sqlx::PgPool;
use studyledger::store::chain::{link, Fields};
use uuid::Uuid;

/// Runs `studyledger verify` on the app's database (or one member's stream): whether it passed,
/// and its report.
pub fn verify(app: &TestApp, member: Option<&str>) -> (bool, String) {
    verify_with(app, member.map(|m| vec!["--member", m]).unwrap_or_default())
}

fn verify_with(app: &TestApp, args: Vec<&str>) -> (bool, String) {
    verify_at(&app.database.url(), args)
}

/// Runs `studyledger verify` on the database at `url`: whether it passed, and what it printed
/// (standard output, then standard error).
fn verify_at(url: &str, args: Vec<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_studyledger"));
    command
        .arg("verify")
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "error");
    let output = command.output().expect("run studyledger verify");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Appends a bare event to a member stream by SQL, as any writer with access could.
async fn note(pool: &PgPool, member: &str, sequence: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('member', $1, $2, 'Noted', '1', $3::json, '{\"actor\": \"system\"}')",
    )
    .bind(member)
    .bind(sequence)
    .bind(format!("{{\"Noted\": {{\"n\": {sequence}}}}}"))
    .execute(pool)
    .await
    .map(drop)
}

/// The `broken link` lines of a verify report.
fn broken_links(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.starts_with("broken link"))
        .collect()
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
            app.study(m, "party-history", start, end).await;
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
    behind_the_services_back(
        &app.pool,
        &[&format!(
            "UPDATE events SET payload = replace(payload::text, '2018-03-02T01:00:00Z',
                                                 '2018-03-02T00:00:00Z')::json
              WHERE aggregate_type = 'member' AND aggregate_id = '{member}' AND sequence = 3"
        )],
    )
    .await;
    let (clean, report) = verify(&app, None);
    assert!(!clean, "verify fails: {report}");
    assert_eq!(
        broken_links(&report),
        [format!("broken link: member {member} sequence 3")]
    );
    let (clean, report) = verify(&app, Some(&other.to_string()));
    assert!(clean, "the other member's chain holds: {report}");
    let (clean, _) = verify(&app, Some(&member.to_string()));
    assert!(!clean);

    // The stream shown to auditors still carries the stored links.
    let (_, after) = app.get(&format!("/v1/members/{member}/events")).await;
    let shown: Vec<&str> = after["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["hash"].as_str().expect("hash"))
        .collect();
    assert_eq!(
        shown, hashes,
        "the stored links, unchanged by the tampering"
    );
}

#[tokio::test]
async fn the_chain_covers_whose_stream_it_is_its_metadata_and_its_continuity() {
    let app = TestApp::spawn().await;
    let members = [
        app.seed_member("2018-01-01").await,
        app.seed_member("2018-01-01").await,
        app.seed_member("2018-01-01").await,
        app.seed_member("2018-01-01").await,
    ];
    // More than a snapshot's worth of events for the first member: appends with a snapshot
    // chain like the others.
    for day in 0..110_u32 {
        let start = chrono::NaiveDate::from_ymd_opt(2018, 3, 1).expect("date")
            + chrono::Days::new(u64::from(day));
        for (i, m) in members.iter().enumerate() {
            if day >= 3 && i > 0 {
                continue;
            }
            app.study(
                *m,
                "party-history",
                &format!("{start}T01:00:00Z"),
                &format!("{start}T02:00:00Z"),
            )
            .await;
        }
    }
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE aggregate_id = $1")
            .bind(members[0].to_string())
            .fetch_one(&app.pool)
            .await
            .expect("snapshots");
    assert_eq!(snapshots, 1, "the long stream was snapshotted");
    let (clean, report) = verify(&app, None);
    assert!(clean, "{report}");

    let [long, swapped_a, swapped_b, shortened] = members.map(|m| m.to_string());
    let statements = [
        // The actor of the long stream's 50th event rewritten.
        format!(
            "UPDATE events SET metadata = jsonb_set(metadata::jsonb, '{{actor}}', '\"admin\"')::json
              WHERE aggregate_type = 'member' AND aggregate_id = '{long}' AND sequence = 50"
        ),
        // Two members' whole streams, hashes and all, exchanged.
        format!("UPDATE events SET aggregate_id = 'swap' WHERE aggregate_id = '{swapped_a}'"),
        format!(
            "UPDATE events SET aggregate_id = '{swapped_a}' WHERE aggregate_id = '{swapped_b}'"
        ),
        format!("UPDATE events SET aggregate_id = '{swapped_b}' WHERE aggregate_id = 'swap'"),
        // An event taken out of the middle of a stream.
        format!(
            "DELETE FROM events
              WHERE aggregate_type = 'member' AND aggregate_id = '{shortened}' AND sequence = 2"
        ),
    ];
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    behind_the_services_back(&app.pool, &statements).await;

    let (clean, report) = verify(&app, None);
    assert!(!clean, "{report}");
    let mut expected = vec![
        format!("broken link: member {long} sequence 50"),
        format!("broken link: member {shortened} sequence 3"),
    ];
    for swapped in [&swapped_a, &swapped_b] {
        for sequence in 1..=4 {
            expected.push(format!("broken link: member {swapped} sequence {sequence}"));
        }
    }
    expected.sort();
    let mut broken = broken_links(&report);
    broken.sort_unstable();
    assert_eq!(broken, expected);
}

#[tokio::test]
async fn migrating_rechains_old_events_without_hiding_a_tampered_one() {
    // A ledger at migration 0005 (chains without stream identity or metadata).
    let database = TestDatabase::create().await;
    let pool = database.pool().await;
    let folder = std::env::temp_dir().join(format!("studyledger-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&folder).expect("folder");
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).expect("migrations")
    {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        if name.as_str() < "0006" {
            std::fs::copy(&path, folder.join(&name)).expect("copy");
        }
    }
    let old = sqlx::migrate::Migrator::new(folder.as_path())
        .await
        .expect("migrator");
    old.run(&pool).await.expect("migrate to 0005");
    std::fs::remove_dir_all(&folder).ok();
    let (a, b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    for (member, sequence) in [(&a, 1), (&a, 2), (&a, 3), (&b, 1), (&b, 2)] {
        note(&pool, member, sequence).await.expect("insert");
    }
    behind_the_services_back(
        &pool,
        &[&format!(
            "UPDATE events SET payload = '{{\"Noted\": {{\"n\": 20}}}}'
              WHERE aggregate_id = '{a}' AND sequence = 2"
        )],
    )
    .await;

    // Chains of another definition are not judged by this version's verify.
    let (clean, report) = verify_at(&database.url(), vec![]);
    assert!(!clean, "{report}");
    assert!(report.contains("run `studyledger migrate`"), "{report}");
    assert!(broken_links(&report).is_empty(), "{report}");

    studyledger::store::database::migrate(&pool)
        .await
        .expect("migrate to the end");
    let app = TestApp::spawn_on(std::sync::Arc::new(database)).await;
    let (clean, report) = verify(&app, None);
    assert!(!clean, "{report}");
    assert_eq!(
        broken_links(&report),
        [format!("broken link: member {a} sequence 2")]
    );
    // New events chain under the new definition, which verify shares with the database.
    note(&app.pool, &b, 3).await.expect("append");
    let (_, report) = verify(&app, None);
    assert_eq!(
        broken_links(&report),
        [format!("broken link: member {a} sequence 2")]
    );
    // An event that follows nothing in its stream is refused rather than chained from nowhere.
    let refused = note(&app.pool, &b, 9).await.expect_err("a gap is refused");
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("23514")
    );
}

#[tokio::test]
async fn saved_heads_find_events_removed_from_the_end_of_a_stream() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let other = app.seed_member("2018-01-01").await;
    for m in [member, other] {
        app.study(
            m,
            "party-history",
            "2018-03-01T01:00:00Z",
            "2018-03-01T02:00:00Z",
        )
        .await;
    }
    let heads = std::env::temp_dir().join(format!("heads-{}.csv", Uuid::new_v4()));
    let heads_path = heads.to_str().expect("path").to_owned();
    let (clean, report) = verify_with(&app, vec!["--save-heads", &heads_path]);
    assert!(clean, "{report}");
    let saved = std::fs::read_to_string(&heads).expect("heads");
    assert!(
        !std::path::Path::new(&format!("{heads_path}.partial")).exists(),
        "the file is complete"
    );
    let lines: Vec<&str> = saved.lines().collect();
    assert_eq!(lines[0], "aggregate_type,aggregate_id,sequence,hash");
    let (_, events) = app.get(&format!("/v1/members/{member}/events")).await;
    let last_hash = events["events"][1]["hash"].as_str().expect("hash");
    assert!(
        lines.contains(&format!("member,{member},2,{last_hash}").as_str()),
        "{saved}"
    );

    // Later events leave the saved heads where they were.
    app.study(
        member,
        "party-history",
        "2018-03-02T01:00:00Z",
        "2018-03-02T02:00:00Z",
    )
    .await;
    let (clean, report) = verify_with(&app, vec!["--check-heads", &heads_path]);
    assert!(clean, "{report}");
    assert!(report.contains(": 0 moved"), "{report}");

    // The other member's last event removed: every link left still holds ...
    behind_the_services_back(
        &app.pool,
        &[&format!(
            "DELETE FROM events WHERE aggregate_type = 'member' AND aggregate_id = '{other}'
                AND sequence = 2"
        )],
    )
    .await;
    let (clean, report) = verify(&app, None);
    assert!(clean, "the chain alone cannot tell: {report}");
    // ... but the head saved earlier is gone.
    let (clean, report) = verify_with(&app, vec!["--check-heads", &heads_path]);
    assert!(!clean, "{report}");
    let moved: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("moved head"))
        .collect();
    assert_eq!(
        moved,
        [format!("moved head: member {other} sequence 2 is gone")]
    );
    // One member's verification checks that member's saved head only.
    let member_id = member.to_string();
    let (clean, report) = verify_with(
        &app,
        vec!["--member", &member_id, "--check-heads", &heads_path],
    );
    assert!(clean, "{report}");
    assert!(
        report.contains("checked 1 saved heads: 0 moved"),
        "{report}"
    );
    // A file that is not a heads file is refused, not half read.
    let headless = saved.lines().skip(1).collect::<Vec<_>>().join("\n");
    std::fs::write(&heads, headless).expect("write");
    let (clean, report) = verify_with(&app, vec!["--check-heads", &heads_path]);
    assert!(!clean, "{report}");
    assert!(!report.contains("saved heads"), "{report}");
    assert!(
        report.contains("header line"),
        "the header is what is missing: {report}"
    );
    std::fs::remove_file(&heads).ok();
}

/// Appends an event by SQL with the link a bulk writer supplies; answers the stored link.
async fn append_linked(
    pool: &PgPool,
    member: &str,
    sequence: i64,
    hash: &[u8],
) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, recorded_at, hash)
         VALUES ('member', $1, $2, 'Noted', '1', $3::json, '{\"actor\": \"system\"}',
                 '2026-01-02T03:04:05.123456Z', $4)
         RETURNING hash",
    )
    .bind(member)
    .bind(sequence)
    .bind(format!("{{\"Noted\": {{\"n\": {sequence}}}}}"))
    .bind(hash)
    .fetch_one(pool)
    .await
}

#[tokio::test]
async fn links_a_writer_supplies_are_kept_and_verified_like_the_databases_own() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await.to_string();
    let (sequence, previous): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT sequence, hash FROM events WHERE aggregate_type = 'member'
            AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&member)
    .fetch_one(&app.pool)
    .await
    .expect("the stream's head");
    // The next link computed as a bulk import computes it, from the database's last one.
    let recorded_at = "2026-01-02T03:04:05.123456Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("time")
        .trunc_subsecs(6);
    let payload = format!("{{\"Noted\": {{\"n\": {}}}}}", sequence + 1);
    let computed = link(
        &previous,
        &Fields {
            aggregate_type: "member",
            aggregate_id: &member,
            event_type: "Noted",
            event_version: "1",
            sequence: sequence + 1,
            recorded_at,
            metadata: "{\"actor\": \"system\"}",
            payload: &payload,
        },
    );
    let stored = append_linked(&app.pool, &member, sequence + 1, &computed)
        .await
        .expect("append");
    assert_eq!(stored, computed, "a supplied link is stored as given");
    let (clean, report) = verify(&app, None);
    assert!(
        clean,
        "the writer's link is the database's definition: {report}"
    );

    // A wrong link is stored too (anyone who can insert could compute any hash), and verify
    // names exactly that event; the database chains the next event on from it.
    append_linked(&app.pool, &member, sequence + 2, &[0; 32])
        .await
        .expect("append");
    note(&app.pool, &member, sequence + 3)
        .await
        .expect("append");
    let (clean, report) = verify(&app, None);
    assert!(!clean, "verify fails: {report}");
    assert_eq!(
        broken_links(&report),
        [format!(
            "broken link: member {member} sequence {}",
            sequence + 2
        )]
    );
}
