//! The shapes of answers that are more than a JSON body: a 201 for a recorded fact, a 202 for
//! work that runs on, and an
//! answer read from the views, marked when they had not caught up with the request.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// 201 Created with a JSON body.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

/// 202 Accepted with a JSON body and the `Location` to follow while the work runs.
pub struct Accepted<T> {
    pub answer: T,
    pub location: String,
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::ACCEPTED, Json(self.answer)).into_response();
        if let Ok(location) = HeaderValue::from_str(&self.location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

pub static VIEWS_BEHIND: HeaderName = HeaderName::from_static("x-views-behind");

/// An answer from the views: `x-views-behind: true` when they had not caught up with
/// everything committed before the request (see `consistency`).
pub struct FromViews<T> {
    pub answer: T,
    pub caught_up: bool,
}

impl<T: IntoResponse> IntoResponse for FromViews<T> {
    fn into_response(self) -> Response {
        let mut response = self.answer.into_response();
        if !self.caught_up {
            response
                .headers_mut()
                .insert(VIEWS_BEHIND.clone(), HeaderValue::from_static("true"));
        }
        response
    }
}
