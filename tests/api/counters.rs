//! Roll-ups from counters against a recomputation from the log: random enrolments (some dated
//! ahead), transfers (some dated later in the current quarter), late completions, adjustments,
//! a rule change, departures and rejoinings (rule 12), a merge of one leaf into another, a city
//! moved under the other from one quarter and under the country from the next, with facts
//! recorded after it, then every organisation of a four-level tree for every quarter — before
//! and after a replay. The member lists of each subtree tally to the same figures.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rules::membership::counting_day;
use studyledger_aggregates::values::{local_date, Quarter};
use studyledger_projections::counters::known;
use studyledger_projections::fold::{quarter_compliance, MemberFold};
use studyledger_projections::rollup::RollUp;
use uuid::Uuid;

use crate::helpers::{wait_until_projected, TestApp};

/// (organisation, parent): a country, a province, two cities, three leaves.
const TREE: [(&str, Option<&str>); 7] = [
    ("cn", None),
    ("fj", Some("cn")),
    ("fz", Some("fj")),
    ("xm", Some("fj")),
    ("fz-a", Some("fz")),
    ("fz-b", Some("fz")),
    ("xm-a", Some("xm")),
];
const LEAVES: [&str; 3] = ["fz-a", "fz-b", "xm-a"];
/// (organisation, new parent, from): xm goes under fz, then under cn.
const MOVES: [(&str, &str, &str); 2] = [("xm", "fz", "2018-07-01"), ("xm", "cn", "2018-10-01")];

/// The organisation and those above it in `quarter`, once the first `moved` moves are made.
fn ancestors(org: &str, quarter: Quarter, moved: usize) -> Vec<&'static str> {
    let parent_of = |o: &str| {
        let moved_to = MOVES[..moved]
            .iter()
            .filter(|(m, _, from)| *m == o && date(from) <= quarter.first_day())
            .map(|(_, to, _)| Some(*to))
            .next_back();
        moved_to.unwrap_or_else(|| TREE.iter().find(|(t, _)| *t == o).and_then(|(_, p)| *p))
    };
    let mut path = Vec::new();
    let mut at = TREE.iter().find(|(o, _)| *o == org).map(|(o, _)| *o);
    while let Some(o) = at {
        path.push(o);
        at = parent_of(o);
    }
    path
}

fn date(raw: &str) -> NaiveDate {
    raw.parse().expect("a date")
}

async fn ok(app: &TestApp, path: &str, body: Value) {
    let (status, answer) = app.post(path, &body).await;
    assert_eq!(status, 201, "{path} {body}: {answer}");
}

/// A day of 2018 at random, not before `from`.
fn day_in_2018(rng: &mut StdRng, from: NaiveDate) -> NaiveDate {
    let end = date("2018-12-31");
    let span = (end - from).num_days().max(0);
    from + Days::new(u64::try_from(rng.random_range(0..=span)).unwrap_or(0))
}

