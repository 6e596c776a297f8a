//! `GET /v1/orgs/{id}/members[.csv]`: the members of a subtree for a quarter with their status
//! and the figures behind it — a page at a time in member id order, or every one of them as a
//! CSV download streamed chunk by chunk.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::rules::status::QuarterStatus;
use studyledger_aggregates::values::{Hours, OrgId, Quarter};
use studyledger_projections::counters::Bucket;
use studyledger_projections::fold::QuarterCompliance;
use studyledger_projections::sql::members::MemberRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::FromViews;
use crate::http::auth::Caller;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::orgs::{required_quarter, Counted, Subtree};
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(members))
        .routes(routes!(members_csv))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// `YYYY-Qn` (required).
    #[param(value_type = Quarter)]
    quarter: Option<Quarter>,
    /// Only members of this status.
    #[param(value_type = Option<QuarterStatus>)]
    status: Option<String>,
    /// `member_id` (the default) or `shortfall`: the members behind (`status` must be
    /// `non_compliant` or `in_progress`), most class hours short first (pages only).
    order: Option<String>,
    /// 1–500, default 50 (pages only).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before (a member id; by shortfall, `hundredths_memberid`).
    cursor: Option<String>,
    min_position: Option<i64>,
}

/// Where a page starts: after a member, in one order or the other.
enum PageStart {
    ById(Option<Uuid>),
    ByShortfall(Option<(Hours, Uuid)>),
}

fn bad_cursor() -> ApiError {
    ApiError::Malformed("cursor must be a next_cursor this list gave".to_owned())
}

/// The cursor of a page by shortfall that ends with this member.
fn shortfall_cursor(shortfall: Hours, member_id: Uuid) -> String {
    format!("{}_{member_id}", shortfall.hundredths())
}

impl MembersQuery {
    fn status(&self) -> Result<Option<QuarterStatus>, ApiError> {
        self.status
            .as_deref()
            .map(|s| match s {
                "compliant" => Ok(QuarterStatus::Compliant),
                "non_compliant" => Ok(QuarterStatus::NonCompliant),
                "in_progress" => Ok(QuarterStatus::InProgress),
                "exempt" => Ok(QuarterStatus::Exempt),
                _ => Err(ApiError::Malformed(
                    "status must be one of compliant, non_compliant, in_progress, exempt"
                        .to_owned(),
                )),
            })
            .transpose()
    }

    /// The order asked for and where the page starts in it.
    fn start(&self, status: Option<QuarterStatus>) -> Result<PageStart, ApiError> {
        let cursor = self.cursor.as_deref();
        match self.order.as_deref() {
            None | Some("member_id") => cursor
                .map(|c| Uuid::parse_str(c).map_err(|_| bad_cursor()))
                .transpose()
                .map(PageStart::ById),
            Some("shortfall") => {
                if !matches!(
                    status,
                    Some(QuarterStatus::NonCompliant | QuarterStatus::InProgress)
                ) {
                    return Err(ApiError::Malformed(
                        "order=shortfall lists members behind: status must be non_compliant or in_progress"
                            .to_owned(),
                    ));
                }
                let parse = |c: &str| {
                    let (hundredths, member) = c.split_once('_')?;
                    let hundredths = hundredths.parse::<i64>().ok().filter(|h| *h >= 0)?;
                    Some((
                        Hours::from_hundredths(hundredths),
                        Uuid::parse_str(member).ok()?,
                    ))
                };
                cursor
                    .map(|c| parse(c).ok_or_else(bad_cursor))
                    .transpose()
                    .map(PageStart::ByShortfall)
            }
            Some(_) => Err(ApiError::Malformed(
                "order must be member_id or shortfall".to_owned(),
            )),
        }
    }
}

/// A member of a quarter's list with the figures behind their status.
#[derive(Serialize, ToSchema)]
pub struct MemberLine {
    member_id: Uuid,
    member_no: String,
    name: String,
    org_id: String,
    status: QuarterStatus,
    required_hours: Hours,
    elective_hours: Hours,
    study_minutes: i64,
    ruleset_version: Option<u32>,
    stale: bool,
    /// The class hours still missing to meet both targets.
    shortfall_hours: Hours,
}

impl MemberLine {
    fn of(member: &MemberRow, row: &QuarterCompliance) -> MemberLine {
        MemberLine {
            member_id: member.member_id,
            member_no: member.member_no.clone(),
            name: member.name.clone(),
            org_id: member.org_id.clone(),
            status: row.judgement.status,
            required_hours: row.judgement.required_hours,
            elective_hours: row.judgement.elective_hours,
            study_minutes: row.study_minutes,
            ruleset_version: row.judgement.ruleset_version,
            stale: row.stale,
            shortfall_hours: row.shortfall,
        }
    }
}

/// The chunk's members with their quarter judged, those of another status left out.
fn matching(
    subtree: &Subtree,
    chunk: &[Counted],
    status: Option<QuarterStatus>,
) -> Vec<MemberLine> {
    chunk
        .iter()
        .filter_map(|(member, stored)| {
            let row = member.judge(
                subtree.quarter,
                stored.as_ref(),
                &subtree.rulesets,
                subtree.today,
            );
            status
                .is_none_or(|s| s == row.judgement.status)
                .then(|| MemberLine::of(member, &row))
        })
        .collect()
}

