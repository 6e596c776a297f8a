//! `/v1/orgs`: registering a node of the organisation tree, and a subtree's compliance for a
//! quarter — members counted by rule 7 (where they belonged on the quarter's last day) from
//! the views. Also the subtree scan the member lists share.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::organisation::{Organisation, OrganisationCommand, OrganisationRecord};
use studyledger_aggregates::rules::membership::counting_day;
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_aggregates::values::{local_date, Hours, Name, OrgId, Quarter};
use studyledger_projections::counters::{blank_shortfall, rollup, Bucket, Correction, QuarterSums};
use studyledger_projections::rollup::RollUp;
use studyledger_projections::sql::counters;
use studyledger_projections::sql::members::{self, members_of, MemberRow, PageOf, StoredQuarter};
use studyledger_projections::sql::orgs::is_registered;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::{Created, FromViews};
use crate::http::auth::Caller;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson, ApiPath, ApiQuery};
use crate::http::members::organisation_exists;
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(compliance))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterOrg)]
pub struct Register {
    org_id: OrgId,
    #[schema(value_type = Name)]
    name: String,
    parent_id: Option<OrgId>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = OrgRegistered)]
pub struct Registered {
    #[serde(flatten)]
    organisation: OrganisationRecord,
    position: Option<i64>,
}

/// `POST /v1/orgs`: a node of the tree, under a parent registered before it.
#[utoipa::path(post, path = "/v1/orgs", operation_id = "register_org", tag = "organisations",
    request_body = Register,
    responses(
        (status = 201, body = Registered),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin"])))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Register>,
) -> Result<Created<Registered>, ApiError> {
    let record = OrganisationRecord {
        org_id: body.org_id,
        name: text("name", body.name)?,
        parent_id: body.parent_id,
    };
    let ledger = state.ledger();
    if let Some(parent) = &record.parent_id {
        // An organisation named as its own parent is the aggregate's to refuse.
        if parent != &record.org_id && !organisation_exists(ledger, parent).await? {
            return Err(ApiError::RuleViolation(format!(
                "parent organisation {parent} is not registered"
            )));
        }
    }
    let id = record.org_id.to_string();
    let command = OrganisationCommand::Register(record.clone());
    let parent = record.parent_id.clone();
    let fact = ledger
        .record_held::<Organisation, _>(
            &id,
            command,
            &caller.metadata(),
            parent.as_ref(),
            |_| None,
            |_| Some((1, ())),
        )
        .await?;
    Ok(Created(Registered {
        organisation: record,
        position: fact.position,
    }))
}

/// Members read per round trip when scanning a subtree.
const SCAN_CHUNK: i64 = 1000;

/// The members counted under an organisation's subtree for a quarter (rule 7), read chunk by
/// chunk, with what judging their quarter needs.
pub struct Subtree {
    pub quarter: Quarter,
    pub today: NaiveDate,
    day: NaiveDate,
    org_id: OrgId,
    pub caught_up: bool,
    pub rulesets: Vec<Ruleset>,
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

/// One member of the subtree and their stored quarter.
pub type Counted = (MemberRow, Option<StoredQuarter>);

impl Subtree {
    /// The subtree of `org_id` for `quarter`, when the caller may reach it, once the views hold
    /// what the request must see; `pinned` reads it in one transaction (see [`Reader`]).
    pub async fn open(
        state: &AppState,
        caller: &Caller,
        org_id: &OrgId,
        quarter: Quarter,
        min_position: Option<i64>,
        pinned: bool,
    ) -> Result<Subtree, ApiError> {
        access::organisation(state, caller, org_id).await?;
        // A pinned read holds back a replay's swap of the views by its locks: only on the
        // primary, where the swap happens.
        let views = if pinned {
            consistency::primary_views(state, min_position).await?
        } else {
            consistency::views(state, min_position).await?
        };
        let caught_up = views.caught_up;
        let ledger = state.ledger();
        // Before the transaction: inside it, a second connection for the rulesets could wait
        // on a pool that concurrent roll-ups have emptied.
        let rulesets = ledger.rulesets().await?;
        let mut tx = views.pool.begin().await?;
        if !is_registered(&mut *tx, org_id.as_str()).await? {
            return Err(ApiError::NotFound(format!(
                "organisation {org_id} is not registered"
            )));
        }
        let today = local_date(Utc::now(), ledger.tz());
        let reader = if pinned {
            Reader::Pinned(tx)
        } else {
            tx.commit().await?;
            Reader::PerChunk(views.pool.clone())
        };
        Ok(Subtree {
            quarter,
            today,
            day: counting_day(quarter, today),
            org_id: org_id.clone(),
            caught_up,
            rulesets,
            reader,
        })
    }

