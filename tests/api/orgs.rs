//! Organisation roll-ups and member lists (rule 7), from the views, through HTTP.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

async fn org(app: &TestApp, id: &str, parent: Option<&str>) {
    let (status, body) = app
        .post(
            "/v1/orgs",
            &json!({"org_id": id, "name": id, "parent_id": parent}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn enrol(app: &TestApp, org: &str, enrolled_on: &str) -> Uuid {
    let member = Uuid::new_v4();
    let (status, body) = app
        .post(
            "/v1/members",
            &json!({"member_id": member, "member_no": format!("N-{member}"),
                                     "name": "成员", "org_id": org, "enrolled_on": enrolled_on}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    member
}

async fn complete(app: &TestApp, member: Uuid, course: &str, at: &str) {
    let (status, body) = app
        .post(
            &format!("/v1/members/{member}/course-completions"),
            &json!({"completion_id": Uuid::new_v4(), "course_id": course, "completed_at": at}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// City → company → two branches; four members with different fates in 2018-Q2.
async fn city(app: &TestApp) -> [Uuid; 5] {
    org(app, "city", None).await;
    org(app, "company", Some("city")).await;
    org(app, "branch-a", Some("company")).await;
    org(app, "branch-b", Some("company")).await;
    for (id, category, hours) in [
        ("r8", "required", 8.0),
        ("e3", "elective", 3.0),
        ("r2", "required", 2.0),
    ] {
        let (status, _) = app
            .post(
                "/v1/courses",
                &json!({"course_id": id, "title": id, "category": category, "credit_hours": hours}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let compliant = enrol(app, "branch-a", "2018-01-01").await;
    complete(app, compliant, "r8", "2018-05-01T02:00:00Z").await;
    complete(app, compliant, "e3", "2018-05-02T02:00:00Z").await;
    let short = enrol(app, "branch-a", "2018-01-01").await;
    complete(app, short, "r2", "2018-05-01T02:00:00Z").await;
    let exempt = enrol(app, "branch-b", "2018-05-15").await;
    let moved_in = enrol(app, "company", "2018-01-01").await;
    let (status, _) = app
        .post(&format!("/v1/members/{moved_in}/transfers"),
              &json!({"transfer_id": Uuid::new_v4(), "to_org_id": "branch-b", "effective_on": "2018-06-30"}))
        .await;
    assert_eq!(status, 201);
    let too_late = enrol(app, "branch-a", "2018-07-01").await;
    [compliant, short, exempt, moved_in, too_late]
}

#[tokio::test]
async fn a_subtree_rolls_up_its_members_as_they_stood_at_quarter_end() {
    let app = TestApp::spawn().await;
    city(&app).await;
    let (status, all) = app.get("/v1/orgs/city/compliance?quarter=2018-Q2").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        all["members"], 4,
        "the member enrolled after the quarter is not counted"
    );
    assert_eq!(all["compliant"], 1);
    assert_eq!(all["non_compliant"], 2);
    assert_eq!(all["exempt"], 1);
    assert_eq!(all["in_progress"], 0);
    assert_eq!(all["compliance_rate"].as_f64(), Some(0.3333));
    assert_eq!(all["credit_hours_total"].as_f64(), Some(13.0));
    assert_eq!(all["credit_hours_per_member"].as_f64(), Some(3.25));

    // On June 30 the transferred member belongs to branch-b, no longer to the company alone.
    let (_, b) = app
        .get("/v1/orgs/branch-b/compliance?quarter=2018-Q2")
        .await;
    assert_eq!(
        (
            b["members"].as_i64(),
            b["exempt"].as_i64(),
            b["non_compliant"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let (_, a) = app
        .get("/v1/orgs/branch-a/compliance?quarter=2018-Q2")
        .await;
    assert_eq!(
        (a["members"].as_i64(), a["compliant"].as_i64()),
        (Some(2), Some(1))
    );
    // In the first quarter the same member was still counted under the company itself.
    let (_, q1) = app
        .get("/v1/orgs/branch-b/compliance?quarter=2018-Q1")
        .await;
    assert_eq!(q1["members"], 0);
    assert_eq!(q1["compliance_rate"], Value::Null, "no one judged: no rate");
    assert_eq!(q1["credit_hours_per_member"], Value::Null);
    let (_, company_q1) = app.get("/v1/orgs/company/compliance?quarter=2018-Q1").await;
    let (_, branch_a_q1) = app
        .get("/v1/orgs/branch-a/compliance?quarter=2018-Q1")
        .await;
    assert_eq!(
        (&company_q1["members"], &branch_a_q1["members"]),
        (&json!(3), &json!(2)),
        "two in branch-a, and the one not yet moved counted under the company itself"
    );

    let (status, _) = app.get("/v1/orgs/nowhere/compliance?quarter=2018-Q2").await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/v1/orgs/city/compliance").await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/v1/orgs/city/compliance?quarter=2018-Q9").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_subtree_lists_its_members_page_by_page_with_their_status() {
    let app = TestApp::spawn().await;
    let members = city(&app).await;
    let mut expected: Vec<String> = members[..4].iter().map(Uuid::to_string).collect();
    expected.sort();

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        assert!(page_sizes.len() < 10, "the pages end");
        let path = match &cursor {
            Some(c) => format!("/v1/orgs/city/members?quarter=2018-Q2&limit=3&cursor={c}"),
            None => "/v1/orgs/city/members?quarter=2018-Q2&limit=3".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let rows = page["members"].as_array().expect("members");
        page_sizes.push(rows.len());
        seen.extend(
            rows.iter()
                .map(|r| r["member_id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every member once, in a stable order");
    assert_eq!(page_sizes, [3, 1], "full pages until the last");

    let (_, failing) = app
        .get("/v1/orgs/city/members?quarter=2018-Q2&status=non_compliant")
        .await;
    let mut failing: Vec<String> = failing["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "non_compliant");
            r["member_id"].as_str().expect("id").to_owned()
        })
        .collect();
    failing.sort();
    let mut expected_failing = vec![members[1].to_string(), members[3].to_string()];
    expected_failing.sort();
    assert_eq!(failing, expected_failing);

    for bad in [
        "status=done",
        "limit=0",
        "limit=501",
        "cursor=abc",
        "order=name",
        "order=shortfall",
        "order=shortfall&status=compliant",
        "order=shortfall&status=non_compliant&cursor=abc",
        "order=shortfall&status=non_compliant&cursor=-5_00000000-0000-0000-0000-000000000000",
        "status=non_compliant&cursor=800_00000000-0000-0000-0000-000000000000",
    ] {
        let (status, _) = app
            .get(&format!("/v1/orgs/city/members?quarter=2018-Q2&{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}