#[derive(Serialize, ToSchema)]
pub struct MembersPage {
    org_id: OrgId,
    quarter: Quarter,
    members: Vec<MemberLine>,
    next_cursor: Option<String>,
}

/// `GET /v1/orgs/{id}/members?quarter=&status=&order=&limit=&cursor=`: a page of the
/// subtree's members in member id order (or the members behind by shortfall), with their
/// quarter status; `next_cursor` continues it. With
/// `Accept: text/csv`, every member of the subtree (no pages) as CSV.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "organisations",
    params(("org_id" = OrgId, Path), MembersQuery),
    responses(
        (status = 200, body = MembersPage, description = "a page; every member as `text/csv` when asked with `Accept: text/csv`"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn members(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiQuery(query): ApiQuery<MembersQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if csv::wanted(&headers) {
        return members_csv(State(state), caller, ApiPath(org_id), ApiQuery(query)).await;
    }
    let status = query.status()?;
    let start = query.start(status)?;
    let limit = page_limit(query.limit, 50, 500)?;
    let quarter = required_quarter(query.quarter)?;
    let mut subtree =
        Subtree::open(&state, &caller, &org_id, quarter, query.min_position, true).await?;
    let (page, next_cursor) = match start {
        PageStart::ByShortfall(after) => {
            let behind = subtree.behind_after(after, limit).await?;
            let counted: Vec<Counted> = behind.into_iter().map(|(counted, _)| counted).collect();
            let page = matching(&subtree, &counted, status);
            truncated(page, limit, |last| {
                shortfall_cursor(last.shortfall_hours, last.member_id)
            })
        }
        PageStart::ById(after) => {
            let candidates = match status {
                Some(status) => {
                    subtree
                        .bucket_after(Bucket::of(status), after, limit)
                        .await?
                }
                None => subtree.page_after(after, limit).await?,
            };
            let page = matching(&subtree, &candidates, status);
            truncated(page, limit, |last| last.member_id.to_string())
        }
    };
    access::log_read(&state, &caller, page.iter().map(|m| m.member_id).collect()).await?;
    let answer = Json(MembersPage {
        org_id,
        quarter,
        members: page,
        next_cursor,
    });
    Ok(FromViews {
        answer,
        caught_up: subtree.caught_up,
    }
    .into_response())
}

/// The first `limit` lines of a page, and the cursor after them when there were more.
fn truncated(
    mut page: Vec<MemberLine>,
    limit: i64,
    cursor: impl Fn(&MemberLine) -> String,
) -> (Vec<MemberLine>, Option<String>) {
    if i64::try_from(page.len()).unwrap_or(i64::MAX) <= limit {
        return (page, None);
    }
    page.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = page.last().map(cursor);
    (page, next)
}

const MEMBERS_CSV: [&str; 11] = [
    "member_id",
    "member_no",
    "name",
    "org_id",
    "status",
    "required_hours",
    "elective_hours",
    "study_minutes",
    "ruleset_version",
    "stale",
    "shortfall_hours",
];

/// `GET /v1/orgs/{id}/members.csv?quarter=&status=`: the subtree's quarter compliance list as
/// CSV, streamed chunk by chunk (one statement each, each chunk's reads logged before it goes).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/members.csv", tag = "organisations",
    params(("org_id" = OrgId, Path), MembersQuery),
    responses(
        (status = 200, description = "every member of the subtree", content_type = "text/csv"),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn members_csv(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> Result<Response, ApiError> {
    let status = query.status()?;
    let quarter = required_quarter(query.quarter)?;
    let subtree =
        Subtree::open(&state, &caller, &org_id, quarter, query.min_position, false).await?;
    let filename = format!("{org_id}-{quarter}-members.csv");
    let reading = (state, caller);
    let pages = futures::stream::unfold(Some((subtree, None::<Uuid>, true)), move |scan| {
        let (state, caller) = reading.clone();
        async move {
            let (mut subtree, after, first) = scan?;
            let bytes = csv_chunk(&state, &caller, &mut subtree, after, first, status).await;
            match bytes {
                Ok((bytes, next)) => {
                    Some((Ok(bytes), next.map(|after| (subtree, Some(after), false))))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    Ok(csv::response(Body::from_stream(pages), &filename))
}

/// One chunk of the CSV download, its reads logged; and where the download goes on.
async fn csv_chunk(
    state: &AppState,
    caller: &Caller,
    subtree: &mut Subtree,
    after: Option<Uuid>,
    first: bool,
    status: Option<QuarterStatus>,
) -> Result<(Vec<u8>, Option<Uuid>), ApiError> {
    let (chunk, next) = subtree.next_chunk(after).await?;
    let lines = matching(subtree, &chunk, status);
    access::log_read(state, caller, lines.iter().map(|l| l.member_id).collect()).await?;
    let rows = lines
        .iter()
        .map(|line| csv::row(line, &MEMBERS_CSV))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((csv::encode(first.then_some(&MEMBERS_CSV[..]), rows)?, next))
}
