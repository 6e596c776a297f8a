//! Whether a statement is one xAPI 2.0 allows (IEEE 9274.1.1, part 2, §2.4), with the
//! reason for the first thing that is not: the property's path and what is wrong with it.
//!
//! Checked: the properties each object may have and those it must, their JSON types, the
//! actor and agent rules (exactly one identifier for an agent, one at most for a group, an
//! anonymous group's members), identifiers (UUIDs, IRIs, `mailto:` IRIs, SHA-1 sums), language
//! maps, timestamps, durations, scores, the context rules that depend on the object, context
//! agents and groups, an authority group's shape, and voiding (a voided statement is referred
//! to, never itself a voiding). Strings must not hold a NUL character: the store could not
//! keep it, so it is refused here rather than later.

use serde_json::{Map, Value};

/// Why a statement is not valid: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct Invalid {
    pub path: String,
    pub problem: String,
}

type Checked = Result<(), Invalid>;

/// The verb whose statements void another.
pub const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

fn invalid(path: &str, problem: impl Into<String>) -> Invalid {
    Invalid {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A statement as sent to the LRS (its `stored`, `authority` and `version` are allowed and
/// replaced or checked by the caller).
pub fn statement(value: &Value) -> Checked {
    let object = as_object(value, "statement")?;
    only(
        object,
        "",
        &[
            "id",
            "actor",
            "verb",
            "object",
            "result",
            "context",
            "timestamp",
            "stored",
            "authority",
            "version",
            "attachments",
        ],
    )?;
    if let Some(id) = object.get("id") {
        uuid(id, "id")?;
    }
    statement_body(object, "", false)?;
    if let Some(stored) = object.get("stored") {
        timestamp(stored, "stored")?;
    }
    optional(object, "", "authority", authority)?;
    if let Some(version) = object.get("version") {
        let version = string(version, "version")?;
        if !supported_version(version) {
            return Err(invalid("version", "must be 1.0.x or 2.0.x"));
        }
    }
    Ok(())
}

/// Who vouches for a statement: an agent, or (OAuth) an anonymous group of exactly two agents,
/// the consumer and the user (xAPI 2.0 part 2, §2.4.9). The LRS replaces the authority it
/// stores, but a statement sent with a malformed one is refused first.
fn authority(value: &Value, path: &str) -> Checked {
    actor(value, path)?;
    if value.get("objectType").and_then(Value::as_str) != Some("Group") {
        return Ok(());
    }
    if let Some(key) = IDENTIFIERS.into_iter().find(|key| value.get(key).is_some()) {
        return Err(invalid(
            &at(path, key),
            "an authority group is anonymous: it has no identifier of its own",
        ));
    }
    let members = value
        .get("member")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if members != 2 {
        return Err(invalid(
            &at(path, "member"),
            "an authority group has exactly two members: the OAuth consumer and the user",
        ));
    }
    Ok(())
}

/// Whether the LRS speaks this version of xAPI (2.0.0, and 1.0.x clients).
pub fn supported_version(version: &str) -> bool {
    let mut parts = version.split('.');
    let (major, minor) = (parts.next(), parts.next());
    let patch_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    matches!(
        (major, minor),
        (Some("1"), Some("0")) | (Some("2"), Some("0"))
    ) && patch_ok
}

/// What a statement and a sub-statement share: actor, verb, object, result, context,
/// timestamp, attachments.
fn statement_body(object: &Map<String, Value>, path: &str, sub: bool) -> Checked {
    let actor_value = required(object, path, "actor")?;
    actor(actor_value, &at(path, "actor"))?;
    let verb_value = required(object, path, "verb")?;
    verb(verb_value, &at(path, "verb"))?;
    let object_value = required(object, path, "object")?;
    let kind = statement_object(object_value, &at(path, "object"), sub)?;
    optional(object, path, "result", result)?;
    if let Some(context_value) = object.get("context") {
        context(context_value, &at(path, "context"), kind)?;
    }
    optional(object, path, "timestamp", timestamp)?;
    if let Some(attachments) = object.get("attachments") {
        each(attachments, &at(path, "attachments"), attachment)?;
    }
    let verb_id = verb_value.get("id").and_then(Value::as_str);
    if verb_id == Some(VOIDED) && kind != ObjectKind::StatementRef {
        return Err(invalid(
            &at(path, "object"),
            "a voiding statement's object must be a StatementRef",
        ));
    }
    Ok(())
}

/// What a statement's object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Activity,
    Agent,
    StatementRef,
    SubStatement,
}

fn statement_object(value: &Value, path: &str, sub: bool) -> Result<ObjectKind, Invalid> {
    let object = as_object(value, path)?;
    let kind = match object.get("objectType") {
        None => "Activity",
        Some(kind) => string(kind, &at(path, "objectType"))?,
    };
    match kind {
        "Activity" => activity(object, path).map(|()| ObjectKind::Activity),
        "Agent" | "Group" => actor(value, path).map(|()| ObjectKind::Agent),
        "StatementRef" => statement_ref(object, path).map(|()| ObjectKind::StatementRef),
        "SubStatement" if sub => Err(invalid(path, "a SubStatement cannot hold another")),
        "SubStatement" => {
            only(
                object,
                path,
                &[
                    "objectType",
                    "actor",
                    "verb",
                    "object",
                    "result",
                    "context",
                    "timestamp",
                    "attachments",
                ],
            )?;
            statement_body(object, path, true).map(|()| ObjectKind::SubStatement)
        }
        other => Err(invalid(
            &at(path, "objectType"),
            format!("`{other}` is not an object type a statement's object may have"),
        )),
    }
}

fn statement_ref(object: &Map<String, Value>, path: &str) -> Checked {
    only(object, path, &["objectType", "id"])?;
    uuid(required(object, path, "id")?, &at(path, "id"))
}

fn activity(object: &Map<String, Value>, path: &str) -> Checked {
    only(object, path, &["objectType", "id", "definition"])?;
    iri(required(object, path, "id")?, &at(path, "id"))?;
    let Some(definition) = object.get("definition") else {
        return Ok(());
    };
    let path = at(path, "definition");
    let definition = as_object(definition, &path)?;
    only(
        definition,
        &path,
        &[
            "name",
            "description",
            "type",
            "moreInfo",
            "extensions",
            "interactionType",
            "correctResponsesPattern",
            "choices",
            "scale",
            "source",
            "target",
            "steps",
        ],
    )?;
    interaction_type_given(definition, &path)?;
    for key in ["name", "description"] {
        if let Some(map) = definition.get(key) {
            language_map(map, &at(&path, key))?;
        }
    }
    for key in ["type", "moreInfo"] {
        if let Some(value) = definition.get(key) {
            iri(value, &at(&path, key))?;
        }
    }
    if let Some(extensions_value) = definition.get("extensions") {
        extensions(extensions_value, &at(&path, "extensions"))?;
    }
    if let Some(kind) = definition.get("interactionType") {
        let kind = string(kind, &at(&path, "interactionType"))?;
        const KINDS: [&str; 10] = [
            "true-false",
            "choice",
            "fill-in",
            "long-fill-in",
            "matching",
            "performance",
            "sequencing",
            "likert",
            "numeric",
            "other",
        ];
        if !KINDS.contains(&kind) {
            return Err(invalid(
                &at(&path, "interactionType"),
                format!("`{kind}` is not an interaction type"),
            ));
        }
    }
    if let Some(patterns) = definition.get("correctResponsesPattern") {
        each(patterns, &at(&path, "correctResponsesPattern"), |v, p| {
            string(v, p).map(|_| ())
        })?;
    }
    for key in ["choices", "scale", "source", "target", "steps"] {
        if let Some(components) = definition.get(key) {
            each(components, &at(&path, key), interaction_component)?;
        }
    }
    Ok(())
}

/// The properties of an interaction activity's definition, which mean nothing without its
/// `interactionType` (xAPI 2.0 part 2, §2.4.4.1: required when any of them is given).
const INTERACTION: [&str; 6] = [
    "correctResponsesPattern",
    "choices",
    "scale",
    "source",
    "target",
    "steps",
];

fn interaction_type_given(definition: &Map<String, Value>, path: &str) -> Checked {
    let interaction = INTERACTION
        .into_iter()
        .find(|key| definition.contains_key(*key));
    match interaction {
        Some(key) if !definition.contains_key("interactionType") => Err(invalid(
            &at(path, "interactionType"),
            format!("is required when the definition has {key}"),
        )),
        _ => Ok(()),
    }
}

fn interaction_component(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["id", "description"])?;
    string(required(object, path, "id")?, &at(path, "id"))?;
    optional(object, path, "description", language_map)?;
    Ok(())
}

/// An Agent or a Group.
pub fn actor(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    let kind = match object.get("objectType") {
        None => "Agent",
        Some(kind) => string(kind, &at(path, "objectType"))?,
    };
    match kind {
        "Agent" => agent(object, path),
        "Group" => group(object, path),
        other => Err(invalid(
            &at(path, "objectType"),
            format!("`{other}` is neither Agent nor Group"),
        )),
    }
}

const IDENTIFIERS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

fn agent(object: &Map<String, Value>, path: &str) -> Checked {
    only(
        object,
        path,
        &[
            "objectType",
            "name",
            "mbox",
            "mbox_sha1sum",
            "openid",
            "account",
        ],
    )?;
    if let Some(name) = object.get("name") {
        string(name, &at(path, "name"))?;
    }
    match identifiers(object, path)? {
        1 => Ok(()),
        0 => Err(invalid(
            path,
            "an agent needs one identifier: mbox, mbox_sha1sum, openid or account",
        )),
        _ => Err(invalid(path, "an agent has exactly one identifier")),
    }
}

fn group(object: &Map<String, Value>, path: &str) -> Checked {
    only(
        object,
        path,
        &[
            "objectType",
            "name",
            "member",
            "mbox",
            "mbox_sha1sum",
            "openid",
            "account",
        ],
    )?;
    if let Some(name) = object.get("name") {
        string(name, &at(path, "name"))?;
    }
    let identified = identifiers(object, path)?;
    if identified > 1 {
        return Err(invalid(path, "a group has one identifier at most"));
    }
    match object.get("member") {
        Some(members) => each(members, &at(path, "member"), |member, p| {
            let kind = member.get("objectType").and_then(Value::as_str);
            if kind == Some("Group") {
                return Err(invalid(p, "a group's members are agents, not groups"));
            }
            actor(member, p)
        }),
        None if identified == 0 => Err(invalid(path, "an anonymous group must list its members")),
        None => Ok(()),
    }
}

/// How many identifiers an agent or group has, each checked.
fn identifiers(object: &Map<String, Value>, path: &str) -> Result<usize, Invalid> {
    let mut found = 0;
    for key in IDENTIFIERS {
        let Some(value) = object.get(key) else {
            continue;
        };
        found += 1;
        let path = at(path, key);
        match key {
            "mbox" => {
                let mbox = string(value, &path)?;
                let address = mbox.strip_prefix("mailto:").unwrap_or_default();
                if !address.contains('@') || address.contains(char::is_whitespace) {
                    return Err(invalid(&path, "must be a mailto: IRI of an address"));
                }
            }
            "mbox_sha1sum" => {
                let sum = string(value, &path)?;
                if sum.len() != 40 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(&path, "must be a SHA-1 sum in 40 hex digits"));
                }
            }
            "openid" => iri(value, &path)?,
            _ => account(value, &path)?,
        }
    }
    Ok(found)
}

