//! `/orgs/{id}`: a node of the tree for a quarter — its roll-up, a chart of the last twelve
//! quarters, and its children, one level at a time; `/orgs/{id}/behind`: the subtree's members
//! who are not compliant or still in progress, paged, with the CSV download.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use serde_json::Value;
use studyledger_aggregates::values::{local_date, Quarter};

use crate::http::dashboard::api::{enc, text};
use crate::http::dashboard::chart::{line_svg, Series};
use crate::http::dashboard::i18n::{hours, percent, Lang};
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;

/// Quarters the chart covers.
const CHART_QUARTERS: usize = 12;

#[derive(Deserialize)]
pub struct OrgQuery {
    quarter: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
}

/// The quarter asked for, or the last one that has ended.
fn quarter_of(dash: &Dash, asked: Option<&str>) -> Result<Quarter, PageError> {
    match asked.filter(|q| !q.is_empty()) {
        Some(raw) => raw.parse().map_err(|_| {
            PageError::Status(
                axum::http::StatusCode::BAD_REQUEST,
                "季度格式应为 YYYY-Qn。 The quarter must be YYYY-Qn.",
            )
        }),
        None => Ok(this_quarter(dash).previous()),
    }
}

/// Today's quarter in the ledger's time zone.
fn this_quarter(dash: &Dash) -> Quarter {
    Quarter::of_date(local_date(Utc::now(), dash.app.ledger().tz()))
}

/// The `count` quarters up to `last`, oldest first.
fn quarters_to(last: Quarter, count: usize) -> Vec<Quarter> {
    let mut quarters = vec![last];
    while quarters.len() < count {
        let before = quarters[quarters.len() - 1].previous();
        quarters.push(before);
    }
    quarters.reverse();
    quarters
}

/// A quarter picker (a plain GET form).
/// It offers the sixteen quarters up to the current one in the ledger's time zone (`now`), or
/// up to the one shown when that is later, and the one shown when it is older.
fn quarter_form(
    lang: Lang,
    action: &str,
    (quarter, now): (Quarter, Quarter),
    extra: Markup,
) -> Markup {
    let mut choices = quarters_to(quarter.max(now), CHART_QUARTERS + 4);
    if !choices.contains(&quarter) {
        // An older quarter asked for by its URL stays the one the form sends.
        choices.insert(0, quarter);
    }
    html! {
        form.inline method="get" action=(action) {
            div {
                label for="quarter" { (lang.t("季度", "Quarter")) }
                select #quarter name="quarter" {
                    @for q in choices.iter().rev() {
                        option value=(q.to_string()) selected[*q == quarter] { (q.to_string()) }
                    }
                }
            }
            (extra)
            button type="submit" { (lang.t("查看", "Show")) }
        }
    }
}

