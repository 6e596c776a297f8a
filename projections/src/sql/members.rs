//! Members in the views: their rows written in bulk from their folds (the projector and a
//! replay), and read back one member at a time or a subtree at a time.
//!
//! A member's rows are always computed whole from the member's fold and compared with what the
//! views hold; those that differ are written, so applying the same events twice changes
//! nothing, and an event changes only the rows it touches.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use studyledger_aggregates::member::Member;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::rules::tenure::{Away, Tenure};
use studyledger_aggregates::values::{Hours, Quarter};
use uuid::Uuid;

use crate::counters::{contributions, kept_places, stays, Bucket, Deltas, Place, Standing};
use crate::fold::{quarter_compliance, MemberFold, QuarterCompliance};
use crate::sql::counters::{add_counts, held, Held};

/// The view rows of members, folded from their states, column by column for bulk writes.
#[derive(Debug, Default)]
pub struct MemberRows {
    member_id: Vec<Uuid>,
    member_no: Vec<String>,
    name: Vec<String>,
    enrolled_on: Vec<NaiveDate>,
    enrolled_org: Vec<String>,
    away: Vec<Json<Vec<Away>>>,
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
    q_sequence: Vec<i64>,
    a_member: Vec<Uuid>,
    appeal_id: Vec<Uuid>,
    a_evaluation: Vec<String>,
    a_determination: Vec<Uuid>,
    a_reason: Vec<String>,
    a_filed_at: Vec<DateTime<Utc>>,
    a_status: Vec<&'static str>,
    p_member: Vec<Uuid>,
    p_day: Vec<NaiveDate>,
    p_sequence: Vec<i64>,
    p_until: Vec<Option<NaiveDate>>,
    p_org: Vec<String>,
    /// What the counters need of each member added, from the same rows.
    standings: Vec<(Uuid, Standing)>,
    /// Members whose placements differ from what the views hold: their placement rows are
    /// replaced.
    moved: Vec<Uuid>,
    /// Quarters the views hold that a member's fold no longer has.
    gone_member: Vec<Uuid>,
    gone_quarter: Vec<String>,
    /// Places in the lists by status that members take, and those they leave.
    places_added: PlaceColumns,
    places_left: PlaceColumns,
}

/// Places in the lists by status (see [`kept_places`]), column by column.
#[derive(Debug, Default)]
struct PlaceColumns {
    member: Vec<Uuid>,
    org: Vec<String>,
    quarter: Vec<String>,
    bucket: Vec<&'static str>,
    shortfall: Vec<i64>,
}

