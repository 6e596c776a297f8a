//! The organisation tree as the views hold it: each node with its path from the root, so a
//! subtree is one indexed lookup (`path @> ARRAY[org]`).

use sqlx::{PgConnection, PgExecutor};
use studyledger_aggregates::organisation::OrganisationRecord;

/// Adds a node under its parent (already there: parents register first).
pub async fn upsert_organisation(
    connection: &mut PgConnection,
    record: &OrganisationRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO ",
        table!(org),
        " (org_id, name, parent_id, path)
         SELECT $1, $2, $3, COALESCE((SELECT path FROM ",
        table!(org),
        " WHERE org_id = $3), '{}') || $1
         ON CONFLICT (org_id) DO NOTHING"
    ))
    .bind(record.org_id.as_str())
    .bind(record.name.as_str())
    .bind(record.parent_id.as_ref().map(|p| p.as_str()))
    .execute(connection)
    .await?;
    Ok(())
}

/// Whether the organisation is in the tree.
pub async fn is_registered(
    connection: impl PgExecutor<'_>,
    org_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT EXISTS (SELECT 1 FROM ",
        table!(org),
        " WHERE org_id = $1)"
    ))
    .bind(org_id)
    .fetch_one(connection)
    .await
}

/// The organisation and all its descendants; `None` when the organisation is unknown.
pub async fn subtree(
    connection: impl PgExecutor<'_>,
    org_id: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let orgs: Vec<String> = sqlx::query_scalar(concat!(
        "SELECT org_id FROM ",
        table!(org),
        " WHERE path @> ARRAY[$1]"
    ))
    .bind(org_id)
    .fetch_all(connection)
    .await?;
    Ok((!orgs.is_empty()).then_some(orgs))
}
