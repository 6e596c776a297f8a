//! `/members/{id}`: a member's profile, their quarters with status, their transcript (each
//! completion credited or not and why, adjustments with reasons, where each fact came from) and
//! their eligibility per evaluation with the determination's basis and any appeal.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono_tz::Tz;
use maud::{html, Markup};
use serde_json::Value;

use crate::http::dashboard::api::text;
use crate::http::dashboard::i18n::{hours, local_time, Lang};
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;

/// `GET /members/{member_id}`.
pub async fn member(
    State(dash): State<Dash>,
    signed: Signed,
    Path(member_id): Path<uuid::Uuid>,
) -> Result<Response, PageError> {
    let api = &dash.api;
    // The profile first: it answers 403 (out of reach) or 404 before anything else is read.
    let profile = api.get(&signed, format!("/v1/members/{member_id}")).await?;
    let (compliance, ledger) = futures::try_join!(
        api.get(&signed, format!("/v1/members/{member_id}/compliance")),
        api.get(&signed, format!("/v1/members/{member_id}/ledger")),
    )?;
    let evaluations: Vec<String> = profile["evaluations"]
        .as_array()
        .map(|e| e.iter().map(|v| text(v).to_owned()).collect())
        .unwrap_or_default();
    let eligibility = api
        .get_all(
            &signed,
            evaluations
                .iter()
                .map(|evaluation| format!("/v1/members/{member_id}/eligibility/{evaluation}"))
                .collect(),
        )
        .await?;
    let lang = signed.lang;
    let tz = dash.app.ledger().tz();
    let content = html! {
        (profile_facts(lang, &profile))
        (quarters(lang, &compliance))
        (transcript(lang, tz, &ledger))
        (eligibilities(lang, tz, &eligibility))
    };
    let title = format!(
        "{} · {}",
        text(&profile["name"]),
        text(&profile["member_no"])
    );
    Ok(page(&signed, &title, content))
}

fn profile_facts(lang: Lang, profile: &Value) -> Markup {
    let credited = &profile["credited_hours"];
    html! {
        dl.facts #profile {
            dt { (lang.t("编号", "Number")) } dd data-field="member_no" { (text(&profile["member_no"])) }
            dt { (lang.t("所在组织", "Organisation")) } dd data-field="org_id" { (text(&profile["org_id"])) }
            dt { (lang.t("登记日期", "Enrolled on")) } dd data-field="enrolled_on" { (text(&profile["enrolled_on"])) }
            dt { (lang.t("累计必修学时", "Required hours, lifetime")) } dd data-field="required" { (hours(credited["required"].as_f64())) }
            dt { (lang.t("累计选修学时", "Elective hours, lifetime")) } dd data-field="elective" { (hours(credited["elective"].as_f64())) }
            dt { (lang.t("累计学时", "Hours, lifetime")) } dd data-field="total" { (hours(credited["total"].as_f64())) }
        }
        @if profile["incomplete"].as_bool() == Some(true) {
            p.error role="alert" { (lang.t("此记录含有无法应用的事件，显示内容可能不完整。",
                "This record holds an event the ledger could not apply: what is shown may miss a fact.")) }
        }
    }
}

fn quarters(lang: Lang, compliance: &Value) -> Markup {
    let rows = compliance["quarters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    html! {
        h2 { (lang.t("各季度合规情况", "Quarters")) }
        table #quarters {
            thead { tr {
                th scope="col" { (lang.t("季度", "Quarter")) }
                th scope="col" { (lang.t("状态", "Status")) }
                th.num scope="col" { (lang.t("必修学时", "Required hours")) }
                th.num scope="col" { (lang.t("选修学时", "Elective hours")) }
                th.num scope="col" { (lang.t("目标（必修/选修）", "Target (required/elective)")) }
                th.num scope="col" { (lang.t("学习分钟", "Study minutes")) }
                th.num scope="col" { (lang.t("规则版本", "Rules version")) }
            } }
            tbody {
                @for q in rows.iter().rev() {
                    tr data-quarter=(text(&q["quarter"])) {
                        th scope="row" { (text(&q["quarter"])) }
                        td class=(format!("status-{}", text(&q["status"]))) data-status=(text(&q["status"])) { (lang.status(text(&q["status"]))) }
                        td.num data-field="required_hours" { (hours(q["required_hours"].as_f64())) }
                        td.num data-field="elective_hours" { (hours(q["elective_hours"].as_f64())) }
                        td.num { (hours(q["required_target"].as_f64())) " / " (hours(q["elective_target"].as_f64())) }
                        td.num { (q["study_minutes"]) }
                        td.num { (q["ruleset_version"]) }
                    }
                }
            }
        }
    }
}

