//! The signed-in user a page is for, in the page's language.

use axum::http::StatusCode;

use crate::http::auth::Principal;
use crate::http::dashboard::i18n::Lang;
use crate::http::dashboard::refusal::PageError;

/// The signed-in user of a page, the page's language and where it is.
#[derive(Debug, Clone)]
pub struct Signed {
    pub principal: Principal,
    pub csrf: String,
    pub lang: Lang,
    /// The language came with `?lang=`: the page keeps it in a cookie.
    pub lang_chosen: bool,
    /// The page's path and query, for the language switch.
    pub here: String,
    pub request_id: Option<String>,
}

impl Signed {
    /// Whether a form's CSRF value is this session's; 403 otherwise.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if !sent.is_empty() && sent == self.csrf {
            Ok(())
        } else {
            Err(PageError::Status(
                StatusCode::FORBIDDEN,
                "表单已过期，请重新打开页面。 The form has expired: open the page again.",
            ))
        }
    }
}
