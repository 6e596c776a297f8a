use serde_json::{json, Value};

use super::validate::{duration, statement, supported_version};
use super::*;

fn minimal() -> Value {
    json!({
        "actor": {"account": {"homePage": "https://studyledger.invalid/", "name": "m-1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"zh-CN": "完成", "en-US": "completed"}},
        "object": {"id": "https://courses.example/c-1", "definition": {"name": {"zh-CN": "党章"}}},
    })
}

fn with(mut value: Value, pointer: &str, replacement: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let target = value.pointer_mut(parent).expect("parent exists");
    target
        .as_object_mut()
        .expect("an object")
        .insert(key.to_owned(), replacement);
    value
}

fn problem_at(value: &Value) -> String {
    statement(value).expect_err("invalid").path
}

#[test]
fn a_complete_statement_is_valid() {
    let full = json!({
        "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
        "actor": {"objectType": "Agent", "name": "林晓", "mbox": "mailto:lin@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"objectType": "Activity", "id": "https://courses.example/c-1",
                   "definition": {"type": "http://adlnet.gov/expapi/activities/course",
                                  "interactionType": "choice",
                                  "choices": [{"id": "a", "description": {"en-US": "A"}}],
                                  "extensions": {"https://example.org/x": {"any": [1, "two"]}}}},
        "result": {"completion": true, "success": true, "duration": "PT1H30M",
                   "score": {"scaled": 0.9, "raw": 90, "min": 0, "max": 100}},
        "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
                    "platform": "学习强国", "language": "zh-CN",
                    "contextActivities": {"parent": [{"id": "https://courses.example/p"}],
                                          "category": {"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"}},
                    "extensions": {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": "s-1"}},
        "timestamp": "2026-03-01T09:00:00+08:00",
        "version": "2.0.0",
    });
    assert_eq!(statement(&full), Ok(()));
    assert_eq!(statement(&minimal()), Ok(()));
}

#[test]
fn each_broken_rule_is_named_by_its_path() {
    let m = minimal;
    let cases: Vec<(Value, &str)> = vec![
        (with(m(), "/id", json!("not-a-uuid")), "id"),
        (with(m(), "/unknown", json!(1)), "unknown"),
        (with(m(), "/actor", json!({"name": "nobody"})), "actor"),
        (with(m(), "/actor/mbox", json!("mailto:a@b.c")), "actor"),
        (with(m(), "/actor", json!({"mbox": "a@b.c"})), "actor.mbox"),
        (
            with(m(), "/actor", json!({"mbox_sha1sum": "abc"})),
            "actor.mbox_sha1sum",
        ),
        (with(m(), "/actor", json!({"objectType": "Group"})), "actor"),
        (
            with(
                m(),
                "/actor",
                json!({"objectType": "Group", "member": [{"objectType": "Group", "mbox": "mailto:g@x.y"}]}),
            ),
            "actor.member[0]",
        ),
        (with(m(), "/verb/id", json!("completed")), "verb.id"),
        (
            with(m(), "/verb/display", json!({"not a tag": "x"})),
            "verb.display",
        ),
        (
            with(m(), "/object/objectType", json!("Thing")),
            "object.objectType",
        ),
        (
            with(m(), "/object/definition/type", json!("no scheme")),
            "object.definition.type",
        ),
        (
            with(m(), "/result", json!({"duration": "1 hour"})),
            "result.duration",
        ),
        (
            with(m(), "/result", json!({"score": {"scaled": 1.5}})),
            "result.score.scaled",
        ),
        (
            with(m(), "/result", json!({"completion": "yes"})),
            "result.completion",
        ),
        (with(m(), "/timestamp", json!("yesterday")), "timestamp"),
        (with(m(), "/version", json!("3.0.0")), "version"),
        (
            with(m(), "/context", json!({"registration": "nope"})),
            "context.registration",
        ),
        (
            with(
                with(
                    m(),
                    "/object",
                    json!({"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"}),
                ),
                "/context",
                json!({"platform": "x"}),
            ),
            "context.platform",
        ),
        (with(m(), "/verb/id", json!(VOIDED)), "object"),
        (
            with(m(), "/object/definition/name", json!({"zh-CN": "a\u{0}b"})),
            "object.definition.name.zh-CN",
        ),
    ];
    for (value, path) in cases {
        assert_eq!(problem_at(&value), path, "{value}");
    }
}

#[test]
fn durations_read_as_iso_8601() {
    assert_eq!(duration("PT1H30M"), Some(5400.0));
    assert_eq!(duration("PT0.5S"), Some(0.5));
    assert_eq!(duration("P1DT1S"), Some(86_401.0));
    assert_eq!(duration("P2W"), Some(1_209_600.0));
    for bad in ["", "P", "PT", "1H", "PT1M1H", "PT1.5M1S", "PTH", "P1H"] {
        assert_eq!(duration(bad), None, "{bad}");
    }
}

#[test]
fn weeks_stand_alone_in_a_duration() {
    assert_eq!(duration("P4W"), Some(2_419_200.0));
    assert_eq!(duration("P0.5W"), Some(302_400.0));
    for bad in ["P4W1D", "P1Y4W", "P1M4W", "P4WT1H", "P4W0D", "P1W2W"] {
        assert_eq!(duration(bad), None, "{bad}");
    }
    let weeks_and_days = with(minimal(), "/result", json!({"duration": "P4W1D"}));
    assert_eq!(problem_at(&weeks_and_days), "result.duration");
    let weeks = with(minimal(), "/result", json!({"duration": "P4W"}));
    assert_eq!(statement(&weeks), Ok(()));
}

/// A statement whose object is a sub-statement with the given object and context.
fn sub_statement(object: Value, context: Value) -> Value {
    with(
        minimal(),
        "/object",
        json!({"objectType": "SubStatement",
               "actor": {"mbox": "mailto:b@example.org"},
               "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
               "object": object,
               "context": context}),
    )
}

#[test]
fn an_interaction_definition_names_its_interaction_type() {
    let interaction = [
        ("correctResponsesPattern", json!(["a"])),
        ("choices", json!([{"id": "a"}])),
        ("scale", json!([{"id": "1"}])),
        ("source", json!([{"id": "s"}])),
        ("target", json!([{"id": "t"}])),
        ("steps", json!([{"id": "1"}])),
    ];
    for (key, value) in interaction {
        let untyped = with(minimal(), &format!("/object/definition/{key}"), value);
        assert_eq!(
            problem_at(&untyped),
            "object.definition.interactionType",
            "{key}"
        );
        let typed = with(
            untyped,
            "/object/definition/interactionType",
            json!("other"),
        );
        assert_eq!(statement(&typed), Ok(()), "{key}");
    }
    let untyped_activity = json!({"id": "https://courses.example/q-1",
                                  "definition": {"choices": [{"id": "a"}]}});
    let inner = sub_statement(untyped_activity.clone(), json!({}));
    assert_eq!(
        problem_at(&inner),
        "object.object.definition.interactionType"
    );
    let in_context = with(
        minimal(),
        "/context",
        json!({"contextActivities": {"category": [untyped_activity]}}),
    );
    assert_eq!(
        problem_at(&in_context),
        "context.contextActivities.category[0].definition.interactionType"
    );
    let plain = with(
        minimal(),
        "/object/definition/type",
        json!("https://t.example/q"),
    );
    assert_eq!(statement(&plain), Ok(()), "no interaction, no type needed");
}

#[test]
fn context_agents_and_groups_name_an_agent_or_a_group_and_how_it_is_relevant() {
    let coach = json!({"mbox": "mailto:coach@example.org"});
    let cell = json!({"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]});
    let context = json!({
        "contextAgents": [
            {"objectType": "contextAgent", "agent": coach,
             "relevantTypes": ["https://types.example/coach"]},
            {"objectType": "contextAgent",
             "agent": {"objectType": "Agent", "account": {"homePage": "https://h.example/", "name": "t"}}},
        ],
        "contextGroups": [
            {"objectType": "contextGroup", "group": cell,
             "relevantTypes": ["https://types.example/cell"]},
            {"objectType": "contextGroup",
             "group": {"objectType": "Group", "openid": "https://id.example/branch"}},
        ],
    });
    assert_eq!(
        statement(&with(minimal(), "/context", context.clone())),
        Ok(())
    );
    assert_eq!(
        statement(&sub_statement(
            json!({"id": "https://courses.example/inner"}),
            context
        )),
        Ok(())
    );
    let agent = |entry: Value| json!({"contextAgents": [entry]});
    let group = |entry: Value| json!({"contextGroups": [entry]});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"contextAgents": {"objectType": "contextAgent", "agent": coach}}),
            "context.contextAgents",
        ),
        (agent(coach.clone()), "context.contextAgents[0].mbox"),
        (
            agent(json!({"agent": coach})),
            "context.contextAgents[0].objectType",
        ),
        (
            agent(json!({"objectType": "Agent", "agent": coach})),
            "context.contextAgents[0].objectType",
        ),
        (
            agent(json!({"objectType": "contextGroup", "agent": coach})),
            "context.contextAgents[0].objectType",
        ),
        (
            agent(json!({"objectType": "contextAgent"})),
            "context.contextAgents[0].agent",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": cell})),
            "context.contextAgents[0].agent",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": {"name": "nobody"}})),
            "context.contextAgents[0].agent",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": coach, "relevantTypes": []})),
            "context.contextAgents[0].relevantTypes",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": coach,
                         "relevantTypes": "https://types.example/coach"})),
            "context.contextAgents[0].relevantTypes",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": coach,
                         "relevantTypes": ["coach"]})),
            "context.contextAgents[0].relevantTypes[0]",
        ),
        (
            agent(json!({"objectType": "contextAgent", "agent": coach, "name": "Coach"})),
            "context.contextAgents[0].name",
        ),
        (
            json!({"contextAgents": [{"objectType": "contextAgent", "agent": coach}, "coach"]}),
            "context.contextAgents[1]",
        ),
        (json!({"contextGroups": "cell"}), "context.contextGroups"),
        (
            group(json!({"objectType": "contextGroup"})),
            "context.contextGroups[0].group",
        ),
        (
            group(json!({"objectType": "contextGroup", "group": coach})),
            "context.contextGroups[0].group",
        ),
        (
            group(json!({"objectType": "contextGroup",
                         "group": {"member": [{"mbox": "mailto:a@example.org"}]}})),
            "context.contextGroups[0].group",
        ),
        (
            group(json!({"objectType": "contextGroup",
                         "group": {"objectType": "Group", "member": [cell]}})),
            "context.contextGroups[0].group.member[0]",
        ),
        (
            group(json!({"objectType": "contextAgent", "group": cell})),
            "context.contextGroups[0].objectType",
        ),
        (
            group(json!({"group": cell})),
            "context.contextGroups[0].objectType",
        ),
        (
            group(json!({"objectType": "contextGroup", "agent": coach})),
            "context.contextGroups[0].agent",
        ),
        (
            group(json!({"objectType": "contextGroup", "group": cell, "relevantTypes": []})),
            "context.contextGroups[0].relevantTypes",
        ),
    ];
    for (context, path) in cases {
        let value = with(minimal(), "/context", context.clone());
        assert_eq!(problem_at(&value), path, "{context}");
        let inner = sub_statement(json!({"id": "https://courses.example/inner"}), context);
        assert_eq!(problem_at(&inner), format!("object.{path}"), "{inner}");
    }
}

