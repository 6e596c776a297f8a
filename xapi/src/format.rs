//! The `format` of `GET /xapi/statements` (xAPI 2.0 part 3, §2.1.3): statements as stored
//! (`exact`), cut down to what identifies their agents, groups, activities and verbs (`ids`:
//! for clients that hold the definitions already and want small pages), or with each
//! language map cut down to the one language the reader asked for (`canonical`). The
//! statements are kept exact; these only shape what is served.

use serde_json::{Map, Value};

/// How statements are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Exact,
    Ids,
    /// With the reader's language ranges, most wanted first (from `Accept-Language`).
    Canonical(Vec<String>),
}

/// The properties that identify an agent or an identified group (xAPI 2.0 part 2, §2.4.2.3:
/// its inverse functional identifier), in the order looked for.
const IDENTIFIERS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];
/// The interaction components of an activity definition, each with a `description`.
const COMPONENTS: [&str; 5] = ["choices", "scale", "source", "target", "steps"];

impl Format {
    /// The format a request names (`exact` when none), with its `Accept-Language` header;
    /// `None` when the name is not a format.
    pub fn parse(name: Option<&str>, accept_language: Option<&str>) -> Option<Format> {
        match name.unwrap_or("exact") {
            "exact" => Some(Format::Exact),
            "ids" => Some(Format::Ids),
            "canonical" => Some(Format::Canonical(language_ranges(
                accept_language.unwrap_or_default(),
            ))),
            _ => None,
        }
    }

    /// A statement as this format serves it.
    pub fn apply(&self, mut statement: Map<String, Value>) -> Map<String, Value> {
        match self {
            Format::Exact => {}
            Format::Ids => {
                ids_of_statement(&mut statement);
                if let Some(authority) = statement.get_mut("authority") {
                    ids_of_actor(authority);
                }
            }
            Format::Canonical(ranges) => canonical_statement(&mut statement, ranges),
        }
        statement
    }
}

/// The language ranges of an `Accept-Language` header, most wanted first (by `q`, then in
/// the order written); those with `q=0` are not wanted at all and are left out.
pub fn language_ranges(header: &str) -> Vec<String> {
    let mut ranges: Vec<(f32, String)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!range.is_empty() && quality > 0.0).then(|| (quality, range.to_owned()))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().map(|(_, range)| range).collect()
}

/// The language of a map that best matches the ranges: for each range in turn, the tag
/// itself, then a more specific tag (`en` finds `en-US`), then the range cut a subtag at a
/// time (`zh-Hans-CN` finds `zh-Hans`, then `zh`); `*` takes any. The first language of the
/// map when no range matches.
pub fn best_language<'m>(map: &'m Map<String, Value>, ranges: &[String]) -> Option<&'m str> {
    let tags: Vec<&'m str> = map.keys().map(String::as_str).collect();
    for range in ranges {
        if range == "*" {
            return tags.first().copied();
        }
        let mut candidate = range.as_str();
        loop {
            let found = tags.iter().find(|t| t.eq_ignore_ascii_case(candidate));
            let found = found.or_else(|| tags.iter().find(|t| more_specific(t, candidate)));
            if let Some(tag) = found {
                return Some(*tag);
            }
            match candidate.rsplit_once('-') {
                Some((shorter, _)) => candidate = shorter,
                None => break,
            }
        }
    }
    tags.first().copied()
}

/// Whether `tag` is `range` with more subtags (`en-US` of `en`), whatever the case.
fn more_specific(tag: &str, range: &str) -> bool {
    tag.len() > range.len()
        && tag.is_char_boundary(range.len())
        && tag[..range.len()].eq_ignore_ascii_case(range)
        && tag[range.len()..].starts_with('-')
}

/// A statement's or sub-statement's actor, verb, object and context in `ids` form.
fn ids_of_statement(statement: &mut Map<String, Value>) {
    if let Some(actor) = statement.get_mut("actor") {
        ids_of_actor(actor);
    }
    if let Some(verb) = statement.get_mut("verb") {
        keep_only(verb, &["id"]);
    }
    if let Some(object) = statement.get_mut("object") {
        ids_of_object(object);
    }
    if let Some(context) = statement.get_mut("context").and_then(Value::as_object_mut) {
        ids_of_context(context);
    }
}

