//! A subtree moved under another parent from a day (a quarter's first): the tree of today
//! (`org_view`), the ancestors over time (`org_ancestry_view`), and every row the views expanded
//! to the organisations above a member's own, re-homed from that day on.
//!
//! The subtree's root keeps its rows, and so do the organisations above it in both trees (the
//! common ancestors). From the day on, the rows of those above it only in the old tree end,
//! and those above it only in the new tree start: placements are cut at the day; places in the
//! lists by status and counters move from the day's quarter on, the counters with the members
//! the subtree held at the quarter before, so that summing the quarters up to any later one
//! counts them where they belong. The same statements a member's rows are written with then
//! find the same ancestors (`org_ancestry_view`), so the views hold what a rebuild from the
//! log would write.

use chrono::NaiveDate;
use sqlx::PgConnection;
use studyledger_aggregates::values::Quarter;

/// Moves `org_id` with its subtree under `parent_id` from `day` on. Applying it again once
/// the organisation lies under that parent changes nothing.
pub async fn move_subtree(
    tx: &mut PgConnection,
    org_id: &str,
    parent_id: &str,
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    let paths: Vec<(String, Vec<String>, Option<String>)> = sqlx::query_as(concat!(
        "SELECT org_id, path, parent_id FROM ",
        table!(org),
        " WHERE org_id = $1 OR org_id = $2"
    ))
    .bind(org_id)
    .bind(parent_id)
    .fetch_all(&mut *tx)
    .await?;
    let path_of = |id: &str| paths.iter().find(|(o, _, _)| o == id);
    let (Some((_, old, parent)), Some((_, above, _))) = (path_of(org_id), path_of(parent_id))
    else {
        return Ok(());
    };
    if parent.as_deref() == Some(parent_id) {
        return Ok(());
    }
    let old_above = &old[..old.len().saturating_sub(1)];
    let left: Vec<String> = old_above
        .iter()
        .filter(|a| !above.contains(a))
        .cloned()
        .collect();
    let joined: Vec<String> = above
        .iter()
        .filter(|a| !old_above.contains(a))
        .cloned()
        .collect();
    rehome_tree(tx, org_id, parent_id, above, &left, &joined, day).await?;
    let change = Rehoming {
        org_id,
        left: &left,
        joined: &joined,
        day,
    };
    change.placements(tx).await?;
    change.places(tx).await?;
    change.counters(tx).await
}

/// The tree of today, and the ancestors over time of every organisation in the subtree.
async fn rehome_tree(
    tx: &mut PgConnection,
    org_id: &str,
    parent_id: &str,
    above: &[String],
    left: &[String],
    joined: &[String],
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    let subtree: Vec<String> = sqlx::query_scalar(concat!(
        "UPDATE ",
        table!(org),
        " SET path = $2 || path[array_position(path, $1):],
              parent_id = CASE WHEN org_id = $1 THEN $3 ELSE parent_id END
          WHERE path @> ARRAY[$1]
          RETURNING org_id"
    ))
    .bind(org_id)
    .bind(above)
    .bind(parent_id)
    .fetch_all(&mut *tx)
    .await?;
    // Ancestors the subtree leaves: gone if they only joined that day, else ended then.
    sqlx::query(concat!(
        "DELETE FROM ",
        table!(org_ancestry),
        " WHERE org_id = ANY($1) AND ancestor = ANY($2) AND until IS NULL AND since >= $3"
    ))
    .bind(&subtree)
    .bind(left)
    .bind(day)
    .execute(&mut *tx)
    .await?;
    sqlx::query(concat!(
        "UPDATE ",
        table!(org_ancestry),
        " SET until = $3 WHERE org_id = ANY($1) AND ancestor = ANY($2) AND until IS NULL"
    ))
    .bind(&subtree)
    .bind(left)
    .bind(day)
    .execute(&mut *tx)
    .await?;
    sqlx::query(concat!(
        "INSERT INTO ",
        table!(org_ancestry),
        " (org_id, ancestor, since, until)
         SELECT o, a, $3, NULL FROM unnest($1::text[]) AS o, unnest($2::text[]) AS a"
    ))
    .bind(&subtree)
    .bind(joined)
    .bind(day)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The member rows of a subtree to re-home from a day on.
struct Rehoming<'a> {
    org_id: &'a str,
    /// The ancestors the subtree leaves, and those it joins.
    left: &'a [String],
    joined: &'a [String],
    day: NaiveDate,
}