#[test]
fn an_authority_group_is_an_anonymous_pair_of_consumer_and_user() {
    let consumer = json!({"account": {"homePage": "https://oauth.example/", "name": "app"}});
    let user = json!({"mbox": "mailto:user@example.org"});
    let pair = json!({"objectType": "Group", "member": [consumer, user]});
    assert_eq!(
        statement(&with(minimal(), "/authority", pair.clone())),
        Ok(())
    );
    assert_eq!(
        statement(&with(minimal(), "/authority", user.clone())),
        Ok(())
    );
    let third = json!({"openid": "https://id.example/third"});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"objectType": "Group", "member": [consumer]}),
            "authority.member",
        ),
        (
            json!({"objectType": "Group", "member": [consumer, user, third]}),
            "authority.member",
        ),
        (
            json!({"objectType": "Group", "member": []}),
            "authority.member",
        ),
        (
            with(pair.clone(), "/mbox", json!("mailto:pair@example.org")),
            "authority.mbox",
        ),
        (
            with(
                pair.clone(),
                "/account",
                json!({"homePage": "https://h.example/", "name": "p"}),
            ),
            "authority.account",
        ),
        (
            json!({"objectType": "Group", "openid": "https://id.example/g"}),
            "authority.openid",
        ),
        (
            json!({"objectType": "Group", "member": [consumer, {"name": "nobody"}]}),
            "authority.member[1]",
        ),
    ];
    for (authority, path) in cases {
        let value = with(minimal(), "/authority", authority);
        assert_eq!(problem_at(&value), path, "{value}");
    }
}

