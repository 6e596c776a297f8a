//! The frame of every page: semantic HTML (a header with the navigation, one `main`), the
//! stylesheet served by the binary (the icon is the service's `/favicon.ico`), the language
//! switch and sign-out. No script anywhere: every page reads without JavaScript.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::http::dashboard::cookies::set_cookie;
use crate::http::dashboard::i18n::{lang_cookie, Lang};
use crate::http::dashboard::shell::bare;
use crate::http::dashboard::signed::Signed;
use crate::store::tokens::Role;

/// A signed-in page: the header (where the role may go, the language switch, sign-out) and
/// `content` as the page's `main`.
pub fn page(signed: &Signed, title: &str, content: Markup) -> Response {
    let lang = signed.lang;
    let principal = &signed.principal;
    let switch = switch_link(&signed.here, lang.other());
    let body = html! {
        a.skip href="#main" { (lang.t("跳到正文", "Skip to content")) }
        header {
            nav aria-label=(lang.t("主导航", "Main")) {
                ul {
                    @match principal.role {
                        Role::Member => {
                            @if let Some(member) = principal.member {
                                li { a href=(format!("/members/{member}")) { (lang.t("我的学时", "My record")) } }
                            }
                        }
                        Role::OrgAdmin => {
                            @if let Some(org) = &principal.org {
                                li { a href=(format!("/orgs/{org}")) { (lang.t("组织概览", "Organisation")) } }
                                li { a href=(format!("/orgs/{org}/behind")) { (lang.t("未达标人员", "Behind")) } }
                                li { a href=(format!("/orgs/{org}/appeals")) { (lang.t("申诉", "Appeals")) } }
                            }
                        }
                        _ => {
                            li { a href="/" { (lang.t("组织概览", "Organisations")) } }
                            li { a href="/health" { (lang.t("运行状况", "Health")) } }
                        }
                    }
                    li { a href="/rules" { (lang.t("考核规则", "Rules")) } }
                }
            }
            p.who { (principal.name) " · " (role_name(lang, principal.role)) }
            a.lang href=(switch) lang=(lang.other().html()) hreflang=(lang.other().html()) {
                (lang.other().t("中文", "English"))
            }
            form.sign-out method="post" action="/sign-out" {
                input type="hidden" name="csrf" value=(signed.csrf);
                button type="submit" { (lang.t("退出", "Sign out")) }
            }
        }
        main #main tabindex="-1" {
            h1 { (title) }
            (content)
        }
    };
    let mut response = bare(lang, title, body);
    if signed.lang_chosen {
        set_cookie(response.headers_mut(), &lang_cookie(lang));
    }
    response
}

/// The current page in the other language.
fn switch_link(here: &str, lang: Lang) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.retain(|(k, _)| k != "lang");
    pairs.push(("lang".to_owned(), lang.code().to_owned()));
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Admin => lang.t("管理员", "Administrator"),
        Role::Auditor => lang.t("审计员", "Auditor"),
        Role::OrgAdmin => lang.t("组织管理员", "Organisation administrator"),
        Role::Member => lang.t("成员", "Member"),
        Role::Ingest => lang.t("数据接入", "Ingest"),
    }
}

/// `GET /dashboard.css`: the one stylesheet (contrast at least 4.5:1 throughout).
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("dashboard.css"),
    )
        .into_response()
}
