//! How a member's state is written into a snapshot: its sessions and completions, which are
//! nearly all of it, as JSON arrays rather than objects.
//!
//! A state holds every session and completion the member ever had, so its snapshot grows with
//! the stream: as objects, about 220 bytes of JSON per event, as many bytes as the events
//! themselves. Every snapshot written and every cold load pays for those bytes (bulk imports
//! most: one cold load per member, one snapshot per hundred events). As arrays, without the
//! field names, a session takes about half as many bytes and parses in about half the time.
//!
//! The facts keep their object form everywhere else (events, answers of the API): only the
//! state's snapshot uses this layout. [`LAYOUT`] names it; a snapshot of another layout (the
//! objects of before, or a later change) does not deserialise, and the event store then
//! rebuilds the state from the events and replaces the snapshot with its next append.
//! Change [`LAYOUT`] with any change to the arrays below, and only ever append elements,
//! never reorder them: builds from before layout 2 ignore the marker and would read arrays
//! by position into the facts' fields (today's order is theirs, so a rollback reads layout 2
//! correctly).

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::facts::{Completion, CourseTerms, StudySession, Withdrawal};
use crate::values::{Category, CourseId, Hours};

/// The snapshot layout this build writes and reads.
pub const LAYOUT: u32 = 2;

/// The state's `layout` field: written as [`LAYOUT`]; any other value, or none, refuses the
/// snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout;

impl Serialize for Layout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(LAYOUT)
    }
}

impl<'de> Deserialize<'de> for Layout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let layout = u32::deserialize(deserializer)?;
        if layout == LAYOUT {
            Ok(Layout)
        } else {
            Err(D::Error::custom(format!(
                "snapshot layout {layout}, this build reads {LAYOUT}"
            )))
        }
    }
}

/// A session as `[session_id, course_id, started_at, ended_at, sequence, source, withdrawn]`.
#[derive(Serialize)]
struct SessionOut<'a>(
    &'a Uuid,
    &'a CourseId,
    &'a DateTime<Utc>,
    &'a DateTime<Utc>,
    usize,
    &'a Option<Uuid>,
    &'a Option<Withdrawal>,
);

#[derive(Deserialize)]
struct SessionIn(
    Uuid,
    CourseId,
    DateTime<Utc>,
    DateTime<Utc>,
    usize,
    Option<Uuid>,
    Option<Withdrawal>,
);

/// A completion as `[completion_id, [course_id, category, credit_hours, min_study_minutes],
/// completed_at, sequence, source, withdrawn]`.
#[derive(Serialize)]
struct CompletionOut<'a>(
    &'a Uuid,
    (&'a CourseId, Category, Hours, u32),
    &'a DateTime<Utc>,
    usize,
    &'a Option<Uuid>,
    &'a Option<Withdrawal>,
);

#[derive(Deserialize)]
struct CompletionIn(
    Uuid,
    (CourseId, Category, Hours, u32),
    DateTime<Utc>,
    usize,
    Option<Uuid>,
    Option<Withdrawal>,
);

impl<'a> From<&'a StudySession> for SessionOut<'a> {
    fn from(s: &'a StudySession) -> Self {
        SessionOut(
            &s.session_id,
            &s.course_id,
            &s.started_at,
            &s.ended_at,
            s.sequence,
            &s.source,
            &s.withdrawn,
        )
    }
}

impl From<SessionIn> for StudySession {
    fn from(row: SessionIn) -> Self {
        let SessionIn(session_id, course_id, started_at, ended_at, sequence, source, withdrawn) =
            row;
        StudySession {
            session_id,
            course_id,
            started_at,
            ended_at,
            sequence,
            source,
            withdrawn,
        }
    }
}

impl<'a> From<&'a Completion> for CompletionOut<'a> {
    fn from(c: &'a Completion) -> Self {
        let course = &c.course;
        let terms = (
            &course.course_id,
            course.category,
            course.credit_hours,
            course.min_study_minutes,
        );
        CompletionOut(
            &c.completion_id,
            terms,
            &c.completed_at,
            c.sequence,
            &c.source,
            &c.withdrawn,
        )
    }
}

impl From<CompletionIn> for Completion {
    fn from(row: CompletionIn) -> Self {
        let CompletionIn(completion_id, terms, completed_at, sequence, source, withdrawn) = row;
        let (course_id, category, credit_hours, min_study_minutes) = terms;
        Completion {
            completion_id,
            course: CourseTerms {
                course_id,
                category,
                credit_hours,
                min_study_minutes,
            },
            completed_at,
            sequence,
            source,
            withdrawn,
        }
    }
}

/// A list of facts, each written as its array `O`.
fn write_rows<'a, T, O, S>(facts: &'a [T], serializer: S) -> Result<S::Ok, S::Error>
where
    O: Serialize + From<&'a T>,
    S: Serializer,
{
    serializer.collect_seq(facts.iter().map(O::from))
}

/// A list of facts, each read from its array `I`.
fn read_rows<'de, I, T, D>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    I: Deserialize<'de> + Into<T>,
    D: Deserializer<'de>,
{
    let rows = Vec::<I>::deserialize(deserializer)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// A state's list of sessions, as arrays.
pub fn write_sessions<S: Serializer>(
    sessions: &[StudySession],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    write_rows::<_, SessionOut, _>(sessions, serializer)
}

pub fn read_sessions<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<StudySession>, D::Error> {
    read_rows::<SessionIn, _, _>(deserializer)
}

/// A state's list of completions, as arrays.
pub fn write_completions<S: Serializer>(
    completions: &[Completion],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    write_rows::<_, CompletionOut, _>(completions, serializer)
}

pub fn read_completions<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Completion>, D::Error> {
    read_rows::<CompletionIn, _, _>(deserializer)
}
