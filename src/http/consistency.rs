//! Reads that see the writes before them.
//!
//! The views trail the event log by the projector's lag. A read first notes the transaction
//! horizon — every event committed before the request lies below it (or below the horizon of
//! the `min_position` the client names) — and waits, at most two seconds, until the projector
//! has applied all of it. If it has not by then, the answer says so in `x-views-behind: true`.

use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::projector;

const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);

pub static VIEWS_BEHIND: HeaderName = HeaderName::from_static("x-views-behind");

/// Waits until the views hold every event committed before now (and the one at
/// `min_position`); answers whether they do.
pub async fn wait_for_views(state: &AppState, min_position: Option<i64>) -> Result<bool, ApiError> {
    let pool = state.ledger().pool();
    let mut horizon = projector::horizon(pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    if let Some(position) = min_position {
        if let Some(of_position) = projector::horizon_of_position(pool, position)
            .await
            .map_err(crate::store::StoreError::from)?
        {
            horizon = horizon.max(of_position);
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        if projector::caught_up_to(pool, horizon)
            .await
            .map_err(crate::store::StoreError::from)?
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// An answer from the views, marked `x-views-behind: true` when they had not caught up.
pub fn marked(mut response: Response, caught_up: bool) -> Response {
    if !caught_up {
        response
            .headers_mut()
            .insert(VIEWS_BEHIND.clone(), HeaderValue::from_static("true"));
    }
    response
}
