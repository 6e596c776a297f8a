//! Bulk import over HTTP: a CSV and an NDJSON file through `POST /v1/imports`, every row
//! through the ledger's rules, refused rows listed with their lines and reasons, and the same
//! file imported twice recording nothing new.

use serde_json::{json, Value};
use studyledger::store::tokens::Role;
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// Sends `body` as an import; answers the job's record once it has ended.
pub async fn import(app: &TestApp, content_type: &str, body: String) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/imports", app.address))
        .bearer_auth(&app.admin_token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("a location")
        .to_owned();
    let started: Value = response.json().await.expect("json");
    assert_eq!(started["status"], "running");
    for _ in 0..600 {
        let (status, record) = app.get(&location).await;
        assert_eq!(status, 200, "{record}");
        if record["status"] != "running" {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import did not end");
}

/// The refused rows of an ended import, as `GET /v1/imports/{id}/refused.csv` answers them
/// (without the byte order mark).
pub async fn refused_rows(app: &TestApp, record: &Value) -> String {
    let import_id = record["import_id"].as_str().expect("an import id");
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/imports/{import_id}/refused.csv",
            app.address
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("text");
    text.trim_start_matches('\u{feff}').to_owned()
}

async fn catalog(app: &TestApp) {
    let (status, _) = app
        .post("/v1/orgs", &json!({"org_id": "fz", "name": "福州"}))
        .await;
    assert_eq!(status, 201);
    for (id, category, hours, minutes) in [
        ("party", "required", 0.5, 20),
        ("ethics", "elective", 1.5, 0),
    ] {
        let (status, body) = app
            .post(
                "/v1/courses",
                &json!({"course_id": id, "title": id, "category": category,
                        "credit_hours": hours, "min_study_minutes": minutes}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Rows for `members` new members: an enrolment each, then per member `per_member` days of a
/// 30-minute session and a completion of `party` (a duplicate after the first), and one
/// elective completion.
fn history(members: &[Uuid], per_member: u32) -> (String, usize) {
    let mut csv = String::from(
        "kind,member_id,member_no,name,org_id,enrolled_on,session_id,completion_id,course_id,started_at,ended_at,completed_at\n",
    );
    let mut rows = 0;
    for (n, member) in members.iter().enumerate() {
        csv.push_str(&format!(
            "enrolment,{member},N-{n},成员{n},fz,2019-01-01,,,,,,\n"
        ));
        rows += 1;
    }
    for day in 0..per_member {
        for member in members {
            let date = chrono::NaiveDate::from_ymd_opt(2019, 1, 2).expect("date")
                + chrono::Duration::days(i64::from(day % 1_800));
            let hour = 8 + day / 1_800;
            let start = format!("{date}T{hour:02}:00:00+08:00");
            let end = format!("{date}T{hour:02}:30:00+08:00");
            let done = format!("{date}T{hour:02}:31:00+08:00");
            let (session, completion) = (Uuid::new_v4(), Uuid::new_v4());
            csv.push_str(&format!(
                "session,{member},,,,,{session},,party,{start},{end},\n\
                 completion,{member},,,,,,{completion},party,,,{done}\n"
            ));
            rows += 2;
        }
    }
    for member in members {
        let id = Uuid::new_v4();
        csv.push_str(&format!(
            "completion,{member},,,,,,{id},ethics,,,2019-02-20T10:00:00+08:00\n"
        ));
        rows += 1;
    }
    (csv, rows)
}

#[tokio::test]
async fn a_csv_history_is_imported_once_through_the_rules_with_its_refusals_listed() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let members: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    // Enough rows for several batches of 5,000.
    let (mut csv, rows) = history(&members, 2_000);
    let m = members[0];
    let bad = [
        // Line numbers: the header is line 1.
        format!("completion,{m},,,,,,not-a-uuid,party,,,2025-05-02T10:00:00Z"),
        format!(
            "session,{m},,,,,{},,party,2019-01-02T08:10:00+08:00,2019-01-02T08:20:00+08:00,",
            Uuid::new_v4()
        ),
        format!(
            "completion,{m},,,,,,{},nowhere,,,2025-05-02T10:00:00Z",
            Uuid::new_v4()
        ),
        format!(
            "enrolment,{},N-x,某人,atlantis,2025-01-01,,,,,,",
            Uuid::new_v4()
        ),
    ];
    for row in &bad {
        csv.push_str(row);
        csv.push('\n');
    }
    let first_bad_line = rows as i64 + 2;
    let record = import(&app, "text/csv", csv.clone()).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["rows_read"], rows as i64 + 4);
    assert_eq!(record["rows_recorded"], rows as i64);
    assert_eq!(record["rows_refused"], 4);

    // The refused rows, by line, with the rules' reasons.
    let text = refused_rows(&app, &record).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "行号 line,原因 reason");
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[1].starts_with(&format!("{first_bad_line},")),
        "{text}"
    );
    assert!(
        lines[1].contains("completion_id `not-a-uuid` is not a UUID"),
        "{text}"
    );
    assert!(lines[2].contains("overlaps"), "{text}");
    assert!(
        lines[3].contains("course nowhere is not registered"),
        "{text}"
    );
    assert!(
        lines[4].contains("organisation atlantis is not registered"),
        "{text}"
    );

    // Each member: 2,000 sessions of 30 minutes; in 2019-Q1 the first party completion
    // credited (0.5 h, the others duplicates) and the elective (1.5 h); the views agree with
    // the log.
    wait_until_projected(&app.pool).await;
    let (status, body) = app
        .get(&format!("/v1/members/{m}/compliance?quarter=2019-Q1"))
        .await;
    assert_eq!(status, 200, "{body}");
    let row = if body.is_array() { &body[0] } else { &body };
    assert_eq!(row["required_hours"], 0.5);
    assert_eq!(row["elective_hours"], 1.5);
    crate::helpers::assert_views_match_the_log(&app.pool).await;

    // The same file again records nothing new.
    let events = app.total_events().await;
    let again = import(&app, "text/csv", csv).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["rows_recorded"], 0);
    assert_eq!(again["rows_unchanged"], rows as i64);
    assert_eq!(again["rows_refused"], 4);
    assert_eq!(app.total_events().await, events);

    // The links the import computed hold, and so do those chained after them: by the
    // database (a session through the API), then by a new import, which reads each stream's
    // last link from the store.
    let (clean, report) = crate::audit::verify(&app, None);
    assert!(clean, "{report}");
    let (status, body) = app
        .post(
            &format!("/v1/members/{m}/study-sessions"),
            &json!({"session_id": Uuid::new_v4(), "course_id": "party",
                    "started_at": "2025-06-01T08:00:00+08:00",
                    "ended_at": "2025-06-01T08:30:00+08:00"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut later = String::from("kind,member_id,session_id,course_id,started_at,ended_at\n");
    for member in &members {
        later.push_str(&format!(
            "session,{member},{},party,2025-06-02T08:00:00+08:00,2025-06-02T08:30:00+08:00\n",
            Uuid::new_v4()
        ));
    }
    let record = import(&app, "text/csv", later).await;
    assert_eq!(record["rows_recorded"], 3, "{record}");
    assert_eq!(app.total_events().await, events + 4);
    let (clean, report) = crate::audit::verify(&app, None);
    assert!(clean, "{report}");
}

#[tokio::test]
async fn an_ndjson_file_carries_statements_through_the_record_store() {
    let app = TestApp::spawn().await;
    catalog(&app).await;
    let (status, body) = app
        .post(
            "/v1/courses/party/activities",
            &json!({"activity_id": "https://courses.example/party"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let member = Uuid::new_v4();
    let statement = json!({
        "id": Uuid::new_v4(),
        "actor": {"account": {"homePage": "https://studyledger.invalid/", "name": member.to_string()}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"id": "https://courses.example/party"},
        "result": {"duration": "PT25M"},
        "timestamp": "2025-05-02T10:00:00+08:00",
    });
    let completed = json!({
        "actor": {"account": {"homePage": "https://studyledger.invalid/", "name": member.to_string()}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://courses.example/party"},
        "result": {"completion": true},
        "timestamp": "2025-05-02T10:05:00+08:00",
    });
    let rows = [
        json!({"kind": "enrolment", "member_id": member, "member_no": "X-1", "name": "陈静",
               "org_id": "fz", "enrolled_on": "2025-01-01"}),
        json!({"kind": "xapi_statement", "statement": statement}),
        json!({"kind": "xapi_statement", "statement": completed}),
        json!({"kind": "xapi_statement", "statement": {"verb": {"id": "not an iri"}}}),
        // A file cannot carry an attachment's data: one without fileUrl is refused.
        json!({"kind": "xapi_statement", "statement": {
            "actor": {"mbox": "mailto:app@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
            "object": {"id": "https://courses.example/party"},
            "attachments": [{"usageType": "https://studyledger.invalid/usage/certificate",
                "display": {"zh-CN": "证书"}, "contentType": "text/plain", "length": 1,
                "sha2": "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"}]}}),
    ];
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let record = import(&app, "application/x-ndjson", body).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["rows_recorded"], 3, "{record}");
    assert_eq!(record["rows_refused"], 2, "{record}");
    wait_until_projected(&app.pool).await;
    let (_, ledger) = app.get(&format!("/v1/members/{member}/ledger")).await;
    let entry = &ledger["entries"][0];
    assert_eq!(entry["credited"], true, "{ledger}");
    assert!(entry["source_statement_id"].is_string(), "{ledger}");
    // Imports are an administrator's: an ingest token may not start one.
    let ingest = app.token(Role::Ingest, None, None).await;
    let (status, _, _) = app.post_as(&ingest, "/v1/imports", &json!({})).await;
    assert_eq!(status, 403);
    // A body in no import format is refused at the door.
    let (status, _, body) = app
        .post_as(&app.admin_token, "/v1/imports", &json!({"kind": "session"}))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn members_on_different_workers_never_both_take_one_member_number() {
    use studyledger::jobs::import::WORKERS;
    let app = TestApp::spawn().await;
    catalog(&app).await;
    // Two new members whose rows go to different workers, both enrolling with number N-7,
    // in the same batch: only one may take it, and the file's order says which.
    let first = Uuid::new_v4();
    let second = loop {
        let candidate = Uuid::new_v4();
        if WORKERS > 1 && candidate.as_u128() % WORKERS as u128 != first.as_u128() % WORKERS as u128
        {
            break candidate;
        }
    };
    let csv = format!(
        "kind,member_id,member_no,name,org_id,enrolled_on\n\
         enrolment,{first},N-7,甲,fz,2019-01-01\n\
         enrolment,{second},N-7,乙,fz,2019-01-01\n"
    );
    let record = import(&app, "text/csv", csv.clone()).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["rows_recorded"], 1, "{record}");
    assert_eq!(record["rows_refused"], 1, "{record}");
    // The earlier line takes it, as if one worker imported the file.
    let holder: Uuid =
        sqlx::query_scalar("SELECT member_id FROM member_numbers WHERE member_no = 'N-7'")
            .fetch_one(&app.pool)
            .await
            .expect("the number's holder");
    assert_eq!(holder, first);
    let (refused_line, refused_member) = (3, second);
    let (status, _) = app.get(&format!("/v1/members/{refused_member}")).await;
    assert_eq!(status, 404, "the refused enrolment recorded nothing");
    let text = refused_rows(&app, &record).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with(&format!("{refused_line},"))
            && lines[1].contains("member_no N-7 is held by another member"),
        "{text}"
    );
    // Again: the holder's row is a resend, the other is refused the same way.
    let again = import(&app, "text/csv", csv).await;
    assert_eq!(again["rows_unchanged"], 1, "{again}");
    assert_eq!(again["rows_refused"], 1, "{again}");
}