fn account(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["homePage", "name"])?;
    iri(required(object, path, "homePage")?, &at(path, "homePage"))?;
    string(required(object, path, "name")?, &at(path, "name")).map(|_| ())
}

fn verb(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["id", "display"])?;
    iri(required(object, path, "id")?, &at(path, "id"))?;
    optional(object, path, "display", language_map)?;
    Ok(())
}

fn result(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(
        object,
        path,
        &[
            "score",
            "success",
            "completion",
            "response",
            "duration",
            "extensions",
        ],
    )?;
    for key in ["success", "completion"] {
        if let Some(flag) = object.get(key) {
            if !flag.is_boolean() {
                return Err(invalid(&at(path, key), "must be true or false"));
            }
        }
    }
    if let Some(response) = object.get("response") {
        string(response, &at(path, "response"))?;
    }
    if let Some(duration_value) = object.get("duration") {
        let text = string(duration_value, &at(path, "duration"))?;
        if duration(text).is_none() {
            return Err(invalid(
                &at(path, "duration"),
                "must be an ISO 8601 duration such as PT1H30M",
            ));
        }
    }
    optional(object, path, "score", score)?;
    optional(object, path, "extensions", extensions)?;
    Ok(())
}

fn score(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["scaled", "raw", "min", "max"])?;
    let number = |key: &str| -> Result<Option<f64>, Invalid> {
        object
            .get(key)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| invalid(&at(path, key), "must be a number"))
            })
            .transpose()
    };
    let (scaled, raw, min, max) = (
        number("scaled")?,
        number("raw")?,
        number("min")?,
        number("max")?,
    );
    if scaled.is_some_and(|s| !(-1.0..=1.0).contains(&s)) {
        return Err(invalid(&at(path, "scaled"), "must lie between -1 and 1"));
    }
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(invalid(path, "min exceeds max"));
        }
    }
    if raw.is_some_and(|r| min.is_some_and(|m| r < m) || max.is_some_and(|m| r > m)) {
        return Err(invalid(&at(path, "raw"), "must lie between min and max"));
    }
    Ok(())
}

