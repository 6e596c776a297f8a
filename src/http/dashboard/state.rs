//! What the pages share, and which roles may open each page.

use crate::http::dashboard::api::Api;
use crate::http::state::AppState;
use crate::store::tokens::Role;

/// What the pages share: the service's state and its API.
#[derive(Clone)]
pub struct Dash {
    pub app: AppState,
    pub api: Api,
}

const READERS: &[Role] = &[Role::Admin, Role::Auditor, Role::OrgAdmin];

/// Which roles may open each page (the API still checks scope and its own roles on every
/// call the page makes). A page not listed admits nobody.
pub const PAGES: &[(&str, &[Role])] = &[
    ("/orgs/{org_id}", READERS),
    ("/orgs/{org_id}/behind", READERS),
    ("/orgs/{org_id}/behind.csv", READERS),
    ("/orgs/{org_id}/appeals", READERS),
    (
        "/members/{member_id}/appeals/{appeal_id}/resolution",
        &[Role::Admin, Role::OrgAdmin],
    ),
    (
        "/members/{member_id}",
        &[Role::Admin, Role::Auditor, Role::OrgAdmin, Role::Member],
    ),
    ("/health", &[Role::Admin, Role::Auditor]),
    ("/what-ifs", &[Role::Admin]),
    ("/what-ifs/{what_if_id}", &[Role::Admin, Role::Auditor]),
    (
        "/what-ifs/{what_if_id}/changes.csv",
        &[Role::Admin, Role::Auditor],
    ),
    (
        "/rules",
        &[Role::Admin, Role::Auditor, Role::OrgAdmin, Role::Member],
    ),
];