/// Records a random ledger; answers its members.
async fn random_ledger(app: &TestApp, today: NaiveDate) -> Vec<Uuid> {
    let mut rng = StdRng::seed_from_u64(15);
    for (org, parent) in TREE {
        ok(
            app,
            "/v1/orgs",
            json!({"org_id": org, "name": org, "parent_id": parent}),
        )
        .await;
    }
    for (id, category, hours) in [
        ("r8", "required", 8.0),
        ("e3", "elective", 3.0),
        ("r2", "required", 2.5),
    ] {
        ok(
            app,
            "/v1/courses",
            json!({"course_id": id, "title": id, "category": category, "credit_hours": hours}),
        )
        .await;
    }
    let current = Quarter::of_date(today);
    let ahead = |rng: &mut StdRng| -> Option<NaiveDate> {
        let left = (current.last_day() - today).num_days();
        (left > 0)
            .then(|| today + Days::new(u64::try_from(rng.random_range(1..=left)).unwrap_or(1)))
    };
    let mut members = Vec::new();
    for i in 0..36 {
        let member = Uuid::new_v4();
        let org = LEAVES[rng.random_range(0..LEAVES.len())];
        let enrolled_on = match (i % 12 == 11).then(|| ahead(&mut rng)).flatten() {
            Some(day) => day,
            // Enrolled this quarter (exempt: figures of the current quarter), moving later
            // in it (below).
            None if i % 12 == 5 => current.first_day(),
            None => day_in_2018(&mut rng, date("2018-01-01")),
        };
        ok(
            app,
            "/v1/members",
            json!({"member_id": member, "member_no": format!("M-{i}"), "name": "成员",
                                     "org_id": org, "enrolled_on": enrolled_on}),
        )
        .await;
        members.push((member, enrolled_on));
    }
    for round in 0..3 {
        if round == 2 {
            // A rule change between rounds: members touched after it are folded under it.
            ok(app, "/v1/rulesets", json!({"version": 2, "effective_from": "2018-Q3", "required_hours": 10,
                "elective_hours": 3, "excess_required_counts_as_elective": true, "enforce_min_study_time": false})).await;
        }
        for (member, enrolled_on) in &members {
            if *enrolled_on > today || rng.random_bool(0.3) {
                continue;
            }
            let base = format!("/v1/members/{member}");
            match rng.random_range(0..5) {
                0 | 1 => {
                    let course = ["r8", "e3", "r2"][rng.random_range(0..3)];
                    let at = day_in_2018(&mut rng, *enrolled_on);
                    ok(
                        app,
                        &format!("{base}/course-completions"),
                        json!({"completion_id": Uuid::new_v4(),
                        "course_id": course, "completed_at": format!("{at}T04:00:00Z")}),
                    )
                    .await;
                }
                2 => {
                    let at = day_in_2018(&mut rng, *enrolled_on);
                    let hours = [1.5, -0.5, 3.0][rng.random_range(0..3)];
                    ok(app, &format!("{base}/credit-adjustments"), json!({"adjustment_id": Uuid::new_v4(),
                        "category": "elective", "hours": hours, "effective_at": format!("{at}T04:00:00Z"),
                        "reason": "补录"})).await;
                }
                _ => {
                    let to = LEAVES[rng.random_range(0..LEAVES.len())];
                    let on = match rng.random_bool(0.3).then(|| ahead(&mut rng)).flatten() {
                        Some(day) => day,
                        None => day_in_2018(&mut rng, *enrolled_on + Days::new(1)),
                    };
                    let (status, body) = app
                        .post(
                            &format!("{base}/transfers"),
                            &json!({"transfer_id": Uuid::new_v4(),
                        "to_org_id": to, "effective_on": on}),
                        )
                        .await;
                    // A move to where the member already is that day is refused: fine.
                    assert!(status == 201 || status == 422, "{body}");
                }
            }
        }
    }
    // Some members meet the rules of 2018-Q4 (10 + 3 under the second ruleset), so that lists
    // have compliant members too.
    for (_, (member, enrolled_on)) in members.iter().enumerate().filter(|(i, _)| i % 3 == 1) {
        if *enrolled_on >= date("2018-10-01") {
            continue;
        }
        for (course, day) in [
            ("r8", "2018-11-10"),
            ("r2", "2018-11-11"),
            ("e3", "2018-11-12"),
        ] {
            ok(
                app,
                &format!("/v1/members/{member}/course-completions"),
                json!({"completion_id": Uuid::new_v4(), "course_id": course,
                       "completed_at": format!("{day}T04:00:00Z")}),
            )
            .await;
        }
    }
    // Members with figures for the current quarter whose transfer falls later in it: counted
    // where they belong today, listed there, not where they will be.
    for (i, (member, _)) in members.iter().enumerate().filter(|(i, _)| i % 12 == 5) {
        if let Some(on) = ahead(&mut rng) {
            let to = LEAVES[(i / 12) % LEAVES.len()];
            let (status, body) = app
                .post(
                    &format!("/v1/members/{member}/transfers"),
                    &json!({"transfer_id": Uuid::new_v4(), "to_org_id": to, "effective_on": on}),
                )
                .await;
            assert!(status == 201 || status == 422, "{body}");
        }
    }
    leave_and_rejoin(app, &mut rng, &members, today).await;
    members.into_iter().map(|(m, _)| m).collect()
}

/// Facts recorded after the moves, dated before, between and after them: completions, and
/// transfers into the moved city's leaf (refusals, for members away or already there, are
/// fine).
async fn after_the_moves(app: &TestApp, members: &[Uuid]) {
    for (i, member) in members.iter().enumerate().step_by(4) {
        let day = ["2018-05-15", "2018-08-15", "2018-11-15"][i % 3];
        let base = format!("/v1/members/{member}");
        for (path, body) in [
            (
                "course-completions",
                json!({"completion_id": Uuid::new_v4(), "course_id": "e3",
                       "completed_at": format!("{day}T04:00:00Z")}),
            ),
            (
                "transfers",
                json!({"transfer_id": Uuid::new_v4(), "to_org_id": "xm-a", "effective_on": day}),
            ),
        ] {
            let (status, answer) = app.post(&format!("{base}/{path}"), &body).await;
            assert!(matches!(status, 201 | 409 | 422), "{path} {body}: {answer}");
        }
    }
}

