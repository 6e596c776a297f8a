//! Reads that see the writes before them.
//!
//! The views trail the event log by the projector's lag. A read first notes the transaction
//! horizon — every event committed before the request lies below it (or below the horizon of
//! the `min_position` the client names) — and waits, at most two seconds, until the projector
//! has applied all of it. If it has not by then, the answer says so in `x-views-behind: true`
//! (see `answer::FromViews`).

use std::time::{Duration, Instant};

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::commit_order;

const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);

/// Waits until the views hold every event committed before now (and the one at
/// `min_position`); answers whether they do.
pub async fn wait_for_views(state: &AppState, min_position: Option<i64>) -> Result<bool, ApiError> {
    let pool = state.ledger().pool();
    let (mut horizon, fresh) = commit_order::fresh_now(pool).await?;
    if let Some(position) = min_position {
        if let Some(of_position) = commit_order::horizon_of_position(pool, position).await? {
            horizon = horizon.max(of_position);
        }
    } else if fresh {
        return Ok(true);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        if commit_order::caught_up_to(pool, horizon).await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}
