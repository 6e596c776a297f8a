//! The PostgreSQL pool and the migrations embedded in the binary.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::store::connections;
use crate::store::hosts::{self, Hosts};

pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a statement may wait for a pooled connection before it fails (and its request is
/// answered 503): short, so that a database that is not there is reported well within 5 s.
/// sqlx keeps trying to connect meanwhile, as long as PostgreSQL refuses connections.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Pool settings for every pool of the service. sqlx pings a pooled connection before each
/// use by default — a whole extra round trip per statement. Here only a connection that has
/// been idle for a while is pinged (one found dead is closed and replaced, so a connection
/// that died while idle — PostgreSQL restarted — is never reported); a connection that breaks
/// mid-use fails its statement, and the request is answered 503 and can be resent.
pub fn pool_options(pool_size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(pool_size.max(1))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for < connections::CHECK_IDLE_AFTER {
                    return Ok(true);
                }
                match connections::answers(connection).await {
                    Ok(()) => Ok(true),
                    Err(error) => {
                        tracing::info!(%error, "an idle pooled connection was dead; replaced");
                        Ok(false)
                    }
                }
            })
        })
}

/// A pool on the database `database_url` names: one host, or libpq's list of hosts with
/// `target_session_attrs`, in which case the pool goes to the host that serves as asked and
/// follows it when it moves (a failover).
pub async fn connect(database_url: &str, pool_size: u32) -> Result<PgPool, sqlx::Error> {
    let hosts = Hosts::parse(database_url)?;
    if !hosts.needs_watching() {
        return pool_options(pool_size)
            .connect_with(hosts.each[0].clone())
            .await;
    }
    let chosen = hosts.find().await?;
    let attrs = hosts.attrs;
    let pool = pool_options(pool_size)
        .after_connect(move |connection, _| Box::pin(hosts::check_role(connection, attrs)))
        .connect_with(chosen.clone())
        .await?;
    tracing::info!(host = %hosts::address(&chosen), "connected to the database host serving as {:?}", hosts.attrs);
    hosts::follow(hosts, pool.clone(), chosen);
    Ok(pool)
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether every migration this binary knows has been applied.
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)",
    )
    .bind(MIGRATOR.iter().map(|m| m.version).collect::<Vec<i64>>())
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(applied).unwrap_or(0) == MIGRATOR.iter().count())
}

/// The transaction ids a cluster must assign from before it appends to a log restored into it
/// (see [`transaction_ids_behind`]): `pg_resetwal -e epoch -x xid` on the stopped cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidFloor {
    /// The log's highest transaction id.
    pub log_max: u64,
    pub epoch: u32,
    pub xid: u32,
}

/// A xact status (`pg_xact`) segment holds this many transactions: starting the cluster's
/// transaction ids at a segment's start lets PostgreSQL create that segment itself.
const XACT_SEGMENT: u64 = 1_048_576;

impl XidFloor {
    /// The first segment start beyond `log_max`, as (epoch, xid): never xid 0, which
    /// PostgreSQL does not assign.
    pub fn above(log_max: u64) -> XidFloor {
        let mut next = (log_max / XACT_SEGMENT + 1) * XACT_SEGMENT;
        if next & 0xffff_ffff == 0 {
            next += XACT_SEGMENT;
        }
        XidFloor {
            log_max,
            epoch: u32::try_from(next >> 32).unwrap_or(u32::MAX),
            xid: u32::try_from(next & 0xffff_ffff).unwrap_or(u32::MAX),
        }
    }

    /// The first transaction id the cluster assigns once reset.
    pub fn next(&self) -> u64 {
        (u64::from(self.epoch) << 32) | u64::from(self.xid)
    }
}

/// Whether this cluster would hand out transaction ids at or below the log's highest: a log
/// restored (`pg_dump`, `pg_restore`) into another cluster keeps the transaction ids it was
/// written with, and events appended there with lower ones would sort before the restored ones
/// in commit order, where the projector, which has passed them, would never read them. The
/// service refuses to start on such a database; `studyledger xid-floor` prints the remedy.
pub async fn transaction_ids_behind(pool: &PgPool) -> Result<Option<XidFloor>, sqlx::Error> {
    // The checkpoint's transaction ids count too: a restored `covered` above the cluster's
    // would have reads believe the views hold what they do not. `covered` is a horizon (every
    // id below it had ended), so it may equal the next id, never exceed it.
    let (log_max, next): (Option<String>, String) = sqlx::query_as(
        "SELECT GREATEST((SELECT max(transaction_id)::text::numeric FROM events),
                         (SELECT max(GREATEST(transaction_id::text::numeric,
                                              covered::text::numeric - 1))
                            FROM projector_checkpoints))::text,
                pg_snapshot_xmax(pg_current_snapshot())::text",
    )
    .fetch_one(pool)
    .await?;
    let log_max = log_max.and_then(|m| m.parse::<u64>().ok());
    let next = next.parse::<u64>().unwrap_or(0);
    Ok(log_max.filter(|m| *m >= next).map(XidFloor::above))
}