/// Rule 12: some members leave after their last move and study, half of them come back to a
/// leaf at random later; while away, their study is refused.
async fn leave_and_rejoin(
    app: &TestApp,
    rng: &mut StdRng,
    members: &[(Uuid, NaiveDate)],
    today: NaiveDate,
) {
    let ledger = app.ledger();
    let tz = ledger.tz();
    for (member_id, _) in members.iter().skip(2).step_by(5) {
        let (member, _) = ledger
            .read::<Member>(&member_id.to_string())
            .await
            .expect("member");
        let studied = member
            .completions()
            .iter()
            .map(|c| local_date(c.completed_at, tz))
            .chain(member.sessions().iter().map(|s| local_date(s.ended_at, tz)));
        let last = member
            .placements()
            .into_iter()
            .map(|(day, _, _)| day)
            .chain(studied)
            .max()
            .expect("enrolled");
        if last >= today {
            continue;
        }
        let left_on = (last + Days::new(rng.random_range(1..90))).min(today);
        let base = format!("/v1/members/{member_id}");
        ok(
            app,
            &format!("{base}/departures"),
            json!({"departure_id": Uuid::new_v4(), "left_on": left_on, "reason": "离开"}),
        )
        .await;
        let (status, body) = app
            .post(
                &format!("{base}/course-completions"),
                &json!({"completion_id": Uuid::new_v4(), "course_id": "r8",
                        "completed_at": format!("{left_on}T04:00:00Z")}),
            )
            .await;
        assert_eq!(status, 422, "studied while away: {body}");
        let rejoined_on = left_on + Days::new(rng.random_range(1..120));
        if rng.random_bool(0.5) && rejoined_on <= today {
            let org = LEAVES[rng.random_range(0..LEAVES.len())];
            ok(
                app,
                &format!("{base}/rejoinings"),
                json!({"rejoining_id": Uuid::new_v4(), "rejoined_on": rejoined_on,
                       "org_id": org}),
            )
            .await;
        }
    }
}

/// The roll-up recomputed from the log: each member read from their stream, folded under the
/// rules they were folded under (as the views say), counted where they belong on the counting
/// day.
async fn from_the_log(
    app: &TestApp,
    members: &[Uuid],
    (org, moved): (&str, usize),
    quarter: Quarter,
    today: NaiveDate,
) -> RollUp {
    let ledger = app.ledger();
    let rulesets = ledger.rulesets().await.expect("rulesets");
    let day = counting_day(quarter, today);
    let mut rollup = RollUp::default();
    for member_id in members {
        let (member, _) = ledger
            .read::<Member>(&member_id.to_string())
            .await
            .expect("member");
        let Some(at) = member.organisation_on(day) else {
            continue;
        };
        if !ancestors(at.as_str(), quarter, moved).contains(&org) {
            continue;
        }
        let version: i32 =
            sqlx::query_scalar("SELECT rules_version FROM member_view WHERE member_id = $1")
                .bind(member_id)
                .fetch_one(&app.pool)
                .await
                .expect("member row");
        let version = u32::try_from(version).expect("a version");
        let fold = MemberFold::new(&member, known(&rulesets, version), ledger.tz());
        let totals = fold.totals().get(&quarter).copied().unwrap_or_default();
        let tenure = member.tenure().expect("enrolled");
        rollup.add(&quarter_compliance(
            quarter,
            totals,
            0,
            &tenure,
            &rulesets,
            Some(version),
            today,
        ));
    }
    rollup
}

fn figures(body: &Value) -> Value {
    json!([
        body["members"],
        body["compliant"],
        body["non_compliant"],
        body["in_progress"],
        body["exempt"],
        body["credit_hours_total"],
        body["stale"]
    ])
}

fn expected(rollup: &RollUp) -> Value {
    json!([
        rollup.members,
        rollup.compliant,
        rollup.non_compliant,
        rollup.in_progress,
        rollup.exempt,
        rollup.credit_hours_total,
        rollup.stale
    ])
}

/// A member of a list: id, status, and class hours short in hundredths.
type Line = (String, String, i64);

/// Every member of the subtree's list (with `filter` on the query), page by page: member ids in
/// list order with their status and shortfall.
async fn list(app: &TestApp, org: &str, quarter: Quarter, filter: &str, limit: usize) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut cursor = String::new();
    loop {
        let (code, page) = app
            .get(&format!(
                "/v1/orgs/{org}/members?quarter={quarter}&limit={limit}{filter}{cursor}"
            ))
            .await;
        assert_eq!(code, 200, "{page}");
        let members = page["members"].as_array().expect("members");
        assert!(members.len() <= limit, "{page}");
        for line in members {
            let id = line["member_id"].as_str().expect("id").to_owned();
            let status = line["status"].as_str().expect("status").to_owned();
            let short = line["shortfall_hours"].as_f64().expect("shortfall") * 100.0;
            lines.push((id, status, short.round() as i64));
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(
                    members.len(),
                    limit,
                    "a page before the last is full: {page}"
                );
                cursor = format!("&cursor={next}");
            }
            None => break,
        }
    }
    lines
}

