//! The view tables (migrations/0002_views.sql): writing a member's rows from its fold, and the
//! reads the HTTP layer needs. Only SQL lives here; every rule stays in the pure functions.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool, Row};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::OrganisationRecord;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::values::{Hours, Quarter};
use uuid::Uuid;

use crate::fold::{quarter_compliance, MemberFold, QuarterCompliance};

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

/// The view rows of members, folded from their states, column by column for bulk writes.
#[derive(Debug, Default)]
pub struct MemberRows {
    member_id: Vec<Uuid>,
    member_no: Vec<String>,
    name: Vec<String>,
    enrolled_on: Vec<NaiveDate>,
    enrolled_org: Vec<String>,
    last_sequence: Vec<i64>,
    rules_version: Vec<i32>,
    org_member: Vec<Uuid>,
    org_day: Vec<NaiveDate>,
    org_sequence: Vec<i64>,
    org_id: Vec<String>,
    q_member: Vec<Uuid>,
    quarter: Vec<String>,
    required: Vec<i64>,
    elective: Vec<i64>,
    minutes: Vec<i64>,
    a_member: Vec<Uuid>,
    appeal_id: Vec<Uuid>,
    a_evaluation: Vec<String>,
    a_determination: Vec<Uuid>,
    a_reason: Vec<String>,
    a_filed_at: Vec<chrono::DateTime<chrono::Utc>>,
    a_status: Vec<&'static str>,
    q_sequence: Vec<i64>,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl MemberRows {
    /// Members added so far.
    pub fn len(&self) -> usize {
        self.member_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.member_id.is_empty()
    }

    /// Adds a member's rows: `fold` is the member folded under `rulesets`.
    pub fn add(&mut self, member: &Member, fold: &MemberFold, rulesets: &[Ruleset]) {
        let rules_version = latest_version(rulesets).unwrap_or(0);
        let Some(enrolment) = member.enrolment() else {
            return;
        };
        let sequence = to_i64(member.version());
        let id = enrolment.member_id;
        self.member_id.push(id);
        self.member_no.push(enrolment.member_no.clone());
        self.name.push(enrolment.name.clone());
        self.enrolled_on.push(enrolment.enrolled_on);
        self.enrolled_org.push(enrolment.org_id.to_string());
        self.last_sequence.push(sequence);
        self.rules_version
            .push(i32::try_from(rules_version).unwrap_or(i32::MAX));
        self.org_member.push(id);
        self.org_day.push(enrolment.enrolled_on);
        self.org_sequence.push(1);
        self.org_id.push(enrolment.org_id.to_string());
        for transfer in member.transfers() {
            self.org_member.push(id);
            self.org_day.push(transfer.effective_on);
            self.org_sequence.push(to_i64(transfer.sequence));
            self.org_id.push(transfer.to_org_id.to_string());
        }
        for appeal in member.appeals() {
            self.a_member.push(id);
            self.appeal_id.push(appeal.appeal_id);
            self.a_evaluation.push(appeal.evaluation_id.to_string());
            self.a_determination.push(appeal.determination_id);
            self.a_reason.push(appeal.reason.clone());
            self.a_filed_at.push(appeal.filed_at);
            self.a_status.push(member.appeal_status(appeal).as_str());
        }
        for (quarter, totals, minutes) in fold.active_quarters() {
            self.q_member.push(id);
            self.quarter.push(quarter.to_string());
            self.required.push(totals.required.hundredths());
            self.elective.push(totals.elective.hundredths());
            self.minutes.push(minutes);
            self.q_sequence.push(sequence);
        }
    }
}

/// Replaces every view row of these members with the rows folded from their states, in five
/// statements whatever their number.
pub async fn replace_members(
    tx: &mut PgConnection,
    members: &[(Member, MemberFold)],
    rulesets: &[Ruleset],
) -> Result<(), sqlx::Error> {
    let mut rows = MemberRows::default();
    for (member, fold) in members {
        rows.add(member, fold, rulesets);
    }
    if rows.is_empty() {
        return Ok(());
    }
    for table in [
        "member_org_view",
        "member_quarter_view",
        "member_appeal_view",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE member_id = ANY($1)"))
            .bind(&rows.member_id)
            .execute(&mut *tx)
            .await?;
    }
    rows.insert(tx).await
}

impl MemberRows {
    /// Writes the rows in three statements: member rows are upserted, organisation and quarter
    /// rows inserted (the caller removed any earlier ones, or the tables are new).
    pub async fn insert(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let rows = self;
        sqlx::query(
            "INSERT INTO member_view (member_id, member_no, name, enrolled_on, enrolled_org_id,
                                      last_sequence, rules_version)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[],
                                  $6::bigint[], $7::int[])
             ON CONFLICT (member_id) DO UPDATE
                SET member_no = EXCLUDED.member_no, name = EXCLUDED.name,
                    enrolled_on = EXCLUDED.enrolled_on, enrolled_org_id = EXCLUDED.enrolled_org_id,
                    last_sequence = EXCLUDED.last_sequence, rules_version = EXCLUDED.rules_version",
        )
        .bind(&rows.member_id)
        .bind(&rows.member_no)
        .bind(&rows.name)
        .bind(&rows.enrolled_on)
        .bind(&rows.enrolled_org)
        .bind(&rows.last_sequence)
        .bind(&rows.rules_version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO member_org_view (member_id, effective_on, sequence, org_id)
             SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::bigint[], $4::text[])",
        )
        .bind(&rows.org_member)
        .bind(&rows.org_day)
        .bind(&rows.org_sequence)
        .bind(&rows.org_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO member_quarter_view (member_id, quarter, required_hundredths,
                                              elective_hundredths, study_minutes, last_sequence)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                                  $6::bigint[])",
        )
        .bind(&rows.q_member)
        .bind(&rows.quarter)
        .bind(&rows.required)
        .bind(&rows.elective)
        .bind(&rows.minutes)
        .bind(&rows.q_sequence)
        .execute(&mut *tx)
        .await?;
        if !rows.appeal_id.is_empty() {
            sqlx::query(
                "INSERT INTO member_appeal_view (member_id, appeal_id, evaluation_id,
                                                 determination_id, reason, filed_at, status)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                                      $6::timestamptz[], $7::text[])",
            )
            .bind(&rows.a_member)
            .bind(&rows.appeal_id)
            .bind(&rows.a_evaluation)
            .bind(&rows.a_determination)
            .bind(&rows.a_reason)
            .bind(&rows.a_filed_at)
            .bind(&rows.a_status)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// A member's stored quarter: totals and minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuarter {
    pub quarter: Quarter,
    pub totals: QuarterTotals,
    pub study_minutes: i64,
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
    /// The highest ruleset version the member's rows were folded under.
    pub rules_version: u32,
}

