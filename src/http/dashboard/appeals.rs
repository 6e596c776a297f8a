//! `/orgs/{id}/appeals`: the subtree's open appeals, each with its explanation "as determined"
//! beside "now", and, for those the API lets resolve, the form that resolves it with a note.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::dashboard::api::{enc, text};
use crate::http::dashboard::i18n::{hours, local_time, Lang};
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;
use crate::store::tokens::Role;

/// Appeals per page (each is explained on the page).
const PER_PAGE: usize = 20;

#[derive(Deserialize)]
pub struct QueueQuery {
    cursor: Option<uuid::Uuid>,
    /// Show the queue once the views hold the event at this position (after a resolution).
    min_position: Option<i64>,
}

/// `GET /orgs/{org_id}/appeals`.
pub async fn queue(
    State(dash): State<Dash>,
    signed: Signed,
    Path(org_id): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let api = &dash.api;
    let id = enc(&org_id);
    let mut uri = format!("/v1/orgs/{id}/appeals?limit={PER_PAGE}");
    if let Some(cursor) = query.cursor {
        uri.push_str(&format!("&cursor={cursor}"));
    }
    if let Some(position) = query.min_position {
        uri.push_str(&format!("&min_position={position}"));
    }
    let (node, list) = futures::try_join!(
        api.get(&signed, format!("/v1/orgs/{id}?limit=1")),
        api.get(&signed, uri)
    )?;
    let appeals = list["appeals"].as_array().cloned().unwrap_or_default();
    let explain_uris = appeals
        .iter()
        .map(|a| {
            format!(
                "/v1/members/{}/eligibility/{}?explain=true",
                text(&a["member_id"]),
                enc(text(&a["evaluation_id"]))
            )
        })
        .collect();
    let explained = api.get_all(&signed, explain_uris).await?;
    let lang = signed.lang;
    let tz = dash.app.ledger().tz();
    let may_resolve = matches!(signed.principal.role, Role::Admin | Role::OrgAdmin);
    let content = html! {
        @if appeals.is_empty() {
            p.muted { (lang.t("没有待处理的申诉。", "No open appeals.")) }
        }
        @for (appeal, eligibility) in appeals.iter().zip(&explained) {
            @let member_id = text(&appeal["member_id"]);
            section.appeal data-appeal=(text(&appeal["appeal_id"])) {
                h2 { a href=(format!("/members/{member_id}")) { (text(&appeal["name"])) }
                    " · " (text(&appeal["member_no"])) " · " (text(&appeal["evaluation_id"])) }
                p { (lang.t("申诉理由：", "Reason: ")) (text(&appeal["reason"])) }
                p.muted { (lang.t("提交于 ", "Filed on ")) (local_time(text(&appeal["filed_at"]), tz)) }
                (explanation(lang, &eligibility["explanation"]))
                @if may_resolve {
                    (resolve_form(lang, &signed.csrf, &org_id, appeal))
                }
            }
        }
        @if let Some(next) = list["next_cursor"].as_str() {
            p { a href=(format!("/orgs/{id}/appeals?cursor={next}")) { (lang.t("下一页", "Next page")) } }
        }
    };
    let title = format!(
        "{} · {}",
        text(&node["name"]),
        lang.t("申诉队列", "Appeals queue")
    );
    Ok(page(&signed, &title, content))
}

fn side(lang: Lang, heading: &str, side: &Value) -> Markup {
    html! {
        div {
            h3 { (heading) " · " (if side["eligible"].as_bool() == Some(true) { lang.t("符合资格", "Eligible") } else { lang.t("不符合资格", "Not eligible") }) }
            p.muted { (lang.t("规则版本 ", "Rules version ")) (side["rules_version"]) }
            ul {
                @for q in side["quarters"].as_array().into_iter().flatten() {
                    li { (text(&q["quarter"])) "：" (lang.status(text(&q["status"])))
                        " (" (hours(q["required_hours"].as_f64())) " / " (hours(q["elective_hours"].as_f64())) ")" }
                }
            }
        }
    }
}

fn explanation(lang: Lang, explanation: &Value) -> Markup {
    html! {
        div.columns {
            (side(lang, lang.t("评定时", "As determined"), &explanation["as_determined"]))
            (side(lang, lang.t("按现在", "Now"), &explanation["now"]))
        }
    }
}

fn resolve_form(lang: Lang, csrf: &str, org_id: &str, appeal: &Value) -> Markup {
    let appeal_id = text(&appeal["appeal_id"]);
    let action = format!(
        "/members/{}/appeals/{appeal_id}/resolution",
        text(&appeal["member_id"])
    );
    let note_id = format!("note-{appeal_id}");
    let outcome_id = format!("outcome-{appeal_id}");
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="org_id" value=(org_id);
            div {
                label for=(outcome_id) { (lang.t("结论", "Outcome")) }
                select id=(outcome_id) name="outcome" {
                    option value="upheld" { (lang.t("维持原评定", "Upheld")) }
                    option value="overturned" { (lang.t("改变原评定", "Overturned")) }
                }
            }
            div {
                label for=(note_id) { (lang.t("处理意见", "Note")) }
                input id=(note_id) type="text" name="note" required maxlength="2000";
            }
            button type="submit" { (lang.t("处理申诉", "Resolve")) }
        }
    }
}

#[derive(Deserialize)]
pub struct Resolve {
    csrf: String,
    org_id: String,
    outcome: String,
    note: String,
}

/// `POST /members/{member_id}/appeals/{appeal_id}/resolution`: the API's resolution, then
/// back to the queue.
pub async fn resolve(
    State(dash): State<Dash>,
    signed: Signed,
    Path((member_id, appeal_id)): Path<(uuid::Uuid, uuid::Uuid)>,
    Form(form): Form<Resolve>,
) -> Result<Response, PageError> {
    signed.check_csrf(&form.csrf)?;
    let body = json!({ "outcome": form.outcome, "note": form.note });
    let resolved = dash
        .api
        .json(
            &signed,
            Method::POST,
            format!("/v1/members/{member_id}/appeals/{appeal_id}/resolution"),
            Some(&body),
        )
        .await?;
    // Back to the queue as it stands once the views hold the resolution.
    let mut back = format!("/orgs/{}/appeals", enc(&form.org_id));
    if let Some(position) = resolved["position"].as_i64() {
        back.push_str(&format!("?min_position={position}"));
    }
    Ok(Redirect::to(&back).into_response())
}
