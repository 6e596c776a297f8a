//! Organisations: registering a node of the tree, and the roll-ups administrators read — a
//! subtree's compliance for a quarter and the page-by-page list of its members — counted by
//! rule 7 (membership on the quarter's last day) from the views.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use studyledger_aggregates::organisation::{Organisation, OrganisationCommand, OrganisationRecord};
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::rules::status::QuarterStatus;
use studyledger_aggregates::values::{local_date, Hours, Quarter};
use studyledger_projections::fold::QuarterCompliance;
use studyledger_projections::store as views;

use crate::http::consistency;
use crate::http::csv;
use crate::http::error::ApiError;
use crate::http::extract::{self, ApiJson, ApiPath, ApiQuery, RequestMeta};
use crate::http::AppState;
use crate::store::StoreError;

#[derive(Deserialize)]
pub struct RegisterOrg {
    org_id: String,
    name: String,
    parent_id: Option<String>,
}

pub async fn register(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(body): ApiJson<RegisterOrg>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let record = OrganisationRecord {
        org_id: extract::slug("org_id", &body.org_id)?,
        name: body.name,
        parent_id: body
            .parent_id
            .as_deref()
            .map(|p| extract::slug("parent_id", p))
            .transpose()?,
    };
    let ledger = state.ledger();
    if let Some(parent) = &record.parent_id {
        if parent != &record.org_id
            && ledger
                .read_immutable::<Organisation>(parent.as_str())
                .await?
                .record()
                .is_none()
        {
            return Err(ApiError::RuleViolation(format!(
                "parent organisation {parent} is not registered"
            )));
        }
    }
    let org_id = record.org_id.to_string();
    let executed = ledger
        .execute::<Organisation, _>(
            &org_id,
            OrganisationCommand::Register(record.clone()),
            &meta,
            |_| (),
        )
        .await?;
    let position = ledger
        .position_after::<Organisation>(&org_id, &executed.appended, 1)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "org_id": record.org_id,
            "name": record.name,
            "parent_id": record.parent_id,
            "position": position,
        })),
    ))
}

#[derive(Deserialize)]
pub struct RollUpQuery {
    quarter: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    min_position: Option<i64>,
}

/// The members counted under an organisation's subtree for a quarter (rule 7), with the day
/// their membership is judged on.
struct Counted {
    quarter: Quarter,
    today: NaiveDate,
    day: NaiveDate,
    orgs: Vec<String>,
    caught_up: bool,
    rulesets: Vec<Ruleset>,
    reader: Reader,
}

/// Where a scan reads its chunks from.
enum Reader {
    /// One transaction for the whole scan: the tables it reads stay locked against a replay's
    /// swap until it ends, so a roll-up never mixes rebuilt views with the ones they replace.
    Pinned(sqlx::Transaction<'static, sqlx::Postgres>),
    /// One statement per chunk, for exports that stream at the client's pace: a slow download
    /// holds no connection and no lock between chunks (each line stands on its own, with the
    /// ruleset version that judged it).
    PerChunk(sqlx::PgPool),
}

async fn counted(
    state: &AppState,
    raw_org: &str,
    query: &RollUpQuery,
) -> Result<Counted, ApiError> {
    counted_with(state, raw_org, query, true).await
}

async fn counted_with(
    state: &AppState,
    raw_org: &str,
    query: &RollUpQuery,
    pinned: bool,
) -> Result<Counted, ApiError> {
    let org_id = extract::slug("org_id", raw_org)?;
    let quarter = extract::quarter(
        "quarter",
        query
            .quarter
            .as_deref()
            .ok_or_else(|| ApiError::Malformed("quarter is required (YYYY-Qn)".to_owned()))?,
    )?;
    let caught_up = consistency::wait_for_views(state, query.min_position).await?;
    let ledger = state.ledger();
    // Before the transaction: inside it, a second connection for the rulesets could wait on a
    // pool that concurrent roll-ups have emptied.
    let rulesets = ledger.rulesets().await?;
    let mut tx = ledger.pool().begin().await.map_err(StoreError::from)?;
    let orgs = views::subtree(&mut tx, org_id.as_str())
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("organisation {org_id} is not registered")))?;
    let today = local_date(Utc::now(), ledger.tz());
    // Membership on the quarter's last day; today, for the current (or a future) quarter.
    let day = quarter.last_day().min(today);
    let reader = if pinned {
        Reader::Pinned(tx)
    } else {
        tx.commit().await.map_err(StoreError::from)?;
        Reader::PerChunk(ledger.pool().clone())
    };
    Ok(Counted {
        quarter,
        today,
        day,
        orgs,
        caught_up,
        rulesets,
        reader,
    })
}

