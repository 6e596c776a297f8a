//! The pure part of studyledger's Learning Record Store (xAPI 2.0, IEEE 9274.1.1): whether a
//! statement is valid ([`validate`]), the properties the LRS sets when it stores one
//! ([`stored`]), whether a statement sent again under an id already stored is the same
//! statement ([`same_statement`]), what the filters find it by ([`index`]), how it is served
//! in each `format` ([`format`]), an activity's definition merged from the statements
//! about it ([`definition`]), whether attachments' data agrees with the statements that name
//! it ([`attachments`]) and whether a signed statement's signature holds ([`signature`]). No
//! I/O lives here.

pub mod attachments;
pub mod definition;
pub mod format;
pub mod index;
pub mod ledger;
pub mod signature;
pub mod validate;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use validate::{Invalid, VOIDED};

/// The xAPI version this LRS answers with.
pub const VERSION: &str = "2.0.0";

/// A statement as the LRS keeps and serves it: its id (the one sent, or a new one), `stored`
/// and `authority` set by the LRS, `timestamp` defaulting to `stored`, `version` as sent or
/// 1.0.0 (xAPI 2.0 part 2, §2.4.10: a statement without one is taken as 1.0.0), and each of
/// its context activities' lists as an array, even when one activity was sent alone.
pub fn stored(
    mut statement: Map<String, Value>,
    stored: DateTime<Utc>,
    authority: Value,
) -> Map<String, Value> {
    context_activities_as_arrays(&mut statement);
    let stored_text = stored.to_rfc3339_opts(SecondsFormat::Millis, true);
    if !statement.contains_key("id") {
        statement.insert("id".to_owned(), Value::String(Uuid::new_v4().to_string()));
    }
    statement
        .entry("timestamp")
        .or_insert_with(|| Value::String(stored_text.clone()));
    statement.insert("stored".to_owned(), Value::String(stored_text));
    statement.insert("authority".to_owned(), authority);
    statement
        .entry("version")
        .or_insert_with(|| Value::String("1.0.0".to_owned()));
    statement
}

/// Turns each context activity given alone (`"parent": {…}`, as xAPI 1.0 clients may send it)
/// into a list of one, in the statement's context and a sub-statement's: the LRS serves the
/// array form only (xAPI 2.0 part 2, §2.4.6.2, XAPI-00096).
fn context_activities_as_arrays(statement: &mut Map<String, Value>) {
    arrays_in_context(statement);
    let sub = statement
        .get_mut("object")
        .and_then(Value::as_object_mut)
        .filter(|object| object.get("objectType").and_then(Value::as_str) == Some("SubStatement"));
    if let Some(sub) = sub {
        arrays_in_context(sub);
    }
}

fn arrays_in_context(statement: &mut Map<String, Value>) {
    let lists = statement
        .get_mut("context")
        .and_then(|context| context.get_mut("contextActivities"))
        .and_then(Value::as_object_mut);
    for activities in lists.into_iter().flat_map(|lists| lists.values_mut()) {
        if activities.is_object() {
            *activities = Value::Array(vec![activities.take()]);
        }
    }
}

/// Writes the seconds of `result.duration` (of the statement and of a sub-statement) with
/// exactly two decimals, truncated: precision beyond 0.01 s is not compared.
fn durations_to_hundredths(statement: &mut Map<String, Value>) {
    let truncate = |statement: &mut Map<String, Value>| {
        let duration = statement
            .get_mut("result")
            .and_then(|result| result.get_mut("duration"));
        if let Some(Value::String(text)) = duration {
            *text = to_hundredths(text);
        }
    };
    truncate(statement);
    if let Some(Value::Object(sub)) = statement.get_mut("object") {
        truncate(sub);
    }
}

/// `P1DT12H36M0.1237S` → `P1DT12H36M0.12S`; `PT5S` → `PT5.00S`; text without seconds (or not
/// ASCII, so no duration) as is.
fn to_hundredths(duration: &str) -> String {
    let Some(body) = duration.strip_suffix('S').filter(|body| body.is_ascii()) else {
        return duration.to_owned();
    };
    // ASCII only, so every index is a character boundary.
    let start = body
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .map_or(0, |i| i + 1);
    let (head, seconds) = body.split_at(start);
    let (whole, fraction) = seconds.split_once(['.', ',']).unwrap_or((seconds, ""));
    let hundredths: String = fraction.chars().chain("00".chars()).take(2).collect();
    format!("{head}{whole}.{hundredths}S")
}

/// A statement's attachments, each with its `sha2` in lower case.
pub fn attached(statement: &Map<String, Value>) -> impl Iterator<Item = (String, &Value)> {
    statement
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|attachment| {
            let sha2 = attachment.get("sha2")?.as_str()?;
            Some((sha2.to_ascii_lowercase(), attachment))
        })
}

/// The statement's id, once it has one.
pub fn id_of(statement: &Map<String, Value>) -> Option<Uuid> {
    statement
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::try_parse(id).ok())
}

/// The statement a voiding statement voids, if it is one.
pub fn voids(statement: &Map<String, Value>) -> Option<Uuid> {
    let verb = statement.get("verb")?.get("id")?.as_str()?;
    if verb != VOIDED {
        return None;
    }
    let id = statement.get("object")?.get("id")?.as_str()?;
    Uuid::try_parse(id).ok()
}

/// Whether two statements under the same id are the same statement: equal once the
/// properties the LRS sets (`stored`, `authority`, `version`) are set aside, with timestamps
/// compared as instants (one moment can be written in many ways) and durations to the
/// hundredth of a second (xAPI 2.0 part 2, §4.2.7). A statement
/// without a timestamp matches the stored one whatever the LRS filled in. Context activities
/// are compared in their array form on both sides: the LRS keeps a lone activity as a list of
/// one, and statements kept before it did may still hold the lone form.
pub fn same_statement(sent: &Map<String, Value>, kept: &Map<String, Value>) -> bool {
    let immutable = |statement: &Map<String, Value>| -> Map<String, Value> {
        let mut rest = statement
            .iter()
            .filter(|(key, _)| {
                !["stored", "authority", "version", "timestamp"].contains(&key.as_str())
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        context_activities_as_arrays(&mut rest);
        durations_to_hundredths(&mut rest);
        rest
    };
    let instant = |statement: &Map<String, Value>| {
        statement
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    let timestamps_agree = match (instant(sent), instant(kept)) {
        (None, _) => true,
        (sent, kept) => sent == kept,
    };
    timestamps_agree && immutable(sent) == immutable(kept)
}

#[cfg(test)]
mod tests;
