//! Hostile input through the real router, drawn at random: text PostgreSQL cannot hold
//! (NUL), control characters and bidirectional overrides, lone surrogates, huge numbers,
//! deep nesting, over-long strings, unknown fields and other content types. Every answer is
//! a client error or a success — never a 5xx — a refused request records nothing, and
//! whatever was accepted is carried through: projected (nothing skipped), exported, verified.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_views_match_the_log, TestApp};

/// A route that takes a JSON body, with a body it would accept and the fields to spoil.
struct Route {
    path: String,
    body: fn(u64, Uuid) -> Value,
    fields: &'static [&'static str],
}

fn routes(member: Uuid) -> Vec<Route> {
    let on_member = |tail: &str| format!("/v1/members/{member}/{tail}");
    vec![
        Route {
            path: "/v1/orgs".to_owned(),
            body: |n, _| json!({"org_id": format!("o-{n}"), "name": "组", "parent_id": "fz"}),
            fields: &["org_id", "name", "parent_id"],
        },
        Route {
            path: "/v1/courses".to_owned(),
            body: |n, _| {
                json!({"course_id": format!("c-{n}"), "title": "课", "category": "required",
                       "credit_hours": 1.5, "min_study_minutes": 10})
            },
            fields: &[
                "course_id",
                "title",
                "category",
                "credit_hours",
                "min_study_minutes",
            ],
        },
        Route {
            path: "/v1/members".to_owned(),
            body: |n, id| {
                json!({"member_id": id, "member_no": format!("N-{n}"), "name": "新",
                       "org_id": "fz", "enrolled_on": "2018-01-01"})
            },
            fields: &["member_id", "member_no", "name", "org_id", "enrolled_on"],
        },
        Route {
            path: on_member("study-sessions"),
            body: |n, id| {
                let start = chrono::DateTime::parse_from_rfc3339("2018-05-01T00:00:00Z")
                    .expect("instant")
                    + chrono::Duration::hours(i64::try_from(n).unwrap_or(0));
                json!({"session_id": id, "course_id": "ethics", "started_at": start,
                       "ended_at": start + chrono::Duration::minutes(30)})
            },
            fields: &["session_id", "course_id", "started_at", "ended_at"],
        },
        Route {
            path: on_member("credit-adjustments"),
            body: |_, id| {
                json!({"adjustment_id": id, "category": "elective", "hours": 0.5,
                       "effective_at": "2018-05-02T00:00:00Z", "reason": "补录\n第二行"})
            },
            fields: &[
                "adjustment_id",
                "category",
                "hours",
                "effective_at",
                "reason",
            ],
        },
        Route {
            path: "/v1/evaluations".to_owned(),
            body: |n, _| json!({"evaluation_id": format!("e-{n}"), "name": "评", "quarters": ["2018-Q1"]}),
            fields: &["evaluation_id", "name", "quarters"],
        },
        Route {
            path: "/v1/rulesets".to_owned(),
            body: |n, _| {
                json!({"version": n + 2, "effective_from": "2030-Q1", "required_hours": 8,
                       "elective_hours": 3, "excess_required_counts_as_elective": false,
                       "enforce_min_study_time": true})
            },
            fields: &[
                "version",
                "effective_from",
                "required_hours",
                "elective_hours",
            ],
        },
    ]
}

/// What to do to one field of a good body.
#[derive(Debug, Clone)]
enum Spoil {
    /// Nothing: the good body, for the successes among the refusals.
    Nothing,
    /// Put a string there, of any characters.
    Text(String),
    /// Put this JSON text there as it is (lone surrogates, huge numbers, deep nesting).
    Raw(String),
    /// Leave the body good but add a field it does not have.
    Unknown,
    /// Send the good body as another content type.
    ContentType(&'static str),
}

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => any::<char>(),
        1 => prop::sample::select(vec![
            '\0', '\u{1}', '\t', '\n', '\r', '\u{7f}', '\u{85}', '\u{1b}', '\u{202A}', '\u{202E}',
            '\u{2066}', '\u{2069}', '\u{200B}', '\u{FEFF}', '\u{FFFF}', '学', '📚', 'a', '-',
        ]),
    ]
}

