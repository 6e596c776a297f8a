//! The what-if of `/rules`: a proposed ruleset sent from a form (`POST /what-ifs`), and its
//! results at `/what-ifs/{id}` — how many members would change status, per organisation, and
//! who — with the CSV download. Both through `/v1/what-ifs`.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::dashboard::api::{enc, text};
use crate::http::dashboard::i18n::{local_time, Lang};
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;

/// The form on `/rules` that proposes a ruleset.
pub fn proposal_form(lang: Lang, csrf: &str) -> Markup {
    html! {
        h2 #what-if { (lang.t("假设分析：拟议规则", "What-if: a proposed ruleset")) }
        p.muted { (lang.t("按拟议规则重新评判每位成员的各季度，不发布、不改变任何数据。",
            "Judges every member's quarters under the proposal: nothing is published or changed.")) }
        form.inline method="post" action="/what-ifs" {
            input type="hidden" name="csrf" value=(csrf);
            div { label for="effective_from" { (lang.t("生效季度", "Effective from")) }
                input #effective_from name="effective_from" required pattern="[0-9]{4}-Q[1-4]" placeholder="2025-Q1" size="8"; }
            div { label for="required_hours" { (lang.t("必修学时", "Required hours")) }
                input #required_hours name="required_hours" type="number" min="0" max="1000" step="0.01" required value="8"; }
            div { label for="elective_hours" { (lang.t("选修学时", "Elective hours")) }
                input #elective_hours name="elective_hours" type="number" min="0" max="1000" step="0.01" required value="3"; }
            div { label { input name="excess_required_counts_as_elective" type="checkbox" value="true";
                " " (lang.t("超出必修计入选修", "Excess required counts as elective")) } }
            div { label { input name="enforce_min_study_time" type="checkbox" value="true" checked;
                " " (lang.t("检查最短学习时长", "Minimum study time enforced")) } }
            button type="submit" { (lang.t("开始分析", "Run the what-if")) }
        }
    }
}

#[derive(Deserialize)]
pub struct Proposal {
    csrf: String,
    effective_from: String,
    required_hours: String,
    elective_hours: String,
    excess_required_counts_as_elective: Option<String>,
    enforce_min_study_time: Option<String>,
}

/// A number from a form field, as JSON (the API checks its range and decimals).
fn number(field: &str, raw: &str) -> Result<Value, PageError> {
    raw.trim()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .map_err(|_| PageError::Refused(StatusCode::BAD_REQUEST, format!("{field}: {raw}")))
}

/// `POST /what-ifs`: starts the what-if, then shows it.
pub async fn start(
    State(dash): State<Dash>,
    signed: Signed,
    Form(form): Form<Proposal>,
) -> Result<Response, PageError> {
    signed.check_csrf(&form.csrf)?;
    let body = json!({
        "effective_from": form.effective_from.trim(),
        "required_hours": number("required_hours", &form.required_hours)?,
        "elective_hours": number("elective_hours", &form.elective_hours)?,
        "excess_required_counts_as_elective": form.excess_required_counts_as_elective.is_some(),
        "enforce_min_study_time": form.enforce_min_study_time.is_some(),
    });
    let started = dash
        .api
        .json(
            &signed,
            Method::POST,
            "/v1/what-ifs".to_owned(),
            Some(&body),
        )
        .await?;
    Ok(Redirect::to(&format!("/what-ifs/{}", text(&started["what_if_id"]))).into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
}

/// `GET /what-ifs/{what_if_id}`.
pub async fn show(
    State(dash): State<Dash>,
    signed: Signed,
    Path(what_if_id): Path<uuid::Uuid>,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let mut uri = format!("/v1/what-ifs/{what_if_id}?limit=50");
    if let Some(cursor) = &query.cursor {
        uri.push_str(&format!("&cursor={}", enc(cursor)));
    }
    let found = dash.api.get(&signed, uri).await?;
    let lang = signed.lang;
    let tz = dash.app.ledger().tz();
    let proposed = &found["proposed"];
    let content = html! {
        dl.facts #what-if {
            dt { (lang.t("状态", "Status")) } dd data-field="status" data-status=(text(&found["status"])) { (lang.job(text(&found["status"]))) }
            dt { (lang.t("拟议规则", "Proposal")) } dd { (text(&proposed["effective_from"])) " · "
                (proposed["required_hours"]) " + " (proposed["elective_hours"]) }
            dt { (lang.t("开始", "Started")) } dd { (local_time(text(&found["started_at"]), tz)) " · " (text(&found["requested_by"])) }
            dt { (lang.t("已评判成员", "Members judged")) } dd data-field="members_examined" { (found["members_examined"]) }
            dt { (lang.t("状态将改变的成员", "Members who would change")) } dd data-field="members_changed" { (found["members_changed"]) }
            dt { (lang.t("结果保留至", "Kept until")) } dd { (local_time(text(&found["expires_at"]), tz)) }
        }
        @if let Some(error) = found["error"].as_str() { p.error role="alert" { (error) } }
        @if text(&found["status"]) == "running" {
            p { a href=(format!("/what-ifs/{what_if_id}")) { (lang.t("刷新", "Refresh")) } }
        }
        p { a href=(format!("/what-ifs/{what_if_id}/changes.csv")) download { (lang.t("下载 CSV", "Download CSV")) } }
        h2 { (lang.t("按组织", "By organisation")) }
        table #what-if-orgs {
            thead { tr { th scope="col" { (lang.t("组织", "Organisation")) } th.num scope="col" { (lang.t("成员", "Members")) } } }
            tbody { @for org in found["orgs"].as_array().into_iter().flatten() {
                tr data-org=(text(&org["org_id"])) {
                    th scope="row" { (org["name"].as_str().unwrap_or(text(&org["org_id"]))) }
                    td.num data-field="members" { (org["members"]) }
                }
            } }
        }
        h2 { (lang.t("名单", "Who")) }
        table #what-if-changes {
            thead { tr {
                th scope="col" { (lang.t("编号", "Number")) } th scope="col" { (lang.t("姓名", "Name")) }
                th scope="col" { (lang.t("季度", "Quarter")) } th scope="col" { (lang.t("现状态", "Now")) }
                th scope="col" { (lang.t("拟状态", "Proposed")) }
            } }
            tbody { @for c in found["changes"].as_array().into_iter().flatten() {
                tr data-member=(text(&c["member_id"])) {
                    td { (text(&c["member_no"])) }
                    td { a href=(format!("/members/{}", text(&c["member_id"]))) { (text(&c["name"])) } }
                    td { (text(&c["quarter"])) }
                    td { (lang.status(text(&c["status_now"]))) }
                    td { (lang.status(text(&c["status_proposed"]))) }
                }
            } }
        }
        @if let Some(next) = found["next_cursor"].as_str() {
            p { a href=(format!("/what-ifs/{what_if_id}?cursor={}", enc(next))) { (lang.t("下一页", "Next page")) } }
        }
    };
    Ok(page(&signed, lang.t("假设分析", "What-if"), content))
}

/// `GET /what-ifs/{what_if_id}/changes.csv`: the API's CSV, streamed through.
pub async fn changes_csv(
    State(dash): State<Dash>,
    signed: Signed,
    Path(what_if_id): Path<uuid::Uuid>,
) -> Result<Response, PageError> {
    let uri = format!("/v1/what-ifs/{what_if_id}/changes.csv");
    dash.api.csv(&signed, &uri).await
}
