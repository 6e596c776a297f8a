//! The organisation tree as the views hold it: each node with its path from the root, so a
//! subtree is one indexed lookup (`path @> ARRAY[org]`).

use sqlx::{PgConnection, PgExecutor};
use studyledger_aggregates::organisation::{Closure, Move, OrganisationEvent, OrganisationRecord};

use crate::sql::moves;

/// What an organisation's event changes in the tree.
pub enum OrgChange {
    Registered(OrganisationRecord),
    /// (organisation, its new name).
    Renamed(String, String),
    /// (organisation, its closing).
    Closed(String, Closure),
    /// (organisation, its move with its subtree under another parent).
    Moved(String, Move),
}

impl OrgChange {
    /// The change an organisation's event makes in the views.
    pub fn of(org_id: &str, event: OrganisationEvent) -> OrgChange {
        match event {
            OrganisationEvent::OrganisationRegistered(record) => OrgChange::Registered(record),
            OrganisationEvent::OrganisationRenamed(rename) => {
                OrgChange::Renamed(org_id.to_owned(), rename.name.into_string())
            }
            OrganisationEvent::OrganisationClosed(closure) => {
                OrgChange::Closed(org_id.to_owned(), closure)
            }
            OrganisationEvent::OrganisationMoved(to) => OrgChange::Moved(org_id.to_owned(), to),
        }
    }

    /// Writes it into the tree.
    pub async fn write(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        match self {
            OrgChange::Registered(record) => upsert_organisation(connection, record).await,
            OrgChange::Renamed(org_id, name) => rename_organisation(connection, org_id, name).await,
            OrgChange::Closed(org_id, closure) => {
                close_organisation(connection, org_id, closure).await
            }
            OrgChange::Moved(org_id, to) => {
                moves::move_subtree(connection, org_id, to.parent_id.as_str(), to.moved_on).await
            }
        }
    }
}

/// Marks a node closed from its closing day (and, after a merge, where its members went).
pub async fn close_organisation(
    connection: &mut PgConnection,
    org_id: &str,
    closure: &Closure,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE ",
        table!(org),
        " SET closed_on = $2, merged_into = $3 WHERE org_id = $1"
    ))
    .bind(org_id)
    .bind(closure.closed_on)
    .bind(closure.merged_into.as_ref().map(|o| o.as_str()))
    .execute(connection)
    .await?;
    Ok(())
}

/// Adds a node under its parent (already there: parents register first), with its ancestors
/// over time: its parent's, and itself.
pub async fn upsert_organisation(
    connection: &mut PgConnection,
    record: &OrganisationRecord,
) -> Result<(), sqlx::Error> {
    let added = sqlx::query(concat!(
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
    .execute(&mut *connection)
    .await?;
    if added.rows_affected() == 0 {
        return Ok(());
    }
    sqlx::query(concat!(
        "INSERT INTO ",
        table!(org_ancestry),
        " (org_id, ancestor, since, until)
         SELECT $1, ancestor, since, until FROM ",
        table!(org_ancestry),
        " WHERE org_id = $2
         UNION ALL SELECT $1, $1, NULL, NULL"
    ))
    .bind(record.org_id.as_str())
    .bind(record.parent_id.as_ref().map(|p| p.as_str()))
    .execute(connection)
    .await?;
    Ok(())
}

/// Gives a node its new name (roll-ups and lists show the name of today; the organisation's
/// events keep each name with when it was given).
pub async fn rename_organisation(
    connection: &mut PgConnection,
    org_id: &str,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE ",
        table!(org),
        " SET name = $2 WHERE org_id = $1"
    ))
    .bind(org_id)
    .bind(name)
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

/// Whether `org_id` is `ancestor` or lies below it in the tree of today; `None` when the tree
/// does not hold it (yet).
pub async fn within(
    connection: impl PgExecutor<'_>,
    org_id: &str,
    ancestor: &str,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT path @> ARRAY[$2] FROM ",
        table!(org),
        " WHERE org_id = $1"
    ))
    .bind(org_id)
    .bind(ancestor)
    .fetch_optional(connection)
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

/// An organisation as the tree holds it: its name, parent and path from the root.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Node {
    pub org_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub path: Vec<String>,
    pub closed_on: Option<chrono::NaiveDate>,
    pub merged_into: Option<String>,
}

/// The organisation, when registered.
pub async fn node(
    connection: impl PgExecutor<'_>,
    org_id: &str,
) -> Result<Option<Node>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT org_id, name, parent_id, path, closed_on, merged_into FROM ",
        table!(org),
        " WHERE org_id = $1"
    ))
    .bind(org_id)
    .fetch_optional(connection)
    .await
}

/// The names of these organisations, by id (unknown ids are left out).
pub async fn names(
    connection: impl PgExecutor<'_>,
    org_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT org_id, name FROM ",
        table!(org),
        " WHERE org_id = ANY($1)"
    ))
    .bind(org_ids)
    .fetch_all(connection)
    .await
}

/// The next `limit` children of `parent` (the roots when `None`) after `after`, in id order —
/// one range of the `org_view_children` index.
pub async fn children(
    connection: impl PgExecutor<'_>,
    parent: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let query = match parent {
        Some(_) => concat!(
            "SELECT org_id, name FROM ",
            table!(org),
            " WHERE parent_id = $1 AND org_id > coalesce($2, '') ORDER BY org_id LIMIT $3"
        ),
        None => concat!(
            "SELECT org_id, name FROM ",
            table!(org),
            " WHERE parent_id IS NULL AND $1::text IS NULL AND org_id > coalesce($2, '')
              ORDER BY org_id LIMIT $3"
        ),
    };
    sqlx::query_as(query)
        .bind(parent)
        .bind(after)
        .bind(limit)
        .fetch_all(connection)
        .await
}

/// The day of the last move that changed what lies above the organisation, anything in its
/// subtree, or `parent`: a move of any of them cannot take effect before it.
pub async fn last_move(
    connection: impl PgExecutor<'_>,
    org_id: &str,
    parent: &str,
) -> Result<Option<chrono::NaiveDate>, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT GREATEST(max(since), max(until)) FROM ",
        table!(org_ancestry),
        " WHERE org_id = ANY(ARRAY(SELECT org_id FROM ",
        table!(org),
        " WHERE path @> ARRAY[$1]) || $2)"
    ))
    .bind(org_id)
    .bind(parent)
    .fetch_one(connection)
    .await
}

/// The children of `parent` that are not closed, in id order.
pub async fn open_children(
    connection: impl PgExecutor<'_>,
    parent: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT org_id FROM ",
        table!(org),
        " WHERE parent_id = $1 AND closed_on IS NULL ORDER BY org_id"
    ))
    .bind(parent)
    .fetch_all(connection)
    .await
}

/// The stays in the organisation itself (not its subtree) that reach `day` or later, as
/// (member, the stay's first day), in member order: who would still belong to it from `day` on.
/// A stay that ends the day it begins (a move the same day after it) holds nobody.
pub async fn staying_from(
    connection: impl PgExecutor<'_>,
    org_id: &str,
    day: chrono::NaiveDate,
) -> Result<Vec<(uuid::Uuid, chrono::NaiveDate)>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT member_id, effective_on FROM ",
        table!(member_placement),
        " WHERE ancestor = $1 AND org_id = $1
            AND (until IS NULL OR (until > $2 AND until > effective_on))
          ORDER BY member_id, effective_on"
    ))
    .bind(org_id)
    .bind(day)
    .fetch_all(connection)
    .await
}