fn reason(lang: Lang, raw: &str) -> &'static str {
    match raw {
        "insufficient_study_time" => lang.t("学习时长不足", "Not enough study time"),
        "duplicate_completion" => lang.t("重复完成", "Completed before"),
        "withdrawn" => lang.t("来源语句已作废", "Its statement was voided"),
        _ => "",
    }
}

/// Where a fact came from: an xAPI statement, or who recorded it (API or import).
fn source(lang: Lang, entry: &Value) -> Markup {
    html! {
        @if let Some(statement) = entry["source_statement_id"].as_str() {
            "xAPI " code { (statement) }
        } @else {
            (text(&entry["recorded_by"])) " (" (text(&entry["recorded_by_role"])) ", "
            (lang.t("接口", "API")) ")"
        }
    }
}

fn transcript(lang: Lang, tz: Tz, ledger: &Value) -> Markup {
    let entries = ledger["entries"].as_array().cloned().unwrap_or_default();
    html! {
        h2 { (lang.t("学时明细", "Transcript")) }
        @if entries.is_empty() {
            p.muted { (lang.t("尚无记录。", "Nothing recorded yet.")) }
        } @else {
            table #transcript {
                thead { tr {
                    th scope="col" { (lang.t("时间", "When")) }
                    th scope="col" { (lang.t("事项", "What")) }
                    th scope="col" { (lang.t("类别", "Category")) }
                    th.num scope="col" { (lang.t("学时", "Hours")) }
                    th scope="col" { (lang.t("是否计入", "Credited")) }
                    th scope="col" { (lang.t("来源", "Source")) }
                } }
                tbody {
                    @for e in entries.iter().rev() {
                        tr data-sequence=(e["sequence"]) {
                            td { (local_time(text(&e["occurred_at"]), tz)) }
                            td {
                                @if text(&e["kind"]) == "credit_adjustment" {
                                    (lang.t("学时调整：", "Adjustment: ")) (text(&e["reason"]))
                                } @else {
                                    (lang.t("完成课程 ", "Completed ")) code { (text(&e["course_id"])) }
                                }
                            }
                            td { (if text(&e["category"]) == "required" { lang.t("必修", "Required") } else { lang.t("选修", "Elective") }) }
                            td.num { (hours(e["hours"].as_f64())) }
                            td {
                                (lang.yes_no(e["credited"].as_bool() == Some(true)))
                                @if let Some(why) = e["not_credited_reason"].as_str() {
                                    "：" (reason(lang, why))
                                }
                            }
                            td { (source(lang, e)) }
                        }
                    }
                }
            }
        }
    }
}

fn eligibilities(lang: Lang, tz: Tz, answers: &[Value]) -> Markup {
    html! {
        h2 { (lang.t("评优资格", "Merit eligibility")) }
        @if answers.is_empty() {
            p.muted { (lang.t("尚无评定。", "Not determined yet.")) }
        }
        @for answer in answers {
            @let determination = &answer["determination"];
            section.eligibility data-evaluation=(text(&answer["evaluation_id"])) {
                h3 { (text(&answer["evaluation_id"])) " · "
                    (if answer["eligible"].as_bool() == Some(true) { lang.t("符合资格", "Eligible") } else { lang.t("不符合资格", "Not eligible") }) }
                p { (lang.t("评定于 ", "Determined on ")) (local_time(text(&determination["determined_at"]), tz))
                    (lang.t("，规则版本 ", ", rules version ")) (determination["rules_version"]) }
                ul {
                    @for q in determination["quarters"].as_array().into_iter().flatten() {
                        li { (text(&q["quarter"])) "：" (lang.status(text(&q["status"])))
                            " (" (hours(q["required_hours"].as_f64())) " / " (hours(q["elective_hours"].as_f64())) ")" }
                    }
                }
                @if answer["appeal"].is_object() {
                    @let appeal = &answer["appeal"];
                    p { (lang.t("申诉：", "Appeal: ")) (text(&appeal["reason"])) " · " (lang.appeal(text(&appeal["status"])))
                        @if let Some(note) = appeal["note"].as_str() { " · " (note) } }
                }
            }
        }
    }
}
