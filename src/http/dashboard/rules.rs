//! `/rules`: the rulesets in force and their history.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use crate::http::dashboard::api::text;
use crate::http::dashboard::i18n::{hours, local_time};
use crate::http::dashboard::layout::page;
use crate::http::dashboard::refusal::PageError;
use crate::http::dashboard::signed::Signed;
use crate::http::dashboard::state::Dash;
use crate::http::dashboard::what_ifs::proposal_form;
use crate::store::tokens::Role;

/// `GET /rules`.
pub async fn rules(State(dash): State<Dash>, signed: Signed) -> Result<Response, PageError> {
    let rulesets = dash.api.get(&signed, "/v1/rulesets".to_owned()).await?;
    let lang = signed.lang;
    let tz = dash.app.ledger().tz();
    let list = rulesets.as_array().cloned().unwrap_or_default();
    let content = html! {
        table #rulesets {
            caption { (lang.t("每个版本自生效季度起适用，直到下一个版本生效。",
                "Each version applies from its first quarter until the next one takes effect.")) }
            thead { tr {
                th.num scope="col" { (lang.t("版本", "Version")) }
                th scope="col" { (lang.t("生效季度", "Effective from")) }
                th.num scope="col" { (lang.t("必修学时", "Required hours")) }
                th.num scope="col" { (lang.t("选修学时", "Elective hours")) }
                th scope="col" { (lang.t("超出必修计入选修", "Excess required counts as elective")) }
                th scope="col" { (lang.t("检查最短学习时长", "Minimum study time enforced")) }
                th scope="col" { (lang.t("发布", "Published")) }
            } }
            tbody {
                @for r in list.iter().rev() {
                    tr data-version=(r["version"]) {
                        td.num { (r["version"]) }
                        td { (text(&r["effective_from"])) }
                        td.num { (hours(r["required_hours"].as_f64())) }
                        td.num { (hours(r["elective_hours"].as_f64())) }
                        td { (lang.yes_no(r["excess_required_counts_as_elective"].as_bool() == Some(true))) }
                        td { (lang.yes_no(r["enforce_min_study_time"].as_bool() == Some(true))) }
                        td { (local_time(text(&r["published_at"]), tz)) " · " (text(&r["published_by"])) }
                    }
                }
            }
        }
    };
    let content = html! {
        (content)
        @if signed.principal.role == Role::Admin {
            (proposal_form(lang, &signed.csrf))
        }
    };
    Ok(page(&signed, lang.t("考核规则", "Rules"), content))
}
