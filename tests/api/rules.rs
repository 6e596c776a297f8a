//! Rule changes end to end (DESIGN §3 rules 5, 8 and 10): publish a ruleset, see the views say
//! they are stale, list who changes eligibility (dry run), rebuild the views (replay), and find
//! the recorded determinations untouched.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

async fn setup(app: &TestApp) {
    let (status, body) = app
        .post("/v1/orgs", &json!({"org_id": "fz", "name": "福州"}))
        .await;
    assert_eq!(status, 201, "{body}");
    for (id, category, hours, minutes) in [
        ("r8a", "required", 8, 0),
        ("r8b", "required", 8, 0),
        ("r9", "required", 9, 0),
        ("r10", "required", 10, 0),
        ("e1", "elective", 1, 0),
        ("e3a", "elective", 3, 0),
        ("e3b", "elective", 3, 0),
        ("e3c", "elective", 3, 0),
        ("e3-studied", "elective", 3, 60),
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

async fn enrol(app: &TestApp, name: &str) -> Uuid {
    let member = Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": member, "member_no": name, "name": name, "org_id": "fz",
                    "enrolled_on": "2017-12-01"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    member
}

/// Completes each course at noon (local) on the 15th of the quarter's middle month.
async fn complete(app: &TestApp, member: Uuid, quarter: &str, courses: &[&str]) {
    let (year, n) = quarter.split_once("-Q").expect("quarter");
    let month = n.parse::<u32>().expect("n") * 3 - 1;
    for course in courses {
        let (status, body) = app
            .post(
                &format!("/v1/members/{member}/course-completions"),
                &json!({"completion_id": Uuid::new_v4(), "course_id": course,
                        "completed_at": format!("{year}-{month:02}-15T04:00:00Z")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Publishes a ruleset once the views hold everything before it (so they were computed under
/// the earlier rules, and a member touched later is not refolded under the new ones by chance).
async fn publish(
    app: &TestApp,
    version: u32,
    from: &str,
    required: u32,
    excess: bool,
    enforce: bool,
) {
    crate::helpers::wait_until_projected(&app.pool).await;
    let (status, body) = app
        .post(
            "/v1/rulesets",
            &json!({"version": version, "effective_from": from, "required_hours": required,
                    "elective_hours": 3, "excess_required_counts_as_elective": excess,
                    "enforce_min_study_time": enforce}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], version);
}

async fn determine(app: &TestApp, evaluation: &str, body: Value) -> Value {
    let (status, answer) = app
        .post(
            &format!("/v1/evaluations/{evaluation}/determinations"),
            &body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Runs a replay over HTTP and waits for it to succeed; answers its final state.
async fn replay(app: &TestApp, dry_run: bool) -> Value {
    let id = app.start_replay(dry_run).await;
    let body = app.replay_outcome(&id).await;
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(body["events_processed"], body["events_total"]);
    body
}

async fn quarter(app: &TestApp, member: Uuid, quarter: &str) -> Value {
    let (status, body) = app
        .get(&format!(
            "/v1/members/{member}/compliance?quarter={quarter}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// (status, ruleset_version, stale) of a member's quarter.
async fn standing(app: &TestApp, member: Uuid, q: &str) -> (String, Value, bool) {
    let body = quarter(app, member, q).await;
    (
        body["status"].as_str().expect("status").to_owned(),
        body["ruleset_version"].clone(),
        body["stale"].as_bool().expect("stale"),
    )
}

fn s(status: &str, version: u32, stale: bool) -> (String, Value, bool) {
    (status.to_owned(), json!(version), stale)
}

/// Asserts a member's (quarter, status, ruleset_version, stale) for each quarter listed.
async fn assert_standings(app: &TestApp, member: Uuid, expected: &[(&str, &str, u32, bool)]) {
    for (q, status, version, stale) in expected {
        assert_eq!(
            standing(app, member, q).await,
            s(status, *version, *stale),
            "{member} {q}"
        );
    }
}

/// The changes of a replay as (member, evaluation, recorded, now, quarters changed).
fn changes(replay: &Value) -> Vec<(String, String, bool, bool, Vec<String>)> {
    let mut found: Vec<_> = replay["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["member_id"].as_str().expect("member").to_owned(),
                c["evaluation_id"].as_str().expect("evaluation").to_owned(),
                c["recorded_eligible"].as_bool().expect("recorded"),
                c["eligible_now"].as_bool().expect("now"),
                c["quarters_changed"]
                    .as_array()
                    .expect("quarters")
                    .iter()
                    .map(|q| q.as_str().expect("quarter").to_owned())
                    .collect(),
            )
        })
        .collect();
    found.sort();
    found
}

fn change(
    member: Uuid,
    evaluation: &str,
    recorded: bool,
    now: bool,
    quarters: &[&str],
) -> (String, String, bool, bool, Vec<String>) {
    (
        member.to_string(),
        evaluation.to_owned(),
        recorded,
        now,
        quarters.iter().map(|q| (*q).to_owned()).collect(),
    )
}

async fn eligibility(app: &TestApp, member: Uuid, evaluation: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/members/{member}/eligibility/{evaluation}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn excess_required_hours_count_as_elective_from_a_past_quarter_on() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let over = enrol(&app, "over").await;
    let even = enrol(&app, "even").await;
    // 10 required + 1 elective: short of the 3 elective hours under version 1.
    complete(&app, over, "2018-Q3", &["r10", "e1"]).await;
    complete(&app, even, "2018-Q3", &["r8a", "e3a"]).await;
    app.define_evaluation("2018-q3", &["2018-Q3"]).await;
    let first = Uuid::new_v4();
    let answer = determine(
        &app,
        "2018-q3",
        json!({"determination_id": first, "org_id": "fz"}),
    )
    .await;
    assert_eq!(
        (
            &answer["determined"],
            &answer["eligible"],
            &answer["ineligible"]
        ),
        (&json!(2), &json!(1), &json!(1))
    );

    publish(&app, 2, "2018-Q3", 8, true, true).await;
    assert_standings(&app, over, &[("2018-Q3", "non_compliant", 1, true)]).await;
    assert_eq!(
        standing(&app, over, "2018-Q2").await,
        s("non_compliant", 1, false),
        "version 2 does not reach back to 2018-Q2"
    );

    let dry = replay(&app, true).await;
    assert_eq!(
        changes(&dry),
        [change(over, "2018-q3", false, true, &["2018-Q3"])]
    );
    assert_eq!(
        standing(&app, over, "2018-Q3").await,
        s("non_compliant", 1, true),
        "a dry run changes no view"
    );

    let rebuilt = replay(&app, false).await;
    assert_eq!(changes(&rebuilt), changes(&dry));
    assert_standings(&app, over, &[("2018-Q3", "compliant", 2, false)]).await;
    assert_standings(&app, even, &[("2018-Q3", "compliant", 2, false)]).await;
    assert_standings(&app, over, &[("2018-Q2", "non_compliant", 1, false)]).await;

    // The recorded determination is a fact: untouched by the rule change and the replay.
    let recorded = eligibility(&app, over, "2018-q3").await;
    assert_eq!(recorded["eligible"], false);
    assert_eq!(recorded["determination"]["determination_id"], json!(first));
    assert_eq!(
        recorded["determination"]["quarters"][0]["ruleset_version"],
        1
    );
    assert_eq!(
        recorded["determination"]["quarters"][0]["status"],
        "non_compliant"
    );

    // Re-determining under the new rules is a new decision, which supersedes the old one.
    let second = Uuid::new_v4();
    let answer = determine(
        &app,
        "2018-q3",
        json!({"determination_id": second, "member_ids": [over]}),
    )
    .await;
    assert_eq!(
        (&answer["determined"], &answer["eligible"]),
        (&json!(1), &json!(1))
    );
    let now = eligibility(&app, over, "2018-q3").await;
    assert_eq!(now["eligible"], true);
    assert_eq!(now["determination"]["determination_id"], json!(second));
    assert_eq!(now["determination"]["quarters"][0]["ruleset_version"], 2);
    assert!(
        changes(&replay(&app, true).await).is_empty(),
        "nothing left to re-determine"
    );
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn switching_off_study_time_enforcement_credits_completions_without_study() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let member = enrol(&app, "unstudied").await;
    // The elective course asks for 60 minutes of study; none was recorded.
    complete(&app, member, "2018-Q2", &["r8a", "e3-studied"]).await;
    app.define_evaluation("2018-q2", &["2018-Q2"]).await;
    let answer = determine(
        &app,
        "2018-q2",
        json!({"determination_id": Uuid::new_v4(), "member_ids": [member]}),
    )
    .await;
    assert_eq!(answer["ineligible"], 1);
    let before = quarter(&app, member, "2018-Q2").await;
    assert_eq!(before["elective_hours"], 0.0);

    publish(&app, 2, "2018-Q1", 8, false, false).await;
    assert_standings(&app, member, &[("2018-Q2", "non_compliant", 1, true)]).await;
    let dry = replay(&app, true).await;
    assert_eq!(
        changes(&dry),
        [change(member, "2018-q2", false, true, &["2018-Q2"])]
    );

    replay(&app, false).await;
    let after = quarter(&app, member, "2018-Q2").await;
    assert_eq!(after["elective_hours"], 3.0, "{after}");
    assert_eq!(after["status"], "compliant");
    assert_eq!(after["ruleset_version"], 2);
    assert_eq!(after["stale"], false);
    assert_eq!(
        eligibility(&app, member, "2018-q2").await["eligible"],
        false
    );
    crate::helpers::assert_views_match_the_log(&app.pool).await;
}

#[tokio::test]
async fn a_higher_threshold_from_mid_history_on_changes_only_the_later_quarters() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let member = enrol(&app, "steady").await;
    complete(&app, member, "2018-Q2", &["r8a", "e3a"]).await;
    complete(&app, member, "2018-Q3", &["r8b", "e3b"]).await;
    app.define_evaluation("2018-mid", &["2018-Q2", "2018-Q3"])
        .await;
    let answer = determine(
        &app,
        "2018-mid",
        json!({"determination_id": Uuid::new_v4(), "org_id": "fz"}),
    )
    .await;
    assert_eq!(answer["eligible"], 1);

    publish(&app, 2, "2018-Q3", 10, false, true).await;
    assert_standings(
        &app,
        member,
        &[
            ("2018-Q2", "compliant", 1, false),
            ("2018-Q3", "compliant", 1, true),
        ],
    )
    .await;
    let dry = replay(&app, true).await;
    assert_eq!(
        changes(&dry),
        [change(member, "2018-mid", true, false, &["2018-Q3"])]
    );

    replay(&app, false).await;
    assert_standings(
        &app,
        member,
        &[
            ("2018-Q2", "compliant", 1, false),
            ("2018-Q3", "non_compliant", 2, false),
        ],
    )
    .await;
    let q3 = quarter(&app, member, "2018-Q3").await;
    assert_eq!(q3["required_target"], 10.0);
    let (status, rollup) = app.get("/v1/orgs/fz/compliance?quarter=2018-Q3").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&rollup["non_compliant"], &rollup["stale"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(
        eligibility(&app, member, "2018-mid").await["eligible"],
        true
    );
}

#[tokio::test]
async fn a_ruleset_effective_between_two_others_governs_only_the_quarters_between() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let member = enrol(&app, "between").await;
    complete(&app, member, "2018-Q2", &["r8a", "e3a"]).await;
    complete(&app, member, "2018-Q3", &["r8b", "e3b"]).await;
    complete(&app, member, "2019-Q1", &["r9", "e3c"]).await;
    app.define_evaluation("2018-2019", &["2018-Q2", "2018-Q3", "2019-Q1"])
        .await;
    let answer = determine(
        &app,
        "2018-2019",
        json!({"determination_id": Uuid::new_v4(), "org_id": "fz"}),
    )
    .await;
    assert_eq!(answer["eligible"], 1);

    // Version 2 from 2019 asks 10 required hours; version 3, published later but effective
    // earlier (2018-Q3), asks 9 — and governs only 2018-Q3 to 2018-Q4.
    publish(&app, 2, "2019-Q1", 10, false, true).await;
    publish(&app, 3, "2018-Q3", 9, false, true).await;
    let (status, listed) = app.get("/v1/rulesets").await;
    assert_eq!(status, 200);
    let versions: Vec<&Value> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|r| &r["version"])
        .collect();
    assert_eq!(versions, [&json!(1), &json!(2), &json!(3)]);

    let dry = replay(&app, true).await;
    assert_eq!(
        changes(&dry),
        [change(
            member,
            "2018-2019",
            true,
            false,
            &["2018-Q3", "2019-Q1"]
        )]
    );
    replay(&app, false).await;
    assert_standings(
        &app,
        member,
        &[
            ("2018-Q2", "compliant", 1, false),
            ("2018-Q3", "non_compliant", 3, false),
            ("2018-Q4", "non_compliant", 3, false),
            ("2019-Q1", "non_compliant", 2, false),
        ],
    )
    .await;
    let recorded = eligibility(&app, member, "2018-2019").await;
    assert_eq!(recorded["eligible"], true);
    let versions: Vec<&Value> = recorded["determination"]["quarters"]
        .as_array()
        .expect("quarters")
        .iter()
        .map(|q| &q["ruleset_version"])
        .collect();
    assert_eq!(versions, [&json!(1), &json!(1), &json!(1)]);
}

#[tokio::test]
async fn a_member_who_records_something_after_a_publication_is_refolded_under_the_new_rules() {
    let app = TestApp::spawn().await;
    setup(&app).await;
    let over = enrol(&app, "over").await;
    let idle = enrol(&app, "idle").await;
    complete(&app, over, "2018-Q3", &["r10", "e1"]).await;
    complete(&app, idle, "2018-Q3", &["r10", "e1"]).await;
    publish(&app, 2, "2018-Q3", 8, true, true).await;
    // A new fact after the publication: the projector folds the member under version 2.
    complete(&app, over, "2018-Q4", &["e1"]).await;
    assert_standings(&app, over, &[("2018-Q3", "compliant", 2, false)]).await;
    // A member with nothing new keeps the rows of version 1 until a replay.
    assert_standings(&app, idle, &[("2018-Q3", "non_compliant", 1, true)]).await;
}
