//! Signing in and out, and the signed-in user every page is for.
//!
//! - `/` shows the sign-in form (`<input type="password" name="token">`); a token the service
//!   accepts opens a session: a random secret in an HttpOnly, SameSite=Strict cookie, only its
//!   SHA-256 stored (`store::sessions`), for [`SESSION_HOURS`] at most.
//! - Every page checks the session *and* its token again (the authenticator's one-second
//!   cache): a revoked or expired token ends its sessions at once.
//! - Every form carries the session's CSRF value (the sign-in form, before any session, a
//!   value it also sets in a cookie of its own); a form without it is refused with 403.
//! - Which roles may open a page is written once, in [`PAGES`]; a page not there admits
//!   nobody.

use axum::extract::{FromRequestParts, MatchedPath, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Duration;
use cookie::{Cookie, SameSite};
use maud::html;
use serde::Deserialize;

use crate::http::auth::Principal;
use crate::http::dashboard::cookies::{cookie_value, set_cookie};
use crate::http::dashboard::i18n::Lang;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::shell::bare;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::{Dash, PAGES};
use crate::store::sessions;
use crate::store::tokens::{self, Role};

/// The session's cookie.
pub const SESSION_COOKIE: &str = "sl_session";
/// The sign-in form's own CSRF cookie.
const SIGN_IN_COOKIE: &str = "sl_sign_in";
/// How long a session lasts at most.
pub const SESSION_HOURS: i64 = 12;

fn session_cookie(value: String, max_age: cookie::time::Duration) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .build()
}

/// The session a request's cookie names, and its principal, when both are live.
async fn session_of(
    dash: &Dash,
    headers: &HeaderMap,
) -> Result<Option<(Principal, String)>, PageError> {
    let Some(secret) = cookie_value(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let pool = dash.app.ledger().pool();
    let Some(session) = sessions::find(pool, &secret)
        .await
        .map_err(PageError::store)?
    else {
        return Ok(None);
    };
    match dash
        .app
        .auth()
        .principal_of_hash(session.secret_sha256)
        .await
    {
        Ok(principal) => Ok(Some((principal, session.csrf))),
        Err(_) => Ok(None),
    }
}

impl FromRequestParts<Dash> for Signed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, dash: &Dash) -> Result<Self, Self::Rejection> {
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let Some((principal, csrf)) = session_of(dash, &parts.headers).await? else {
            return Err(PageError::SignIn { next: here });
        };
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let admitted = PAGES
            .iter()
            .find(|(path, _)| Some(*path) == route)
            .is_some_and(|(_, roles)| roles.contains(&principal.role));
        if !admitted {
            return Err(PageError::forbidden());
        }
        let (lang, lang_chosen) = Lang::of(&parts.uri, &parts.headers);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Signed {
            principal,
            csrf,
            lang,
            lang_chosen,
            here,
            request_id,
        })
    }
}

/// Where a role's dashboard starts.
pub async fn home_of(dash: &Dash, principal: &Principal) -> Result<String, PageError> {
    Ok(match principal.role {
        Role::Member => principal
            .member
            .map_or_else(|| "/rules".to_owned(), |m| format!("/members/{m}")),
        Role::OrgAdmin => principal
            .org
            .as_ref()
            .map_or_else(|| "/rules".to_owned(), |o| format!("/orgs/{o}")),
        Role::Admin | Role::Auditor => {
            let pool = dash.app.ledger().pool();
            let roots = studyledger_projections::sql::orgs::children(pool, None, None, 1)
                .await
                .map_err(PageError::store)?;
            roots
                .first()
                .map_or_else(|| "/rules".to_owned(), |(id, _)| format!("/orgs/{id}"))
        }
        Role::Ingest => "/rules".to_owned(),
    })
}

#[derive(Deserialize)]
pub struct HomeQuery {
    next: Option<String>,
}

/// `GET /`: the sign-in form, or, for a signed-in user, their dashboard.
pub async fn home(
    State(dash): State<Dash>,
    Query(query): Query<HomeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some((principal, _)) = session_of(&dash, &headers).await? {
        return Ok(Redirect::to(&home_of(&dash, &principal).await?).into_response());
    }
    let (lang, _) = Lang::of(&uri, &headers);
    Ok(sign_in_form(lang, query.next.as_deref(), None))
}

