//! What a stored statement means for the ledger: a course completion, a study session, the
//! voiding of an earlier statement, or nothing — read from the statement alone, before anyone
//! asks whether its member and course are registered. The ids of the facts a statement becomes
//! are derived here too, so that mapping a statement again (after a registration, or a
//! resend) always names the same facts and records none twice.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::validate::{duration, VOIDED};
use crate::voids;

pub const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const TERMINATED: &str = "http://adlnet.gov/expapi/verbs/terminated";
pub const ABANDONED: &str = "https://w3id.org/xapi/adl/verbs/abandoned";
pub const ATTENDED: &str = "http://adlnet.gov/expapi/verbs/attended";
pub const EXPERIENCED: &str = "http://adlnet.gov/expapi/verbs/experienced";
/// The context extension that makes a statement part of a cmi5 session.
pub const CMI5_SESSION: &str = "https://w3id.org/xapi/cmi5/context/extensions/sessionid";

/// The namespace of the fact ids derived from statements (UUID version 5).
const FACTS: Uuid = Uuid::from_u128(0x5d1c_7e2a_3b4f_4c6d_8e9a_0b1c_2d3e_4f50);

/// Whether a verb can mean anything to the ledger; statements with any other verb are stored
/// and left at that.
pub fn concerns_ledger(verb: &str) -> bool {
    [
        COMPLETED,
        TERMINATED,
        ABANDONED,
        ATTENDED,
        EXPERIENCED,
        VOIDED,
    ]
    .contains(&verb)
}

