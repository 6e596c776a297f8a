//! `/health`: the projector's lag, the last replay, the statements and import rows refused, the
//! skipped events — with links to the lists behind each count.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::http::dashboard::api::text;
use crate::http::dashboard::i18n::local_time;
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;

/// `GET /health`.
pub async fn health(State(dash): State<Dash>, signed: Signed) -> Result<Response, PageError> {
    let health = dash.api.get(&signed, "/v1/health".to_owned()).await?;
    let lang = signed.lang;
    let tz = dash.app.ledger().tz();
    let projector = &health["projector"];
    let replay = &health["last_replay"];
    let review = &health["statements_to_review"];
    let imports = &health["imports"];
    let skipped = &health["skipped_events"];
    let content = html! {
        h2 { (lang.t("投影进度", "Projector")) }
        dl.facts #projector {
            dt { (lang.t("待投影事件", "Events behind")) } dd data-field="events_behind" { (projector["events_behind"]) }
            dt { (lang.t("落后秒数", "Seconds behind")) } dd data-field="seconds_behind" { (format!("{:.1}", projector["seconds_behind"].as_f64().unwrap_or(0.0))) }
        }
        h2 { (lang.t("最近一次重放", "Last replay")) }
        @if replay.is_object() {
            dl.facts #replay {
                dt { (lang.t("编号", "Id")) } dd { code { (text(&replay["replay_id"])) } }
                dt { (lang.t("状态", "Status")) } dd data-field="status" { (lang.job(text(&replay["status"]))) }
                dt { (lang.t("仅预演", "Dry run")) } dd { (lang.yes_no(replay["dry_run"].as_bool() == Some(true))) }
                dt { (lang.t("开始", "Started")) } dd { (local_time(text(&replay["started_at"]), tz)) }
                dt { (lang.t("结束", "Finished")) } dd { (replay["finished_at"].as_str().map_or_else(|| "—".to_owned(), |t| local_time(t, tz))) }
            }
            p { (lang.t("变化明细：", "Changes: ")) code { "GET /v1/replays/" (text(&replay["replay_id"])) } }
        } @else {
            p.muted { (lang.t("尚未重放。", "No replay yet.")) }
        }
        h2 { (lang.t("待复核的 xAPI 语句", "xAPI statements to review")) }
        table #review {
            thead { tr { th scope="col" { (lang.t("结果", "Outcome")) } th.num scope="col" { (lang.t("数量", "Count")) } th scope="col" { (lang.t("清单", "List")) } } }
            tbody {
                @for (outcome, zh, en) in [("refused", "被拒绝", "Refused"), ("unreadable", "无法读取", "Unreadable"),
                                           ("unknown_member", "成员未知", "Unknown member"), ("unknown_activity", "活动未知", "Unknown activity")] {
                    tr {
                        th scope="row" { (lang.t(zh, en)) }
                        td.num data-field=(outcome) { (review[outcome]) }
                        td { code { "GET /v1/statement-mappings?outcome=" (outcome) } }
                    }
                }
            }
        }
        h2 { (lang.t("导入", "Imports")) }
        dl.facts #imports {
            dt { (lang.t("导入次数", "Imports")) } dd data-field="imports" { (imports["imports"]) }
            dt { (lang.t("被拒绝的行", "Rows refused")) } dd data-field="rows_refused" { (imports["rows_refused"]) }
            @if let Some(last) = imports["last_import_id"].as_str() {
                dt { (lang.t("最近一次", "Last")) }
                dd { code { (last) } " · " (text(&imports["last_status"])) " · "
                     code { "GET /v1/imports/" (last) "/refused.csv" } }
            }
        }
        h2 { (lang.t("跳过的事件", "Skipped events")) }
        dl.facts #skipped {
            dt { (lang.t("全部", "All")) } dd data-field="total" { (skipped["total"]) }
            dt { (lang.t("未搁置", "Not set aside")) } dd data-field="open" { (skipped["open"]) }
        }
        p { code { "GET /v1/skipped-events" } }
    };
    Ok(page(&signed, lang.t("运行状况", "Health"), content))
}
