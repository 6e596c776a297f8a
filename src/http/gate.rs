//! The gate every API route passes: the route's policy (from its OpenAPI annotation, see
//! `auth`), the caller, and whether the route admits them. Closed by default: a route without a
//! policy admits nobody.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::auth::{Policy, Vouched};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Middleware on every API route: the route's policy, the caller, whether it is admitted.
/// The caller goes into the request for the handler (`auth::Caller`).
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = state.auth();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let policy = path.and_then(|p| auth.policies().get(request.method(), &p).cloned());
    let roles = match policy {
        Some(Policy::Open) => return next.run(request).await,
        Some(Policy::Roles(roles)) => roles,
        None => return ApiError::Forbidden.into_response(),
    };
    let vouched = request.extensions().get::<Vouched>().map(|v| v.0.clone());
    let principal = match vouched {
        Some(principal) => principal,
        None => {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match auth.principal(authorization).await {
                Ok(principal) => principal,
                Err(error) => return error.into_response(),
            }
        }
    };
    if !roles.contains(&principal.role) {
        return ApiError::Forbidden.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
