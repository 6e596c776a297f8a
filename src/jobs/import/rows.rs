//! The rows of an import file: CSV with a header, or NDJSON, one row per enrolment, study
//! session, course completion or xAPI statement. Each row is read into the same typed values
//! as the JSON API's bodies, or refused with its line number and the reason. Parsing runs on a
//! thread of its own over a blocking reader and hands rows on in bounded batches, so memory
//! stays bounded whatever the file's size.

use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::Value;
use studyledger_aggregates::facts::Enrolment;
use studyledger_aggregates::values::{CourseId, MemberId, OrgId};
use uuid::Uuid;

pub use crate::config::ImportFormat as Format;

/// One row, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Enrol(Enrolment),
    Session {
        member_id: Uuid,
        session_id: Uuid,
        course_id: CourseId,
        started_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
    },
    Completion {
        member_id: Uuid,
        completion_id: Uuid,
        course_id: CourseId,
        completed_at: DateTime<Utc>,
    },
    Statement(Value),
}

impl Row {
    /// The member whose stream the row goes to (none for a statement: its mapping decides).
    pub fn member_id(&self) -> Option<Uuid> {
        match self {
            Row::Enrol(e) => Some(e.member_id),
            Row::Session { member_id, .. } | Row::Completion { member_id, .. } => Some(*member_id),
            Row::Statement(_) => None,
        }
    }
}

/// A row as read: its line in the file (the first line of a CSV record; the header is line 1)
/// and the row, or why it cannot be one.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub line: u64,
    pub row: Result<Row, String>,
}

/// The columns (CSV) or keys (NDJSON) a row may have; which it needs depends on `kind`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    kind: String,
    member_id: Option<String>,
    session_id: Option<String>,
    completion_id: Option<String>,
    course_id: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
    completed_at: Option<String>,
    member_no: Option<String>,
    name: Option<String>,
    org_id: Option<String>,
    enrolled_on: Option<String>,
    /// An xAPI statement: a JSON object (in CSV, its JSON text).
    statement: Option<Value>,
}

/// The longest line (or CSV record) a file may have: a statement with its definitions fits.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Hands rows on in batches of at most `size`; false once the receiver is gone.
struct Batcher<'a> {
    out: &'a tokio::sync::mpsc::Sender<Vec<Parsed>>,
    size: usize,
    pending: Vec<Parsed>,
    rows: u64,
}

impl Batcher<'_> {
    fn send(&mut self, parsed: Parsed) -> bool {
        self.rows += 1;
        self.pending.push(parsed);
        if self.pending.len() < self.size {
            return true;
        }
        let full = std::mem::replace(&mut self.pending, Vec::with_capacity(self.size));
        self.out.blocking_send(full).is_ok()
    }

    fn finish(self) -> u64 {
        if !self.pending.is_empty() {
            let _ = self.out.blocking_send(self.pending);
        }
        self.rows
    }
}

/// Reads `reader` to its end, sending rows in batches of at most `batch`; stops early when
/// the receiver is gone. Answers the number of rows read, or why the file cannot be read on.
pub fn parse(
    reader: impl Read,
    format: Format,
    batch: usize,
    out: &tokio::sync::mpsc::Sender<Vec<Parsed>>,
) -> Result<u64, String> {
    let mut batcher = Batcher {
        out,
        size: batch,
        pending: Vec::with_capacity(batch),
        rows: 0,
    };
    match format {
        Format::Csv => parse_csv(reader, &mut batcher)?,
        Format::Ndjson => parse_ndjson(reader, &mut batcher)?,
    }
    Ok(batcher.finish())
}

fn parse_csv(reader: impl Read, batcher: &mut Batcher<'_>) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| format!("the CSV header cannot be read: {e}"))?
        .clone();
    let mut record = csv::StringRecord::new();
    loop {
        // Where the next record starts (the header is line 1).
        let line = csv.position().line();
        let parsed = match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => Parsed {
                line: record.position().map_or(line, csv::Position::line),
                row: csv_row(&record, &headers),
            },
            Err(e) if e.is_io_error() => return Err(format!("reading the file: {e}")),
            Err(e) => Parsed {
                line: e.position().map_or(line, csv::Position::line),
                row: Err(format!("not a CSV record of the header's columns: {e}")),
            },
        };
        if !batcher.send(parsed) {
            return Ok(());
        }
    }
}