/// [`transaction_ids_behind`] as an error that says what to do.
pub async fn ensure_transaction_ids_ahead(pool: &PgPool) -> Result<(), crate::JobError> {
    match transaction_ids_behind(pool).await? {
        None => Ok(()),
        Some(floor) => Err(format!(
            "this database holds transaction ids up to {} (its events and the projector's \
             checkpoint) but its PostgreSQL cluster would assign lower ones, so events appended now would never be projected \
             (a log restored into another cluster): freeze the cluster's databases \
             (`vacuumdb --all --freeze`), stop it and run `pg_resetwal -e {} -x {} -D <data \
             folder>` before starting it again (README, \"Backup and restore\")",
            floor.log_max, floor.epoch, floor.xid
        )
        .into()),
    }
}

/// Why an acknowledged write could be lost with the primary, if it could: the primary must
/// commit only once a synchronous standby has the record (`synchronous_standby_names` names
/// one, `synchronous_commit` is `on`, `remote_write` or `remote_apply`, and such a standby is
/// connected now). `None` when all of that holds.
pub async fn durability_gap(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    let (names, commit, in_sync, hidden): (String, String, i64, i64) = sqlx::query_as(
        "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit'),
                (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')),
                (SELECT count(*) FROM pg_stat_replication WHERE sync_state IS NULL)",
    )
    .fetch_one(pool)
    .await?;
    Ok(if names.trim().is_empty() {
        Some(
            "synchronous_standby_names is empty: the primary acknowledges commits no standby has"
                .to_owned(),
        )
    } else if !matches!(commit.as_str(), "on" | "remote_write" | "remote_apply") {
        Some(format!(
            "synchronous_commit is {commit}: commits do not wait for the standby"
        ))
    } else if in_sync == 0 && hidden > 0 {
        Some("this role cannot see the standbys' replication state: grant it pg_monitor".to_owned())
    } else if in_sync == 0 {
        Some(format!("no synchronous standby is connected (synchronous_standby_names = '{names}'): commits wait until one is"))
    } else {
        None
    })
}

/// Logs a warning when [`durability_gap`] finds one (or cannot tell).
pub async fn warn_without_synchronous_standby(pool: &PgPool) {
    match durability_gap(pool).await {
        Ok(None) => tracing::info!("commits wait for a synchronous standby"),
        Ok(Some(gap)) => tracing::warn!(
            "the database runs without a synchronous standby; a failover could lose \
             acknowledged commits, or commits may wait: {gap} (README, \"Failover\")"
        ),
        Err(error) => tracing::warn!(%error, "could not check for a synchronous standby"),
    }
}

/// Lets the connection's transaction commit without waiting for the WAL flush. Only for
/// writes of derived data (views and their checkpoint commit together, and are rebuilt from
/// the log if the last of them is lost in a crash), never for events.
pub async fn skip_flush_wait(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(tx)
        .await?;
    Ok(())
}

/// Keeps notices below warnings ("does not exist, skipping" and the like) off the log.
pub async fn warnings_only(connection: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET client_min_messages TO warning")
        .execute(connection)
        .await?;
    Ok(())
}

/// Makes the transaction give up on a lock it waits for after `seconds` (error 55P03), so
/// that statements queued behind it do not wait long either.
pub async fn lock_timeout(tx: &mut sqlx::PgConnection, seconds: u32) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL lock_timeout = '{seconds}s'"))
        .execute(tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::XidFloor;

    #[test]
    fn the_floor_is_the_next_xact_segment_above_the_log() {
        let floor = XidFloor::above(5_000_000);
        assert_eq!((floor.epoch, floor.xid), (0, 5_242_880));
        assert!(floor.next() > 5_000_000);
        assert_eq!(XidFloor::above(1_048_575).xid, 1_048_576);
        assert_eq!(XidFloor::above(1_048_576).xid, 2_097_152);
        // Across an epoch: never xid 0.
        let late = XidFloor::above((1 << 32) - 10);
        assert_eq!((late.epoch, late.xid), (1, 1_048_576));
        let later = XidFloor::above((3 << 32) + 7);
        assert_eq!((later.epoch, later.xid), (3, 1_048_576));
        assert!(later.next() > (3 << 32) + 7);
    }
}