#[test]
fn a_timestamp_offset_of_minus_zero_is_refused() {
    for good in [
        "2008-09-15T15:53:00.601Z",
        "2008-09-15T15:53:00.601+00:00",
        "2008-09-15T15:53:00-05:00",
        "2008-09-15T15:53:00.601-10:00",
    ] {
        let value = with(minimal(), "/timestamp", json!(good));
        assert_eq!(statement(&value), Ok(()), "{good}");
    }
    for bad in [
        "2008-09-15T15:53:00.601-00:00",
        "2008-09-15T15:53:00-00:00",
        "2008-09-15T15:53:00\u{2212}00:00",
    ] {
        let value = with(minimal(), "/timestamp", json!(bad));
        assert_eq!(problem_at(&value), "timestamp", "{bad}");
        let value = with(minimal(), "/stored", json!(bad));
        assert_eq!(problem_at(&value), "stored", "{bad}");
        let inner = with(
            sub_statement(json!({"id": "https://courses.example/inner"}), json!({})),
            "/object/timestamp",
            json!(bad),
        );
        assert_eq!(problem_at(&inner), "object.timestamp", "{bad}");
    }
}

#[test]
fn a_lone_context_activity_is_kept_and_served_as_a_list_of_one() {
    let lone = json!({
        "parent": {"id": "https://courses.example/p"},
        "grouping": [{"id": "https://courses.example/g1"}, {"id": "https://courses.example/g2"}],
        "category": {"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"},
        "other": {"id": "https://courses.example/o"},
    });
    let listed = json!({
        "parent": [{"id": "https://courses.example/p"}],
        "grouping": [{"id": "https://courses.example/g1"}, {"id": "https://courses.example/g2"}],
        "category": [{"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"}],
        "other": [{"id": "https://courses.example/o"}],
    });
    let context = json!({"contextActivities": lone});
    let sent = with(
        sub_statement(
            json!({"id": "https://courses.example/inner"}),
            context.clone(),
        ),
        "/context",
        context,
    );
    let sent = with(sent, "/id", json!("fd41c918-b88b-4b20-a0a5-a4c32391aaa0"));
    assert_eq!(statement(&sent), Ok(()));
    let sent = sent.as_object().cloned().expect("an object");
    let authority = json!({"mbox": "mailto:lrs@example.org"});
    let kept = stored(sent.clone(), Utc::now(), authority);
    assert_eq!(kept["context"]["contextActivities"], listed);
    assert_eq!(kept["object"]["context"]["contextActivities"], listed);
    assert_eq!(statement(&Value::Object(kept.clone())), Ok(()));
    assert!(
        same_statement(&sent, &kept),
        "sent again as first sent, alone"
    );
    let mut as_served = kept.clone();
    as_served.remove("stored");
    as_served.remove("authority");
    let mut kept_lone = sent.clone();
    kept_lone.insert("timestamp".to_owned(), kept["timestamp"].clone());
    assert!(
        same_statement(&as_served, &kept_lone),
        "sent again in the list form, against one kept in the lone form"
    );
    let elsewhere = with(
        Value::Object(sent),
        "/context/contextActivities/parent",
        json!({"id": "https://courses.example/q"}),
    );
    let elsewhere = elsewhere.as_object().expect("an object");
    assert!(!same_statement(elsewhere, &kept), "another parent");
}