fn spoil() -> impl Strategy<Value = Spoil> {
    let text = prop::collection::vec(hostile_char(), 0..120)
        .prop_map(|chars| Spoil::Text(chars.into_iter().collect()));
    let long = (150usize..70_000, hostile_char())
        .prop_map(|(n, c)| Spoil::Text(std::iter::repeat_n(c, n).collect()));
    let raw = prop::sample::select(vec![
        r#""\ud800""#,
        r#""a\udfffb""#,
        r#""\u0000""#,
        "1e400",
        "-1e400",
        "1e-400",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        "0.001",
        "-0",
        "true",
        "null",
        "{}",
        "[]",
    ])
    .prop_map(|raw| Spoil::Raw(raw.to_owned()));
    let deep = (1usize..3_000).prop_map(|depth| Spoil::Raw("[".repeat(depth) + &"]".repeat(depth)));
    let content_type = prop::sample::select(vec![
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "multipart/form-data; boundary=x",
    ])
    .prop_map(Spoil::ContentType);
    prop_oneof![
        2 => Just(Spoil::Nothing),
        4 => text,
        1 => long,
        3 => raw,
        1 => deep,
        1 => Just(Spoil::Unknown),
        1 => content_type,
    ]
}

/// The body's text with `field` spoiled, and the content type to send it as.
fn spoiled(body: &Value, field: &str, spoil: &Spoil) -> (String, &'static str) {
    let mut body = body.clone();
    let marker = "\u{e000}spoil\u{e000}";
    match spoil {
        Spoil::Text(text) => body[field] = json!(text),
        Spoil::Raw(_) => body[field] = json!(marker),
        Spoil::Unknown => body["min_study_minute"] = json!(5),
        Spoil::ContentType(_) | Spoil::Nothing => {}
    }
    let mut text = body.to_string();
    if let Spoil::Raw(raw) = spoil {
        text = text.replace(&json!(marker).to_string(), raw);
    }
    let content_type = match spoil {
        Spoil::ContentType(kind) => kind,
        _ => "application/json",
    };
    (text, content_type)
}

async fn events(app: &TestApp) -> i64 {
    app.total_events().await
}

#[tokio::test]
async fn hostile_input_never_stops_the_ledger_and_a_refusal_records_nothing() {
    let app = TestApp::spawn().await;
    let member = app.seed_member("2018-01-01").await;
    let routes = routes(member);
    let mut runner = TestRunner::deterministic();
    let case = (0..routes.len(), any::<prop::sample::Index>(), spoil());
    let mut seen: std::collections::BTreeMap<u16, usize> = Default::default();
    for n in 0..400u64 {
        let (which, field, spoil) = case.new_tree(&mut runner).expect("a case").current();
        let route = &routes[which];
        let field = field.get(route.fields);
        let (body, content_type) = spoiled(&(route.body)(n, Uuid::new_v4()), field, &spoil);
        let before = events(&app).await;
        let mut request = app
            .client
            .post(format!("{}{}", app.address, route.path))
            .body(body.clone());
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let answer = response.text().await.expect("a body");
        *seen.entry(status).or_default() += 1;
        let shown: String = body.chars().take(300).collect();
        assert!(
            [200, 201, 400, 404, 409, 413, 415, 422].contains(&status),
            "{} {field} {spoil:?}: {status} {answer} for {shown}",
            route.path
        );
        if status >= 400 {
            assert_eq!(kind, "application/problem+json", "{status} {answer}");
            assert_eq!(
                events(&app).await,
                before,
                "{status} recorded something: {shown}"
            );
        }
    }
    // Both kinds of answer were exercised, not only refusals.
    assert!(seen.get(&201).is_some_and(|n| *n > 10), "{seen:?}");
    assert!(seen.get(&422).is_some_and(|n| *n > 10), "{seen:?}");
    assert!(seen.get(&400).is_some_and(|n| *n > 10), "{seen:?}");
    assert!(seen.contains_key(&415), "{seen:?}");

    // Accepted means carried through: every event projected and replayed (none skipped), the
    // views equal the log (rebuilt, since rulesets published above leave members folded
    // under older ones until their next event), every hash chain holds, and the exports read.
    let replay = app.start_replay(false).await;
    assert_eq!(app.replay_outcome(&replay).await["status"], "succeeded");
    assert_views_match_the_log(&app.pool).await;
    let (status, listing) = app.get("/v1/skipped-events").await;
    assert_eq!((status, &listing["skipped_events"]), (200, &json!([])));
    let (status, csv) = app.get("/v1/orgs/fz/members.csv?quarter=2018-Q2").await;
    assert_eq!(status, 200, "{csv}");
    let (status, _) = app.get(&format!("/v1/members/{member}/ledger.csv")).await;
    assert_eq!(status, 200);
}