fn context(value: &Value, path: &str, kind: ObjectKind) -> Checked {
    let object = as_object(value, path)?;
    only(
        object,
        path,
        &[
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "contextAgents",
            "contextGroups",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
        ],
    )?;
    optional(object, path, "registration", uuid)?;
    optional(object, path, "instructor", actor)?;
    optional(object, path, "team", group_only)?;
    optional(object, path, "contextAgents", |v, p| {
        each(v, p, context_agent)
    })?;
    optional(object, path, "contextGroups", |v, p| {
        each(v, p, context_group)
    })?;
    for key in ["revision", "platform"] {
        if let Some(text) = object.get(key) {
            string(text, &at(path, key))?;
            if kind != ObjectKind::Activity {
                return Err(invalid(
                    &at(path, key),
                    "only a statement about an activity may have it",
                ));
            }
        }
    }
    if let Some(language) = object.get("language") {
        let tag = string(language, &at(path, "language"))?;
        if !language_tag(tag) {
            return Err(invalid(&at(path, "language"), "must be a language tag"));
        }
    }
    if let Some(reference) = object.get("statement") {
        let reference_path = at(path, "statement");
        let reference = as_object(reference, &reference_path)?;
        if reference.get("objectType").and_then(Value::as_str) != Some("StatementRef") {
            return Err(invalid(&reference_path, "must be a StatementRef"));
        }
        statement_ref(reference, &reference_path)?;
    }
    if let Some(activities) = object.get("contextActivities") {
        context_activities(activities, &at(path, "contextActivities"))?;
    }
    optional(object, path, "extensions", extensions)?;
    Ok(())
}