#[test]
fn versions_1_0_and_2_0_are_spoken() {
    for good in ["1.0.0", "1.0.3", "2.0.0", "1.0"] {
        assert!(supported_version(good), "{good}");
    }
    for bad in ["0.95", "1.1.0", "2.1.0", "2.0.x", "", "3"] {
        assert!(!supported_version(bad), "{bad}");
    }
}

#[test]
fn the_lrs_sets_stored_and_authority_and_fills_id_timestamp_and_version() {
    let mut sent = minimal().as_object().cloned().expect("object");
    let fresh = stored(sent.clone(), Utc::now(), json!({}));
    assert!(id_of(&fresh).is_some(), "an id is given when none was sent");
    sent.insert(
        "id".to_owned(),
        json!("fd41c918-b88b-4b20-a0a5-a4c32391aaa0"),
    );
    let at = DateTime::parse_from_rfc3339("2026-12-02T01:02:03.456Z")
        .expect("time")
        .with_timezone(&Utc);
    let authority = json!({"account": {"homePage": "https://studyledger.invalid/", "name": "app"}});
    let kept = stored(sent.clone(), at, authority.clone());
    assert_eq!(id_of(&kept), id_of(&sent), "the id sent is kept");
    assert_eq!(kept["stored"], json!("2026-12-02T01:02:03.456Z"));
    assert_eq!(kept["timestamp"], kept["stored"]);
    assert_eq!(kept["authority"], authority);
    assert_eq!(kept["version"], json!("1.0.0"));
    assert!(
        same_statement(&sent, &kept),
        "sent again without a timestamp"
    );
    let mut moved = sent.clone();
    moved.insert(
        "timestamp".to_owned(),
        json!("2026-12-02T09:02:03.456+08:00"),
    );
    assert!(
        same_statement(&moved, &kept),
        "the same instant, written otherwise"
    );
    moved.insert("timestamp".to_owned(), json!("2026-12-02T09:02:04+08:00"));
    assert!(!same_statement(&moved, &kept), "another instant");
    let mut other = sent;
    other.insert("result".to_owned(), json!({"completion": false}));
    assert!(!same_statement(&other, &kept), "other content");
}