fn parse_ndjson(reader: impl Read, batcher: &mut Batcher<'_>) -> Result<(), String> {
    let mut lines = BufReader::new(reader);
    let mut text = String::new();
    let mut line = 0u64;
    loop {
        text.clear();
        line += 1;
        let read = lines
            .by_ref()
            .take(MAX_ROW_BYTES as u64 + 1)
            .read_line(&mut text)
            .map_err(|e| format!("reading line {line}: {e}"))?;
        if read == 0 {
            return Ok(());
        }
        if read > MAX_ROW_BYTES {
            return Err(format!("line {line} is longer than {MAX_ROW_BYTES} bytes"));
        }
        if text.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str::<RawRow>(&text)
            .map_err(|e| format!("not a row: {e}"))
            .and_then(typed);
        if !batcher.send(Parsed { line, row }) {
            return Ok(());
        }
    }
}

fn csv_row(record: &csv::StringRecord, headers: &csv::StringRecord) -> Result<Row, String> {
    let mut raw: RawRow = record
        .deserialize(Some(headers))
        .map_err(|e| format!("not a row: {e}"))?;
    // In CSV a statement is its JSON text.
    if let Some(Value::String(text)) = &raw.statement {
        raw.statement =
            Some(serde_json::from_str(text).map_err(|e| format!("statement is not JSON: {e}"))?);
    }
    typed(raw)
}

/// The typed row a raw one is, checked as the JSON API checks its bodies.
fn typed(raw: RawRow) -> Result<Row, String> {
    let need = |field: &'static str, value: &Option<String>| -> Result<String, String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("{field} is missing"))
    };
    let uuid = |field: &'static str, value: &Option<String>| -> Result<Uuid, String> {
        let text = need(field, value)?;
        MemberId::parse(&text)
            .map(MemberId::uuid)
            .map_err(|_| format!("{field} `{text}` is not a UUID"))
    };
    let instant = |field: &'static str, value: &Option<String>| -> Result<DateTime<Utc>, String> {
        let text = need(field, value)?;
        let at = DateTime::parse_from_rfc3339(&text)
            .map_err(|_| format!("{field} `{text}` is not an RFC 3339 instant"))?
            .with_timezone(&Utc)
            .trunc_subsecs(6);
        within_years(field, at.year())?;
        Ok(at)
    };
    let course = |value: &Option<String>| -> Result<CourseId, String> {
        let text = need("course_id", value)?;
        CourseId::parse(&text).map_err(|e| format!("course_id: {e}"))
    };
    match raw.kind.trim() {
        "enrolment" => {
            let enrolled_on = need("enrolled_on", &raw.enrolled_on)?;
            let enrolled_on = NaiveDate::parse_from_str(&enrolled_on, "%Y-%m-%d")
                .map_err(|_| format!("enrolled_on `{enrolled_on}` is not a date YYYY-MM-DD"))?;
            within_years("enrolled_on", enrolled_on.year())?;
            let org = need("org_id", &raw.org_id)?;
            Ok(Row::Enrol(Enrolment {
                member_id: uuid("member_id", &raw.member_id)?,
                member_no: need("member_no", &raw.member_no)?
                    .parse()
                    .map_err(|e| format!("member_no: {e}"))?,
                name: need("name", &raw.name)?
                    .parse()
                    .map_err(|e| format!("name: {e}"))?,
                org_id: OrgId::parse(&org).map_err(|e| format!("org_id: {e}"))?,
                enrolled_on,
            }))
        }
        "session" => Ok(Row::Session {
            member_id: uuid("member_id", &raw.member_id)?,
            session_id: uuid("session_id", &raw.session_id)?,
            course_id: course(&raw.course_id)?,
            started_at: instant("started_at", &raw.started_at)?,
            ended_at: instant("ended_at", &raw.ended_at)?,
        }),
        "completion" => Ok(Row::Completion {
            member_id: uuid("member_id", &raw.member_id)?,
            completion_id: uuid("completion_id", &raw.completion_id)?,
            course_id: course(&raw.course_id)?,
            completed_at: instant("completed_at", &raw.completed_at)?,
        }),
        "xapi_statement" => match raw.statement {
            Some(statement @ Value::Object(_)) => Ok(Row::Statement(statement)),
            _ => Err("statement is missing or not a JSON object".to_owned()),
        },
        other => Err(format!(
            "kind `{other}` is none of enrolment, session, completion, xapi_statement"
        )),
    }
}

