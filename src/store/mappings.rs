//! What each statement that concerns the ledger became (`xapi_mappings`, see
//! migrations/0014_xapi_mappings.sql): written in the transaction that records its facts,
//! read back for the review list and for the statements waiting on a registration.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A statement's outcome, as the table spells it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Recorded,
    Refused,
    Unreadable,
    UnknownMember,
    UnknownActivity,
    Withdrawn,
    Voided,
    Withdrawal,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::Refused => "refused",
            Outcome::Unreadable => "unreadable",
            Outcome::UnknownMember => "unknown_member",
            Outcome::UnknownActivity => "unknown_activity",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Voided => "voided",
            Outcome::Withdrawal => "withdrawal",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Recorded,
            Outcome::Refused,
            Outcome::Unreadable,
            Outcome::UnknownMember,
            Outcome::UnknownActivity,
            Outcome::Withdrawn,
            Outcome::Voided,
            Outcome::Withdrawal,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

    /// Waiting for a registration: mapped again when it arrives.
    pub fn is_waiting(self) -> bool {
        matches!(self, Outcome::UnknownMember | Outcome::UnknownActivity)
    }
}

/// One statement's mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub statement_id: Uuid,
    pub seq: i64,
    pub outcome: Outcome,
    pub member_id: Option<Uuid>,
    pub activity_id: Option<String>,
    pub reason: Option<String>,
    pub facts: Vec<Uuid>,
    pub mapped_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    statement_id: Uuid,
    seq: i64,
    outcome: String,
    member_id: Option<Uuid>,
    activity_id: Option<String>,
    reason: Option<String>,
    facts: Vec<Uuid>,
    mapped_at: DateTime<Utc>,
}

impl Row {
    fn mapping(self) -> Mapping {
        Mapping {
            statement_id: self.statement_id,
            seq: self.seq,
            // The table's CHECK admits only the outcomes above.
            outcome: Outcome::parse(&self.outcome).unwrap_or(Outcome::Unreadable),
            member_id: self.member_id,
            activity_id: self.activity_id,
            reason: self.reason,
            facts: self.facts,
            mapped_at: self.mapped_at,
        }
    }
}

const COLUMNS: &str =
    "statement_id, seq, outcome, member_id, activity_id, reason, facts, mapped_at";

/// Writes mappings, each replacing the statement's earlier one.
pub async fn write(tx: &mut PgConnection, mappings: &[Mapping]) -> Result<(), sqlx::Error> {
    for m in mappings {
        sqlx::query(
            "INSERT INTO xapi_mappings
                    (statement_id, seq, outcome, member_id, activity_id, reason, facts, mapped_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (statement_id) DO UPDATE
                SET outcome = EXCLUDED.outcome, member_id = EXCLUDED.member_id,
                    activity_id = EXCLUDED.activity_id, reason = EXCLUDED.reason,
                    facts = EXCLUDED.facts, mapped_at = EXCLUDED.mapped_at",
        )
        .bind(m.statement_id)
        .bind(m.seq)
        .bind(m.outcome.as_str())
        .bind(m.member_id)
        .bind(&m.activity_id)
        .bind(&m.reason)
        .bind(&m.facts)
        .bind(m.mapped_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// A statement's mapping, locked for the caller's transaction (a voiding changes it).
pub async fn lock(
    tx: &mut PgConnection,
    statement_id: Uuid,
) -> Result<Option<Mapping>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM xapi_mappings WHERE statement_id = $1 FOR UPDATE"
    ))
    .bind(statement_id)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(Row::mapping))
}

/// The members whose statements these are, as mapped (for the locks a voiding needs).
pub async fn members_of(pool: &PgPool, statement_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT member_id FROM xapi_mappings
          WHERE statement_id = ANY($1) AND member_id IS NOT NULL",
    )
    .bind(statement_ids)
    .fetch_all(pool)
    .await
}

/// Which waiting statements to map again.
#[derive(Debug, Clone)]
pub enum Waiting {
    Member(Uuid),
    Activity(String),
    All,
}

/// A waiting statement as read: `seq`, id, statement.
type WaitingRow = (i64, Uuid, sqlx::types::Json<Map<String, Value>>);

/// A page of waiting statements after `after` (in storing order): `seq`, id, statement.
pub async fn waiting(
    pool: &PgPool,
    which: &Waiting,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Uuid, Map<String, Value>)>, sqlx::Error> {
    let (filter, member, activity) = match which {
        Waiting::Member(id) => (
            "m.outcome = 'unknown_member' AND m.member_id = $3",
            Some(*id),
            None,
        ),
        Waiting::Activity(iri) => (
            "m.outcome = 'unknown_activity' AND m.activity_id = $4",
            None,
            Some(iri.as_str()),
        ),
        Waiting::All => (
            "m.outcome IN ('unknown_member', 'unknown_activity')
             AND $3::uuid IS NULL AND $4::text IS NULL",
            None,
            None,
        ),
    };
    let rows: Vec<WaitingRow> = sqlx::query_as(&format!(
        "SELECT m.seq, m.statement_id, s.statement
               FROM xapi_mappings m JOIN xapi_statements s ON s.statement_id = m.statement_id
              WHERE {filter} AND m.seq > $1
              ORDER BY m.seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .bind(member)
    .bind(activity)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, id, json)| (seq, id, json.0))
        .collect())
}

/// Of these statements, those still waiting, locked for the caller's transaction (another
/// remap of them waits, then finds them mapped).
pub async fn lock_still_waiting(
    tx: &mut PgConnection,
    statement_ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT statement_id FROM xapi_mappings
          WHERE statement_id = ANY($1) AND outcome IN ('unknown_member', 'unknown_activity')
            FOR UPDATE",
    )
    .bind(statement_ids)
    .fetch_all(tx)
    .await
}

/// A page of the review list in storing order after `after`: mappings of one outcome (an
/// index range of `xapi_mappings_by_outcome`), or of every outcome to review (the partial
/// index `xapi_mappings_to_review`, whose predicate the query repeats).
pub async fn page(
    pool: &PgPool,
    outcome: Option<Outcome>,
    after: i64,
    limit: i64,
) -> Result<Vec<Mapping>, sqlx::Error> {
    let filter = match outcome {
        Some(_) => "outcome = $1",
        None => {
            "$1::text IS NULL
                 AND outcome IN ('refused', 'unreadable', 'unknown_member', 'unknown_activity')"
        }
    };
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM xapi_mappings
          WHERE {filter} AND seq > $2
          ORDER BY seq LIMIT $3"
    ))
    .bind(outcome.map(Outcome::as_str))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Row::mapping).collect())
}

/// The mapping of one statement.
pub async fn of_statement(
    pool: &PgPool,
    statement_id: Uuid,
) -> Result<Option<Mapping>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM xapi_mappings WHERE statement_id = $1"
    ))
    .bind(statement_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Row::mapping))
}
