//! The reviewers' work list: open appeals of the members of a subtree (rule 9's `open`, kept
//! by the projector with the member's other rows).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// An open appeal with the member it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenAppeal {
    pub appeal_id: Uuid,
    pub member_id: Uuid,
    pub member_no: String,
    pub name: String,
    pub org_id: String,
    pub evaluation_id: String,
    pub determination_id: Uuid,
    pub reason: String,
    pub filed_at: DateTime<Utc>,
}

/// Open appeals of members who belong to one of `orgs` on `day` (their latest organisation on
/// or before it), in appeal id order after `after`, at most `limit`.
pub async fn open_appeals(
    connection: impl PgExecutor<'_>,
    orgs: &[String],
    day: NaiveDate,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OpenAppeal>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT a.appeal_id, a.member_id, m.member_no, m.name, o.org_id, a.evaluation_id,
                a.determination_id, a.reason, a.filed_at
           FROM ",
        table!(member_appeal),
        " a
           JOIN ",
        table!(member),
        " m ON m.member_id = a.member_id
           JOIN LATERAL (
                SELECT org_id FROM ",
        table!(member_org),
        " o
                 WHERE o.member_id = a.member_id AND o.effective_on <= $2
                 ORDER BY o.effective_on DESC, o.sequence DESC LIMIT 1) o ON true
          WHERE a.status = 'open' AND o.org_id = ANY($1)
            AND ($3::uuid IS NULL OR a.appeal_id > $3)
          ORDER BY a.appeal_id
          LIMIT $4"
    ))
    .bind(orgs)
    .bind(day)
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await
}
