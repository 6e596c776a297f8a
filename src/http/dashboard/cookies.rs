//! The dashboard's cookies: read from a request's headers, added to an answer's, and marked
//! `Secure` when the request came over HTTPS.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use cookie::Cookie;

/// The cookies a request carries.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'static>> + '_ {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).filter_map(Result::ok))
}

/// The value of one cookie.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Whether the request reached the proxy in front of the service over HTTPS
/// (`X-Forwarded-Proto: https`, or `proto=https` in `Forwarded`). A client that claims so over
/// plain HTTP only gets cookies its own browser will not send back.
fn came_over_https(headers: &HeaderMap) -> bool {
    let says = |name: &str, test: &dyn Fn(&str) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(test)
    };
    says("x-forwarded-proto", &|v| {
        v.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }) || says("forwarded", &|v| {
        v.split([';', ','])
            .any(|part| part.trim().eq_ignore_ascii_case("proto=https"))
    })
}

/// Marks every cookie of the answer `Secure` when the request came over HTTPS (the service
/// itself speaks plain HTTP behind a TLS proxy; a browser then sends the cookies over HTTPS
/// only).
pub async fn secure_over_https(request: Request, next: Next) -> Response {
    let https = came_over_https(request.headers());
    let mut response = next.run(request).await;
    if https {
        let set: Vec<HeaderValue> = response
            .headers_mut()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        response.headers_mut().remove(header::SET_COOKIE);
        for value in set {
            let secured = value
                .to_str()
                .ok()
                .and_then(|v| HeaderValue::from_str(&format!("{v}; Secure")).ok())
                .unwrap_or(value);
            response.headers_mut().append(header::SET_COOKIE, secured);
        }
    }
    response
}
