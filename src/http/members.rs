//! `/v1/members`: enrolling a member, the member's profile, and transfers between
//! organisations (rule 7).

use axum::extract::State;
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::facts::{self, Correction, Departure, Enrolment, Rejoining};
use studyledger_aggregates::member::command::Transfer;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::organisation::Organisation;
use studyledger_aggregates::rules::credit::QuarterTotals;
use studyledger_aggregates::values::{
    local_date, EvaluationId, Hours, MemberId, MemberNo, Name, OrgId,
};
use studyledger_projections::fold::MemberFold;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson, ApiPath, CalendarDate};
use crate::http::openapi as doc;
use crate::http::skipped_events;
use crate::http::state::AppState;
use crate::http::statement_mappings;
use crate::ledger::Ledger;
use crate::store::mappings::Waiting;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrol))
        .routes(routes!(profile))
        .routes(routes!(record_transfer))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrol {
    member_id: MemberId,
    #[schema(value_type = MemberNo)]
    member_no: String,
    #[schema(value_type = Name)]
    name: String,
    org_id: OrgId,
    enrolled_on: CalendarDate,
}

#[derive(Serialize, ToSchema)]
pub struct Enrolled {
    member_id: Uuid,
    member_no: String,
    name: String,
    org_id: OrgId,
    enrolled_on: NaiveDate,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members`: enrols a member in a registered organisation (an organisation's
/// administrator: one of their subtree).
#[utoipa::path(post, path = "/v1/members", tag = "members",
    request_body = Enrol,
    responses(
        (status = 201, body = Enrolled),
        doc::CatalogRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn enrol(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Enrol>,
) -> Result<Created<Enrolled>, ApiError> {
    let enrolment = Enrolment {
        member_id: body.member_id.uuid(),
        member_no: text("member_no", body.member_no)?,
        name: text("name", body.name)?,
        org_id: body.org_id,
        enrolled_on: body.enrolled_on.within_ledger_years("enrolled_on")?,
    };
    access::organisation(&state, &caller, &enrolment.org_id).await?;
    let ledger = state.ledger();
    if !organisation_exists(ledger, &enrolment.org_id).await? {
        return Err(ApiError::RuleViolation(format!(
            "organisation {} is not registered",
            enrolment.org_id
        )));
    }
    let command = MemberCommand::Enrol(enrolment.clone());
    let fact = ledger
        .record_held::<Member, _>(
            &enrolment.member_id.to_string(),
            command,
            &caller.metadata(),
            Some(&enrolment.org_id),
            |_: &Member| Some((enrolment.member_id, enrolment.member_no.clone())),
            |_| Some((1, ())),
        )
        .await?;
    // Statements about the member stored before the enrolment count from now on.
    statement_mappings::map_waiting(&state, &caller, Waiting::Member(enrolment.member_id)).await;
    Ok(Created(Enrolled {
        member_id: enrolment.member_id,
        member_no: enrolment.member_no.into_string(),
        name: enrolment.name.into_string(),
        org_id: enrolment.org_id,
        enrolled_on: enrolment.enrolled_on,
        sequence: fact.sequence,
        position: fact.position,
    }))
}

/// For a command that moves a member to `org_id`: a 404 for a member not enrolled, else a
/// 422 when the organisation is not registered.
pub async fn moving_to(
    ledger: &Ledger,
    member_id: MemberId,
    org_id: &OrgId,
) -> Result<(), ApiError> {
    if organisation_exists(ledger, org_id).await? {
        return Ok(());
    }
    ensure_enrolled(ledger, member_id).await?;
    Err(ApiError::RuleViolation(format!(
        "organisation {org_id} is not registered"
    )))
}

pub async fn organisation_exists(ledger: &Ledger, org_id: &OrgId) -> Result<bool, ApiError> {
    let org = ledger
        .read_immutable::<Organisation>(org_id.as_str())
        .await?;
    Ok(org.record().is_some())
}

/// A 404 unless the member is enrolled: for commands whose body names something unknown, the
/// unknown member in the path is the first thing to say.
pub async fn ensure_enrolled(ledger: &Ledger, member_id: MemberId) -> Result<Member, ApiError> {
    let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
    if member.enrolment().is_none() {
        return Err(ApiError::NotFound(format!(
            "member {member_id} is not enrolled"
        )));
    }
    Ok(member)
}

#[derive(Serialize, ToSchema)]
pub struct TransferAnswer {
    transfer_id: Uuid,
    to_org_id: OrgId,
    effective_on: NaiveDate,
    sequence: usize,
}

#[derive(Serialize, ToSchema)]
pub struct DepartureAnswer {
    departure_id: Uuid,
    left_on: NaiveDate,
    reason: String,
    sequence: usize,
}

#[derive(Serialize, ToSchema)]
pub struct RejoiningAnswer {
    rejoining_id: Uuid,
    rejoined_on: NaiveDate,
    org_id: OrgId,
    sequence: usize,
}

#[derive(Serialize, ToSchema)]
pub struct CorrectionAnswer {
    correction_id: Uuid,
    name: Option<String>,
    member_no: Option<String>,
    reason: String,
    sequence: usize,
}

impl From<&facts::Transfer> for TransferAnswer {
    fn from(t: &facts::Transfer) -> Self {
        TransferAnswer {
            transfer_id: t.transfer_id,
            to_org_id: t.to_org_id.clone(),
            effective_on: t.effective_on,
            sequence: t.sequence,
        }
    }
}

impl From<&Departure> for DepartureAnswer {
    fn from(d: &Departure) -> Self {
        DepartureAnswer {
            departure_id: d.departure_id,
            left_on: d.left_on,
            reason: d.reason.to_string(),
            sequence: d.sequence,
        }
    }
}

impl From<&Rejoining> for RejoiningAnswer {
    fn from(r: &Rejoining) -> Self {
        RejoiningAnswer {
            rejoining_id: r.rejoining_id,
            rejoined_on: r.rejoined_on,
            org_id: r.org_id.clone(),
            sequence: r.sequence,
        }
    }
}

impl From<&Correction> for CorrectionAnswer {
    fn from(c: &Correction) -> Self {
        CorrectionAnswer {
            correction_id: c.correction_id,
            name: c.name.as_ref().map(ToString::to_string),
            member_no: c.member_no.as_ref().map(ToString::to_string),
            reason: c.reason.to_string(),
            sequence: c.sequence,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreditedHours {
    required: Hours,
    elective: Hours,
    total: Hours,
}

impl From<QuarterTotals> for CreditedHours {
    fn from(totals: QuarterTotals) -> Self {
        CreditedHours {
            required: totals.required,
            elective: totals.elective,
            total: totals.total(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    member_id: Uuid,
    member_no: String,
    name: String,
    /// Where the member belongs today (rule 7); where they started is `enrolled_org_id`.
    org_id: OrgId,
    enrolled_org_id: OrgId,
    enrolled_on: NaiveDate,
    transfers: Vec<TransferAnswer>,
    /// Rule 12: the first day of the member's current absence, while they are away (they
    /// count in no roll-up then; `org_id` is where they were last).
    away_since: Option<NaiveDate>,
    /// Every departure and rejoining, in the order recorded.
    departures: Vec<DepartureAnswer>,
    rejoinings: Vec<RejoiningAnswer>,
    /// Corrections of the name and number (`member_no` and `name` above are the current
    /// ones; the enrolment's are in the events), in the order recorded.
    corrections: Vec<CorrectionAnswer>,
    credited_hours: CreditedHours,
    /// The evaluations the member has a determination of, in the order first determined
    /// (`GET /v1/members/{id}/eligibility/{evaluation_id}` for each).
    evaluations: Vec<EvaluationId>,
    sequence: usize,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

/// `GET /v1/members/{id}`: who the member is, where they belong today, their transfers and
/// their lifetime credit; 404 unless enrolled.
#[utoipa::path(get, path = "/v1/members/{member_id}", tag = "members",
    params(("member_id" = MemberId, Path)),
    responses(
        (status = 200, body = Profile),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn profile(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
) -> Result<Json<Profile>, ApiError> {
    let ledger = state.ledger();
    let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
    access::reaches(&state, &caller, member_id, &member).await?;
    let enrolment = member
        .enrolment()
        .ok_or_else(|| ApiError::NotFound(format!("member {member_id} is not enrolled")))?;
    let rulesets = ledger.rulesets().await?;
    let fold = MemberFold::new(&member, &rulesets, ledger.tz());
    let today = local_date(Utc::now(), ledger.tz());
    let profile = Profile {
        member_id: enrolment.member_id,
        member_no: member
            .member_no()
            .unwrap_or(&enrolment.member_no)
            .to_string(),
        name: member.name().unwrap_or(&enrolment.name).to_string(),
        org_id: member
            .home_organisation(today)
            .unwrap_or(&enrolment.org_id)
            .clone(),
        enrolled_org_id: enrolment.org_id.clone(),
        enrolled_on: enrolment.enrolled_on,
        transfers: member.transfers().iter().map(Into::into).collect(),
        away_since: member
            .tenure()
            .and_then(|t| t.current_absence().map(|a| a.left_on)),
        departures: member.departures().iter().map(Into::into).collect(),
        rejoinings: member.rejoinings().iter().map(Into::into).collect(),
        corrections: member.corrections().iter().map(Into::into).collect(),
        credited_hours: fold.lifetime_totals().into(),
        evaluations: member
            .determinations()
            .iter()
            .fold(Vec::new(), |mut seen, d| {
                if !seen.contains(&d.evaluation_id) {
                    seen.push(d.evaluation_id.clone());
                }
                seen
            }),
        sequence: member.version(),
        incomplete: skipped_events::incomplete(&state, member_id).await?,
    };
    access::log_read(&state, &caller, vec![member_id.uuid()]).await?;
    Ok(Json(profile))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordTransfer {
    transfer_id: Uuid,
    to_org_id: OrgId,
    effective_on: CalendarDate,
}

#[derive(Serialize, ToSchema)]
pub struct Transferred {
    member_id: MemberId,
    transfer_id: Uuid,
    to_org_id: OrgId,
    effective_on: NaiveDate,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/transfers`: the member moves to another organisation from a day on
/// (an organisation's administrator: both ends inside their subtree).
#[utoipa::path(post, path = "/v1/members/{member_id}/transfers", tag = "members",
    params(("member_id" = MemberId, Path)),
    request_body = RecordTransfer,
    responses(
        (status = 201, body = Transferred),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn record_transfer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RecordTransfer>,
) -> Result<Created<Transferred>, ApiError> {
    let effective_on = body.effective_on.within_ledger_years("effective_on")?;
    access::member(&state, &caller, member_id).await?;
    access::organisation(&state, &caller, &body.to_org_id).await?;
    let ledger = state.ledger();
    moving_to(ledger, member_id, &body.to_org_id).await?;
    let transfer_id = body.transfer_id;
    let command = MemberCommand::Transfer(Transfer {
        transfer_id,
        to_org_id: body.to_org_id.clone(),
        effective_on,
    });
    let fact = ledger
        .record_held::<Member, _>(
            &member_id.to_string(),
            command,
            &caller.metadata(),
            Some(&body.to_org_id),
            |_| None,
            |m| m.transfer(transfer_id).map(|t| (t.sequence, ())),
        )
        .await?;
    Ok(Created(Transferred {
        member_id,
        transfer_id,
        to_org_id: body.to_org_id,
        effective_on,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