impl PlaceColumns {
    fn push(&mut self, member: Uuid, (org, quarter, bucket, shortfall): &Place) {
        self.member.push(member);
        self.org.push(org.clone());
        self.quarter.push(quarter.to_string());
        self.bucket.push(bucket.as_str());
        self.shortfall.push(shortfall.hundredths());
    }
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
        self.add_changes(member, fold, rulesets, &Held::default());
    }

    /// Adds a member's rows that differ from what the views hold (`held`): the member row
    /// always, the placements when they changed, the quarters whose figures changed (a quarter
    /// row's `last_sequence` is the member's sequence when its figures last changed). A batch
    /// of the projector so writes what its events change, not the member's whole history.
    pub fn add_changes(
        &mut self,
        member: &Member,
        fold: &MemberFold,
        rulesets: &[Ruleset],
        held: &Held,
    ) {
        let Some(enrolment) = member.enrolment() else {
            return;
        };
        let rules_version = latest_version(rulesets).unwrap_or(0);
        let sequence = to_i64(member.version());
        let id = enrolment.member_id;
        self.member_id.push(id);
        // Who the member is now: the latest corrections over the enrolment.
        let member_no = member.member_no().unwrap_or(&enrolment.member_no);
        self.member_no.push(member_no.to_string());
        self.name
            .push(member.name().unwrap_or(&enrolment.name).to_string());
        self.enrolled_on.push(enrolment.enrolled_on);
        self.enrolled_org.push(enrolment.org_id.to_string());
        let tenure = fold
            .tenure()
            .cloned()
            .unwrap_or_else(|| Tenure::since(enrolment.enrolled_on));
        self.away.push(Json(tenure.away.clone()));
        self.last_sequence.push(sequence);
        self.rules_version
            .push(i32::try_from(rules_version).unwrap_or(i32::MAX));
        let placements: Vec<(NaiveDate, i64, String)> = member
            .placements()
            .into_iter()
            .map(|(day, sequence, org)| (day, to_i64(sequence), org.to_string()))
            .collect();
        let held_standing = held.standings.get(&id);
        let standing = Standing {
            tenure,
            placements,
            rules_version,
            quarters: fold
                .active_quarters()
                .into_iter()
                .map(|(quarter, totals, _)| (quarter, totals))
                .collect(),
        };
        self.add_placements(id, &standing, held_standing);
        self.add_places(id, &standing, held_standing, rulesets);
        self.standings.push((id, standing));
        for appeal in member.appeals() {
            self.a_member.push(id);
            self.appeal_id.push(appeal.appeal_id);
            self.a_evaluation.push(appeal.evaluation_id.to_string());
            self.a_determination.push(appeal.determination_id);
            self.a_reason.push(appeal.reason.to_string());
            self.a_filed_at.push(appeal.filed_at);
            self.a_status.push(member.appeal_status(appeal).as_str());
        }
        self.add_quarters(id, sequence, fold, held);
    }

    /// A member's placements and stays, when they differ from those the views hold (`held`).
    fn add_placements(&mut self, id: Uuid, standing: &Standing, held: Option<&Standing>) {
        let moved = held.is_none_or(|h| {
            h.placements != standing.placements || h.tenure.away != standing.tenure.away
        });
        if !moved {
            return;
        }
        if held.is_some() {
            self.moved.push(id);
        }
        for (day, sequence, org_id) in &standing.placements {
            self.org_member.push(id);
            self.org_day.push(*day);
            self.org_sequence.push(*sequence);
            self.org_id.push(org_id.clone());
        }
        for stay in stays(standing) {
            self.p_member.push(id);
            self.p_day.push(stay.from);
            self.p_sequence.push(stay.sequence);
            self.p_until.push(stay.until);
            self.p_org.push(stay.org.to_owned());
        }
    }

    /// The member's places in the lists by status that differ from those the views hold.
    fn add_places(
        &mut self,
        id: Uuid,
        standing: &Standing,
        held: Option<&Standing>,
        rulesets: &[Ruleset],
    ) {
        let now = kept_places(standing, rulesets);
        let then = held.map(|h| kept_places(h, rulesets)).unwrap_or_default();
        for place in now.difference(&then) {
            self.places_added.push(id, place);
        }
        for place in then.difference(&now) {
            self.places_left.push(id, place);
        }
    }

    /// A member's quarters whose figures differ from those the views hold, and those the views
    /// hold that the fold no longer has.
    fn add_quarters(&mut self, id: Uuid, sequence: i64, fold: &MemberFold, held: &Held) {
        let held_standing = held.standings.get(&id);
        let quarters = fold.active_quarters();
        if let Some(held_standing) = held_standing {
            for gone in held_standing
                .quarters
                .keys()
                .filter(|q| !quarters.iter().any(|(quarter, _, _)| quarter == *q))
            {
                self.gone_member.push(id);
                self.gone_quarter.push(gone.to_string());
            }
        }
        for (quarter, totals, minutes) in quarters {
            let unchanged = held_standing
                .and_then(|h| h.quarters.get(&quarter))
                .is_some_and(|t| *t == totals)
                && held.minutes.get(&(id, quarter)) == Some(&minutes);
            if unchanged {
                continue;
            }
            self.q_member.push(id);
            self.quarter.push(quarter.to_string());
            self.required.push(totals.required.hundredths());
            self.elective.push(totals.elective.hundredths());
            self.minutes.push(minutes);
            self.q_sequence.push(sequence);
        }
    }

    /// Writes the rows: member and quarter rows are upserted, the others inserted (the caller
    /// removed any earlier ones, or the tables are new).
    pub async fn insert(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.insert_members(tx).await?;
        if !self.org_member.is_empty() {
            self.insert_organisations(tx).await?;
            self.insert_placements(tx).await?;
        }
        if !self.q_member.is_empty() {
            self.insert_quarters(tx).await?;
        }
        if !self.appeal_id.is_empty() {
            self.insert_appeals(tx).await?;
        }
        if !self.places_added.member.is_empty() {
            self.insert_places(tx).await?;
        }
        Ok(())
    }

    /// Each place once for the organisation it is counted in and once for every one above it
    /// in the quarter (the tree of the quarter's first day: moves take effect from one).
    async fn insert_places(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let added = &self.places_added;
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_status),
            " (ancestor, quarter, bucket, member_id, shortfall_hundredths)
             SELECT a.ancestor, d.q, d.b, d.m, d.s
               FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                    AS d(m, o, q, b, s)
              CROSS JOIN LATERAL ",
            ancestors_in_quarter!("d.o", "d.q"),
            " AS a"
        ))
        .bind(&added.member)
        .bind(&added.org)
        .bind(&added.quarter)
        .bind(&added.bucket)
        .bind(&added.shortfall)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// Removes the places members left, under every organisation they were written for.
    async fn delete_places(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let left = &self.places_left;
        if left.member.is_empty() {
            return Ok(());
        }
        sqlx::query(concat!(
            "DELETE FROM ",
            table!(member_status),
            " s USING (SELECT a.ancestor, d.q, d.b, d.m
                         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[])
                              AS d(m, o, q, b)
                        CROSS JOIN LATERAL ",
            ancestors_in_quarter!("d.o", "d.q"),
            " AS a) AS x
              WHERE s.ancestor = x.ancestor AND s.quarter = x.q AND s.bucket = x.b
                AND s.member_id = x.m"
        ))
        .bind(&left.member)
        .bind(&left.org)
        .bind(&left.quarter)
        .bind(&left.bucket)
        .execute(tx)
        .await?;
        Ok(())
    }

    /// The members' standings, for the counters.
    pub fn standings(&self) -> &[(Uuid, Standing)] {
        &self.standings
    }

    /// Each placement once for the organisation and once for every one above it, for the days
    /// it lies above (a placement across a move is cut at the move for the ancestors that
    /// change; `GREATEST` and `LEAST` pass over nulls, so an open end stays open).
    async fn insert_placements(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_placement),
            " (ancestor, member_id, effective_on, sequence, until, org_id)
             SELECT a.ancestor, p.m, GREATEST(p.d, a.since), p.s, LEAST(p.u, a.until), p.o
               FROM UNNEST($1::uuid[], $2::date[], $3::bigint[], $4::date[], $5::text[])
                    AS p(m, d, s, u, o)
              CROSS JOIN LATERAL ",
            ancestry!("p.o"),
            " AS a
              WHERE (a.since IS NULL OR p.u IS NULL OR a.since < p.u)
                AND (a.until IS NULL OR a.until > p.d)"
        ))
        .bind(&self.p_member)
        .bind(&self.p_day)
        .bind(&self.p_sequence)
        .bind(&self.p_until)
        .bind(&self.p_org)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn insert_members(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member),
            " (member_id, member_no, name, enrolled_on, enrolled_org_id, last_sequence,
               rules_version, away)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[],
                                  $6::bigint[], $7::int[], $8::jsonb[])
             ON CONFLICT (member_id) DO UPDATE
                SET member_no = EXCLUDED.member_no, name = EXCLUDED.name,
                    enrolled_on = EXCLUDED.enrolled_on, enrolled_org_id = EXCLUDED.enrolled_org_id,
                    last_sequence = EXCLUDED.last_sequence, rules_version = EXCLUDED.rules_version,
                    away = EXCLUDED.away"
        ))
        .bind(&self.member_id)
        .bind(&self.member_no)
        .bind(&self.name)
        .bind(&self.enrolled_on)
        .bind(&self.enrolled_org)
        .bind(&self.last_sequence)
        .bind(&self.rules_version)
        .bind(&self.away)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn insert_organisations(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_org),
            " (member_id, effective_on, sequence, org_id)
             SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::bigint[], $4::text[])"
        ))
        .bind(&self.org_member)
        .bind(&self.org_day)
        .bind(&self.org_sequence)
        .bind(&self.org_id)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn insert_quarters(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_quarter),
            " (member_id, quarter, required_hundredths, elective_hundredths, study_minutes,
               last_sequence)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[],
                                  $5::bigint[], $6::bigint[])
             ON CONFLICT (member_id, quarter) DO UPDATE
                SET required_hundredths = EXCLUDED.required_hundredths,
                    elective_hundredths = EXCLUDED.elective_hundredths,
                    study_minutes = EXCLUDED.study_minutes,
                    last_sequence = EXCLUDED.last_sequence"
        ))
        .bind(&self.q_member)
        .bind(&self.quarter)
        .bind(&self.required)
        .bind(&self.elective)
        .bind(&self.minutes)
        .bind(&self.q_sequence)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn insert_appeals(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_appeal),
            " (member_id, appeal_id, evaluation_id, determination_id, reason, filed_at, status)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                                  $6::timestamptz[], $7::text[])"
        ))
        .bind(&self.a_member)
        .bind(&self.appeal_id)
        .bind(&self.a_evaluation)
        .bind(&self.a_determination)
        .bind(&self.a_reason)
        .bind(&self.a_filed_at)
        .bind(&self.a_status)
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// Brings every view row of these members to the rows folded from their states, in a fixed
/// number of statements whatever their number: rows that did not change are left alone.
pub async fn replace_members(
    tx: &mut PgConnection,
    members: &[(&Member, MemberFold)],
    rulesets: &[Ruleset],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = members
        .iter()
        .filter_map(|(member, _)| member.enrolment().map(|e| e.member_id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let before = held(&mut *tx, &ids).await?;
    let mut rows = MemberRows::default();
    for (member, fold) in members {
        rows.add_changes(member, fold, rulesets, &before);
    }
    // The counters change by each member's part now, less their part as the views held it.
    let mut deltas = Deltas::default();
    for (id, standing) in rows.standings() {
        deltas.add(contributions(standing, rulesets));
        if let Some(old) = before.standings.get(id) {
            deltas.subtract(contributions(old, rulesets));
        }
    }
    for (statement, members) in [
        (
            concat!(
                "DELETE FROM ",
                table!(member_org),
                " WHERE member_id = ANY($1)"
            ),
            &rows.moved,
        ),
        (
            concat!(
                "DELETE FROM ",
                table!(member_placement),
                " WHERE member_id = ANY($1)"
            ),
            &rows.moved,
        ),
        (
            concat!(
                "DELETE FROM ",
                table!(member_appeal),
                " WHERE member_id = ANY($1)"
            ),
            &ids,
        ),
    ] {
        if !members.is_empty() {
            sqlx::query(statement)
                .bind(members)
                .execute(&mut *tx)
                .await?;
        }
    }
    if !rows.gone_member.is_empty() {
        sqlx::query(concat!(
            "DELETE FROM ",
            table!(member_quarter),
            " WHERE (member_id, quarter) IN (SELECT * FROM UNNEST($1::uuid[], $2::text[]))"
        ))
        .bind(&rows.gone_member)
        .bind(&rows.gone_quarter)
        .execute(&mut *tx)
        .await?;
    }
    rows.delete_places(tx).await?;
    rows.insert(tx).await?;
    add_counts(tx, deltas.into_changes()).await
}

/// A member's stored quarter: totals and minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuarter {
    pub quarter: Quarter,
    pub totals: QuarterTotals,
    pub study_minutes: i64,
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
    /// Rule 12: the periods away.
    pub away: Vec<Away>,
}

impl MemberRow {
    pub fn tenure(&self) -> Tenure {
        Tenure {
            enrolled_on: self.enrolled_on,
            away: self.away.clone(),
        }
    }

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
            &self.tenure(),
            rulesets,
            Some(self.rules_version),
            today,
        )
    }
}