#[test]
fn a_voiding_statement_names_what_it_voids() {
    let target = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0";
    let voiding = with(
        with(minimal(), "/verb/id", json!(VOIDED)),
        "/object",
        json!({"objectType": "StatementRef", "id": target}),
    );
    assert_eq!(statement(&voiding), Ok(()));
    let map = voiding.as_object().expect("object");
    assert_eq!(voids(map).map(|u| u.to_string()), Some(target.to_owned()));
    assert_eq!(voids(minimal().as_object().expect("object")), None);
}

#[test]
fn a_statement_is_found_by_its_agents_and_activities_and_by_those_it_relates_to() {
    let statement = json!({
        "actor": {"objectType": "Group", "account": {"homePage": "https://h.example/", "name": "cell"},
                  "member": [{"mbox": "mailto:a@example.org"}]},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"objectType": "SubStatement",
                   "actor": {"mbox": "mailto:b@example.org"},
                   "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                   "object": {"id": "https://courses.example/inner"}},
        "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
                    "instructor": {"openid": "https://id.example/t"},
                    "contextActivities": {"parent": {"id": "https://courses.example/p"},
                                          "grouping": [{"id": "https://courses.example/g"}]}},
        "authority": {"mbox": "mailto:lrs@example.org"},
    });
    let keys = index::keys(statement.as_object().expect("an object"));
    assert_eq!(
        keys.agents,
        vec!["account:https://h.example/ cell".to_owned()]
    );
    assert_eq!(
        keys.related_agents,
        vec![
            "account:https://h.example/ cell".to_owned(),
            "mbox:mailto:a@example.org".to_owned(),
            "mbox:mailto:b@example.org".to_owned(),
            "mbox:mailto:lrs@example.org".to_owned(),
            "openid:https://id.example/t".to_owned(),
        ]
    );
    assert_eq!(keys.activity, None, "the object is a sub-statement");
    assert_eq!(
        keys.related_activities,
        vec![
            "https://courses.example/g".to_owned(),
            "https://courses.example/inner".to_owned(),
            "https://courses.example/p".to_owned(),
        ]
    );
    assert_eq!(
        keys.registration.as_deref(),
        Some("ec531277-b57b-4c15-8d91-d292c5b2b8f7")
    );
    let simple = index::keys(minimal().as_object().expect("an object"));
    assert_eq!(
        simple.activity.as_deref(),
        Some("https://courses.example/c-1")
    );
    assert_eq!(
        simple.agents,
        vec!["account:https://studyledger.invalid/ m-1".to_owned()]
    );
    assert_eq!(
        index::identifier(&json!({"objectType": "Group", "member": []})),
        None
    );
}

