//! What the statement filters of `GET /xapi/statements` match on, read from a statement once
//! when it is stored: the agents and activities it is about, and those it only relates to
//! (xAPI 2.0 part 3, §2.1.3: `agent`, `activity`, `registration`, `related_agents`,
//! `related_activities`).

use serde_json::{Map, Value};

/// An agent's or identified group's inverse functional identifier, as one string: the
/// property and its value (`mbox:mailto:…`, `account:<homePage> <name>`). `None` for an
/// anonymous group or what is not an agent.
pub fn identifier(agent: &Value) -> Option<String> {
    let object = agent.as_object()?;
    for key in ["mbox", "mbox_sha1sum", "openid"] {
        if let Some(value) = object.get(key).and_then(Value::as_str) {
            return Some(format!("{key}:{value}"));
        }
    }
    let account = object.get("account")?;
    let home = account.get("homePage")?.as_str()?;
    let name = account.get("name")?.as_str()?;
    Some(format!("account:{home} {name}"))
}

/// What a stored statement is filtered by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// The actor's and (when an agent or group) the object's identifiers.
    pub agents: Vec<String>,
    /// Those and every other agent the statement names: authority, instructor, team, group
    /// members, a sub-statement's actor and object.
    pub related_agents: Vec<String>,
    /// The object's id when it is an activity.
    pub activity: Option<String>,
    /// That and the context's activities, and a sub-statement's.
    pub related_activities: Vec<String>,
    pub registration: Option<String>,
}

/// The keys of a statement as stored (validated).
pub fn keys(statement: &Map<String, Value>) -> Keys {
    let mut keys = Keys::default();
    let main = [statement.get("actor"), agent_object(statement)];
    keys.agents = main.into_iter().flatten().filter_map(identifier).collect();
    related(statement, &mut keys);
    if let Some(authority) = statement.get("authority") {
        add_agent(authority, &mut keys.related_agents);
    }
    keys.activity = activity_object(statement).map(str::to_owned);
    keys.registration = statement
        .get("context")
        .and_then(|c| c.get("registration"))
        .and_then(Value::as_str)
        .and_then(|r| uuid::Uuid::try_parse(r).ok())
        .map(|r| r.to_string());
    keys.related_agents.sort();
    keys.related_agents.dedup();
    keys.related_activities.sort();
    keys.related_activities.dedup();
    keys
}

/// The agents and activities of a statement or sub-statement, added to the related ones.
fn related(statement: &Map<String, Value>, keys: &mut Keys) {
    for agent in [statement.get("actor"), agent_object(statement)]
        .into_iter()
        .flatten()
    {
        add_agent(agent, &mut keys.related_agents);
    }
    if let Some(id) = activity_object(statement) {
        keys.related_activities.push(id.to_owned());
    }
    if let Some(context) = statement.get("context") {
        for key in ["instructor", "team"] {
            if let Some(agent) = context.get(key) {
                add_agent(agent, &mut keys.related_agents);
            }
        }
        if let Some(lists) = context.get("contextActivities").and_then(Value::as_object) {
            for list in lists.values() {
                let items = list
                    .as_array()
                    .map_or_else(|| vec![list], |a| a.iter().collect());
                keys.related_activities.extend(
                    items
                        .into_iter()
                        .filter_map(|a| a.get("id").and_then(Value::as_str))
                        .map(str::to_owned),
                );
            }
        }
    }
    let sub = statement.get("object").and_then(Value::as_object);
    if let Some(sub) = sub.filter(|o| o.get("objectType") == Some(&Value::from("SubStatement"))) {
        related(sub, keys);
    }
}

/// An agent or group and, for a group, its members.
fn add_agent(agent: &Value, into: &mut Vec<String>) {
    into.extend(identifier(agent));
    if let Some(members) = agent.get("member").and_then(Value::as_array) {
        into.extend(members.iter().filter_map(identifier));
    }
}

fn agent_object(statement: &Map<String, Value>) -> Option<&Value> {
    let object = statement.get("object")?;
    let kind = object.get("objectType").and_then(Value::as_str);
    matches!(kind, Some("Agent" | "Group")).then_some(object)
}

fn activity_object(statement: &Map<String, Value>) -> Option<&str> {
    let object = statement.get("object")?;
    let kind = object.get("objectType").and_then(Value::as_str);
    if kind.is_some_and(|k| k != "Activity") {
        return None;
    }
    object.get("id").and_then(Value::as_str)
}

/// The filter keys a statement passes on to the statements that target it: all but who
/// stored it (`token:`, what an `ingest` token reads back) and what it targets itself
/// (`targets:`, which the store follows instead).
const PASSED_ON: [&str; 6] = [
    "verb:",
    "agent:",
    "related_agent:",
    "activity:",
    "related_activity:",
    "registration:",
];

/// Whether a statement that targets another (by a StatementRef) is found by this key of its
/// target too: xAPI 2.0 part 3, §2.1.4 has such a statement meet a filter its target meets
/// (`since`, `until` and `limit` aside), so that a voiding statement or a comment on a
/// statement comes with the statements the filter finds.
pub fn passed_on(key: &str) -> bool {
    PASSED_ON.iter().any(|prefix| key.starts_with(prefix))
}

/// The statement a statement targets: its object's id when the object is a StatementRef.
pub fn target(statement: &Map<String, Value>) -> Option<uuid::Uuid> {
    let object = statement.get("object")?;
    if object.get("objectType")?.as_str()? != "StatementRef" {
        return None;
    }
    uuid::Uuid::try_parse(object.get("id")?.as_str()?).ok()
}

/// Every key a stored statement is found by, as `xapi_statement_keys` holds them: `verb:`,
/// `agent:`, `related_agent:`, `activity:`, `related_activity:` and `registration:` each
/// followed by the value, and `targets:<id>` for a statement that targets another (the
/// store finds by it the statements to pass a target's keys on to).
pub fn stored_keys(statement: &Map<String, Value>) -> Vec<String> {
    let keys = keys(statement);
    let verb = statement
        .get("verb")
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str);
    let mut all: Vec<String> = verb.map(|v| format!("verb:{v}")).into_iter().collect();
    all.extend(keys.agents.iter().map(|a| format!("agent:{a}")));
    all.extend(
        keys.related_agents
            .iter()
            .map(|a| format!("related_agent:{a}")),
    );
    all.extend(keys.activity.iter().map(|a| format!("activity:{a}")));
    all.extend(
        keys.related_activities
            .iter()
            .map(|a| format!("related_activity:{a}")),
    );
    all.extend(
        keys.registration
            .iter()
            .map(|r| format!("registration:{r}")),
    );
    all.extend(target(statement).map(|t| format!("targets:{t}")));
    all.sort();
    all.dedup();
    all
}