/// An Agent, not a Group: its `objectType` may be left out, as an agent's may.
fn agent_only(value: &Value, path: &str) -> Checked {
    match value.get("objectType").map(Value::as_str) {
        None | Some(Some("Agent")) => actor(value, path),
        Some(_) => Err(invalid(path, "must be an Agent")),
    }
}

/// A Group, which says so: without `objectType` an object is read as an Agent.
fn group_only(value: &Value, path: &str) -> Checked {
    if value.get("objectType").and_then(Value::as_str) != Some("Group") {
        return Err(invalid(path, "must be a Group"));
    }
    actor(value, path)
}

/// An agent the statement's context names, and how it is relevant (xAPI 2.0 part 2,
/// §2.4.6.3).
fn context_agent(value: &Value, path: &str) -> Checked {
    relevant_actor(value, path, "contextAgent", "agent", agent_only)
}

/// A group the statement's context names, and how it is relevant (xAPI 2.0 part 2,
/// §2.4.6.4).
fn context_group(value: &Value, path: &str) -> Checked {
    relevant_actor(value, path, "contextGroup", "group", group_only)
}

/// What a contextAgent and a contextGroup share: an `objectType` that names which it is, the
/// actor under `key`, and optional `relevantTypes`; nothing else.
fn relevant_actor(
    value: &Value,
    path: &str,
    object_type: &str,
    key: &str,
    check: fn(&Value, &str) -> Checked,
) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["objectType", key, "relevantTypes"])?;
    let kind_path = at(path, "objectType");
    if string(required(object, path, "objectType")?, &kind_path)? != object_type {
        return Err(invalid(&kind_path, format!("must be {object_type}")));
    }
    check(required(object, path, key)?, &at(path, key))?;
    optional(object, path, "relevantTypes", relevant_types)
}