/// Every member of the subtree's list, tallied by status; each status's own list (read from
/// the lists by status) holds exactly the members of that status in the whole list, and the
/// lists of members behind by shortfall hold them most hours short first (then by descending
/// member id).
async fn list_tally(app: &TestApp, org: &str, quarter: Quarter) -> BTreeMap<String, u64> {
    let everybody = list(app, org, quarter, "", 7).await;
    let mut tally = BTreeMap::new();
    for (_, status, _) in &everybody {
        *tally.entry(status.clone()).or_default() += 1;
    }
    for status in ["compliant", "non_compliant", "in_progress", "exempt"] {
        let mut expected: Vec<Line> = everybody
            .iter()
            .filter(|(_, s, _)| s == status)
            .cloned()
            .collect();
        let filter = format!("&status={status}");
        assert_eq!(
            list(app, org, quarter, &filter, 2).await,
            expected,
            "the {status} list of {org} {quarter}"
        );
        if matches!(status, "non_compliant" | "in_progress") {
            expected.sort_by(|(a, _, sa), (b, _, sb)| (sb, b).cmp(&(sa, a)));
            assert_eq!(
                list(app, org, quarter, &format!("{filter}&order=shortfall"), 2).await,
                expected,
                "the {status} list of {org} {quarter} by shortfall"
            );
        }
    }
    tally
}

async fn compare_everything(
    app: &TestApp,
    members: &[Uuid],
    today: NaiveDate,
    moved: usize,
    when: &str,
) {
    wait_until_projected(&app.pool).await;
    let current = Quarter::of_date(today);
    let quarters = ["2018-Q1", "2018-Q2", "2018-Q3", "2018-Q4"]
        .into_iter()
        .map(|q| Quarter::parse(q).expect("quarter"))
        .chain([current]);
    for quarter in quarters {
        for (org, _) in TREE {
            let (status, body) = app
                .get(&format!("/v1/orgs/{org}/compliance?quarter={quarter}"))
                .await;
            assert_eq!(status, 200, "{body}");
            let recomputed = from_the_log(app, members, (org, moved), quarter, today).await;
            assert_eq!(
                figures(&body),
                expected(&recomputed),
                "{when}: {org} {quarter}"
            );
            let tally = list_tally(app, org, quarter).await;
            let by_status = |s: &str| tally.get(s).copied().unwrap_or(0);
            assert_eq!(
                [
                    by_status("compliant"),
                    by_status("non_compliant"),
                    by_status("in_progress"),
                    by_status("exempt")
                ],
                [
                    recomputed.compliant,
                    recomputed.non_compliant,
                    recomputed.in_progress,
                    recomputed.exempt
                ],
                "{when}: the list of {org} {quarter}"
            );
        }
    }
}

#[tokio::test]
async fn counters_equal_a_recomputation_from_the_log_across_transfers_late_facts_rules_and_replays()
{
    let app = TestApp::spawn().await;
    let today = local_date(Utc::now(), chrono_tz::Asia::Shanghai);
    let members = random_ledger(&app, today).await;
    compare_everything(&app, &members, today, 0, "as projected").await;
    // A leaf merges into the other city's leaf on a day of 2018: its members count there
    // from the quarters that end on or after it.
    let merged_on = day_in_2018(&mut StdRng::seed_from_u64(18), date("2018-01-01"));
    let (status, merged) = app
        .post(
            "/v1/orgs/fz-b/merges",
            &json!({"merge_id": Uuid::new_v4(), "into_org_id": "xm-a",
                    "merged_on": merged_on, "reason": "合并"}),
        )
        .await;
    assert_eq!(status, 201, "{merged}");
    assert!(merged["transferred"].as_u64() > Some(0), "{merged}");
    compare_everything(&app, &members, today, 0, "after a merge").await;
    // The other city moves, with its leaf, under fz from 2018-Q3, then under the country from
    // 2018-Q4; facts recorded afterwards count in the tree of their quarter.
    for (i, (org, parent, from)) in MOVES.into_iter().enumerate() {
        ok(
            &app,
            &format!("/v1/orgs/{org}/moves"),
            json!({"move_id": Uuid::new_v4(), "parent_id": parent, "moved_on": from,
                   "reason": "改隶"}),
        )
        .await;
        compare_everything(&app, &members, today, i + 1, "after a move").await;
    }
    after_the_moves(&app, &members).await;
    compare_everything(
        &app,
        &members,
        today,
        MOVES.len(),
        "after facts across the moves",
    )
    .await;
    let replay = app.start_replay(false).await;
    assert_eq!(app.replay_outcome(&replay).await["status"], "succeeded");
    compare_everything(&app, &members, today, MOVES.len(), "after a replay").await;
}