fn sign_in_form(lang: Lang, next: Option<&str>, refused: Option<&str>) -> Response {
    let csrf = sessions::random_secret();
    let status = if refused.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let body = html! {
        main.sign-in {
            h1 { (lang.t("学时账本", "Study ledger")) }
            form method="post" action="/sign-in" {
                @if let Some(refused) = refused {
                    p.error role="alert" { (refused) }
                }
                label for="token" { (lang.t("访问令牌", "Access token")) }
                input #token type="password" name="token" required autocomplete="current-password";
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next.unwrap_or(""));
                input type="hidden" name="lang" value=(lang.code());
                button type="submit" { (lang.t("登录", "Sign in")) }
            }
            p { a href=(format!("/?lang={}", lang.other().code())) lang=(lang.other().html()) {
                (lang.other().t("中文", "English")) } }
        }
    };
    let sign_in = Cookie::build((SIGN_IN_COOKIE, csrf))
        .path("/sign-in")
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    let mut response = bare(lang, lang.t("登录", "Sign in"), body);
    *response.status_mut() = status;
    set_cookie(response.headers_mut(), &sign_in);
    response
}

/// `next` when it is a path of this service: one `/`, then no second `/` or `\\` (which a
/// browser reads as another host), and nothing but visible ASCII. Anything else: `None`.
pub fn local_path(next: &str) -> Option<&str> {
    let mut bytes = next.bytes();
    let local = bytes.next() == Some(b'/')
        && !matches!(bytes.next(), Some(b'/' | b'\\'))
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    local.then_some(next)
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    lang: String,
}

/// `POST /sign-in`: a token the service accepts opens a session.
pub async fn sign_in(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, PageError> {
    let lang = if form.lang == "en" {
        Lang::En
    } else {
        Lang::Zh
    };
    let expected = cookie_value(&headers, SIGN_IN_COOKIE);
    if form.csrf.is_empty() || expected.as_deref() != Some(form.csrf.as_str()) {
        return Err(PageError::Status(
            StatusCode::FORBIDDEN,
            "表单已过期，请重新打开页面。 The form has expired: open the page again.",
        ));
    }
    let hash = tokens::secret_hash(form.token.trim());
    let Ok(principal) = dash.app.auth().principal_of_hash(hash.clone()).await else {
        let refused = lang.t(
            "令牌无效、已过期或已吊销。",
            "The token is invalid, expired or revoked.",
        );
        return Ok(sign_in_form(lang, Some(&form.next), Some(refused)));
    };
    let pool = dash.app.ledger().pool();
    sessions::sweep(pool).await.map_err(PageError::store)?;
    let secret = sessions::open(pool, &hash, Duration::hours(SESSION_HOURS))
        .await
        .map_err(PageError::store)?;
    let next = match local_path(&form.next) {
        Some(path) => path.to_owned(),
        None => home_of(&dash, &principal).await?,
    };
    let mut response = Redirect::to(&next).into_response();
    let lasts = cookie::time::Duration::hours(SESSION_HOURS);
    set_cookie(response.headers_mut(), &session_cookie(secret, lasts));
    Ok(response)
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: String,
}

/// `POST /sign-out`: the session ends, here and in the database.
pub async fn sign_out(
    State(dash): State<Dash>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Result<Response, PageError> {
    let Some(secret) = cookie_value(&headers, SESSION_COOKIE) else {
        return Ok(Redirect::to("/").into_response());
    };
    let pool = dash.app.ledger().pool();
    let session = sessions::find(pool, &secret)
        .await
        .map_err(PageError::store)?;
    if session.as_ref().is_some_and(|s| s.csrf != form.csrf) {
        return Err(PageError::forbidden());
    }
    sessions::end(pool, &secret)
        .await
        .map_err(PageError::store)?;
    let mut response = Redirect::to("/").into_response();
    let gone = session_cookie(String::new(), cookie::time::Duration::ZERO);
    set_cookie(response.headers_mut(), &gone);
    Ok(response)
}