/// A member row joined with (at most) one of its quarter rows, as read.
#[derive(sqlx::FromRow)]
struct MemberQuarterRecord {
    member_id: Uuid,
    member_no: String,
    name: String,
    enrolled_on: NaiveDate,
    org_id: String,
    rules_version: i32,
    away: Json<Vec<Away>>,
    quarter: Option<String>,
    required_hundredths: Option<i64>,
    elective_hundredths: Option<i64>,
    study_minutes: Option<i64>,
}

impl MemberQuarterRecord {
    fn member(&self) -> MemberRow {
        MemberRow {
            member_id: self.member_id,
            member_no: self.member_no.clone(),
            name: self.name.clone(),
            enrolled_on: self.enrolled_on,
            org_id: self.org_id.clone(),
            rules_version: u32::try_from(self.rules_version).unwrap_or(0),
            away: self.away.0.clone(),
        }
    }

    fn stored(&self) -> Option<StoredQuarter> {
        Some(StoredQuarter {
            quarter: Quarter::parse(self.quarter.as_deref()?).ok()?,
            totals: QuarterTotals {
                required: Hours::from_hundredths(self.required_hundredths?),
                elective: Hours::from_hundredths(self.elective_hundredths?),
            },
            study_minutes: self.study_minutes?,
        })
    }
}