/// An agent or identified group keeps its `objectType` and identifier; an anonymous group
/// its `objectType` and its members, each as an agent in `ids` form.
fn ids_of_actor(actor: &mut Value) {
    let Some(object) = actor.as_object_mut() else {
        return;
    };
    if let Some(identifier) = IDENTIFIERS.iter().find(|k| object.contains_key(**k)) {
        object.retain(|key, _| key == "objectType" || key == identifier);
        return;
    }
    if let Some(members) = object.get_mut("member").and_then(Value::as_array_mut) {
        members.iter_mut().for_each(ids_of_actor);
        object.retain(|key, _| key == "objectType" || key == "member");
    }
}

fn ids_of_object(object: &mut Value) {
    let kind = object.get("objectType").and_then(Value::as_str);
    match kind {
        Some("Agent" | "Group") => ids_of_actor(object),
        Some("SubStatement") => {
            if let Some(sub) = object.as_object_mut() {
                ids_of_statement(sub);
            }
        }
        Some("StatementRef") => {}
        _ => keep_only(object, &["id"]),
    }
}

fn ids_of_context(context: &mut Map<String, Value>) {
    for key in ["instructor", "team"] {
        if let Some(agent) = context.get_mut(key) {
            ids_of_actor(agent);
        }
    }
    for activity in context_activities(context) {
        keep_only(activity, &["id"]);
    }
    for (list, key) in [("contextAgents", "agent"), ("contextGroups", "group")] {
        let entries = context.get_mut(list).and_then(Value::as_array_mut);
        for entry in entries.into_iter().flatten() {
            if let Some(actor) = entry.get_mut(key) {
                ids_of_actor(actor);
            }
        }
    }
}

/// Every activity of a context's `contextActivities` lists (or lone activities).
fn context_activities(context: &mut Map<String, Value>) -> Vec<&mut Value> {
    let lists = context
        .get_mut("contextActivities")
        .and_then(Value::as_object_mut);
    let mut activities = Vec::new();
    for list in lists.into_iter().flat_map(|lists| lists.values_mut()) {
        match list {
            Value::Array(items) => activities.extend(items.iter_mut()),
            lone => activities.push(lone),
        }
    }
    activities
}

fn keep_only(value: &mut Value, keys: &[&str]) {
    if let Some(object) = value.as_object_mut() {
        object.retain(|key, _| keys.contains(&key.as_str()));
    }
}

/// A statement's or sub-statement's language maps, each cut to its best language: the
/// verb's display, its activities' names, descriptions and interaction components'
/// descriptions, its attachments' display and description.
fn canonical_statement(statement: &mut Map<String, Value>, ranges: &[String]) {
    if let Some(display) = statement.get_mut("verb").and_then(|v| v.get_mut("display")) {
        one_language(display, ranges);
    }
    if let Some(object) = statement.get_mut("object") {
        match object.get("objectType").and_then(Value::as_str) {
            Some("SubStatement") => {
                if let Some(sub) = object.as_object_mut() {
                    canonical_statement(sub, ranges);
                }
            }
            None | Some("Activity") => canonical_activity(object, ranges),
            Some(_) => {}
        }
    }
    if let Some(context) = statement.get_mut("context").and_then(Value::as_object_mut) {
        for activity in context_activities(context) {
            canonical_activity(activity, ranges);
        }
    }
    let attachments = statement
        .get_mut("attachments")
        .and_then(Value::as_array_mut);
    for attachment in attachments.into_iter().flatten() {
        for key in ["display", "description"] {
            if let Some(map) = attachment.get_mut(key) {
                one_language(map, ranges);
            }
        }
    }
}

fn canonical_activity(activity: &mut Value, ranges: &[String]) {
    let Some(definition) = activity.get_mut("definition") else {
        return;
    };
    for key in ["name", "description"] {
        if let Some(map) = definition.get_mut(key) {
            one_language(map, ranges);
        }
    }
    for list in COMPONENTS {
        let components = definition.get_mut(list).and_then(Value::as_array_mut);
        for component in components.into_iter().flatten() {
            if let Some(map) = component.get_mut("description") {
                one_language(map, ranges);
            }
        }
    }
}