impl MemberRow {
    /// A quarter of this member as read: its stored totals and minutes (none stored: nothing
    /// credited, nothing studied) judged under the rules known when the row was folded.
    pub fn judge(
        &self,
        quarter: Quarter,
        stored: Option<&StoredQuarter>,
        rulesets: &[Ruleset],
        today: NaiveDate,
    ) -> QuarterCompliance {
        quarter_compliance(
            quarter,
            stored.map(|s| s.totals).unwrap_or_default(),
            stored.map_or(0, |s| s.study_minutes),
            self.enrolled_on,
            rulesets,
            Some(self.rules_version),
            today,
        )
    }
}

/// A member and their stored quarters, in one statement (so a replay's swap can never fall
/// between the two).
pub async fn member(
    pool: &PgPool,
    member_id: Uuid,
) -> Result<Option<(MemberRow, Vec<StoredQuarter>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.member_id, m.member_no, m.name, m.enrolled_on, m.enrolled_org_id AS org_id,
                m.rules_version, q.quarter, q.required_hundredths, q.elective_hundredths,
                q.study_minutes
           FROM member_view m
           LEFT JOIN member_quarter_view q ON q.member_id = m.member_id
          WHERE m.member_id = $1
          ORDER BY q.quarter",
    )
    .bind(member_id)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((
        member_row(first)?,
        rows.iter().filter_map(stored_quarter).collect(),
    )))
}

fn member_row(row: &sqlx::postgres::PgRow) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        member_id: row.try_get("member_id")?,
        member_no: row.try_get("member_no")?,
        name: row.try_get("name")?,
        enrolled_on: row.try_get("enrolled_on")?,
        org_id: row.try_get("org_id")?,
        rules_version: u32::try_from(row.try_get::<i32, _>("rules_version")?).unwrap_or(0),
    })
}

/// The organisation and all its descendants; `None` when the organisation is unknown.
pub async fn subtree(
    connection: &mut PgConnection,
    org_id: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let orgs: Vec<String> =
        sqlx::query_scalar("SELECT org_id FROM org_view WHERE path @> ARRAY[$1]")
            .bind(org_id)
            .fetch_all(connection)
            .await?;
    Ok((!orgs.is_empty()).then_some(orgs))
}

/// Members who belong to one of `orgs` on `day` (rule 7: their latest organisation on or
/// before that day; enrolled by then), in member id order after `after`, at most `limit`,
/// each with their stored row for `quarter` (if any).
pub async fn members_of(
    connection: &mut PgConnection,
    orgs: &[String],
    day: NaiveDate,
    quarter: Quarter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(MemberRow, Option<StoredQuarter>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.member_id, m.member_no, m.name, m.enrolled_on, o.org_id, m.rules_version,
                q.quarter, q.required_hundredths, q.elective_hundredths, q.study_minutes
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
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| Ok((member_row(row)?, stored_quarter(row))))
        .collect()
}

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
    pub filed_at: chrono::DateTime<chrono::Utc>,
}

/// Open appeals of members who belong to one of `orgs` on `day` (their latest organisation on
/// or before it), in appeal id order after `after`, at most `limit`.
pub async fn open_appeals(
    connection: &mut PgConnection,
    orgs: &[String],
    day: NaiveDate,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OpenAppeal>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.appeal_id, a.member_id, m.member_no, m.name, o.org_id, a.evaluation_id,
                a.determination_id, a.reason, a.filed_at
           FROM member_appeal_view a
           JOIN member_view m ON m.member_id = a.member_id
           JOIN LATERAL (
                SELECT org_id FROM member_org_view o
                 WHERE o.member_id = a.member_id AND o.effective_on <= $2
                 ORDER BY o.effective_on DESC, o.sequence DESC LIMIT 1) o ON true
          WHERE a.status = 'open' AND o.org_id = ANY($1)
            AND ($3::uuid IS NULL OR a.appeal_id > $3)
          ORDER BY a.appeal_id
          LIMIT $4",
    )
    .bind(orgs)
    .bind(day)
    .bind(after)
    .bind(limit)
    .fetch_all(connection)
    .await
}