    /// The next members of the subtree after `after`, in member id order, and where the scan
    /// goes on (`None` after the last chunk).
    pub async fn next_chunk(
        &mut self,
        after: Option<Uuid>,
    ) -> Result<(Vec<Counted>, Option<Uuid>), ApiError> {
        let chunk = self.members_after(after, SCAN_CHUNK).await?;
        let next = match chunk.last() {
            Some((last, _)) if i64::try_from(chunk.len()).unwrap_or(0) == SCAN_CHUNK => {
                Some(last.member_id)
            }
            _ => None,
        };
        Ok((chunk, next))
    }
}

impl Subtree {
    /// The next `limit` members of the subtree after `after` (one more when there are more),
    /// each read by key after one keyset range of the placements.
    pub async fn page_after(
        &mut self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Counted>, ApiError> {
        self.members_after(after, limit + 1).await
    }

    /// The next `limit` members of the subtree after `after` (see `members_of`).
    async fn members_after(
        &mut self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Counted>, ApiError> {
        let page = PageOf {
            ancestor: self.org_id.as_str(),
            day: self.day,
            quarter: self.quarter,
            after,
            limit,
        };
        Ok(match &mut self.reader {
            Reader::Pinned(tx) => members_of(&mut **tx, page).await,
            Reader::PerChunk(pool) => members_of(&*pool, page).await,
        }?)
    }

    /// Members of the subtree after `after` among whom are, in member id order, the first
    /// `limit` + 1 whose status is in `bucket` — read from the lists by status, not by going
    /// through the subtree: the next places in the list of the subtree (for the compliant,
    /// who hold none, the next members with figures without one); the next members without
    /// figures, when such members fall in the bucket; and for the current quarter,
    /// the members whose placement changes later in it (counted in the lists where they will
    /// belong). Each source is read `limit` + 1 deep past the members that move, so the first
    /// `limit` + 1 of the bucket are among them; every one belongs to the subtree on the day.
    pub async fn bucket_after(
        &mut self,
        bucket: Bucket,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Counted>, ApiError> {
        let quarter = self.quarter;
        let rules_versions =
            self.blank_versions(|v| Bucket::blank(quarter, &self.rulesets, v) == bucket);
        let (mut connection, page, moving) = self.sources(after, limit).await?;
        let connection = &mut *connection;
        let sums = counters::quarter_sums(&mut *connection, page.ancestor, quarter).await?;
        let mut ids = match bucket {
            Bucket::Compliant if sums.iter().any(|g| g.figures.compliant > 0) => {
                members::without_place(&mut *connection, page).await?
            }
            Bucket::Compliant => Vec::new(),
            Bucket::NotMet | Bucket::Exempt => {
                members::with_place(&mut *connection, page, bucket).await?
            }
        };
        if without_figures_counted(&sums, &rules_versions) {
            ids.extend(
                members::without_figures(&mut *connection, page, &rules_versions, false).await?,
            );
        }
        ids.extend(moving);
        ids.sort_unstable();
        ids.dedup();
        Ok(members::members_by_id(&mut *connection, page, &ids).await?)
    }

    /// Members of the subtree behind (neither compliant nor exempt), most class hours short
    /// first and, among those short by as many, in descending member id order: the first
    /// `limit` + 1 after `after` (shortfall, member), each with their shortfall. Read as
    /// [`Subtree::bucket_after`] reads, in this order: one backward range of the lists' shortfall
    /// index; for each shortfall members without figures have (one per group of rules versions),
    /// the members without figures in descending id order; and the members who move later in
    /// the current quarter. Each source is sorted as the list is, so the first `limit` + 1 of
    /// the list are among the first `limit` + 1 (past those who move) of each.
    pub async fn behind_after(
        &mut self,
        after: Option<(Hours, Uuid)>,
        limit: i64,
    ) -> Result<Vec<(Counted, Hours)>, ApiError> {
        let (quarter, today) = (self.quarter, self.today);
        let versions =
            self.blank_versions(|v| Bucket::blank(quarter, &self.rulesets, v) == Bucket::NotMet);
        let mut blank: BTreeMap<Hours, Vec<i32>> = BTreeMap::new();
        for v in versions {
            let shortfall = blank_shortfall(quarter, &self.rulesets, u32::try_from(v).unwrap_or(0));
            blank.entry(shortfall).or_default().push(v);
        }
        let rulesets = self.rulesets.clone();
        let (mut connection, page, moving) = self.sources(None, limit).await?;
        let connection = &mut *connection;
        let sums = counters::quarter_sums(&mut *connection, page.ancestor, quarter).await?;
        let mut ids = members::behind_places(&mut *connection, page, after).await?;
        for (shortfall, versions) in &blank {
            let bound = match after {
                Some((s, _)) if *shortfall > s => continue,
                Some((s, member)) if *shortfall == s => Some(member),
                _ => None,
            };
            if without_figures_counted(&sums, versions) {
                let from = PageOf {
                    after: bound,
                    ..page
                };
                ids.extend(members::without_figures(&mut *connection, from, versions, true).await?);
            }
        }
        ids.extend(moving);
        ids.sort_unstable();
        ids.dedup();
        let mut behind: Vec<(Counted, Hours)> =
            members::members_by_id(&mut *connection, page, &ids)
                .await?
                .into_iter()
                .filter_map(|counted| {
                    let row = counted
                        .0
                        .judge(quarter, counted.1.as_ref(), &rulesets, today);
                    let key = (row.shortfall, counted.0.member_id);
                    let wanted = Bucket::of(row.judgement.status) == Bucket::NotMet
                        && after.is_none_or(|a| key < a);
                    wanted.then_some((counted, row.shortfall))
                })
                .collect();
        behind.sort_by(|(a, sa), (b, sb)| (sb, b.0.member_id).cmp(&(sa, a.0.member_id)));
        behind.truncate(usize::try_from(limit + 1).unwrap_or(usize::MAX));
        Ok(behind)
    }

    /// The rules versions (0: folded before any ruleset) whose members without figures `fits`.
    fn blank_versions(&self, fits: impl Fn(u32) -> bool) -> Vec<i32> {
        std::iter::once(0)
            .chain(self.rulesets.iter().map(|r| r.version))
            .filter(|v| fits(*v))
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX))
            .collect()
    }

    /// What a list by status reads from: a connection (the pinned transaction's, or one from
    /// the pool), the page to read `limit` + 1 deep past the members who move later in the
    /// current quarter (after `after` in member id order), and those members.
    async fn sources(
        &mut self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<(Connection<'_>, PageOf<'_>, Vec<Uuid>), ApiError> {
        let (quarter, today) = (self.quarter, self.today);
        let mut connection = match &mut self.reader {
            Reader::Pinned(tx) => Connection::Pinned(tx),
            Reader::PerChunk(pool) => Connection::Pooled(pool.acquire().await?),
        };
        let mut moving = Vec::new();
        if today < quarter.last_day() {
            moving = counters::moving(&mut *connection, today, quarter.last_day()).await?;
            moving.retain(|m| after.is_none_or(|a| *m > a));
        }
        let page = PageOf {
            ancestor: self.org_id.as_str(),
            day: self.day,
            quarter,
            after,
            limit: limit + 1 + i64::try_from(moving.len()).unwrap_or(i64::MAX),
        };
        Ok((connection, page, moving))
    }
}

/// The connection a list by status reads on.
enum Connection<'a> {
    Pinned(&'a mut sqlx::Transaction<'static, sqlx::Postgres>),
    Pooled(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl std::ops::Deref for Connection<'_> {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &sqlx::PgConnection {
        match self {
            Connection::Pinned(tx) => tx,
            Connection::Pooled(connection) => connection,
        }
    }
}

impl std::ops::DerefMut for Connection<'_> {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        match self {
            Connection::Pinned(tx) => tx,
            Connection::Pooled(connection) => connection,
        }
    }
}