#[test]
fn a_statement_that_targets_another_is_keyed_by_its_target_and_inherits_only_filter_keys() {
    let target = "ec531277-b57b-4c15-8d91-d292c5b2b8f7";
    let comment = json!({
        "actor": {"mbox": "mailto:t@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/commented"},
        "object": {"objectType": "StatementRef", "id": target.to_uppercase()},
    });
    let comment = comment.as_object().expect("an object");
    assert_eq!(
        index::target(comment).map(|t| t.to_string()).as_deref(),
        Some(target)
    );
    let keys = index::stored_keys(comment);
    assert!(keys.contains(&format!("targets:{target}")), "{keys:?}");
    assert_eq!(
        index::target(minimal().as_object().expect("an object")),
        None
    );
    for key in [
        "verb:x",
        "agent:y",
        "related_agent:y",
        "activity:z",
        "related_activity:z",
    ] {
        assert!(index::passed_on(key), "{key}");
    }
    assert!(index::passed_on(&format!("registration:{target}")));
    assert!(
        !index::passed_on("token:t-1"),
        "who stored a target is not passed on"
    );
    assert!(!index::passed_on(&format!("targets:{target}")));
}

mod ledger_readings {
    use chrono::{DateTime, Utc};
    use serde_json::{json, Map, Value};
    use uuid::Uuid;

    use crate::ledger::{
        completion_id, read, session_id, split, Reading, Unreadable, CMI5_SESSION, COMPLETED,
        TERMINATED,
    };

