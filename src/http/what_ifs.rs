//! `/v1/what-ifs`: what a proposed ruleset would do, before anyone publishes it — how many
//! members would change status, per organisation, and who. A job (`jobs::what_if`) that
//! publishes nothing and touches nothing the ledger serves; its results are kept for
//! `store::what_ifs::KEPT_DAYS` days.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use studyledger_aggregates::rulebook::{RuleBook, RuleBookCommand, RULEBOOK_ID};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::values::{local_date, Quarter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Accepted;
use crate::http::auth::Caller;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{self, page_limit, ApiJson, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;
use crate::jobs::what_if;
use crate::store::lock;
use crate::store::what_ifs::{self, WhatIf};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(show))
        .routes(routes!(show_csv))
}

/// A ruleset as it would be published, without its version (the next one is assumed).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    effective_from: Quarter,
    #[schema(value_type = f64, minimum = 0, maximum = 1000, multiple_of = 0.01)]
    required_hours: Box<RawValue>,
    #[schema(value_type = f64, minimum = 0, maximum = 1000, multiple_of = 0.01)]
    elective_hours: Box<RawValue>,
    excess_required_counts_as_elective: bool,
    enforce_min_study_time: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Started {
    what_if_id: Uuid,
    status: &'static str,
}

/// `POST /v1/what-ifs`: judge every member under a proposed ruleset; 202 and `Location`. The
/// proposal must be one the rule book would publish now, from a quarter that has begun. One
/// what-if runs at a time (409 meanwhile); one its service left `running` is marked failed.
#[utoipa::path(post, path = "/v1/what-ifs", operation_id = "start_what_if", tag = "rules",
    request_body = Proposal,
    responses((status = 202, body = Started), doc::CatalogRefusals),
    security(("bearer" = ["admin"])))]
