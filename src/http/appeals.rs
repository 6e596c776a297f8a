//! Appeals (DESIGN §3 rule 9): a member contests their latest determination, a reviewer
//! upholds or overturns it, and reviewers find the open ones of their organisation's subtree.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::facts::{Appeal, AppealOutcome, AppealStatus};
use studyledger_aggregates::member::command::{FileAppeal, ResolveAppeal};
use studyledger_aggregates::member::{Member, MemberCommand, MemberEvent};
use studyledger_aggregates::values::{local_date, EvaluationId, MemberId, OrgId, Reason};
use studyledger_projections::sql::appeals::{open_appeals, OpenAppeal};
use studyledger_projections::sql::orgs::subtree;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::{Created, FromViews};
use crate::http::auth::Caller;
use crate::http::consistency;
use crate::http::error::ApiError;
use crate::http::extract::{page_limit, text, ApiJson, ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file))
        .routes(routes!(resolve))
        .routes(routes!(open_in_org))
}

/// An appeal as answered, with where it stands (`open`, `upheld`, `overturned`, `superseded`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppealAnswer {
    appeal_id: Uuid,
    evaluation_id: EvaluationId,
    determination_id: Uuid,
    reason: String,
    filed_at: DateTime<Utc>,
    status: AppealStatus,
    note: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    sequence: usize,
}

