//! The table work of a replay: fresh copies of the view tables in a schema of their own,
//! filled by the same bulk writes as the live ones, then indexed and swapped in.
//!
//! The new tables are made `LIKE` the live ones (columns, defaults, checks, keys), so the
//! migrations stay the one definition of their shape; the other indexes are built after the
//! load, under the live tables' names.

use sqlx::PgConnection;

use crate::sql::VIEW_TABLES;

/// The schema a rebuild writes into until the swap.
const NEXT: &str = "replay_next";

/// Creates empty copies of the view tables in `replay_next` (dropping what an earlier rebuild
/// left behind), and puts them first in the connection's `search_path`: from then on every
/// view statement on this connection writes the new tables (and every other one the live
/// tables of `public`).
pub async fn create_next(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    drop_next(&mut *connection).await?;
    sqlx::query(&format!("CREATE SCHEMA {NEXT}"))
        .execute(&mut *connection)
        .await?;
    for table in VIEW_TABLES {
        // Columns, defaults and checks now; the keys too, of the tables whose rows are
        // upserted on them.
        sqlx::query(&format!(
            "CREATE TABLE {NEXT}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *connection)
        .await?;
        if !KEYED_AFTER_LOAD.contains(&table) {
            add_keys(&mut *connection, table).await?;
        }
    }
    sqlx::query(&format!("SET search_path TO {NEXT}, public"))
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Tables a rebuild only inserts into (never upserts): their keys are built after the load,
/// from sorted rows, rather than entry by entry in the random order the members come in.
const KEYED_AFTER_LOAD: [&str; 2] = [table!(member_status), table!(member_placement)];

/// Gives a new table the live one's primary key and unique constraints.
async fn add_keys(connection: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = format('public.%I', $1::text)::regclass AND contype IN ('p', 'u')",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await?;
    for (name, definition) in keys {
        sqlx::query(&format!(
            "ALTER TABLE {NEXT}.{table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Drops the new tables of an unfinished rebuild, if any.
pub async fn drop_next(connection: impl sqlx::PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {NEXT} CASCADE"))
        .execute(connection)
        .await?;
    Ok(())
}

/// Builds the live tables' other indexes on the new tables, under the same names (index names
/// are per schema), and gathers their statistics.
pub async fn index_next(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    for table in VIEW_TABLES {
        if KEYED_AFTER_LOAD.contains(&table) {
            add_keys(&mut *connection, table).await?;
        }
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
              WHERE i.indrelid = format('public.%I', $1::text)::regclass
                AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        )
        .bind(table)
        .fetch_all(&mut *connection)
        .await?;
        for definition in indexes {
            let on_live = format!(" ON public.{table} ");
            let on_next = format!(" ON {NEXT}.{table} ");
            sqlx::query(&definition.replacen(&on_live, &on_next, 1))
                .execute(&mut *connection)
                .await?;
        }
        sqlx::query(&format!("ANALYZE {NEXT}.{table}"))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Inside the swap's transaction: takes the live tables from their readers (waiting at most
/// as long as the transaction's `lock_timeout`), moves them out and the new ones in.
pub async fn swap_in_next(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    let live: Vec<String> = VIEW_TABLES.iter().map(|t| format!("public.{t}")).collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        live.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DROP SCHEMA IF EXISTS replay_old CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE SCHEMA replay_old")
        .execute(&mut *tx)
        .await?;
    for table in VIEW_TABLES {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA replay_old"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {NEXT}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DROP SCHEMA replay_old CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {NEXT}"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Empties every view table (a projector then rebuilds them from its checkpoint; the caller
/// resets that in the same transaction).
pub async fn empty_views(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("TRUNCATE {}", VIEW_TABLES.join(", ")))
        .execute(tx)
        .await?;
    Ok(())
}