/// The types that say how an actor is relevant: IRIs, at least one when the list is given.
fn relevant_types(value: &Value, path: &str) -> Checked {
    each(value, path, iri)?;
    if value.as_array().is_some_and(Vec::is_empty) {
        return Err(invalid(path, "must list at least one type"));
    }
    Ok(())
}

fn context_activities(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(object, path, &["parent", "grouping", "category", "other"])?;
    for (key, activities) in object {
        let path = at(path, key);
        // One activity alone is allowed (1.0.x) as well as an array of them.
        let check = |activity_value: &Value, p: &str| {
            let activity_object = as_object(activity_value, p)?;
            if let Some(kind) = activity_object.get("objectType") {
                if kind.as_str() != Some("Activity") {
                    return Err(invalid(p, "must be an Activity"));
                }
            }
            activity(activity_object, p)
        };
        if activities.is_array() {
            each(activities, &path, check)?;
        } else {
            check(activities, &path)?;
        }
    }
    Ok(())
}

fn attachment(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    only(
        object,
        path,
        &[
            "usageType",
            "display",
            "description",
            "contentType",
            "length",
            "sha2",
            "fileUrl",
        ],
    )?;
    iri(required(object, path, "usageType")?, &at(path, "usageType"))?;
    language_map(required(object, path, "display")?, &at(path, "display"))?;
    optional(object, path, "description", language_map)?;
    string(
        required(object, path, "contentType")?,
        &at(path, "contentType"),
    )?;
    let length = required(object, path, "length")?;
    if length.as_u64().is_none() {
        return Err(invalid(
            &at(path, "length"),
            "must be a whole number of bytes",
        ));
    }
    string(required(object, path, "sha2")?, &at(path, "sha2"))?;
    optional(object, path, "fileUrl", iri)?;
    Ok(())
}

fn extensions(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    for (key, value) in object {
        if !is_iri(key) {
            return Err(invalid(path, format!("key `{key}` is not an IRI")));
        }
        no_nul(value, &at(path, key))?;
    }
    Ok(())
}

fn language_map(value: &Value, path: &str) -> Checked {
    let object = as_object(value, path)?;
    for (tag, text) in object {
        if !language_tag(tag) {
            return Err(invalid(path, format!("`{tag}` is not a language tag")));
        }
        string(text, &at(path, tag))?;
    }
    Ok(())
}

/// A language tag as RFC 5646 shapes it: subtags of letters and digits, joined by `-`, the
/// first of letters.
fn language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn timestamp(value: &Value, path: &str) -> Checked {
    let text = string(value, path)?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid(path, "must be an ISO 8601 timestamp with a time zone"))?;
    if negative_zero_offset(text) {
        return Err(invalid(
            path,
            "an offset of -00:00 is not allowed: write Z or +00:00",
        ));
    }
    Ok(())
}

/// Whether a timestamp ends in `-00:00`, which RFC 3339 reads as "offset unknown" but ISO 8601
/// (and so xAPI, XAPI-00123) does not allow. The sign may be a hyphen or a minus sign, as the
/// parser takes both.
fn negative_zero_offset(text: &str) -> bool {
    text.strip_suffix("00:00")
        .and_then(|rest| rest.chars().next_back())
        .is_some_and(|sign| sign == '-' || sign == '\u{2212}')
}

