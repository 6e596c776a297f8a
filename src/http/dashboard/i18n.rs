//! The dashboard's two languages: Simplified Chinese by default, English by the switch on every
//! page (`?lang=en`, then kept in a cookie) or a browser whose first language is English.
//! Dates and times are shown in the ledger's time zone, hours with two decimals.

use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cookie::Cookie;

use crate::http::dashboard::cookies::cookies;

/// The cookie that keeps the language chosen with the switch.
pub const LANG_COOKIE: &str = "sl_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language of a request: `?lang=`, then the switch's cookie, then `Accept-Language`.
    pub fn of(uri: &Uri, headers: &HeaderMap) -> (Lang, bool) {
        let asked = uri.query().and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| Lang::parse(&v))
        });
        if let Some(lang) = asked {
            return (lang, true);
        }
        let kept = cookies(headers)
            .find(|c| c.name() == LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value()));
        let browser = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                if v.trim_start().to_ascii_lowercase().starts_with("en") {
                    Lang::En
                } else {
                    Lang::Zh
                }
            });
        (kept.or(browser).unwrap_or(Lang::Zh), false)
    }

    fn parse(raw: &str) -> Option<Lang> {
        match raw {
            "zh" | "zh-CN" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The text in this language.
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// A quarter's status as people say it.
    pub fn status(self, status: &str) -> &'static str {
        match status {
            "compliant" => self.t("达标", "Compliant"),
            "non_compliant" => self.t("未达标", "Not compliant"),
            "in_progress" => self.t("进行中", "In progress"),
            "exempt" => self.t("免于考核", "Exempt"),
            "left" => self.t("已离开", "Left"),
            _ => self.t("未知", "Unknown"),
        }
    }

    /// An appeal's status as people say it.
    pub fn appeal(self, status: &str) -> &'static str {
        match status {
            "open" => self.t("待处理", "Open"),
            "upheld" => self.t("维持原评定", "Upheld"),
            "overturned" => self.t("改变原评定", "Overturned"),
            "superseded" => self.t("已被新评定取代", "Superseded"),
            _ => self.t("未知", "Unknown"),
        }
    }

    /// A job's status as people say it.
    pub fn job(self, status: &str) -> &'static str {
        match status {
            "running" => self.t("进行中", "Running"),
            "succeeded" => self.t("已完成", "Succeeded"),
            "failed" => self.t("失败", "Failed"),
            _ => self.t("未知", "Unknown"),
        }
    }

    /// Whether something holds, as a word.
    pub fn yes_no(self, yes: bool) -> &'static str {
        if yes {
            self.t("是", "Yes")
        } else {
            self.t("否", "No")
        }
    }
}

/// The cookie that keeps a language chosen with the switch (a year).
pub fn lang_cookie(lang: Lang) -> Cookie<'static> {
    Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .same_site(cookie::SameSite::Strict)
        .http_only(true)
        .max_age(cookie::time::Duration::days(365))
        .build()
}

/// Hours with two decimals; a dash for none.
pub fn hours(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |h| format!("{h:.2}"))
}

/// A rate as a percentage with one decimal; a dash for none.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// An RFC 3339 instant as the ledger's local date and time.
pub fn local_time(raw: &str, tz: Tz) -> String {
    raw.parse::<DateTime<Utc>>().map_or_else(
        |_| raw.to_owned(),
        |at| at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
    )
}