impl Rehoming<'_> {
    /// Placements under the ancestors left end on the day (or go, when they start on it or
    /// later); the subtree root's placements reaching past the day are copied under those
    /// joined, from the day. Every statement starts from the subtree root's placements (a
    /// stay reaching past the day in the subtree has one) and finds the same stay under an
    /// ancestor by its key, so a move costs what the subtree holds, not what its ancestors do.
    async fn placements(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(concat!(
            "DELETE FROM ",
            table!(member_placement),
            " p USING ",
            table!(member_placement),
            " r
              WHERE r.ancestor = $1 AND (r.until IS NULL OR r.until > $3 OR r.effective_on >= $3)
                AND p.ancestor = ANY($2) AND p.member_id = r.member_id
                AND p.sequence = r.sequence AND p.org_id = r.org_id AND p.effective_on >= $3"
        ))
        .bind(self.org_id)
        .bind(self.left)
        .bind(self.day)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "UPDATE ",
            table!(member_placement),
            " p SET until = $3 FROM ",
            table!(member_placement),
            " r
              WHERE r.ancestor = $1 AND (r.until IS NULL OR r.until > $3)
                AND p.ancestor = ANY($2) AND p.member_id = r.member_id
                AND p.sequence = r.sequence AND p.org_id = r.org_id
                AND (p.until IS NULL OR p.until > $3)"
        ))
        .bind(self.org_id)
        .bind(self.left)
        .bind(self.day)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_placement),
            " (ancestor, member_id, effective_on, sequence, until, org_id)
             SELECT a, member_id, GREATEST(effective_on, $3), sequence, until, org_id
               FROM ",
            table!(member_placement),
            " CROSS JOIN unnest($2::text[]) AS a
              WHERE ancestor = $1 AND (until IS NULL OR until > $3)"
        ))
        .bind(self.org_id)
        .bind(self.joined)
        .bind(self.day)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Places in the lists by status of the day's quarter and after move from the ancestors
    /// left to those joined: the subtree root's places say whose.
    async fn places(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let from = Quarter::of_date(self.day).to_string();
        sqlx::query(concat!(
            "DELETE FROM ",
            table!(member_status),
            " s USING ",
            table!(member_status),
            " r
              WHERE r.ancestor = $1 AND r.quarter >= $3 AND s.ancestor = ANY($2)
                AND s.quarter >= $3 AND s.quarter = r.quarter AND s.bucket = r.bucket AND s.member_id = r.member_id"
        ))
        .bind(self.org_id)
        .bind(self.left)
        .bind(&from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO ",
            table!(member_status),
            " (ancestor, quarter, bucket, member_id, shortfall_hundredths)
             SELECT a, quarter, bucket, member_id, shortfall_hundredths FROM ",
            table!(member_status),
            " CROSS JOIN unnest($2::text[]) AS a
              WHERE ancestor = $1 AND quarter >= $3"
        ))
        .bind(self.org_id)
        .bind(self.joined)
        .bind(&from)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// The subtree root's counters of the day's quarter and after leave the ancestors left
    /// and join those joined, with, in the day's quarter, the members it held the quarter
    /// before (the counters keep members as changes per quarter).
    async fn counters(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let from = Quarter::of_date(self.day).to_string();
        let mut ancestors: Vec<&str> = self.joined.iter().map(String::as_str).collect();
        let mut signs = vec![1_i64; ancestors.len()];
        ancestors.extend(self.left.iter().map(String::as_str));
        signs.resize(ancestors.len(), -1);
        sqlx::query(concat!(
            "WITH subtree AS (
                SELECT quarter, rules_version, member_delta, counted, compliant, not_met,
                       exempt, hundredths
                  FROM ",
            table!(org_quarter),
            " WHERE org_id = $1 AND quarter >= $2
                 UNION ALL
                SELECT $2, rules_version, sum(member_delta), 0, 0, 0, 0, 0 FROM ",
            table!(org_quarter),
            " WHERE org_id = $1 AND quarter < $2 GROUP BY rules_version),
             moved AS (
                SELECT quarter, rules_version, sum(member_delta) AS md, sum(counted) AS ct,
                       sum(compliant) AS co, sum(not_met) AS nm, sum(exempt) AS ex,
                       sum(hundredths) AS hu
                  FROM subtree GROUP BY quarter, rules_version)
             INSERT INTO ",
            table!(org_quarter),
            " AS c (org_id, quarter, rules_version, member_delta, counted, compliant, not_met,
                    exempt, hundredths)
             SELECT a.ancestor, m.quarter, m.rules_version, a.sign * m.md, a.sign * m.ct,
                    a.sign * m.co, a.sign * m.nm, a.sign * m.ex, a.sign * m.hu
               FROM moved m CROSS JOIN unnest($3::text[], $4::bigint[]) AS a(ancestor, sign)",
            add_to_counters!()
        ))
        .bind(self.org_id)
        .bind(&from)
        .bind(&ancestors)
        .bind(&signs)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
