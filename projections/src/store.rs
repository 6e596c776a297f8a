//! The view tables (migrations/0002_views.sql): writing a member's rows from its fold, and the
//! reads the HTTP layer needs. Only SQL lives here; every rule stays in the pure functions.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool, Row};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::OrganisationRecord;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::rulesets::{ruleset_for, Ruleset};
use studyledger_aggregates::values::{Hours, Quarter};
use uuid::Uuid;

use crate::fold::MemberFold;

pub async fn upsert_organisation(
    tx: &mut PgConnection,
    record: &OrganisationRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_view (org_id, name, parent_id, path)
         SELECT $1, $2, $3, COALESCE((SELECT path FROM org_view WHERE org_id = $3), '{}') || $1
         ON CONFLICT (org_id) DO NOTHING",
    )
    .bind(record.org_id.as_str())
    .bind(&record.name)
    .bind(record.parent_id.as_ref().map(|p| p.as_str()))
    .execute(tx)
    .await?;
    Ok(())
}

/// Replaces every view row of one member with the rows folded from its state.
pub async fn replace_member(
    tx: &mut PgConnection,
    member: &Member,
    fold: &MemberFold,
    rulesets: &[Ruleset],
) -> Result<(), sqlx::Error> {
    let Some(enrolment) = member.enrolment() else {
        return Ok(());
    };
    let sequence = i64::try_from(member.version()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO member_view (member_id, member_no, name, enrolled_on, enrolled_org_id, last_sequence)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (member_id) DO UPDATE
            SET member_no = EXCLUDED.member_no, name = EXCLUDED.name,
                enrolled_on = EXCLUDED.enrolled_on, enrolled_org_id = EXCLUDED.enrolled_org_id,
                last_sequence = EXCLUDED.last_sequence",
    )
    .bind(enrolment.member_id)
    .bind(&enrolment.member_no)
    .bind(&enrolment.name)
    .bind(enrolment.enrolled_on)
    .bind(enrolment.org_id.as_str())
    .bind(sequence)
    .execute(&mut *tx)
    .await?;

    let mut days = vec![enrolment.enrolled_on];
    let mut sequences = vec![1_i64];
    let mut orgs = vec![enrolment.org_id.to_string()];
    for transfer in member.transfers() {
        days.push(transfer.effective_on);
        sequences.push(i64::try_from(transfer.sequence).unwrap_or(i64::MAX));
        orgs.push(transfer.to_org_id.to_string());
    }
    sqlx::query("DELETE FROM member_org_view WHERE member_id = $1")
        .bind(enrolment.member_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO member_org_view (member_id, effective_on, sequence, org_id)
         SELECT $1, * FROM UNNEST($2::date[], $3::bigint[], $4::text[])",
    )
    .bind(enrolment.member_id)
    .bind(&days)
    .bind(&sequences)
    .bind(&orgs)
    .execute(&mut *tx)
    .await?;

    let rows = fold.active_quarters();
    let quarters: Vec<String> = rows.iter().map(|(q, _, _)| q.to_string()).collect();
    let required: Vec<i64> = rows
        .iter()
        .map(|(_, t, _)| t.required.hundredths())
        .collect();
    let elective: Vec<i64> = rows
        .iter()
        .map(|(_, t, _)| t.elective.hundredths())
        .collect();
    let minutes: Vec<i64> = rows.iter().map(|(_, _, m)| *m).collect();
    let rules: Vec<Option<&Ruleset>> = rows
        .iter()
        .map(|(q, _, _)| ruleset_for(*q, rulesets))
        .collect();
    let required_targets: Vec<Option<i64>> = rules
        .iter()
        .map(|r| r.map(|r| r.required_hours.hundredths()))
        .collect();
    let elective_targets: Vec<Option<i64>> = rules
        .iter()
        .map(|r| r.map(|r| r.elective_hours.hundredths()))
        .collect();
    let versions: Vec<Option<i32>> = rules
        .iter()
        .map(|r| r.and_then(|r| i32::try_from(r.version).ok()))
        .collect();
    sqlx::query("DELETE FROM member_quarter_view WHERE member_id = $1")
        .bind(enrolment.member_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO member_quarter_view (member_id, quarter, required_hundredths, elective_hundredths,
                                          study_minutes, required_target, elective_target,
                                          ruleset_version, last_sequence)
         SELECT $1, u.*, $9
           FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                       $7::bigint[], $8::int[]) AS u",
    )
    .bind(enrolment.member_id)
    .bind(&quarters)
    .bind(&required)
    .bind(&elective)
    .bind(&minutes)
    .bind(&required_targets)
    .bind(&elective_targets)
    .bind(&versions)
    .bind(sequence)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A member's stored quarter: totals, minutes, and the targets and version it was judged under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuarter {
    pub quarter: Quarter,
    pub totals: QuarterTotals,
    pub study_minutes: i64,
    pub ruleset_version: Option<u32>,
}

