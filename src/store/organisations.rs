//! The locks that keep an organisation's closing apart from every move into it, and moves of
//! subtrees apart from each other.
//!
//! A command that places someone in an organisation (an enrolment, a transfer, a rejoining, a
//! child organisation's registration) shares the organisation's advisory lock inside the
//! transaction that records it, and checks there that no closing is in the log. A closing
//! takes the lock alone: once it holds it, every move into the organisation has committed
//! (and is in the log) or waits and then finds the closing. Transaction-scoped, so the locks
//! go with the transaction, also when its connection dies.

use sqlx::PgConnection;

/// The lock of each organisation: a 64-bit hash of its id, apart from every other lock.
const KEY: &str = "hashtextextended('organisation:' || org_id, 0)";

/// Shares the locks of these organisations until the caller's transaction ends and answers
/// those of them that are closed. Shared locks never wait on each other, only on a
/// closing, which holds nothing a mover waits for.
pub async fn share(tx: &mut PgConnection, org_ids: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    let mut sorted: Vec<&str> = org_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock_shared({KEY}) FROM unnest($1::text[]) AS o (org_id)"
    ))
    .bind(&sorted)
    .execute(&mut *tx)
    .await?;
    closed_among(tx, &sorted).await
}

/// Takes the organisation's lock alone until the caller's transaction ends, with the shared
/// lock of `also` (the organisation a merge sends members to), in id order, so that two
/// merges of the same two organisations, opposite ways, wait on each other, never deadlock.
pub async fn take_alone(
    tx: &mut PgConnection,
    org_id: &str,
    also: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut locks = vec![(org_id, false)];
    locks.extend(also.map(|o| (o, true)));
    locks.sort_unstable();
    for (org, shared) in locks {
        let function = if shared {
            "pg_advisory_xact_lock_shared"
        } else {
            "pg_advisory_xact_lock"
        };
        sqlx::query(&format!(
            "SELECT {function}({KEY}) FROM (SELECT $1::text AS org_id) o"
        ))
        .bind(org)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The tree's lock: a key apart from every organisation's (theirs hash `organisation:…`).
const TREE: &str = "hashtextextended('organisation tree', 0)";

/// Takes the tree's lock alone until the caller's transaction ends: moves under another
/// parent take it, one at a time, before any organisation's lock.
pub async fn take_tree(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SELECT pg_advisory_xact_lock({TREE})"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Shares the tree's lock until the caller's transaction ends, before any organisation's
/// lock: a merge, which must find its target outside the subtree it closes until it commits.
pub async fn share_tree(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SELECT pg_advisory_xact_lock_shared({TREE})"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Those of these organisations whose closing is in the log: one probe of each stream by key
/// (a filter on `aggregate_id = ANY(…)` would read every organisation's events, since the
/// planner cannot tell how few there are of one kind).
pub async fn closed_among(
    tx: &mut PgConnection,
    org_ids: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT o.org_id FROM unnest($1::text[]) AS o (org_id)
          CROSS JOIN LATERAL (SELECT 1 FROM events e
                               WHERE e.aggregate_type = 'organisation'
                                 AND e.aggregate_id = o.org_id
                                 AND e.event_type = 'OrganisationClosed'
                               LIMIT 1) AS closing
          ORDER BY o.org_id",
    )
    .bind(org_ids)
    .fetch_all(&mut *tx)
    .await
}