/// What a statement says about a member's study.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Completion(CompletionReading),
    Session(SessionReading),
    /// The statement voids `voided`: the facts it became are withdrawn (rule 11).
    Voiding {
        voided: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompletionReading {
    pub member_id: Uuid,
    pub activity_id: String,
    pub registration: Option<Uuid>,
    pub completed_at: DateTime<Utc>,
    /// `result.success`, when reported.
    pub success: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionReading {
    pub member_id: Uuid,
    pub activity_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// The cmi5 session id, for statements of a cmi5 session.
    pub cmi5_session: Option<String>,
}

/// Why a statement about a member's study cannot be read as a fact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The actor is not an account on the ledger's home page named by a member id.
    #[error("the actor is not a member: an account with homePage {homepage} and a member id as name is needed")]
    NotAMember { homepage: String },
    #[error("a completion needs result.completion = true")]
    NotCompleted,
    #[error("a session needs result.duration")]
    NoDuration,
    #[error("result.duration {0} has no fixed length (years or months)")]
    VagueDuration(String),
    #[error("{verb} counts as a session only inside a cmi5 session")]
    OutsideCmi5 { verb: String },
    #[error("the object is not an activity")]
    NotAnActivity,
}

/// Reads a stored statement (with its `timestamp` set) whose verb concerns the ledger;
/// `Ok(None)` for any other.
pub fn read(statement: &Map<String, Value>, homepage: &str) -> Result<Option<Reading>, Unreadable> {
    let verb = text(statement, &["verb", "id"]).unwrap_or_default();
    if let Some(voided) = voids(statement) {
        return Ok(Some(Reading::Voiding { voided }));
    }
    if !concerns_ledger(verb) || verb == VOIDED {
        return Ok(None);
    }
    let member_id = member_of(statement, homepage)?;
    let activity_id = activity_of(statement)?;
    let timestamp = text(statement, &["timestamp"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        // To the microsecond, what PostgreSQL keeps.
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .unwrap_or_default();
    let cmi5_session = text(statement, &["context", "extensions", CMI5_SESSION]).map(str::to_owned);
    let result = statement.get("result");
    if verb == COMPLETED {
        if result.and_then(|r| r.get("completion")) != Some(&Value::Bool(true)) {
            return Err(Unreadable::NotCompleted);
        }
        let registration =
            text(statement, &["context", "registration"]).and_then(|r| Uuid::try_parse(r).ok());
        return Ok(Some(Reading::Completion(CompletionReading {
            member_id,
            activity_id,
            registration,
            completed_at: timestamp,
            success: result
                .and_then(|r| r.get("success"))
                .and_then(Value::as_bool),
        })));
    }
    let cmi5_verb = verb == TERMINATED || verb == ABANDONED;
    match (cmi5_verb, &cmi5_session) {
        (true, None) => {
            return Err(Unreadable::OutsideCmi5 {
                verb: verb.to_owned(),
            })
        }
        // Inside a cmi5 session, `terminated` or `abandoned` reports the session's time;
        // an `attended` or `experienced` there would count it twice.
        (false, Some(_)) => return Ok(None),
        _ => {}
    }
    let length = session_length(result)?;
    Ok(Some(Reading::Session(SessionReading {
        member_id,
        activity_id,
        started_at: timestamp - length,
        ended_at: timestamp,
        cmi5_session,
    })))
}

/// The member a statement is about: `actor.account` on the ledger's home page, named by a
/// member id.
fn member_of(statement: &Map<String, Value>, homepage: &str) -> Result<Uuid, Unreadable> {
    let account = statement.get("actor").and_then(|a| a.get("account"));
    let on_homepage = account
        .and_then(|a| a.get("homePage"))
        .and_then(Value::as_str)
        .is_some_and(|h| h.trim_end_matches('/') == homepage.trim_end_matches('/'));
    account
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .and_then(|name| Uuid::try_parse(name).ok())
        .filter(|_| on_homepage)
        .ok_or_else(|| Unreadable::NotAMember {
            homepage: homepage.to_owned(),
        })
}

fn activity_of(statement: &Map<String, Value>) -> Result<String, Unreadable> {
    let object = statement.get("object").ok_or(Unreadable::NotAnActivity)?;
    let kind = object.get("objectType").and_then(Value::as_str);
    if !matches!(kind, None | Some("Activity")) {
        return Err(Unreadable::NotAnActivity);
    }
    object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(Unreadable::NotAnActivity)
}

/// `result.duration` as an exact length, to the microsecond (what PostgreSQL keeps).
fn session_length(result: Option<&Value>) -> Result<Duration, Unreadable> {
    let text = result
        .and_then(|r| r.get("duration"))
        .and_then(Value::as_str)
        .ok_or(Unreadable::NoDuration)?;
    let date_part = text.split('T').next().unwrap_or_default();
    if date_part.contains('Y') || date_part.contains('M') {
        return Err(Unreadable::VagueDuration(text.to_owned()));
    }
    let seconds = duration(text).ok_or(Unreadable::NoDuration)?;
    // Valid durations are finite and non-negative; a session lasts at most hours, so the
    // microseconds fit.
    let micros = (seconds * 1_000_000.0).round();
    Ok(Duration::microseconds(micros.min(i64::MAX as f64) as i64))
}

fn text<'a>(statement: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (first, rest) = path.split_first()?;
    let mut value = statement.get(*first)?;
    for key in rest {
        value = value.get(*key)?;
    }
    value.as_str()
}

/// The completion a statement becomes: at most one per (member, course, registration).
pub fn completion_id(member_id: Uuid, course_id: &str, registration: Option<Uuid>) -> Uuid {
    let registration = registration.map_or_else(|| "-".to_owned(), |r| r.to_string());
    Uuid::new_v5(
        &FACTS,
        format!("completion/{member_id}/{course_id}/{registration}").as_bytes(),
    )
}

/// The `part`th session a statement becomes: keyed by its cmi5 session, else by the statement.
pub fn session_id(
    member_id: Uuid,
    statement_id: Uuid,
    cmi5_session: Option<&str>,
    part: usize,
) -> Uuid {
    let key = match cmi5_session {
        Some(session) => format!("cmi5/{member_id}/{session}/{part}"),
        None => format!("statement/{statement_id}/{part}"),
    };
    Uuid::new_v5(&FACTS, format!("session/{key}").as_bytes())
}

/// A session cut at the instants of completions that lie strictly inside it, into touching
/// parts: in cmi5 the `completed` statement comes inside the session that earned it, and rule 2
/// counts only sessions that end by the completion.
pub fn split(
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    cuts: &[DateTime<Utc>],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut inside: Vec<DateTime<Utc>> = cuts
        .iter()
        .copied()
        .filter(|c| *c > started_at && *c < ended_at)
        .collect();
    inside.sort_unstable();
    inside.dedup();
    let mut parts = Vec::with_capacity(inside.len() + 1);
    let mut from = started_at;
    for cut in inside {
        parts.push((from, cut));
        from = cut;
    }
    parts.push((from, ended_at));
    parts
}