impl AppealAnswer {
    pub fn of(member: &Member, appeal: &Appeal) -> AppealAnswer {
        let resolution = appeal.resolution.as_ref();
        AppealAnswer {
            appeal_id: appeal.appeal_id,
            evaluation_id: appeal.evaluation_id.clone(),
            determination_id: appeal.determination_id,
            reason: appeal.reason.to_string(),
            filed_at: appeal.filed_at,
            status: member.appeal_status(appeal),
            note: resolution.map(|r| r.note.to_string()),
            resolved_at: resolution.map(|r| r.resolved_at),
            sequence: appeal.sequence,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct File {
    appeal_id: Uuid,
    evaluation_id: EvaluationId,
    #[schema(value_type = Reason)]
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Filed {
    member_id: MemberId,
    #[serde(flatten)]
    appeal: AppealAnswer,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/appeals`: the member contests the latest determination for an
/// evaluation; 409 without a determination or while another appeal is open.
#[utoipa::path(post, path = "/v1/members/{member_id}/appeals", tag = "appeals",
    params(("member_id" = MemberId, Path)),
    request_body = File,
    responses(
        (status = 201, body = Filed),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "member"])))]
async fn file(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<File>,
) -> Result<Created<Filed>, ApiError> {
    access::member(&state, &caller, member_id).await?;
    let ledger = state.ledger();
    let appeal_id = body.appeal_id;
    let command = MemberCommand::FileAppeal(FileAppeal {
        appeal_id,
        evaluation_id: body.evaluation_id,
        reason: text("reason", body.reason)?,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            m.appeal(appeal_id)
                .map(|a| (a.sequence, AppealAnswer::of(m, a)))
        })
        .await?;
    Ok(Created(Filed {
        member_id,
        appeal: fact.value,
        position: fact.position,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// `upheld` or `overturned`.
    #[schema(value_type = AppealOutcome)]
    outcome: String,
    #[schema(value_type = Reason)]
    note: String,
}

#[derive(Serialize, ToSchema)]
pub struct Resolved {
    member_id: MemberId,
    #[serde(flatten)]
    appeal: AppealAnswer,
    /// The final eligibility the resolution leads to (rule 9).
    eligible: Option<bool>,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/appeals/{appeal_id}/resolution`: a reviewer upholds or overturns the
/// appeal; the answer carries the final eligibility it leads to. Separation of duties: the
/// token that recorded the contested determination, or an adjustment linked to the appeal,
/// cannot resolve it (403 with the reason).
#[utoipa::path(post, path = "/v1/members/{member_id}/appeals/{appeal_id}/resolution",
    tag = "appeals",
    params(("member_id" = MemberId, Path), ("appeal_id" = Uuid, Path)),
    request_body = Resolve,
    responses(
        (status = 200, body = Resolved),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((member_id, appeal_id)): ApiPath<(MemberId, Uuid)>,
    ApiJson(body): ApiJson<Resolve>,
) -> Result<Json<Resolved>, ApiError> {
    let outcome = match body.outcome.as_str() {
        "upheld" => AppealOutcome::Upheld,
        "overturned" => AppealOutcome::Overturned,
        _ => {
            return Err(ApiError::RuleViolation(
                "outcome must be upheld or overturned".to_owned(),
            ))
        }
    };
    access::member(&state, &caller, member_id).await?;
    separate_duties(&state, &caller, member_id, appeal_id).await?;
    let ledger = state.ledger();
    let command = MemberCommand::ResolveAppeal(ResolveAppeal {
        appeal_id,
        outcome,
        note: text("note", body.note)?,
        clock: ledger.clock(),
    });
    let fact = ledger
        .record::<Member, _>(&member_id.to_string(), command, &caller.metadata(), |m| {
            let appeal = m.appeal(appeal_id)?;
            let resolution = appeal.resolution.as_ref()?;
            let eligible = m
                .final_eligibility(&appeal.evaluation_id)
                .map(|f| f.eligible);
            Some((resolution.sequence, (AppealAnswer::of(m, appeal), eligible)))
        })
        .await?;
    let (appeal, eligible) = fact.value;
    Ok(Json(Resolved {
        member_id,
        appeal,
        eligible,
        position: fact.position,
    }))
}

/// The token that recorded the determination an appeal contests, or an adjustment linked to the
/// appeal, does not judge it: token ids compared, read from the events' metadata.
async fn separate_duties(
    state: &AppState,
    caller: &Caller,
    member_id: MemberId,
    appeal_id: Uuid,
) -> Result<(), ApiError> {
    let history = state
        .ledger()
        .history::<Member>(&member_id.to_string(), None)
        .await?;
    let contested = history.iter().find_map(|r| match &r.event {
        Some(MemberEvent::AppealFiled {
            appeal_id: filed,
            determination_id,
            ..
        }) if *filed == appeal_id => Some(*determination_id),
        _ => None,
    });
    let token = caller.principal.token_id.as_str();
    for recorded in &history {
        let involved = match &recorded.event {
            Some(MemberEvent::EligibilityDetermined(d)) => Some(d.determination_id) == contested,
            Some(MemberEvent::CreditAdjusted {
                appeal_id: Some(linked),
                ..
            }) => *linked == appeal_id,
            _ => false,
        };
        if involved && recorded.token_id() == Some(token) {
            let what = match recorded.event {
                Some(MemberEvent::EligibilityDetermined(_)) => {
                    "the determination this appeal contests"
                }
                _ => "a credit adjustment linked to this appeal",
            };
            return Err(ApiError::Duties(format!(
                "separation of duties: this token recorded {what} (event {}), so another must \
                 resolve the appeal",
                recorded.sequence
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppealsQuery {
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    cursor: Option<Uuid>,
    min_position: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAppealAnswer {
    appeal_id: Uuid,
    member_id: Uuid,
    member_no: String,
    name: String,
    org_id: String,
    evaluation_id: String,
    determination_id: Uuid,
    reason: String,
    filed_at: DateTime<Utc>,
}

impl From<OpenAppeal> for OpenAppealAnswer {
    fn from(a: OpenAppeal) -> Self {
        OpenAppealAnswer {
            appeal_id: a.appeal_id,
            member_id: a.member_id,
            member_no: a.member_no,
            name: a.name,
            org_id: a.org_id,
            evaluation_id: a.evaluation_id,
            determination_id: a.determination_id,
            reason: a.reason,
            filed_at: a.filed_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OpenAppeals {
    org_id: OrgId,
    appeals: Vec<OpenAppealAnswer>,
    next_cursor: Option<Uuid>,
}

/// `GET /v1/orgs/{id}/appeals?limit=&cursor=`: open appeals of the members who belong to the
/// subtree today, in appeal id order — a reviewer's work list. `next_cursor` continues it.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/appeals", tag = "appeals",
    params(("org_id" = OrgId, Path), AppealsQuery),
    responses(
        (status = 200, body = OpenAppeals),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin"])))]
async fn open_in_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<OrgId>,
    ApiQuery(query): ApiQuery<AppealsQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.limit, 100, 1000)?;
    access::organisation(&state, &caller, &org_id).await?;
    let caught_up = consistency::wait_for_views(&state, query.min_position).await?;
    let ledger = state.ledger();
    let today = local_date(Utc::now(), ledger.tz());
    let mut tx = ledger.pool().begin().await?;
    let orgs = subtree(&mut *tx, org_id.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organisation {org_id} is not registered")))?;
    let page = open_appeals(&mut *tx, &orgs, today, query.cursor, limit).await?;
    let next_cursor = (i64::try_from(page.len()).unwrap_or(0) == limit)
        .then(|| page.last().map(|a| a.appeal_id))
        .flatten();
    drop(tx);
    access::log_read(&state, &caller, page.iter().map(|a| a.member_id).collect()).await?;
    let answer = Json(OpenAppeals {
        org_id,
        appeals: page.into_iter().map(OpenAppealAnswer::from).collect(),
        next_cursor,
    });
    Ok(FromViews { answer, caught_up }.into_response())
}