/// A language map cut to its best language.
fn one_language(map: &mut Value, ranges: &[String]) {
    let Some(languages) = map.as_object_mut() else {
        return;
    };
    let Some(best) = best_language(languages, ranges).map(str::to_owned) else {
        return;
    };
    languages.retain(|tag, _| *tag == best);
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::{best_language, language_ranges, Format};

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn statement() -> Map<String, Value> {
        map(json!({
            "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
            "actor": {"objectType": "Agent", "name": "林晓", "mbox": "mailto:lin@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed",
                     "display": {"en-US": "completed", "zh-CN": "完成"}},
            "object": {"objectType": "Activity", "id": "https://courses.example/c-1",
                       "definition": {"name": {"en-US": "Charter", "zh-CN": "党章"},
                                      "description": {"en-GB": "The charter", "zh": "说明"},
                                      "interactionType": "choice",
                                      "choices": [{"id": "a",
                                                   "description": {"en-US": "A", "zh-CN": "甲"}}]}},
            "context": {
                "instructor": {"name": "Teacher", "account": {"homePage": "https://x.example/", "name": "t"}},
                "team": {"objectType": "Group", "name": "Class",
                         "member": [{"name": "A", "mbox": "mailto:a@example.org"}]},
                "contextActivities": {"parent": [{"id": "https://courses.example/p",
                                                  "definition": {"name": {"en-US": "P", "zh-CN": "包"}}}]},
                "contextAgents": [{"objectType": "contextAgent",
                                   "agent": {"name": "B", "openid": "https://b.example/"}}],
            },
            "authority": {"objectType": "Agent", "name": "LRS",
                          "account": {"homePage": "https://studyledger.invalid/", "name": "tok"}},
            "attachments": [{"usageType": "https://x.example/u", "display": {"en-US": "Cert", "zh-CN": "证书"},
                             "contentType": "application/pdf", "length": 1, "sha2": "ab"}],
            "stored": "2026-03-01T01:00:00.000Z",
        }))
    }

    #[test]
    fn exact_is_as_stored_and_an_unknown_format_is_none() {
        assert_eq!(Format::parse(None, None), Some(Format::Exact));
        assert_eq!(Format::Exact.apply(statement()), statement());
        assert_eq!(Format::parse(Some("full"), None), None);
    }

    #[test]
    fn ids_keep_only_what_identifies_agents_groups_activities_and_verbs() {
        let ids = Value::Object(Format::Ids.apply(statement()));
        assert_eq!(
            ids["actor"],
            json!({"objectType": "Agent", "mbox": "mailto:lin@example.org"})
        );
        assert_eq!(
            ids["verb"],
            json!({"id": "http://adlnet.gov/expapi/verbs/completed"})
        );
        assert_eq!(ids["object"], json!({"id": "https://courses.example/c-1"}));
        assert_eq!(
            ids["context"]["instructor"],
            json!({"account": {"homePage": "https://x.example/", "name": "t"}})
        );
        assert_eq!(
            ids["context"]["team"],
            json!({"objectType": "Group", "member": [{"mbox": "mailto:a@example.org"}]}),
            "an anonymous group is its members"
        );
        assert_eq!(
            ids["context"]["contextActivities"]["parent"],
            json!([{"id": "https://courses.example/p"}])
        );
        assert_eq!(
            ids["context"]["contextAgents"][0]["agent"],
            json!({"openid": "https://b.example/"})
        );
        assert_eq!(
            ids["authority"],
            json!({"objectType": "Agent",
                   "account": {"homePage": "https://studyledger.invalid/", "name": "tok"}})
        );
        assert_eq!(ids["stored"], "2026-03-01T01:00:00.000Z", "the rest stays");
        assert_eq!(ids["attachments"], statement()["attachments"]);
    }

    #[test]
    fn ids_reach_into_sub_statements_and_keep_statement_refs() {
        let mut outer = statement();
        let mut sub = statement();
        for key in ["id", "authority", "stored"] {
            sub.remove(key);
        }
        sub.insert("objectType".to_owned(), json!("SubStatement"));
        sub.insert(
            "object".to_owned(),
            json!({"objectType": "Group", "name": "G",
            "mbox": "mailto:g@example.org", "member": [{"mbox": "mailto:a@example.org"}]}),
        );
        outer.insert("object".to_owned(), Value::Object(sub));
        let ids = Value::Object(Format::Ids.apply(outer));
        assert_eq!(ids["object"]["objectType"], "SubStatement");
        assert_eq!(
            ids["object"]["actor"],
            json!({"objectType": "Agent", "mbox": "mailto:lin@example.org"})
        );
        assert_eq!(
            ids["object"]["verb"],
            json!({"id": "http://adlnet.gov/expapi/verbs/completed"})
        );
        assert_eq!(
            ids["object"]["object"],
            json!({"objectType": "Group", "mbox": "mailto:g@example.org"}),
            "an identified group is its identifier"
        );
        let reference =
            json!({"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"});
        let mut pointing = statement();
        pointing.insert("object".to_owned(), reference.clone());
        assert_eq!(Format::Ids.apply(pointing)["object"], reference);
    }

    #[test]
    fn canonical_keeps_the_language_the_reader_wants_in_every_language_map() {
        let zh = Format::parse(Some("canonical"), Some("zh-CN, en;q=0.5"))
            .map(|f| Value::Object(f.apply(statement())));
        let zh = zh.unwrap_or_default();
        assert_eq!(zh["verb"]["display"], json!({"zh-CN": "完成"}));
        let definition = &zh["object"]["definition"];
        assert_eq!(definition["name"], json!({"zh-CN": "党章"}));
        assert_eq!(
            definition["description"],
            json!({"zh": "说明"}),
            "zh-CN falls back to zh"
        );
        assert_eq!(
            definition["choices"][0]["description"],
            json!({"zh-CN": "甲"})
        );
        assert_eq!(
            zh["context"]["contextActivities"]["parent"][0]["definition"]["name"],
            json!({"zh-CN": "包"})
        );
        assert_eq!(zh["attachments"][0]["display"], json!({"zh-CN": "证书"}));
        assert_eq!(zh["actor"], statement()["actor"], "agents stay as stored");

        let en = Format::parse(Some("canonical"), Some("fr;q=0.9, en"))
            .map(|f| Value::Object(f.apply(statement())))
            .unwrap_or_default();
        assert_eq!(
            en["verb"]["display"],
            json!({"en-US": "completed"}),
            "en finds en-US"
        );
        assert_eq!(
            en["object"]["definition"]["description"],
            json!({"en-GB": "The charter"})
        );
        let none = Format::parse(Some("canonical"), None)
            .map(|f| Value::Object(f.apply(statement())))
            .unwrap_or_default();
        assert_eq!(
            none["verb"]["display"].as_object().map(Map::len),
            Some(1),
            "one language"
        );
    }

    #[test]
    fn accept_language_is_read_by_quality_and_matched_like_a_lookup() {
        assert_eq!(
            language_ranges("en;q=0.3, zh-Hans-CN, de;q=0, fr;q=0.8"),
            vec!["zh-Hans-CN", "fr", "en"]
        );
        let languages = map(json!({"en-US": "", "fr": "", "zh-Hans": ""}));
        let best = |ranges: &[&str]| {
            let ranges: Vec<String> = ranges.iter().map(|r| (*r).to_owned()).collect();
            best_language(&languages, &ranges).map(str::to_owned)
        };
        assert_eq!(best(&["zh-Hans-CN", "fr"]).as_deref(), Some("zh-Hans"));
        assert_eq!(best(&["EN"]).as_deref(), Some("en-US"));
        assert_eq!(best(&["de", "fr-CA"]).as_deref(), Some("fr"));
        assert_eq!(
            best(&["de"]).as_deref(),
            Some("en-US"),
            "none matches: the first"
        );
        assert_eq!(best(&["*"]).as_deref(), Some("en-US"));
    }
}
