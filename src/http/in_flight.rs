//! The bound on requests in flight (issue 14): beyond it a request is answered 503 with
//! `Retry-After` at once instead of waiting, so that an overload shows as quick refusals a
//! client can retry rather than as latency growing for everyone. A request counts from its
//! headers until its answer has been sent in full: a streamed export holds its place while it
//! streams. `/healthz` and `/readyz` are never refused, so that a load balancer still sees the
//! service.
//!
//! A semaphore tried without waiting, as tower's `ConcurrencyLimit` under `LoadShed` would,
//! but as a middleware around the whole service, so that the two probes can pass by and a
//! refusal is the same problem+json as every other error.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Semaphore;

use crate::http::error::problem;

/// Paths that are answered whatever the load.
const NEVER_REFUSED: [&str; 2] = ["/healthz", "/readyz"];

/// `router` with at most `max` requests in flight.
pub fn bound(router: Router, max: u32) -> Router {
    let permits = Arc::new(Semaphore::new(usize::try_from(max).unwrap_or(usize::MAX)));
    router.layer(axum::middleware::from_fn_with_state(permits, limit))
}

async fn limit(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    if NEVER_REFUSED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(permit) = permits.try_acquire_owned() else {
        return overloaded();
    };
    hold(next.run(request).await, permit)
}

fn overloaded() -> Response {
    crate::telemetry::overloaded();
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "Service overloaded",
        "too many requests in flight; retry shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The answer, with `held` kept until its body has been sent in full (or dropped).
pub fn hold<T: Send + Sync + Unpin + 'static>(response: Response, held: T) -> Response {
    response.map(|body| Body::new(Holding { body, _held: held }))
}

/// A body that keeps something alive as long as it is.
struct Holding<T> {
    body: Body,
    _held: T,
}

impl<T: Unpin> HttpBody for Holding<T> {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