/// A member and their stored quarters.
pub const MEMBER: &str = concat!(
    "SELECT m.member_id, m.member_no, m.name, m.enrolled_on, m.enrolled_org_id AS org_id,
            m.rules_version, m.away, q.quarter, q.required_hundredths, q.elective_hundredths,
            q.study_minutes
       FROM ",
    table!(member),
    " m
       LEFT JOIN ",
    table!(member_quarter),
    " q ON q.member_id = m.member_id
      WHERE m.member_id = $1
      ORDER BY q.quarter"
);

/// A member and their stored quarters, in one statement (so a replay's swap can never fall
/// between the two).
pub async fn member(
    connection: impl PgExecutor<'_>,
    member_id: Uuid,
) -> Result<Option<(MemberRow, Vec<StoredQuarter>)>, sqlx::Error> {
    let records: Vec<MemberQuarterRecord> = sqlx::query_as(MEMBER)
        .bind(member_id)
        .fetch_all(connection)
        .await?;
    Ok(records.first().map(|first| {
        (
            first.member(),
            records
                .iter()
                .filter_map(MemberQuarterRecord::stored)
                .collect(),
        )
    }))
}

/// The member and quarter rows of a page of members, their organisation on the day from
/// `page`: two primary-key probes per member (each a subquery with a `LIMIT`, which the planner
/// keeps as it is — a join it would be free to answer by hashing the whole table). The tail of
/// the statements below.
macro_rules! page_rows {
    () => {
        concat!(
            " SELECT m.member_id, m.member_no, m.name, m.enrolled_on, page.org_id,
                     m.rules_version, m.away, q.quarter, q.required_hundredths,
                     q.elective_hundredths,
                     q.study_minutes
                FROM page
                CROSS JOIN LATERAL (SELECT * FROM ",
            table!(member),
            " WHERE member_id = page.member_id LIMIT 1) m
                LEFT JOIN LATERAL (SELECT * FROM ",
            table!(member_quarter),
            " WHERE member_id = page.member_id AND quarter = $3 LIMIT 1) q ON true
               ORDER BY page.member_id"
        )
    };
}

/// A page of the members who belong to `ancestor`'s subtree on `$2` (rule 7: enrolled by
/// then, where their placement on that day is), in member id order after `$4`, at most `$5`,
/// each with their stored row for quarter `$3` (if any). The page is taken first from one
/// keyset range of the placements' primary key, then its members' rows are read by key: the
/// work is the page's, whatever the subtree's size.
pub const SUBTREE_MEMBERS: &str = concat!(
    "WITH page AS MATERIALIZED (
        SELECT p.member_id, p.org_id FROM ",
    table!(member_placement),
    " p WHERE p.ancestor = $1 AND p.effective_on <= $2
          AND (p.until IS NULL OR p.until > $2)
          AND p.member_id > COALESCE($4::uuid, '00000000-0000-0000-0000-000000000000')
        ORDER BY p.member_id
        LIMIT $5)",
    page_rows!()
);

/// These members (`$4`) of `ancestor`'s subtree as [`SUBTREE_MEMBERS`] reads them: those who
/// do not belong to it on `$2` are left out.
pub const MEMBERS_BY_ID: &str = concat!(
    "WITH page AS MATERIALIZED (
        SELECT p.member_id, p.org_id FROM unnest($4::uuid[]) AS i(member_id)
          JOIN ",
    table!(member_placement),
    " p ON p.ancestor = $1 AND p.member_id = i.member_id AND p.effective_on <= $2
             AND (p.until IS NULL OR p.until > $2))",
    page_rows!()
);