fn f(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// `GET /orgs/{org_id}?quarter=`.
pub async fn overview(
    State(dash): State<Dash>,
    signed: Signed,
    Path(org_id): Path<String>,
    Query(query): Query<OrgQuery>,
) -> Result<Response, PageError> {
    let quarter = quarter_of(&dash, query.quarter.as_deref())?;
    let lang = signed.lang;
    let id = enc(&org_id);
    let mut node_uri = format!("/v1/orgs/{id}?limit=50");
    if let Some(cursor) = &query.cursor {
        node_uri.push_str(&format!("&cursor={}", enc(cursor)));
    }
    let node = dash.api.get(&signed, node_uri).await?;
    let quarters = quarters_to(quarter, CHART_QUARTERS);
    let history_uris = quarters
        .iter()
        .map(|q| format!("/v1/orgs/{id}/compliance?quarter={q}"))
        .collect();
    let history = dash.api.get_all(&signed, history_uris).await?;
    let children: Vec<(String, String)> = node["children"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|o| (text(&o["org_id"]).to_owned(), text(&o["name"]).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let child_uris = children
        .iter()
        .map(|(child, _)| format!("/v1/orgs/{}/compliance?quarter={quarter}", enc(child)))
        .collect();
    let child_rollups = dash.api.get_all(&signed, child_uris).await?;
    let current = history.last().cloned().unwrap_or(Value::Null);
    let name = node["name"].as_str().unwrap_or(&org_id).to_owned();
    let content = html! {
        (crumbs(lang, &node, quarter))
        (quarter_form(lang, &format!("/orgs/{id}"), (quarter, this_quarter(&dash)), html! {}))
        h2 { (quarter.to_string()) " " (lang.t("合规情况", "compliance")) }
        (rollup_facts(lang, &current))
        p {
            a href=(format!("/orgs/{id}/behind?quarter={quarter}")) { (lang.t("查看未达标和进行中的人员", "Members not compliant or in progress")) }
            " · "
            a href=(format!("/orgs/{id}/appeals")) { (lang.t("申诉队列", "Appeals queue")) }
        }
        (charts(lang, &quarters, &history))
        h2 #children { (lang.t("下级组织", "Child organisations")) }
        @if children.is_empty() {
            p.muted { (lang.t("没有下级组织。", "No child organisations.")) }
        } @else {
            (children_table(lang, quarter, &children, &child_rollups))
            @if let Some(next) = node["next_cursor"].as_str() {
                p { a href=(format!("/orgs/{id}?quarter={quarter}&cursor={}#children", enc(next))) { (lang.t("更多下级组织", "More child organisations")) } }
            }
        }
    };
    Ok(page(&signed, &name, content))
}

fn crumbs(lang: Lang, node: &Value, quarter: Quarter) -> Markup {
    let path = node["path"].as_array().cloned().unwrap_or_default();
    html! {
        nav.crumbs aria-label=(lang.t("组织路径", "Organisation path")) {
            ol {
                @for (i, org) in path.iter().enumerate() {
                    @let id = org["org_id"].as_str().unwrap_or_default();
                    @let name = org["name"].as_str().unwrap_or_default();
                    @if i + 1 == path.len() {
                        li aria-current="page" { (name) }
                    } @else {
                        li { a href=(format!("/orgs/{}?quarter={quarter}", enc(id))) { (name) } }
                    }
                }
            }
        }
    }
}

fn rollup_facts(lang: Lang, rollup: &Value) -> Markup {
    html! {
        dl.facts #rollup {
            dt { (lang.t("人数", "Members")) } dd data-field="members" { (rollup["members"]) }
            dt { (lang.status("compliant")) } dd data-field="compliant" { (rollup["compliant"]) }
            dt { (lang.status("non_compliant")) } dd data-field="non_compliant" { (rollup["non_compliant"]) }
            dt { (lang.status("in_progress")) } dd data-field="in_progress" { (rollup["in_progress"]) }
            dt { (lang.status("exempt")) } dd data-field="exempt" { (rollup["exempt"]) }
            dt { (lang.t("合规率", "Compliance rate")) } dd data-field="compliance_rate" { (percent(f(&rollup["compliance_rate"]))) }
            dt { (lang.t("人均学时", "Hours per member")) } dd data-field="credit_hours_per_member" { (hours(f(&rollup["credit_hours_per_member"]))) }
            dt { (lang.t("总学时", "Hours in total")) } dd data-field="credit_hours_total" { (hours(f(&rollup["credit_hours_total"]))) }
        }
    }
}

fn charts(lang: Lang, quarters: &[Quarter], history: &[Value]) -> Markup {
    let labels: Vec<String> = quarters.iter().map(Quarter::to_string).collect();
    let rates: Vec<Option<f64>> = history
        .iter()
        .map(|r| f(&r["compliance_rate"]).map(|r| r * 100.0))
        .collect();
    let per_member: Vec<Option<f64>> = history
        .iter()
        .map(|r| f(&r["credit_hours_per_member"]))
        .collect();
    let top_hours = per_member.iter().flatten().fold(0f64, |a, b| a.max(*b)) * 1.2;
    let rate_title = lang.t("合规率（%）", "Compliance rate (%)");
    let hours_title = lang.t("人均学时", "Hours per member");
    let rate_svg = line_svg(
        &Series {
            labels: &labels,
            values: &rates,
            top: 100.0,
        },
        540,
        240,
    );
    let hours_svg = line_svg(
        &Series {
            labels: &labels,
            values: &per_member,
            top: top_hours.max(1.0),
        },
        540,
        240,
    );
    html! {
        h2 { (lang.t("近十二个季度", "The last twelve quarters")) }
        div.charts {
            figure {
                div role="img" aria-label=(rate_title) { (PreEscaped(rate_svg)) }
                figcaption { (rate_title) }
            }
            figure {
                div role="img" aria-label=(hours_title) { (PreEscaped(hours_svg)) }
                figcaption { (hours_title) }
            }
        }
        table #history {
            caption { (lang.t("各季度数据", "Figures by quarter")) }
            thead { tr {
                th scope="col" { (lang.t("季度", "Quarter")) }
                th.num scope="col" { (lang.t("人数", "Members")) }
                th.num scope="col" { (rate_title) }
                th.num scope="col" { (hours_title) }
            } }
            tbody {
                @for (q, r) in quarters.iter().zip(history) {
                    tr {
                        th scope="row" { (q.to_string()) }
                        td.num { (r["members"]) }
                        td.num { (percent(f(&r["compliance_rate"]))) }
                        td.num { (hours(f(&r["credit_hours_per_member"]))) }
                    }
                }
            }
        }
    }
}

fn children_table(
    lang: Lang,
    quarter: Quarter,
    children: &[(String, String)],
    rollups: &[Value],
) -> Markup {
    html! {
        table #children-table {
            thead { tr {
                th scope="col" { (lang.t("组织", "Organisation")) }
                th.num scope="col" { (lang.t("人数", "Members")) }
                th.num scope="col" { (lang.t("合规率", "Compliance rate")) }
                th.num scope="col" { (lang.status("compliant")) }
                th.num scope="col" { (lang.status("non_compliant")) }
                th.num scope="col" { (lang.status("in_progress")) }
                th.num scope="col" { (lang.status("exempt")) }
            } }
            tbody {
                @for ((id, name), r) in children.iter().zip(rollups) {
                    tr data-org=(id) {
                        th scope="row" { a href=(format!("/orgs/{}?quarter={quarter}", enc(id))) { (name) } }
                        td.num data-field="members" { (r["members"]) }
                        td.num data-field="compliance_rate" { (percent(f(&r["compliance_rate"]))) }
                        td.num data-field="compliant" { (r["compliant"]) }
                        td.num data-field="non_compliant" { (r["non_compliant"]) }
                        td.num data-field="in_progress" { (r["in_progress"]) }
                        td.num data-field="exempt" { (r["exempt"]) }
                    }
                }
            }
        }
    }
}

