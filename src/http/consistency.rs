//! Reads that see the writes before them.
//!
//! The views trail the event log by the projector's lag. A read first notes the transaction
//! horizon — every event committed before the request lies below it (or below the horizon of
//! the `min_position` the client names) — and waits, at most two seconds, until the projector
//! has applied all of it. If it has not by then, the answer says so in `x-views-behind: true`
//! (see `answer::FromViews`).
//!
//! With a standby for reads (`DATABASE_READ_URL`), [`views`] sends a read there once the
//! standby has replayed the primary's WAL as of the request and its views cover the horizon,
//! which it waits for at most [`STANDBY_WAIT`]; past that, or when the standby fails, the
//! primary answers as without one.

use std::time::Duration;

use sqlx::PgPool;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::commit_order;
use crate::telemetry;

const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);
/// How long a read waits for the standby before the primary answers it: the bound on the lag
/// a read tolerates.
pub const STANDBY_WAIT: Duration = Duration::from_millis(500);

/// Where a read of the views goes, and whether the views there hold what it must see.
pub struct Views {
    pub pool: PgPool,
    pub caught_up: bool,
}

/// The views a read must see: on the standby when it has caught up within [`STANDBY_WAIT`],
/// else on the primary (waiting there as [`wait_for_views`] does).
pub async fn views(state: &AppState, min_position: Option<i64>) -> Result<Views, ApiError> {
    let ledger = state.ledger();
    let Some(standby) = ledger.read_pool() else {
        return primary_views(state, min_position).await;
    };
    let primary = ledger.pool();
    let (horizon, wal) = commit_order::horizon_and_wal(primary).await?;
    let horizon = covering(primary, horizon, min_position).await?;
    // The bound holds whatever the standby does, a pool waiting for a connection included.
    match tokio::time::timeout(STANDBY_WAIT, standby_holds(standby, horizon, &wal)).await {
        Ok(Ok(())) => {
            telemetry::view_read("standby");
            return Ok(Views {
                pool: standby.clone(),
                caught_up: true,
            });
        }
        Ok(Err(error)) => tracing::warn!(%error, "the standby could not answer; the primary does"),
        Err(_) => tracing::debug!("the standby lags; the primary answers"),
    }
    telemetry::view_read("primary");
    Ok(Views {
        pool: primary.clone(),
        caught_up: commit_order::wait_until_covered(primary, horizon, WAIT).await?,
    })
}

/// The views on the primary, once they hold what the read must see (see [`wait_for_views`]):
/// for reads that must hold back a replay's swap of the views, which a standby cannot.
pub async fn primary_views(state: &AppState, min_position: Option<i64>) -> Result<Views, ApiError> {
    let caught_up = wait_for_views(state, min_position).await?;
    Ok(Views {
        pool: state.ledger().pool().clone(),
        caught_up,
    })
}

/// Waits until the standby has replayed the primary's WAL up to `wal` and its views cover
/// `horizon` (the caller bounds the wait).
async fn standby_holds(standby: &PgPool, horizon: u64, wal: &str) -> Result<(), sqlx::Error> {
    while !commit_order::replayed(standby, wal).await? {
        tokio::time::sleep(POLL).await;
    }
    while !commit_order::caught_up_to(standby, horizon).await? {
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Waits until the views hold every event committed before now (and the one at
/// `min_position`); answers whether they do.
pub async fn wait_for_views(state: &AppState, min_position: Option<i64>) -> Result<bool, ApiError> {
    let pool = state.ledger().pool();
    let (horizon, fresh) = commit_order::fresh_now(pool).await?;
    if fresh && min_position.is_none() {
        return Ok(true);
    }
    let horizon = covering(pool, horizon, min_position).await?;
    Ok(commit_order::wait_until_covered(pool, horizon, WAIT).await?)
}

/// `horizon`, raised to cover the event at `min_position` when the client names one.
async fn covering(
    pool: &PgPool,
    horizon: u64,
    min_position: Option<i64>,
) -> Result<u64, sqlx::Error> {
    let Some(position) = min_position else {
        return Ok(horizon);
    };
    let of_position = commit_order::horizon_of_position(pool, position).await?;
    Ok(of_position.map_or(horizon, |h| horizon.max(h)))
}
