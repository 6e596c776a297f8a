//! An activity's definition as the Learning Record Store knows it from every statement that
//! defined it (xAPI 2.0 part 3, §2.5, XAPI-00254): `GET /xapi/activities` answers this
//! rather than the last definition alone, so that a statement naming the activity in one
//! language does not hide the names the others gave.

use serde_json::{Map, Value};

/// The definition's language maps, merged language by language; every other property is
/// taken whole from the newest definition that gave it.
const LANGUAGE_MAPS: [&str; 2] = ["name", "description"];

/// The definitions merged, given oldest first: a language map gains the languages of each
/// later one (a later text winning for its language); any other property is the newest
/// one given. `None` when there is no definition.
pub fn merged<'a>(
    oldest_first: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Option<Map<String, Value>> {
    let mut merged: Option<Map<String, Value>> = None;
    for definition in oldest_first {
        let into = merged.get_or_insert_with(Map::new);
        for (property, value) in definition {
            let language_map = LANGUAGE_MAPS.contains(&property.as_str());
            match (language_map, value, into.get_mut(property)) {
                (true, Value::Object(languages), Some(Value::Object(kept))) => {
                    kept.extend(languages.iter().map(|(l, t)| (l.clone(), t.clone())));
                }
                _ => {
                    into.insert(property.clone(), value.clone());
                }
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::merged;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn language_maps_merge_per_language_and_the_rest_is_the_newest() {
        let old = map(json!({
            "name": {"zh-CN": "党章（旧）", "en-US": "Party Constitution"},
            "description": {"zh-CN": "旧的说明"},
            "type": "http://adlnet.gov/expapi/activities/course",
            "moreInfo": "https://courses.example/old",
        }));
        let new = map(json!({
            "name": {"zh-CN": "党章学习"},
            "type": "http://adlnet.gov/expapi/activities/module",
        }));
        let merged = merged([&old, &new]).map(Value::Object);
        assert_eq!(
            merged,
            Some(json!({
                "name": {"zh-CN": "党章学习", "en-US": "Party Constitution"},
                "description": {"zh-CN": "旧的说明"},
                "type": "http://adlnet.gov/expapi/activities/module",
                "moreInfo": "https://courses.example/old",
            }))
        );
    }

    #[test]
    fn extensions_and_components_are_taken_whole_and_nothing_gives_none() {
        let old = map(json!({"extensions": {"https://x.example/a": 1},
                             "choices": [{"id": "a", "description": {"en": "A"}}]}));
        let new = map(json!({"extensions": {"https://x.example/b": 2}}));
        let merged = merged([&old, &new]).map(Value::Object);
        assert_eq!(
            merged,
            Some(json!({"extensions": {"https://x.example/b": 2},
                        "choices": [{"id": "a", "description": {"en": "A"}}]}))
        );
        assert_eq!(super::merged([]), None);
    }
}