fn within_years(field: &str, year: i32) -> Result<(), String> {
    if (1900..=2999).contains(&year) {
        Ok(())
    } else {
        Err(format!("{field} must lie between the years 1900 and 2999"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str, format: Format) -> (Result<u64, String>, Vec<Parsed>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let read = parse(text.as_bytes(), format, 2, &tx);
        drop(tx);
        let mut rows = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            rows.extend(batch);
        }
        (read, rows)
    }

    const MEMBER: &str = "6f1c0a5e-0d1e-4a55-9a49-3f5a1d2b7c10";
    const ID: &str = "0b7e6a8c-1f2d-4e3a-9b8c-7d6e5f4a3b21";

    #[test]
    fn csv_rows_are_typed_with_their_line_numbers_and_bad_ones_say_why() {
        let text = format!(
            "kind,member_id,session_id,completion_id,course_id,started_at,ended_at,completed_at\n\
             session,{MEMBER},{ID},,party-history,2025-05-02T01:00:00Z,2025-05-02T01:45:00Z,\n\
             completion,{MEMBER},,{ID},party-history,,,2025-05-02T02:00:00+08:00\n\
             completion,{MEMBER},,not-a-uuid,party-history,,,2025-05-02T02:00:00Z\n\
             lesson,{MEMBER},,,,,,\n\
             session,{MEMBER},{ID},,party-history,2025-05-02T01:00:00Z,\n"
        );
        let (read, rows) = parse_all(&text, Format::Csv);
        assert_eq!(read, Ok(5));
        let lines: Vec<u64> = rows.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        assert!(matches!(rows[0].row, Ok(Row::Session { .. })));
        let Ok(Row::Completion { completed_at, .. }) = &rows[1].row else {
            panic!("a completion");
        };
        assert_eq!(completed_at.to_rfc3339(), "2025-05-01T18:00:00+00:00");
        assert_eq!(
            rows[2].row,
            Err("completion_id `not-a-uuid` is not a UUID".to_owned())
        );
        assert!(rows[3]
            .row
            .as_ref()
            .is_err_and(|e| e.contains("kind `lesson`")));
        assert!(rows[4]
            .row
            .as_ref()
            .is_err_and(|e| e.contains("CSV record")));
    }

    #[test]
    fn ndjson_rows_carry_enrolments_and_statements_and_skip_blank_lines() {
        let text = format!(
            "{{\"kind\":\"enrolment\",\"member_id\":\"{MEMBER}\",\"member_no\":\"D-1\",\"name\":\"陈静\",\"org_id\":\"fz\",\"enrolled_on\":\"2025-01-01\"}}\n\
             \n\
             {{\"kind\":\"xapi_statement\",\"statement\":{{\"actor\":{{\"mbox\":\"mailto:a@example.org\"}}}}}}\n\
             {{\"kind\":\"session\",\"member_id\":\"{MEMBER}\",\"colour\":\"red\"}}\n\
             {{\"kind\":\"enrolment\",\"member_id\":\"{MEMBER}\",\"member_no\":\"D-1\",\"name\":\"陈静\",\"org_id\":\"fz\",\"enrolled_on\":\"3025-01-01\"}}\n"
        );
        let (read, rows) = parse_all(&text, Format::Ndjson);
        assert_eq!(read, Ok(4));
        assert_eq!(
            rows.iter().map(|p| p.line).collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
        assert!(matches!(rows[0].row, Ok(Row::Enrol(_))));
        assert!(matches!(rows[1].row, Ok(Row::Statement(_))));
        assert!(rows[2].row.as_ref().is_err_and(|e| e.contains("colour")));
        assert_eq!(
            rows[3].row,
            Err("enrolled_on must lie between the years 1900 and 2999".to_owned())
        );
    }

    #[test]
    fn an_over_long_ndjson_line_stops_the_file() {
        let text = format!("{}\n", "x".repeat(MAX_ROW_BYTES + 10));
        let (read, _) = parse_all(&text, Format::Ndjson);
        assert!(read.is_err_and(|e| e.contains("longer than")));
    }
}