impl Counted {
    /// The next members of the subtree after `after`, in member id order.
    async fn next_chunk(
        &mut self,
        after: Option<uuid::Uuid>,
    ) -> Result<Vec<(views::MemberRow, Option<views::StoredQuarter>)>, ApiError> {
        let (orgs, day, quarter) = (&self.orgs, self.day, self.quarter);
        let chunk = match &mut self.reader {
            Reader::Pinned(tx) => {
                views::members_of(tx, orgs, day, quarter, after, SCAN_CHUNK).await
            }
            Reader::PerChunk(pool) => {
                let mut connection = pool.acquire().await.map_err(StoreError::from)?;
                views::members_of(&mut connection, orgs, day, quarter, after, SCAN_CHUNK).await
            }
        };
        Ok(chunk.map_err(StoreError::from)?)
    }

    /// The chunk's members with their quarter judged, those of another status left out.
    fn matching<'a>(
        &'a self,
        chunk: &'a [(views::MemberRow, Option<views::StoredQuarter>)],
        status: Option<QuarterStatus>,
    ) -> impl Iterator<Item = (&'a views::MemberRow, QuarterCompliance)> + 'a {
        chunk.iter().filter_map(move |(member, stored)| {
            let row = member.judge(self.quarter, stored.as_ref(), &self.rulesets, self.today);
            status
                .is_none_or(|s| s == row.judgement.status)
                .then_some((member, row))
        })
    }
}

/// Where the scan goes on after a chunk: `None` when the chunk was the last.
fn after_chunk(chunk: &[(views::MemberRow, Option<views::StoredQuarter>)]) -> Option<uuid::Uuid> {
    match chunk.last() {
        Some((last, _)) if i64::try_from(chunk.len()).unwrap_or(0) == SCAN_CHUNK => {
            Some(last.member_id)
        }
        _ => None,
    }
}

fn with_freshness(body: Value, caught_up: bool) -> Response {
    consistency::marked(Json(body).into_response(), caught_up)
}

/// Members read per round trip when scanning a subtree.
const SCAN_CHUNK: i64 = 1000;

/// `GET /v1/orgs/{id}/compliance?quarter=`: the subtree's members and how they stand.
pub async fn compliance(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RollUpQuery>,
) -> Result<Response, ApiError> {
    let mut counted = counted(&state, &org_id, &query).await?;
    let mut stale = 0_i64;
    let mut tally: BTreeMap<QuarterStatus, i64> = BTreeMap::new();
    let mut members = 0_i64;
    let mut total = Hours::ZERO;
    let mut after = None;
    loop {
        let chunk = counted.next_chunk(after).await?;
        for (member, stored) in &chunk {
            let row = member.judge(
                counted.quarter,
                stored.as_ref(),
                &counted.rulesets,
                counted.today,
            );
            *tally.entry(row.judgement.status).or_default() += 1;
            members += 1;
            stale += i64::from(row.stale);
            total = total
                .plus(row.judgement.required_hours)
                .plus(row.judgement.elective_hours);
        }
        after = after_chunk(&chunk);
        if after.is_none() {
            break;
        }
    }
    let count = |s| tally.get(&s).copied().unwrap_or(0);
    let (compliant, non_compliant) = (
        count(QuarterStatus::Compliant),
        count(QuarterStatus::NonCompliant),
    );
    let judged_members = compliant + non_compliant;
    let rate = (judged_members > 0).then(|| round(compliant as f64 / judged_members as f64, 4));
    let per_member = (members > 0).then(|| round(total.as_json_number() / members as f64, 2));
    Ok(with_freshness(
        json!({
            "org_id": org_id,
            "quarter": counted.quarter,
            "members": members,
            "compliant": compliant,
            "non_compliant": non_compliant,
            "in_progress": count(QuarterStatus::InProgress),
            "exempt": count(QuarterStatus::Exempt),
            "compliance_rate": rate,
            "credit_hours_total": total,
            "credit_hours_per_member": per_member,
            "stale": stale,
        }),
        counted.caught_up,
    ))
}