    const HOME: &str = "https://studyledger.invalid/";
    const MEMBER: &str = "6f1c0b7e-2d4a-4c8e-9b1f-3a5d7e9c1b2d";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an instant")
    }

    fn statement(verb: &str, result: Value, context: Value) -> Map<String, Value> {
        json!({
            "id": "d2a0c7f4-1b3e-4e5a-8c9d-0f1a2b3c4d5e",
            "actor": {"account": {"homePage": HOME, "name": MEMBER}},
            "verb": {"id": verb},
            "object": {"id": "https://courses.example/party-history"},
            "result": result,
            "context": context,
            "timestamp": "2018-05-01T02:00:00.000Z",
        })
        .as_object()
        .expect("an object")
        .clone()
    }

    #[test]
    fn a_completed_statement_with_completion_true_is_a_completion_at_its_timestamp() {
        let registration = "0b8a6c2e-5f4d-4a3b-9c1e-7d6f5e4a3b2c";
        let s = statement(
            COMPLETED,
            json!({"completion": true, "success": true}),
            json!({"registration": registration}),
        );
        let Ok(Some(Reading::Completion(c))) = read(&s, HOME) else {
            panic!("a completion");
        };
        assert_eq!(c.member_id.to_string(), MEMBER);
        assert_eq!(c.activity_id, "https://courses.example/party-history");
        assert_eq!(c.completed_at, at("2018-05-01T02:00:00Z"));
        assert_eq!(
            c.registration.map(|r| r.to_string()).as_deref(),
            Some(registration)
        );
        assert_eq!(c.success, Some(true));
        let s = statement(COMPLETED, json!({"completion": false}), json!({}));
        assert_eq!(read(&s, HOME), Err(Unreadable::NotCompleted));
    }

    #[test]
    fn only_accounts_on_the_ledger_home_page_named_by_a_member_id_are_members() {
        let mut s = statement(COMPLETED, json!({"completion": true}), json!({}));
        s.insert(
            "actor".to_owned(),
            json!({"account": {"homePage": "https://other.example/", "name": MEMBER}}),
        );
        assert!(matches!(read(&s, HOME), Err(Unreadable::NotAMember { .. })));
        s.insert("actor".to_owned(), json!({"mbox": "mailto:a@example.com"}));
        assert!(matches!(read(&s, HOME), Err(Unreadable::NotAMember { .. })));
        s.insert(
            "actor".to_owned(),
            json!({"account": {"homePage": "https://studyledger.invalid", "name": MEMBER}}),
        );
        assert!(read(&s, HOME).is_ok(), "a trailing slash does not matter");
    }

    #[test]
    fn a_cmi5_terminated_statement_is_the_session_ending_at_its_timestamp() {
        let s = statement(
            TERMINATED,
            json!({"duration": "PT1H30M0.5S"}),
            json!({"extensions": {CMI5_SESSION: "s-1"}}),
        );
        let Ok(Some(Reading::Session(session))) = read(&s, HOME) else {
            panic!("a session");
        };
        assert_eq!(session.ended_at, at("2018-05-01T02:00:00Z"));
        assert_eq!(session.started_at, at("2018-05-01T00:29:59.500Z"));
        assert_eq!(session.cmi5_session.as_deref(), Some("s-1"));
        // Outside cmi5, terminated is not a session; attended inside cmi5 is not one either.
        let outside = statement(TERMINATED, json!({"duration": "PT1H"}), json!({}));
        assert!(matches!(
            read(&outside, HOME),
            Err(Unreadable::OutsideCmi5 { .. })
        ));
        let attended = statement(
            crate::ledger::ATTENDED,
            json!({"duration": "PT1H"}),
            json!({"extensions": {CMI5_SESSION: "s-1"}}),
        );
        assert_eq!(read(&attended, HOME), Ok(None));
        let attended = statement(
            crate::ledger::ATTENDED,
            json!({"duration": "PT1H"}),
            json!({}),
        );
        assert!(matches!(
            read(&attended, HOME),
            Ok(Some(Reading::Session(_)))
        ));
        let vague = statement(
            crate::ledger::ATTENDED,
            json!({"duration": "P1M"}),
            json!({}),
        );
        assert!(matches!(
            read(&vague, HOME),
            Err(Unreadable::VagueDuration(_))
        ));
        let none = statement(crate::ledger::ATTENDED, json!({}), json!({}));
        assert_eq!(read(&none, HOME), Err(Unreadable::NoDuration));
    }

    #[test]
    fn other_verbs_mean_nothing_and_voiding_names_its_target() {
        let s = statement(
            "http://adlnet.gov/expapi/verbs/launched",
            json!({}),
            json!({}),
        );
        assert_eq!(read(&s, HOME), Ok(None));
        let mut voiding = statement(crate::VOIDED, json!({}), json!({}));
        let target = Uuid::from_u128(42);
        voiding.insert(
            "object".to_owned(),
            json!({"objectType": "StatementRef", "id": target.to_string()}),
        );
        assert_eq!(
            read(&voiding, HOME),
            Ok(Some(Reading::Voiding { voided: target }))
        );
    }

    #[test]
    fn fact_ids_are_stable_and_distinct() {
        let member = Uuid::from_u128(1);
        let r = Some(Uuid::from_u128(2));
        assert_eq!(completion_id(member, "c", r), completion_id(member, "c", r));
        assert_ne!(
            completion_id(member, "c", r),
            completion_id(member, "c", None)
        );
        assert_ne!(completion_id(member, "c", r), completion_id(member, "d", r));
        let statement = Uuid::from_u128(3);
        let other = Uuid::from_u128(4);
        assert_eq!(
            session_id(member, statement, Some("s"), 0),
            session_id(member, other, Some("s"), 0),
            "one cmi5 session, whichever statement reports it"
        );
        assert_ne!(
            session_id(member, statement, Some("s"), 0),
            session_id(member, statement, Some("s"), 1)
        );
        assert_ne!(
            session_id(member, statement, None, 0),
            session_id(member, other, None, 0)
        );
    }

    #[test]
    fn a_session_splits_at_completions_strictly_inside_it() {
        let (start, end) = (at("2018-05-01T01:00:00Z"), at("2018-05-01T02:00:00Z"));
        let mid = at("2018-05-01T01:40:00Z");
        assert_eq!(split(start, end, &[mid]), [(start, mid), (mid, end)]);
        assert_eq!(split(start, end, &[start, end]), [(start, end)]);
        assert_eq!(split(start, end, &[]), [(start, end)]);
    }
}

#[test]
fn durations_are_compared_to_the_hundredth_of_a_second() {
    let with_duration = |duration: &str| {
        with(minimal(), "/result", json!({"duration": duration}))
            .as_object()
            .cloned()
            .expect("an object")
    };
    let kept = with_duration("P1DT12H36M0.12S");
    for same in ["P1DT12H36M0.1237S", "P1DT12H36M0.12S", "P1DT12H36M0.120S"] {
        assert!(same_statement(&with_duration(same), &kept), "{same}");
    }
    for other in ["P1DT12H36M0.13S", "P1DT12H36M1.12S", "P1DT12H37M0.12S"] {
        assert!(!same_statement(&with_duration(other), &kept), "{other}");
    }
    assert!(same_statement(
        &with_duration("PT5S"),
        &with_duration("PT5.009S")
    ));
    assert!(same_statement(&with_duration("P3D"), &with_duration("P3D")));
    // Text that is no duration is compared as it is, whatever its letters.
    assert!(same_statement(
        &with_duration("PTéS"),
        &with_duration("PTéS")
    ));
    assert!(!same_statement(
        &with_duration("PT五S"),
        &with_duration("PT5S")
    ));
}