/// The quarter and the status (non-compliant unless in progress is asked for) a behind list
/// is about.
fn behind_of(dash: &Dash, query: &OrgQuery) -> Result<(Quarter, &'static str), PageError> {
    let status = match query.status.as_deref() {
        Some("in_progress") => "in_progress",
        _ => "non_compliant",
    };
    Ok((quarter_of(dash, query.quarter.as_deref())?, status))
}

/// `GET /orgs/{org_id}/behind?quarter=&status=&cursor=`: most hours short first.
pub async fn behind(
    State(dash): State<Dash>,
    signed: Signed,
    Path(org_id): Path<String>,
    Query(query): Query<OrgQuery>,
) -> Result<Response, PageError> {
    let (quarter, status) = behind_of(&dash, &query)?;
    let lang = signed.lang;
    let id = enc(&org_id);
    let node = dash
        .api
        .get(&signed, format!("/v1/orgs/{id}?limit=1"))
        .await?;
    let mut uri =
        format!("/v1/orgs/{id}/members?quarter={quarter}&status={status}&order=shortfall&limit=50");
    if let Some(cursor) = &query.cursor {
        uri.push_str(&format!("&cursor={}", enc(cursor)));
    }
    let list = dash.api.get(&signed, uri).await?;
    let members = list["members"].as_array().cloned().unwrap_or_default();
    let name = node["name"].as_str().unwrap_or(&org_id).to_owned();
    let filter = html! {
        div {
            label for="status" { (lang.t("状态", "Status")) }
            select #status name="status" {
                @for s in ["non_compliant", "in_progress"] {
                    option value=(s) selected[s == status] { (lang.status(s)) }
                }
            }
        }
    };
    let content = html! {
        (crumbs(lang, &node, quarter))
        (quarter_form(lang, &format!("/orgs/{id}/behind"), (quarter, this_quarter(&dash)), filter))
        p { a href=(format!("/orgs/{id}/behind.csv?quarter={quarter}&status={status}")) download {
            (lang.t("下载 CSV", "Download CSV")) } }
        @if members.is_empty() {
            p.muted { (lang.t("没有符合条件的人员。", "No members of this status.")) }
        } @else {
            table #behind {
                caption.muted { (lang.t("按差额学时从多到少排列", "Most hours short first")) }
                thead { tr {
                    th scope="col" { (lang.t("编号", "Number")) }
                    th scope="col" { (lang.t("姓名", "Name")) }
                    th scope="col" { (lang.t("状态", "Status")) }
                    th.num scope="col" { (lang.t("必修学时", "Required hours")) }
                    th.num scope="col" { (lang.t("选修学时", "Elective hours")) }
                    th.num scope="col" { (lang.t("学习分钟", "Study minutes")) }
                    th.num scope="col" { (lang.t("差额学时", "Hours short")) }
                } }
                tbody {
                    @for m in &members {
                        @let member_id = m["member_id"].as_str().unwrap_or_default();
                        tr data-member=(member_id) {
                            td { (m["member_no"].as_str().unwrap_or_default()) }
                            td { a href=(format!("/members/{member_id}")) { (m["name"].as_str().unwrap_or_default()) } }
                            td class=(format!("status-{}", m["status"].as_str().unwrap_or_default())) { (lang.status(m["status"].as_str().unwrap_or_default())) }
                            td.num { (hours(f(&m["required_hours"]))) }
                            td.num { (hours(f(&m["elective_hours"]))) }
                            td.num { (m["study_minutes"]) }
                            td.num { (hours(f(&m["shortfall_hours"]))) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = list["next_cursor"].as_str() {
            p { a href=(format!("/orgs/{id}/behind?quarter={quarter}&status={status}&cursor={}", enc(next))) { (lang.t("下一页", "Next page")) } }
        }
    };
    let title = format!("{name} · {}", lang.t("未达标人员", "Members behind"));
    Ok(page(&signed, &title, content))
}

/// `GET /orgs/{org_id}/behind.csv?quarter=&status=`: the API's export, streamed through.
pub async fn behind_csv(
    State(dash): State<Dash>,
    signed: Signed,
    Path(org_id): Path<String>,
    Query(query): Query<OrgQuery>,
) -> Result<Response, PageError> {
    let (quarter, status) = behind_of(&dash, &query)?;
    let uri = format!(
        "/v1/orgs/{}/members.csv?quarter={quarter}&status={status}",
        enc(&org_id)
    );
    dash.api.csv(&signed, &uri).await
}