/// The next members after `$4` (at most `$5`) with a place of bucket `$3` in the list of
/// `ancestor`'s subtree for quarter `$2`: one keyset range of the lists' primary key.
pub const WITH_PLACE: &str = concat!(
    "SELECT member_id FROM ",
    table!(member_status),
    " WHERE ancestor = $1 AND quarter = $2 AND bucket = $3
        AND member_id > COALESCE($4::uuid, '00000000-0000-0000-0000-000000000000')
      ORDER BY member_id
      LIMIT $5"
);

/// The members who belong to `ancestor`'s subtree (`$1`) on day `$2`, each with their member
/// row's enrolment and rules version (`m`): the placements' keyset range the probed lists
/// continue with their own conditions and order.
macro_rules! placed_members {
    () => {
        concat!(
            "SELECT p.member_id FROM ",
            table!(member_placement),
            " p CROSS JOIN LATERAL (SELECT enrolled_on, rules_version FROM ",
            table!(member),
            " WHERE member_id = p.member_id LIMIT 1) m
              WHERE p.ancestor = $1 AND p.effective_on <= $2
                AND (p.until IS NULL OR p.until > $2)"
        )
    };
}

/// The next members after `$4` (at most `$5`) who belong to `ancestor`'s subtree on `$2`, have
/// figures for quarter `$3` (a quarter row, or enrolled in it: `$6` is its first day) and hold
/// no place in its lists: the compliant members, but for those who move later in the current
/// quarter. The placements' keyset range, each member probed by key.
pub const WITHOUT_PLACE: &str = concat!(
    placed_members!(),
    " AND p.member_id > COALESCE($4::uuid, '00000000-0000-0000-0000-000000000000')
        -- Scalar subqueries, probed by key for each member (see WITHOUT_FIGURES); the member
        -- row too (see `page_rows!`: as a join, it was merged from the ledger's first member).
        AND (m.enrolled_on >= $6 OR COALESCE((SELECT true FROM ",
    table!(member_quarter),
    " q WHERE q.member_id = p.member_id AND q.quarter = $3), false))
        AND NOT COALESCE((SELECT true FROM ",
    table!(member_status),
    " s WHERE s.ancestor = $1 AND s.quarter = $3 AND s.bucket IN ('not_met', 'exempt')
                 AND s.member_id = p.member_id LIMIT 1), false)
      ORDER BY p.member_id
      LIMIT $5"
);

/// Members without figures (see [`WITHOUT_FIGURES`]), in member id order one way or the other:
/// `$cmp` compares with the bound `$4` (`$from` when none), `$order` is the order.
macro_rules! without_figures {
    ($cmp:literal, $from:literal, $order:literal) => {
        concat!(
            placed_members!(),
            " AND p.member_id ",
            $cmp,
            " COALESCE($4::uuid, '",
            $from,
            "')
                AND m.enrolled_on < $6 AND m.rules_version = ANY($7)
                -- A scalar subquery, probed by key for each member: as `NOT EXISTS` the planner
                -- would be free to merge the quarter's rows of the whole ledger against the
                -- placements.
                AND NOT COALESCE((SELECT true FROM ",
            table!(member_quarter),
            " q WHERE q.member_id = p.member_id AND q.quarter = $3), false)
              ORDER BY p.member_id ",
            $order,
            "
              LIMIT $5"
        )
    };
}

/// The next members after `$4` (at most `$5`) who belong to `ancestor`'s subtree on `$2`, were
/// enrolled before quarter `$3` began (`$6`), have no figures for it, and were folded under
/// one of the rules versions `$7`: the placements' keyset range, each member probed by key.
pub const WITHOUT_FIGURES: &str =
    without_figures!(">", "00000000-0000-0000-0000-000000000000", "ASC");

/// [`WITHOUT_FIGURES`] the other way: the next members before `$4`, in descending member id
/// order — the order of the lists of members behind among members short by as many hours.
pub const WITHOUT_FIGURES_DOWN: &str =
    without_figures!("<", "ffffffff-ffff-ffff-ffff-ffffffffffff", "DESC");

/// The next members of the list of members behind (bucket `not_met`) of `ancestor`'s subtree
/// for quarter `$2`, most hours short first (and among those short by as many, in descending
/// member id order), after the member `$4` short by `$3` hundredths: one backward range of
/// the lists' shortfall index, at most `$5` rows.
pub const BEHIND_PLACES: &str = concat!(
    "SELECT member_id FROM ",
    table!(member_status),
    " WHERE ancestor = $1 AND quarter = $2 AND bucket = 'not_met'
        AND (shortfall_hundredths, member_id)
            < (COALESCE($3::bigint, 9223372036854775807),
               COALESCE($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
      ORDER BY shortfall_hundredths DESC, member_id DESC
      LIMIT $5"
);

/// Where a page of a subtree's members starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct PageOf<'a> {
    pub ancestor: &'a str,
    /// The day members are counted on (rule 7).
    pub day: NaiveDate,
    pub quarter: Quarter,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// The next members with a place of `bucket` in the list (see [`WITH_PLACE`]).
pub async fn with_place(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
    bucket: Bucket,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(WITH_PLACE)
        .bind(page.ancestor)
        .bind(page.quarter.to_string())
        .bind(bucket.as_str())
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(connection)
        .await
}

/// One of the probed ranges below, bound to where the page starts: `$1`–`$6` are the same.
fn probed_range<'q>(
    statement: &'q str,
    page: PageOf<'q>,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, Uuid, sqlx::postgres::PgArguments> {
    sqlx::query_scalar(statement)
        .bind(page.ancestor)
        .bind(page.day)
        .bind(page.quarter.to_string())
        .bind(page.after)
        .bind(page.limit)
        .bind(page.quarter.first_day())
}

/// The next members with figures and no place (see [`WITHOUT_PLACE`]).
pub async fn without_place(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    probed_range(WITHOUT_PLACE, page)
        .fetch_all(connection)
        .await
}

/// The next members without figures for the quarter after `page.after` (see
/// [`WITHOUT_FIGURES`]); with `down`, those before it, going down ([`WITHOUT_FIGURES_DOWN`]).
pub async fn without_figures(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
    rules_versions: &[i32],
    down: bool,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let statement = if down {
        WITHOUT_FIGURES_DOWN
    } else {
        WITHOUT_FIGURES
    };
    probed_range(statement, page)
        .bind(rules_versions)
        .fetch_all(connection)
        .await
}

/// The next members behind after (shortfall, member) `after` (see [`BEHIND_PLACES`]).
pub async fn behind_places(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
    after: Option<(Hours, Uuid)>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(BEHIND_PLACES)
        .bind(page.ancestor)
        .bind(page.quarter.to_string())
        .bind(after.map(|(shortfall, _)| shortfall.hundredths()))
        .bind(after.map(|(_, member)| member))
        .bind(page.limit)
        .fetch_all(connection)
        .await
}

/// These members, when they belong to the subtree on the day (see [`MEMBERS_BY_ID`]).
pub async fn members_by_id(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
    ids: &[Uuid],
) -> Result<Vec<(MemberRow, Option<StoredQuarter>)>, sqlx::Error> {
    let records: Vec<MemberQuarterRecord> = sqlx::query_as(MEMBERS_BY_ID)
        .bind(page.ancestor)
        .bind(page.day)
        .bind(page.quarter.to_string())
        .bind(ids)
        .fetch_all(connection)
        .await?;
    Ok(records.iter().map(|r| (r.member(), r.stored())).collect())
}

/// A page of the subtree's members (see [`SUBTREE_MEMBERS`]).
pub async fn members_of(
    connection: impl PgExecutor<'_>,
    page: PageOf<'_>,
) -> Result<Vec<(MemberRow, Option<StoredQuarter>)>, sqlx::Error> {
    let records: Vec<MemberQuarterRecord> = sqlx::query_as(SUBTREE_MEMBERS)
        .bind(page.ancestor)
        .bind(page.day)
        .bind(page.quarter.to_string())
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(connection)
        .await?;
    Ok(records.iter().map(|r| (r.member(), r.stored())).collect())
}
