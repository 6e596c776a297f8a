//! Courses over time: new terms from a day on (completions before keep the terms they were
//! recorded with, rule 2), a course retired from a day on (completions from then: 422, nothing
//! recorded), and the registry showing each course's terms over time.

use chrono::{Days, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use studyledger_aggregates::values::local_date;
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};
use crate::import::{import, refused_rows};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// 10:00 local on `day`, as RFC 3339.
fn at_ten(day: NaiveDate, minutes: i64) -> String {
    let start = TZ
        .from_local_datetime(&day.and_hms_opt(10, 0, 0).expect("a time"))
        .single()
        .expect("a local time");
    (start + Duration::minutes(minutes))
        .with_timezone(&Utc)
        .to_rfc3339()
}

async fn complete(app: &TestApp, member: Uuid, course: &str, completed_at: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/members/{member}/course-completions"),
        &json!({"completion_id": Uuid::new_v4(), "course_id": course,
                "completed_at": completed_at}),
    )
    .await
}

/// The member's credited (required, elective) hours in `quarter`.
async fn credited(app: &TestApp, member: Uuid, quarter: &str) -> (f64, f64) {
    wait_until_projected(&app.pool).await;
    let (status, body) = app
        .get(&format!(
            "/v1/members/{member}/compliance?quarter={quarter}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    (
        body["required_hours"].as_f64().expect("hours"),
        body["elective_hours"].as_f64().expect("hours"),
    )
}

#[tokio::test]
async fn completions_take_the_terms_of_their_day_and_none_is_taken_once_the_course_is_retired() {
    let app = TestApp::spawn().await;
    let early = app.seed_member("2018-01-01").await;
    let late = app.seed_member("2018-01-01").await;
    let now = Utc::now() - Duration::seconds(2);
    let today = local_date(now, TZ);
    let yesterday = today - Days::new(1);

    let new_terms = json!({"effective_from": today.to_string(), "title": "党史学习（2027版）",
                           "category": "elective", "credit_hours": 4, "min_study_minutes": 0});
    let (status, changed) = app
        .post("/v1/courses/party-history/terms", &new_terms)
        .await;
    assert_eq!(status, 201, "{changed}");
    assert_eq!(changed["sequence"], 2);
    let (status, again) = app
        .post("/v1/courses/party-history/terms", &new_terms)
        .await;
    assert_eq!(
        (status, &again["sequence"]),
        (201, &json!(2)),
        "a resend: {again}"
    );

    // Yesterday's completion takes the terms as registered: 2.5 required hours, after the
    // 60 minutes of study they ask for.
    app.study(
        early,
        "party-history",
        &at_ten(yesterday, 0),
        &at_ten(yesterday, 90),
    )
    .await;
    let (status, before) = complete(&app, early, "party-history", &at_ten(yesterday, 100)).await;
    assert_eq!(status, 201, "{before}");
    assert_eq!(
        (before["category"].as_str(), before["credit_hours"].as_f64()),
        (Some("required"), Some(2.5))
    );
    // Today's takes the new ones: 4 elective hours, no study time asked.
    let (status, after) = complete(&app, late, "party-history", &now.to_rfc3339()).await;
    assert_eq!(status, 201, "{after}");
    assert_eq!(
        (after["category"].as_str(), after["credit_hours"].as_f64()),
        (Some("elective"), Some(4.0))
    );
    let quarter = |answer: &Value| answer["quarter"].as_str().expect("quarter").to_owned();
    assert_eq!(credited(&app, early, &quarter(&before)).await, (2.5, 0.0));
    assert_eq!(credited(&app, late, &quarter(&after)).await, (0.0, 4.0));

    // The elective "ethics" (1.5 hours after 30 minutes of study), completed today, then
    // retired from today: today's completions are refused and record nothing; yesterday's
    // still count, and a completion recorded before the retirement may be resent.
    let session_end = now - Duration::minutes(1);
    let session = (session_end - Duration::minutes(40)).to_rfc3339();
    app.study(late, "ethics", &session, &session_end.to_rfc3339())
        .await;
    let (status, ethics) = complete(&app, late, "ethics", &now.to_rfc3339()).await;
    assert_eq!(status, 201, "{ethics}");
    let retirement = json!({"retired_from": today.to_string(), "reason": "课程下线"});
    let (status, retired) = app
        .post("/v1/courses/ethics/retirements", &retirement)
        .await;
    assert_eq!(status, 201, "{retired}");
    assert_eq!(retired["sequence"], 2);
    let (status, resent) = app
        .post(
            &format!("/v1/members/{late}/course-completions"),
            &json!({"completion_id": ethics["completion_id"], "course_id": "ethics",
                    "completed_at": ethics["completed_at"]}),
        )
        .await;
    assert_eq!(
        (status, &resent["sequence"]),
        (201, &ethics["sequence"]),
        "{resent}"
    );
    assert_eq!(credited(&app, late, &quarter(&after)).await, (0.0, 5.5));
    let third = app.seed_member("2018-01-01").await;
    let events = app.total_events().await;
    let (status, refused) = complete(&app, third, "ethics", &now.to_rfc3339()).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("retired"),
        "{refused}"
    );
    assert_eq!(app.total_events().await, events, "nothing recorded");
    // An import is held to the same rule: the row is refused, with the reason.
    let csv = format!(
        "kind,member_id,completion_id,course_id,completed_at\ncompletion,{third},{},ethics,{}\n",
        Uuid::new_v4(),
        now.to_rfc3339()
    );
    let imported = import(&app, "text/csv", csv).await;
    assert_eq!(
        (
            imported["rows_recorded"].as_i64(),
            imported["rows_refused"].as_i64()
        ),
        (Some(0), Some(1)),
        "{imported}"
    );
    let refusals = refused_rows(&app, &imported).await;
    assert!(
        refusals.contains("2,course ethics is retired from"),
        "{refusals}"
    );
    assert_eq!(app.total_events().await, events, "nothing recorded");
    app.study(
        third,
        "ethics",
        &at_ten(yesterday, 0),
        &at_ten(yesterday, 40),
    )
    .await;
    let (status, earlier) = complete(&app, third, "ethics", &at_ten(yesterday, 50)).await;
    assert_eq!(status, 201, "{earlier}");

    // The registry shows the terms over time.
    let (status, course) = app.get("/v1/courses/party-history").await;
    assert_eq!(status, 200, "{course}");
    assert_eq!(course["title"], "党史学习（2027版）");
    let terms = course["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 2, "{course}");
    assert_eq!(terms[0]["effective_from"], Value::Null);
    assert_eq!(terms[0]["credit_hours"], 2.5);
    assert_eq!(terms[1]["effective_from"], today.to_string());
    assert_eq!(terms[1]["category"], "elective");
    assert_eq!(course["retired"], Value::Null);
    let (_, ethics) = app.get("/v1/courses/ethics").await;
    assert_eq!(
        ethics["retired"]["retired_from"],
        today.to_string(),
        "{ethics}"
    );
    let (status, page) = app.get("/v1/courses?limit=1").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["courses"][0]["course_id"], "ethics");
    let (status, rest) = app
        .get(&format!(
            "/v1/courses?limit=1&cursor={}",
            page["next_cursor"].as_str().expect("more")
        ))
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["courses"][0]["course_id"], "party-history");
    assert_eq!(rest["next_cursor"], Value::Null);

    // Refusals, each recording nothing.
    let events = app.total_events().await;
    let mut past = new_terms.clone();
    past["effective_from"] = json!(yesterday.to_string());
    let mut free = new_terms.clone();
    free["effective_from"] = json!((today + Days::new(30)).to_string());
    free["credit_hours"] = json!(0);
    for (path, body, expected) in [
        ("/v1/courses/party-history/terms", past, 422),
        ("/v1/courses/party-history/terms", free, 422),
        ("/v1/courses/nowhere/terms", new_terms.clone(), 404),
        (
            "/v1/courses/ethics/retirements",
            json!({"retired_from": (today + Days::new(9)).to_string(), "reason": "again"}),
            409,
        ),
        (
            "/v1/courses/party-history/retirements",
            json!({"retired_from": today.to_string(), "reason": "the day its new terms start"}),
            422,
        ),
        (
            "/v1/courses/ethics/retirements",
            json!({"retired_from": "2026-13-01", "reason": "x"}),
            400,
        ),
    ] {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
    }
    assert_eq!(app.total_events().await, events, "nothing recorded");
    let (status, _) = app.get("/v1/courses/nowhere").await;
    assert_eq!(status, 404);
}
