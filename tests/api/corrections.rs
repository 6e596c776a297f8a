//! Member corrections through the HTTP API: a new name or number is an event, the profile and
//! the lists show the current values (as projected and after a replay), the profile and the
//! events the history; member numbers stay unique among members' current numbers, whatever
//! path enrols or corrects them (the API, a bulk import), and a number given up is free again.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, behind_the_services_back, TestApp};
use crate::import::import;

async fn enrol(app: &TestApp, member: Uuid, number: &str) -> (u16, Value) {
    app.post(
        "/v1/members",
        &json!({"member_id": member, "member_no": number, "name": "陈默", "org_id": "fz",
                "enrolled_on": "2018-01-01"}),
    )
    .await
}

async fn correct(app: &TestApp, member: Uuid, body: Value) -> (u16, Value) {
    app.post(&format!("/v1/members/{member}/corrections"), &body)
        .await
}

#[tokio::test]
async fn a_corrected_member_shows_the_new_name_and_number_and_numbers_stay_unique() {
    let app = TestApp::spawn().await;
    let first = app.seed_member("2018-01-01").await; // M-1
    let second = Uuid::new_v4();
    let events = app.total_events().await;
    let (status, body) = enrol(&app, second, "M-1").await;
    assert_eq!(status, 409, "a number held by another member: {body}");
    assert_eq!(app.total_events().await, events, "nothing recorded");
    let (status, body) = enrol(&app, second, "M-2").await;
    assert_eq!(status, 201, "{body}");

    let renamed = json!({"correction_id": Uuid::new_v4(), "name": "陈默然", "reason": "录入有误"});
    let (status, body) = correct(&app, second, renamed.clone()).await;
    assert_eq!(
        (status, &body["name"], &body["member_no"]),
        (201, &json!("陈默然"), &json!("M-2")),
        "{body}"
    );
    let (status, again) = correct(&app, second, renamed.clone()).await;
    assert_eq!(
        (status, &again["sequence"]),
        (201, &body["sequence"]),
        "a resend: {again}"
    );

    let events = app.total_events().await;
    let mut other = renamed.clone();
    other["name"] = json!("别名");
    for (body, expected) in [
        (other, 409),
        (
            json!({"correction_id": Uuid::new_v4(), "member_no": "M-1", "reason": "换号"}),
            409,
        ),
        (
            json!({"correction_id": Uuid::new_v4(), "name": "陈默然", "reason": "同名"}),
            422,
        ),
        (
            json!({"correction_id": Uuid::new_v4(), "reason": "无内容"}),
            422,
        ),
        (
            json!({"correction_id": Uuid::new_v4(), "name": "陈", "reason": ""}),
            422,
        ),
        (
            json!({"correction_id": Uuid::new_v4(), "name": "", "reason": "空名"}),
            422,
        ),
    ] {
        let (status, answer) = correct(&app, second, body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (status, answer) = correct(&app, Uuid::new_v4(), renamed.clone()).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(app.total_events().await, events, "nothing recorded");

    // The first member gives up M-1; the second takes it; M-2 is free again.
    let (status, body) = correct(
        &app,
        first,
        json!({"correction_id": Uuid::new_v4(), "member_no": "M-100", "reason": "重新编号"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = correct(
        &app,
        second,
        json!({"correction_id": Uuid::new_v4(), "member_no": "M-1", "reason": "换号"}),
    )
    .await;
    assert_eq!((status, &body["member_no"]), (201, &json!("M-1")), "{body}");
    assert_eq!(enrol(&app, Uuid::new_v4(), "M-100").await.0, 409);
    let third = Uuid::new_v4();
    assert_eq!(enrol(&app, third, "M-2").await.0, 201);

    // A member enrolled before numbers were claimed may share theirs with one who holds it:
    // a rename repeating their number claims nothing, so it is not refused.
    behind_the_services_back(
        &app.pool,
        &[
            &format!("DELETE FROM member_numbers WHERE member_id = '{third}'"),
            &format!(
                "INSERT INTO member_numbers VALUES ('M-2', '{}')",
                Uuid::new_v4()
            ),
        ],
    )
    .await;
    let (status, body) = correct(
        &app,
        third,
        json!({"correction_id": Uuid::new_v4(), "name": "王芳", "member_no": "M-2",
               "reason": "改名"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // A bulk import takes no number another member holds, nor one twice.
    let (fourth, fifth) = (Uuid::new_v4(), Uuid::new_v4());
    let csv = format!(
        "kind,member_id,member_no,name,org_id,enrolled_on\n\
         enrolment,{},M-1,甲,fz,2018-01-01\n\
         enrolment,{fourth},M-4,乙,fz,2018-01-01\n\
         enrolment,{fifth},M-4,丙,fz,2018-01-01\n",
        Uuid::new_v4()
    );
    let record = import(&app, "text/csv", csv).await;
    assert_eq!(
        (&record["rows_recorded"], &record["rows_refused"]),
        (&json!(1), &json!(2)),
        "{record}"
    );

    for when in ["as projected", "after a replay"] {
        app.views(when).await;
        let (_, listed) = app.get("/v1/orgs/fz/members?quarter=2018-Q1").await;
        let lines: Vec<(String, String)> = listed["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| {
                (
                    m["member_no"].as_str().unwrap_or_default().to_owned(),
                    m["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(no, _)| no == "M-1" || no == "M-100")
            .collect();
        let mut lines = lines;
        lines.sort();
        assert_eq!(
            lines,
            [
                ("M-1".to_owned(), "陈默然".to_owned()),
                ("M-100".to_owned(), "林晓".to_owned())
            ],
            "{when}: {listed}"
        );
    }
    let (_, profile) = app.get(&format!("/v1/members/{second}")).await;
    assert_eq!(
        (&profile["name"], &profile["member_no"]),
        (&json!("陈默然"), &json!("M-1"))
    );
    let history: Vec<(&Value, &Value)> = profile["corrections"]
        .as_array()
        .expect("corrections")
        .iter()
        .map(|c| (&c["name"], &c["member_no"]))
        .collect();
    assert_eq!(
        history,
        [
            (&json!("陈默然"), &Value::Null),
            (&Value::Null, &json!("M-1"))
        ]
    );
    let (_, events) = app.get(&format!("/v1/members/{second}/events")).await;
    assert_eq!(
        events["events"][0]["payload"]["MemberEnrolled"]["member_no"], "M-2",
        "{events}"
    );
    assert_views_match_the_log(&app.pool).await;
}
