//! The roll-up counters (`org_quarter_view`) and the placements by ancestor
//! (`member_placement_view`): written with the member rows, read by roll-ups and by pages of
//! a subtree's members. Every organisation a change concerns is expanded to itself and all
//! above it in the tree of the quarter or days it concerns (`org_ancestry_view`), in the
//! statement.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::rules::tenure::{Away, Tenure};
use studyledger_aggregates::values::{Hours, Quarter};
use uuid::Uuid;

use crate::counters::{Counts, Key, QuarterSums, Standing};

/// Adds changes to the counters of the organisation each is counted in and of every one above
/// it, in one statement. The figures of a quarter go to the organisations above in that
/// quarter; a change of members from a quarter on goes to each organisation above from that
/// quarter (or from when it came above, if later) and, should it stop lying above, is taken
/// back in the quarter it stops (sums up to any quarter then count the members where the tree
/// of that quarter puts them).
pub async fn add_counts(
    tx: &mut PgConnection,
    changes: impl IntoIterator<Item = (Key, Counts)>,
) -> Result<(), sqlx::Error> {
    let mut columns = CountColumns::default();
    for ((org, quarter, version), counts) in changes {
        columns.push(org, quarter, version, counts);
    }
    if columns.org.is_empty() {
        return Ok(());
    }
    sqlx::query(concat!(
        "INSERT INTO ",
        table!(org_quarter),
        " AS c (org_id, quarter, rules_version, member_delta, counted, compliant, not_met,
                exempt, hundredths)
         SELECT a.ancestor, e.quarter, d.v, sum(e.md), sum(e.f * d.ct), sum(e.f * d.co),
                sum(e.f * d.nm), sum(e.f * d.ex), sum(e.f * d.hu)
           FROM UNNEST($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
                       $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
                AS d(org, quarter, v, md, ct, co, nm, ex, hu)
          CROSS JOIN LATERAL ",
        ancestry!("d.org"),
        " AS a
          CROSS JOIN LATERAL (SELECT GREATEST(d.quarter, ",
        quarter_of!("a.since"),
        ") AS sq, ",
        quarter_of!("a.until"),
        " AS uq) AS q
          CROSS JOIN LATERAL (VALUES (q.sq, d.md, (q.sq = d.quarter)::int),
                                     (q.uq, -d.md, 0)) AS e(quarter, md, f)
          WHERE (q.uq IS NULL OR q.sq < q.uq) AND e.quarter IS NOT NULL
          GROUP BY a.ancestor, e.quarter, d.v",
        add_to_counters!()
    ))
    .bind(&columns.org)
    .bind(&columns.quarter)
    .bind(&columns.version)
    .bind(&columns.member_delta)
    .bind(&columns.counted)
    .bind(&columns.compliant)
    .bind(&columns.not_met)
    .bind(&columns.exempt)
    .bind(&columns.hundredths)
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct CountColumns {
    org: Vec<String>,
    quarter: Vec<String>,
    version: Vec<i32>,
    member_delta: Vec<i64>,
    counted: Vec<i64>,
    compliant: Vec<i64>,
    not_met: Vec<i64>,
    exempt: Vec<i64>,
    hundredths: Vec<i64>,
}

impl CountColumns {
    fn push(&mut self, org: String, quarter: Quarter, version: u32, counts: Counts) {
        self.org.push(org);
        self.quarter.push(quarter.to_string());
        self.version
            .push(i32::try_from(version).unwrap_or(i32::MAX));
        self.member_delta.push(counts.member_delta);
        self.counted.push(counts.counted);
        self.compliant.push(counts.compliant);
        self.not_met.push(counts.not_met);
        self.exempt.push(counts.exempt);
        self.hundredths.push(counts.hundredths);
    }
}

/// A subtree's sums for a quarter, per rules version: members summed over every quarter up to
/// it, the figures of the quarter itself. One range of the primary key.
pub const QUARTER_SUMS: &str = concat!(
    "SELECT rules_version, sum(member_delta)::bigint AS members,
            COALESCE(sum(counted) FILTER (WHERE quarter = $2), 0)::bigint AS counted,
            COALESCE(sum(compliant) FILTER (WHERE quarter = $2), 0)::bigint AS compliant,
            COALESCE(sum(not_met) FILTER (WHERE quarter = $2), 0)::bigint AS not_met,
            COALESCE(sum(exempt) FILTER (WHERE quarter = $2), 0)::bigint AS exempt,
            COALESCE(sum(hundredths) FILTER (WHERE quarter = $2), 0)::bigint AS hundredths
       FROM ",
    table!(org_quarter),
    " WHERE org_id = $1 AND quarter <= $2
      GROUP BY rules_version
      ORDER BY rules_version"
);

#[derive(sqlx::FromRow)]
struct SumsRow {
    rules_version: i32,
    members: i64,
    counted: i64,
    compliant: i64,
    not_met: i64,
    exempt: i64,
    hundredths: i64,
}

pub async fn quarter_sums(
    connection: impl PgExecutor<'_>,
    org_id: &str,
    quarter: Quarter,
) -> Result<Vec<QuarterSums>, sqlx::Error> {
    let rows: Vec<SumsRow> = sqlx::query_as(QUARTER_SUMS)
        .bind(org_id)
        .bind(quarter.to_string())
        .fetch_all(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| QuarterSums {
            rules_version: u32::try_from(r.rules_version).unwrap_or(0),
            members: r.members,
            figures: Counts {
                member_delta: 0,
                counted: r.counted,
                compliant: r.compliant,
                not_met: r.not_met,
                exempt: r.exempt,
                hundredths: r.hundredths,
            },
        })
        .collect())
}

/// Members whose placement changes on a day in (`after`, `through`]: an enrolment or a
/// transfer dated ahead.
pub const MOVING: &str = concat!(
    "SELECT DISTINCT member_id FROM ",
    table!(member_org),
    " WHERE effective_on > $1 AND effective_on <= $2"
);

pub async fn moving(
    connection: impl PgExecutor<'_>,
    after: NaiveDate,
    through: NaiveDate,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(MOVING)
        .bind(after)
        .bind(through)
        .fetch_all(connection)
        .await
}

/// The path from the root to each of these organisations.
pub async fn paths(
    connection: impl PgExecutor<'_>,
    orgs: &[String],
) -> Result<HashMap<String, Vec<String>>, sqlx::Error> {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT org_id, path FROM ",
        table!(org),
        " WHERE org_id = ANY($1)"
    ))
    .bind(orgs)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The members' standings as the views hold them now.
pub async fn standings(
    connection: &mut PgConnection,
    member_ids: &[Uuid],
) -> Result<HashMap<Uuid, Standing>, sqlx::Error> {
    Ok(held(connection, member_ids).await?.standings)
}

/// What the views hold of some members: their standings, and the study minutes of each of
/// their quarters (the rest of a quarter row), so that only rows that change are written.
#[derive(Debug, Default)]
pub struct Held {
    pub standings: HashMap<Uuid, Standing>,
    pub minutes: HashMap<(Uuid, Quarter), i64>,
}

/// What the views hold of these members now.
pub async fn held(connection: &mut PgConnection, member_ids: &[Uuid]) -> Result<Held, sqlx::Error> {
    let members: Vec<(Uuid, NaiveDate, i32, Json<Vec<Away>>)> = sqlx::query_as(concat!(
        "SELECT member_id, enrolled_on, rules_version, away FROM ",
        table!(member),
        " WHERE member_id = ANY($1)"
    ))
    .bind(member_ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut standings: HashMap<Uuid, Standing> = members
        .into_iter()
        .map(|(id, enrolled_on, version, away)| {
            let standing = Standing {
                tenure: Tenure {
                    enrolled_on,
                    away: away.0,
                },
                placements: Vec::new(),
                rules_version: u32::try_from(version).unwrap_or(0),
                quarters: Default::default(),
            };
            (id, standing)
        })
        .collect();
    let placements: Vec<(Uuid, NaiveDate, i64, String)> = sqlx::query_as(concat!(
        "SELECT member_id, effective_on, sequence, org_id FROM ",
        table!(member_org),
        " WHERE member_id = ANY($1) ORDER BY member_id, effective_on, sequence"
    ))
    .bind(member_ids)
    .fetch_all(&mut *connection)
    .await?;
    for (id, day, sequence, org) in placements {
        if let Some(standing) = standings.get_mut(&id) {
            standing.placements.push((day, sequence, org));
        }
    }
    let quarters: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(concat!(
        "SELECT member_id, quarter, required_hundredths, elective_hundredths, study_minutes FROM ",
        table!(member_quarter),
        " WHERE member_id = ANY($1)"
    ))
    .bind(member_ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut minutes = HashMap::new();
    for (id, quarter, required, elective, studied) in quarters {
        let (Some(standing), Ok(quarter)) = (standings.get_mut(&id), Quarter::parse(&quarter))
        else {
            continue;
        };
        let totals = QuarterTotals {
            required: Hours::from_hundredths(required),
            elective: Hours::from_hundredths(elective),
        };
        standing.quarters.insert(quarter, totals);
        minutes.insert((id, quarter), studied);
    }
    Ok(Held { standings, minutes })
}