/// Whether the subtree's counters count members without figures for the quarter under one of
/// these rules versions. When they count none (or no compliant members, for the compliant
/// list), every such member who belongs there today moves later in the quarter: the members
/// who move are read anyway, and a page need not look through the subtree for them.
fn without_figures_counted(sums: &[QuarterSums], rules_versions: &[i32]) -> bool {
    sums.iter().any(|group| {
        rules_versions.contains(&i32::try_from(group.rules_version).unwrap_or(i32::MAX))
            && group.members > group.figures.counted
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// `YYYY-Qn` (required).
    #[param(value_type = Quarter)]
    quarter: Option<Quarter>,
    /// Wait (up to 2 s) until the views hold the event at this position.
    min_position: Option<i64>,
}

/// The quarter a roll-up or list is about; it must be given.
pub fn required_quarter(quarter: Option<Quarter>) -> Result<Quarter, ApiError> {
    quarter.ok_or_else(|| ApiError::Malformed("quarter is required (YYYY-Qn)".to_owned()))
}

#[derive(Serialize, ToSchema)]
pub struct OrgCompliance {
    org_id: OrgId,
    quarter: Quarter,
    #[serde(flatten)]
    rollup: RollUp,
}

/// `GET /v1/orgs/{id}/compliance?quarter=`: the subtree's members and how they stand (rule 7:
/// members counted where they belonged on the quarter's last day, today for the current one).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/compliance", operation_id = "org_compliance", tag = "organisations",
    params(("org_id" = OrgId, Path), ComplianceQuery),
    responses(
        (status = 200, body = OrgCompliance),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiQuery(query): ApiQuery<ComplianceQuery>,
) -> Result<Response, ApiError> {
    let quarter = required_quarter(query.quarter)?;
    access::organisation(&state, &caller, &org_id).await?;
    let views = consistency::views(&state, query.min_position).await?;
    let caught_up = views.caught_up;
    let ledger = state.ledger();
    let rulesets = ledger.rulesets().await?;
    let today = local_date(Utc::now(), ledger.tz());
    // One transaction: sums and corrections from the same views, never across a replay's swap.
    let mut tx = views.pool.begin().await?;
    if !is_registered(&mut *tx, org_id.as_str()).await? {
        return Err(ApiError::NotFound(format!(
            "organisation {org_id} is not registered"
        )));
    }
    let mut sums = counters::quarter_sums(&mut *tx, org_id.as_str(), quarter).await?;
    if today < quarter.last_day() {
        correct_to_today(&mut tx, &org_id, quarter, today, &rulesets, &mut sums).await?;
    }
    tx.commit().await?;
    let rollup = rollup(quarter, &sums, &rulesets, today);
    let answer = Json(OrgCompliance {
        org_id,
        quarter,
        rollup,
    });
    Ok(FromViews { answer, caught_up }.into_response())
}

/// The current quarter counts members where they belong today: the sums count those whose
/// placement changes later in the quarter where they will be (see `counters::Correction`).
async fn correct_to_today(
    tx: &mut sqlx::PgConnection,
    org_id: &OrgId,
    quarter: Quarter,
    today: NaiveDate,
    rulesets: &[Ruleset],
    sums: &mut Vec<QuarterSums>,
) -> Result<(), ApiError> {
    let moving = counters::moving(&mut *tx, today, quarter.last_day()).await?;
    if moving.is_empty() {
        return Ok(());
    }
    let standings = counters::standings(&mut *tx, &moving).await?;
    let orgs: Vec<String> = standings
        .values()
        .flat_map(|s| s.placements.iter().map(|(_, _, org)| org.clone()))
        .collect();
    let paths = counters::paths(&mut *tx, &orgs).await?;
    let in_subtree = |org: &str| {
        paths
            .get(org)
            .is_some_and(|path| path.iter().any(|o| o == org_id.as_str()))
    };
    let correction = Correction {
        quarter,
        today,
        in_subtree: &in_subtree,
        rulesets,
    };
    for standing in standings.values() {
        correction.apply(standing, sums);
    }
    Ok(())
}