async fn start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Proposal>,
) -> Result<Response, ApiError> {
    let ledger = state.ledger().clone();
    // Judged only if the rule book would publish it now, as the next version.
    let (book, _) = ledger.read::<RuleBook>(RULEBOOK_ID).await?;
    let proposed = Ruleset {
        version: latest_version(book.rulesets()).unwrap_or(0) + 1,
        effective_from: body.effective_from,
        required_hours: extract::hours("required_hours", &body.required_hours)?,
        elective_hours: extract::hours("elective_hours", &body.elective_hours)?,
        excess_required_counts_as_elective: body.excess_required_counts_as_elective,
        enforce_min_study_time: body.enforce_min_study_time,
    };
    let record = serde_json::json!({
        "effective_from": proposed.effective_from,
        "required_hours": proposed.required_hours,
        "elective_hours": proposed.elective_hours,
        "excess_required_counts_as_elective": proposed.excess_required_counts_as_elective,
        "enforce_min_study_time": proposed.enforce_min_study_time,
    });
    // It judges quarters that have begun: a proposal from a later quarter would judge none.
    let now = Quarter::of_date(local_date(Utc::now(), ledger.tz()));
    if proposed.effective_from > now {
        return Err(ApiError::RuleViolation(format!(
            "effective_from {} has not begun: a what-if judges the quarters up to {now}; \
             propose it from an earlier quarter to see what it would do",
            proposed.effective_from
        )));
    }
    book.decide(&RuleBookCommand::Publish(proposed.clone()))
        .map_err(|rejection| ApiError::rejected(&rejection))?;
    // One what-if at a time, across instances: its lock is held by a connection of its own
    // for as long as it runs (and let go if the process dies).
    let mut lock = ledger.pool().acquire().await?.detach();
    if !lock::try_lock(&mut lock, lock::WHAT_IF).await? {
        return Err(ApiError::Conflict(
            "a what-if is running: one runs at a time; ask again once it has ended".to_owned(),
        ));
    }
    what_ifs::mark_interrupted(&mut lock).await?;
    let what_if_id = Uuid::new_v4();
    what_ifs::start(ledger.pool(), what_if_id, &record, &caller.principal.name).await?;
    tokio::spawn(async move {
        // The outcome is recorded in the what-if's row; the lock goes with the connection.
        let _ = what_if::run(ledger, what_if_id, proposed).await;
        drop(lock);
    });
    Ok(Accepted {
        answer: Started {
            what_if_id,
            status: "running",
        },
        location: format!("/v1/what-ifs/{what_if_id}"),
    }
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `member_id/quarter` of the last change of the page before.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgCount {
    org_id: String,
    name: Option<String>,
    /// Members who would change status in some quarter they spent here.
    members: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Change {
    member_id: Uuid,
    member_no: Option<String>,
    name: Option<String>,
    quarter: String,
    org_id: String,
    status_now: String,
    status_proposed: String,
}

impl From<what_ifs::Change> for Change {
    fn from(c: what_ifs::Change) -> Self {
        Change {
            member_id: c.member_id,
            member_no: c.member_no,
            name: c.name,
            quarter: c.quarter,
            org_id: c.org_id,
            status_now: c.status_now,
            status_proposed: c.status_proposed,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WhatIfAnswer {
    what_if_id: Uuid,
    #[schema(value_type = Object)]
    proposed: serde_json::Value,
    /// `running`, `succeeded` or `failed` (with `error`).
    status: String,
    requested_by: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// The results are deleted after this.
    expires_at: DateTime<Utc>,
    members_examined: i64,
    members_changed: i64,
    error: Option<String>,
    /// The 100 organisations with the most members who would change.
    orgs: Vec<OrgCount>,
    /// A page of the quarters that would change, in member order.
    changes: Vec<Change>,
    next_cursor: Option<String>,
}

async fn record(state: &AppState, what_if_id: Uuid) -> Result<WhatIf, ApiError> {
    what_ifs::find(state.ledger().pool(), what_if_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("what-if {what_if_id} is unknown or expired")))
}

fn cursor_of(raw: Option<&str>) -> Result<Option<(Uuid, String)>, ApiError> {
    raw.map(|raw| {
        let (member, quarter) = raw.split_once('/').unwrap_or((raw, ""));
        let member = member
            .parse()
            .map_err(|_| ApiError::Malformed("cursor must be member_id/quarter".to_owned()))?;
        Ok((member, quarter.to_owned()))
    })
    .transpose()
}

fn next_cursor(page: &[what_ifs::Change], limit: i64) -> Option<String> {
    (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| {
            page.last()
                .map(|c| format!("{}/{}", c.member_id, c.quarter))
        })
        .flatten()
}

/// `GET /v1/what-ifs/{id}`: the job's progress and, as it goes, what it found.
#[utoipa::path(get, path = "/v1/what-ifs/{what_if_id}", operation_id = "show_what_if", tag = "rules",
    params(("what_if_id" = Uuid, Path), ChangesQuery),
    responses((status = 200, body = WhatIfAnswer), doc::ReadRefusals),
    security(("bearer" = ["admin", "auditor"])))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(what_if_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<WhatIfAnswer>, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    let after = cursor_of(query.cursor.as_deref())?;
    let found = record(&state, what_if_id).await?;
    let pool = state.ledger().pool();
    let orgs = what_ifs::orgs(pool, what_if_id, 100).await?;
    let page = what_ifs::changes(pool, what_if_id, after, limit).await?;
    access::log_read(&state, &caller, page.iter().map(|c| c.member_id).collect()).await?;
    let next_cursor = next_cursor(&page, limit);
    Ok(Json(WhatIfAnswer {
        what_if_id,
        proposed: found.proposed,
        status: found.status,
        requested_by: found.requested_by,
        started_at: found.started_at,
        finished_at: found.finished_at,
        expires_at: found.expires_at,
        members_examined: found.members_examined,
        members_changed: found.members_changed,
        error: found.error,
        orgs: orgs
            .into_iter()
            .map(|(org_id, name, members)| OrgCount {
                org_id,
                name,
                members,
            })
            .collect(),
        changes: page.into_iter().map(Change::from).collect(),
        next_cursor,
    }))
}

const CSV_HEADER: [&str; 7] = [
    "成员 member_id",
    "编号 member_no",
    "姓名 name",
    "季度 quarter",
    "组织 org_id",
    "现状态 status_now",
    "拟状态 status_proposed",
];

/// Changes per page of the CSV stream.
const CSV_PAGE: i64 = 5_000;

/// `GET /v1/what-ifs/{id}/changes.csv`: every quarter that would change, as CSV.
#[utoipa::path(get, path = "/v1/what-ifs/{what_if_id}/changes.csv", operation_id = "what_if_changes_csv", tag = "rules",
    params(("what_if_id" = Uuid, Path)),
    responses(
        (status = 200, description = "every change", content_type = "text/csv"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor"])))]
async fn show_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(what_if_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    record(&state, what_if_id).await?;
    let body = csv::paged(move |after: Option<(Uuid, String)>, first| {
        let (state, caller) = (state.clone(), caller.clone());
        async move {
            let pool = state.ledger().pool();
            let page = what_ifs::changes(pool, what_if_id, after, CSV_PAGE).await?;
            access::log_read(&state, &caller, page.iter().map(|c| c.member_id).collect()).await?;
            let next = (i64::try_from(page.len()).unwrap_or(0) == CSV_PAGE)
                .then(|| page.last().map(|c| (c.member_id, c.quarter.clone())))
                .flatten();
            let rows = page.iter().map(|c| {
                vec![
                    c.member_id.to_string(),
                    csv::text(c.member_no.as_deref().unwrap_or_default()),
                    csv::text(c.name.as_deref().unwrap_or_default()),
                    c.quarter.clone(),
                    c.org_id.clone(),
                    c.status_now.clone(),
                    c.status_proposed.clone(),
                ]
            });
            Ok((csv::encode(first.then_some(&CSV_HEADER[..]), rows)?, next))
        }
    });
    Ok(csv::response(
        body,
        &format!("what-if-{what_if_id}-changes.csv"),
    ))
}