/// An ISO 8601 duration (`P1Y2M3DT4H5M6.7S`, `P2W`) in seconds, months and years counted as
/// 30 and 365 days; `None` when it is not one. Weeks stand alone: ISO 8601 does not combine
/// them with other units (`P4W1D` is not a duration, XAPI-00124).
pub fn duration(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return None,
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let date_units: &[(char, f64)] = if date.contains('W') {
        if time.is_some() {
            return None;
        }
        &[('W', 7.0 * 86_400.0)]
    } else {
        &[
            ('Y', 365.0 * 86_400.0),
            ('M', 30.0 * 86_400.0),
            ('D', 86_400.0),
        ]
    };
    let date_seconds = components(date, date_units)?;
    let time_seconds = match time {
        Some(time) => components(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?,
        None => 0.0,
    };
    Some(date_seconds + time_seconds)
}

/// The sum of `<number><unit>` parts, units in the order given, each once; only the last may
/// have a fraction.
fn components(text: &str, units: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    let mut allowed = units;
    let mut fraction_seen = false;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
        let (number, after) = rest.split_at(end);
        let unit = after.chars().next()?;
        let position = allowed.iter().position(|(u, _)| *u == unit)?;
        if number.is_empty() || fraction_seen {
            return None;
        }
        let number = number.replace(',', ".");
        fraction_seen = number.contains('.');
        let value: f64 = number.parse().ok()?;
        total += value * allowed[position].1;
        allowed = &allowed[position + 1..];
        rest = &after[unit.len_utf8()..];
    }
    Some(total)
}

fn uuid(value: &Value, path: &str) -> Checked {
    let text = string(value, path)?;
    uuid::Uuid::try_parse(text)
        .ok()
        .filter(|_| text.len() == 36)
        .map(|_| ())
        .ok_or_else(|| invalid(path, "must be a UUID"))
}

fn iri(value: &Value, path: &str) -> Checked {
    let text = string(value, path)?;
    if is_iri(text) {
        Ok(())
    } else {
        Err(invalid(path, "must be an absolute IRI"))
    }
}

/// An absolute IRI: a scheme, a colon, and something after it, with no spaces.
pub fn is_iri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn string<'v>(value: &'v Value, path: &str) -> Result<&'v str, Invalid> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(path, "must be a string"))?;
    if text.contains('\0') {
        return Err(invalid(path, "must not hold a NUL character"));
    }
    Ok(text)
}

/// Any JSON value without a NUL character in its strings or keys.
fn no_nul(value: &Value, path: &str) -> Checked {
    match value {
        Value::String(text) if text.contains('\0') => {
            Err(invalid(path, "must not hold a NUL character"))
        }
        Value::Array(items) => items.iter().try_for_each(|item| no_nul(item, path)),
        Value::Object(object) => object.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(invalid(path, "must not hold a NUL character"));
            }
            no_nul(item, &at(path, key))
        }),
        _ => Ok(()),
    }
}

fn as_object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| invalid(path, "must be a JSON object"))
}

fn required<'v>(
    object: &'v Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'v Value, Invalid> {
    object
        .get(key)
        .ok_or_else(|| invalid(&at(path, key), "is required"))
}

/// Checks a property when the object has it.
fn optional(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    check: impl Fn(&Value, &str) -> Checked,
) -> Checked {
    match object.get(key) {
        Some(value) => check(value, &at(path, key)),
        None => Ok(()),
    }
}

/// Refuses properties the object may not have.
fn only(object: &Map<String, Value>, path: &str, allowed: &[&str]) -> Checked {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(invalid(
            &at(path, key),
            "is not a property this object may have",
        )),
        None => Ok(()),
    }
}

/// Checks each item of an array.
fn each(value: &Value, path: &str, check: impl Fn(&Value, &str) -> Checked) -> Checked {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(path, "must be an array"))?;
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| check(item, &format!("{path}[{i}]")))
}