fn stored_quarter(row: &sqlx::postgres::PgRow) -> Option<StoredQuarter> {
    let quarter: String = row.try_get("quarter").ok()?;
    Some(StoredQuarter {
        quarter: Quarter::parse(&quarter).ok()?,
        totals: QuarterTotals {
            required: Hours::from_hundredths(row.try_get("required_hundredths").ok()?),
            elective: Hours::from_hundredths(row.try_get("elective_hundredths").ok()?),
        },
        study_minutes: row.try_get("study_minutes").ok()?,
        ruleset_version: row
            .try_get::<Option<i32>, _>("ruleset_version")
            .ok()?
            .and_then(|v| u32::try_from(v).ok()),
    })
}

/// A member as the views know them.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub member_id: Uuid,
    pub member_no: String,
    pub name: String,
    pub enrolled_on: NaiveDate,
    pub org_id: String,
}

pub async fn member(
    pool: &PgPool,
    member_id: Uuid,
) -> Result<Option<(MemberRow, Vec<StoredQuarter>)>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT member_id, member_no, name, enrolled_on, enrolled_org_id AS org_id
           FROM member_view WHERE member_id = $1",
    )
    .bind(member_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let quarters = sqlx::query(
        "SELECT quarter, required_hundredths, elective_hundredths, study_minutes, ruleset_version
           FROM member_quarter_view WHERE member_id = $1 ORDER BY quarter",
    )
    .bind(member_id)
    .fetch_all(pool)
    .await?;
    Ok(Some((
        member_row(&row)?,
        quarters.iter().filter_map(stored_quarter).collect(),
    )))
}

fn member_row(row: &sqlx::postgres::PgRow) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        member_id: row.try_get("member_id")?,
        member_no: row.try_get("member_no")?,
        name: row.try_get("name")?,
        enrolled_on: row.try_get("enrolled_on")?,
        org_id: row.try_get("org_id")?,
    })
}

/// The organisation and all its descendants; `None` when the organisation is unknown.
pub async fn subtree(pool: &PgPool, org_id: &str) -> Result<Option<Vec<String>>, sqlx::Error> {
    let orgs: Vec<String> =
        sqlx::query_scalar("SELECT org_id FROM org_view WHERE path @> ARRAY[$1]")
            .bind(org_id)
            .fetch_all(pool)
            .await?;
    Ok((!orgs.is_empty()).then_some(orgs))
}

/// Members who belong to one of `orgs` on `day` (rule 7: their latest organisation on or
/// before that day; enrolled by then), in member id order after `after`, at most `limit`,
/// each with their stored row for `quarter` (if any).
pub async fn members_of(
    pool: &PgPool,
    orgs: &[String],
    day: NaiveDate,
    quarter: Quarter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(MemberRow, Option<StoredQuarter>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.member_id, m.member_no, m.name, m.enrolled_on, o.org_id,
                q.quarter, q.required_hundredths, q.elective_hundredths, q.study_minutes,
                q.ruleset_version
           FROM member_org_view o
           JOIN member_view m ON m.member_id = o.member_id
           LEFT JOIN member_quarter_view q ON q.member_id = o.member_id AND q.quarter = $3
          WHERE o.org_id = ANY($1) AND o.effective_on <= $2 AND m.enrolled_on <= $2
            AND ($4::uuid IS NULL OR o.member_id > $4)
            AND NOT EXISTS (
                SELECT 1 FROM member_org_view later
                 WHERE later.member_id = o.member_id AND later.effective_on <= $2
                   AND (later.effective_on, later.sequence) > (o.effective_on, o.sequence))
          ORDER BY o.member_id
          LIMIT $5",
    )
    .bind(orgs)
    .bind(day)
    .bind(quarter.to_string())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((member_row(row)?, stored_quarter(row))))
        .collect()
}