/// Rounds a ratio for display; stored figures are never floats.
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

/// `GET /v1/orgs/{id}/members?quarter=&status=&limit=&cursor=`: a page of the subtree's
/// members in member id order, with their quarter status; `next_cursor` continues it. With
/// `Accept: text/csv`, every member of the subtree (no pages) as CSV.
pub async fn members(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RollUpQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if csv::wanted(&headers) {
        return members_csv(State(state), ApiPath(org_id), ApiQuery(query)).await;
    }
    let status = status_filter(&query)?;
    members_page(state, org_id, query, status).await
}

/// The members of a quarter's roll-up with the figures behind their status.
fn member_json(member: &views::MemberRow, row: &QuarterCompliance) -> Value {
    json!({
        "member_id": member.member_id,
        "member_no": member.member_no,
        "name": member.name,
        "org_id": member.org_id,
        "status": row.judgement.status,
        "required_hours": row.judgement.required_hours,
        "elective_hours": row.judgement.elective_hours,
        "study_minutes": row.study_minutes,
        "ruleset_version": row.judgement.ruleset_version,
        "stale": row.stale,
    })
}

const MEMBERS_CSV: [&str; 10] = [
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
];

/// `GET /v1/orgs/{id}/members.csv?quarter=&status=`: the subtree's quarter compliance list as
/// CSV, streamed chunk by chunk (one statement each).
pub async fn members_csv(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RollUpQuery>,
) -> Result<Response, ApiError> {
    let status = status_filter(&query)?;
    let counted = counted_with(&state, &org_id, &query, false).await?;
    let filename = format!("{org_id}-{}-members.csv", counted.quarter);
    let pages = futures::stream::unfold(
        Some((counted, None::<uuid::Uuid>, true)),
        move |state| async move {
            let (mut counted, after, first) = state?;
            let chunk = match counted.next_chunk(after).await {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
            };
            let rows = counted.matching(&chunk, status).map(|(member, row)| {
                let body = member_json(member, &row);
                MEMBERS_CSV
                    .iter()
                    .map(|f| csv::cell(&body[*f]))
                    .collect::<Vec<_>>()
            });
            let bytes = csv::encode(first.then_some(&MEMBERS_CSV[..]), rows)
                .map_err(|e| std::io::Error::other(e.to_string()));
            let next = after_chunk(&chunk).map(|after| (counted, Some(after), false));
            Some((bytes, next))
        },
    );
    Ok(csv::response(
        axum::body::Body::from_stream(pages),
        &filename,
    ))
}

fn status_filter(query: &RollUpQuery) -> Result<Option<QuarterStatus>, ApiError> {
    query
        .status
        .as_deref()
        .map(|s| {
            serde_json::from_value(json!(s)).map_err(|_| {
                ApiError::Malformed(
                    "status must be one of compliant, non_compliant, in_progress, exempt"
                        .to_owned(),
                )
            })
        })
        .transpose()
}

async fn members_page(
    state: AppState,
    org_id: String,
    query: RollUpQuery,
    status: Option<QuarterStatus>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Malformed(
            "limit must be between 1 and 500".to_owned(),
        ));
    }
    let mut after = query
        .cursor
        .as_deref()
        .map(|c| extract::uuid("cursor", c))
        .transpose()?;
    let mut counted = counted(&state, &org_id, &query).await?;
    let mut page = Vec::new();
    let mut next_cursor = None;
    'scan: loop {
        let chunk = counted.next_chunk(after).await?;
        for (member, row) in counted.matching(&chunk, status) {
            if i64::try_from(page.len()).unwrap_or(i64::MAX) == limit {
                next_cursor = page
                    .last()
                    .and_then(|p: &Value| p["member_id"].as_str().map(str::to_owned));
                break 'scan;
            }
            page.push(member_json(member, &row));
        }
        after = after_chunk(&chunk);
        if after.is_none() {
            break;
        }
    }
    Ok(with_freshness(
        json!({
            "org_id": org_id,
            "quarter": counted.quarter,
            "members": page,
            "next_cursor": next_cursor,
        }),
        counted.caught_up,
    ))
}
