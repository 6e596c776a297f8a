//! `GET /v1/members/{id}/eligibility/{evaluation_id}`: a member's final eligibility (rule 9),
//! the determination in force with its basis as recorded, its appeal, the determinations it
//! superseded — and, asked to explain, what counted and why, as the system knew it when it
//! decided and as it would decide now.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rules::eligibility::{Determination, QuarterJudgement};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::values::{EvaluationId, MemberId, Quarter};
use studyledger_projections::ledger_lines::{
    explain, fold_history, ledger_lines, ExplainedQuarter, LedgerLine,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::appeals::AppealAnswer;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::events::with_provenance;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::openapi as doc;
use crate::http::skipped_events;
use crate::http::state::AppState;
use crate::store::record::Recorded;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(eligibility))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EligibilityQuery {
    /// Add what counted and why, as determined and as it would be decided now.
    explain: Option<bool>,
    /// Explain this (earlier) determination instead of the one in force.
    determination_id: Option<Uuid>,
}

/// A determination as recorded.
#[derive(Serialize, ToSchema)]
pub struct DeterminationAnswer {
    determination_id: Uuid,
    evaluation_id: EvaluationId,
    eligible: bool,
    determined_at: DateTime<Utc>,
    rules_version: u32,
    quarters: Vec<QuarterJudgement>,
}

impl From<&Determination> for DeterminationAnswer {
    fn from(d: &Determination) -> Self {
        DeterminationAnswer {
            determination_id: d.determination_id,
            evaluation_id: d.evaluation_id.clone(),
            eligible: d.eligible,
            determined_at: d.determined_at,
            rules_version: d.rules_version,
            quarters: d.quarters.clone(),
        }
    }
}

/// An earlier determination, superseded, with its appeal.
#[derive(Serialize, ToSchema)]
pub struct Superseded {
    #[serde(flatten)]
    determination: DeterminationAnswer,
    appeal: Option<AppealAnswer>,
}

#[derive(Serialize, ToSchema)]
pub struct Eligibility {
    member_id: MemberId,
    evaluation_id: EvaluationId,
    eligible: bool,
    determination: DeterminationAnswer,
    appeal: Option<AppealAnswer>,
    earlier_determinations: Vec<Superseded>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
    /// The member's record holds an event the ledger could not apply and that no
    /// administrator set aside (`GET /v1/skipped-events`): what is shown may miss a fact.
    incomplete: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Explanation {
    determination_id: Uuid,
    as_determined: AsDetermined,
    now: AsNow,
}

/// What the system knew: the events before the determination, the rulesets it knew.
#[derive(Serialize, ToSchema)]
pub struct AsDetermined {
    determination_sequence: usize,
    recorded_at: DateTime<Utc>,
    rules_version: u32,
    eligible: bool,
    quarters: Vec<ExplainedQuarter>,
}

/// What it would decide now: every fact and every ruleset.
#[derive(Serialize, ToSchema)]
pub struct AsNow {
    rules_version: Option<u32>,
    eligible: bool,
    quarters: Vec<ExplainedQuarter>,
}

/// The final eligibility (rule 9), the determination in force as recorded, and its appeal;
/// then the determinations it superseded, newest first, each with its appeal.
fn eligibility_of(
    member_id: MemberId,
    member: &Member,
    evaluation_id: &EvaluationId,
) -> Result<Eligibility, ApiError> {
    let found = member.final_eligibility(evaluation_id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "member {member_id} has no determination for {evaluation_id}"
        ))
    })?;
    let in_force = found.determination;
    let earlier = member
        .determinations()
        .iter()
        .rev()
        .filter(|d| {
            &d.evaluation_id == evaluation_id && d.determination_id != in_force.determination_id
        })
        .map(|d| Superseded {
            determination: d.into(),
            appeal: member
                .appeal_against(d.determination_id)
                .map(|a| AppealAnswer::of(member, a)),
        })
        .collect();
    Ok(Eligibility {
        member_id,
        evaluation_id: evaluation_id.clone(),
        eligible: found.eligible,
        determination: in_force.into(),
        appeal: found.appeal.map(|a| AppealAnswer::of(member, a)),
        earlier_determinations: earlier,
        explanation: None,
        incomplete: false,
    })
}

/// `GET /v1/members/{id}/eligibility/{evaluation_id}[?explain=true][&determination_id=]`;
/// 404 when no determination exists. With `explain=true`, per quarter of the evaluation, the
/// completions and adjustments that counted and those that did not (and why), each with its
/// sequence and position; `determination_id=` explains an earlier determination instead.
#[utoipa::path(get, path = "/v1/members/{member_id}/eligibility/{evaluation_id}",
    tag = "eligibility",
    params(("member_id" = MemberId, Path), ("evaluation_id" = EvaluationId, Path), EligibilityQuery),
    responses(
        (status = 200, body = Eligibility),
        doc::ReadRefusals,
    ),
    security(("bearer" = ["admin", "auditor", "org_admin", "member"])))]
async fn eligibility(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((member_id, evaluation_id)): ApiPath<(MemberId, EvaluationId)>,
    ApiQuery(query): ApiQuery<EligibilityQuery>,
) -> Result<Json<Eligibility>, ApiError> {
    let ledger = state.ledger();
    if query.explain != Some(true) && query.determination_id.is_none() {
        let (member, _) = ledger.read::<Member>(&member_id.to_string()).await?;
        access::reaches(&state, &caller, member_id, &member).await?;
        let mut answer = eligibility_of(member_id, &member, &evaluation_id)?;
        answer.incomplete = skipped_events::incomplete(&state, member_id).await?;
        access::log_read(&state, &caller, vec![member_id.uuid()]).await?;
        return Ok(Json(answer));
    }
    let history = ledger
        .history::<Member>(&member_id.to_string(), None)
        .await?;
    let (now, now_provenance) = fold_history(with_provenance(history.iter().cloned()), usize::MAX);
    access::reaches(&state, &caller, member_id, &now).await?;
    let mut answer = eligibility_of(member_id, &now, &evaluation_id)?;
    let explained_id = query
        .determination_id
        .unwrap_or(answer.determination.determination_id);
    let explained = now
        .determination(explained_id)
        .filter(|d| d.evaluation_id == evaluation_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "member {member_id} has no determination {explained_id} for {evaluation_id}"
            ))
        })?;
    let rulesets = ledger.rulesets().await?;
    let now_lines = ledger_lines(&now, &rulesets, ledger.tz(), &now_provenance);
    answer.explanation = Some(explanation(
        &state, history, &now, &now_lines, explained, &rulesets,
    )?);
    answer.incomplete = skipped_events::incomplete(&state, member_id).await?;
    access::log_read(&state, &caller, vec![member_id.uuid()]).await?;
    Ok(Json(answer))
}

/// A determination explained from the member's whole stream: as determined (the events before
/// its own, the rulesets it knew) and as it would be decided now.
fn explanation(
    state: &AppState,
    history: Vec<Recorded<MemberEvent>>,
    now: &Member,
    now_lines: &[LedgerLine],
    determination: &Determination,
    rulesets: &[Ruleset],
) -> Result<Explanation, ApiError> {
    let (sequence, recorded_at) = history
        .iter()
        .find_map(|r| match &r.event {
            Some(MemberEvent::EligibilityDetermined(d))
                if d.determination_id == determination.determination_id =>
            {
                Some((r.sequence, r.recorded_at))
            }
            _ => None,
        })
        .ok_or(ApiError::Internal)?;
    let ledger = state.ledger();
    let tz = ledger.tz();
    let quarters: Vec<Quarter> = determination.quarters.iter().map(|q| q.quarter).collect();
    let known_rules: Vec<Ruleset> = rulesets
        .iter()
        .filter(|r| r.version <= determination.rules_version)
        .cloned()
        .collect();
    let (then, then_provenance) = fold_history(with_provenance(history), sequence);
    let then_lines = ledger_lines(&then, &known_rules, tz, &then_provenance);
    let (eligible_now, judged_now) = now
        .eligibility(&quarters, rulesets, ledger.clock())
        .ok_or(ApiError::Internal)?;
    Ok(Explanation {
        determination_id: determination.determination_id,
        as_determined: AsDetermined {
            determination_sequence: sequence,
            recorded_at,
            rules_version: determination.rules_version,
            eligible: determination.eligible,
            quarters: explain(&determination.quarters, &then_lines),
        },
        now: AsNow {
            rules_version: latest_version(rulesets),
            eligible: eligible_now,
            quarters: explain(&judged_now, now_lines),
        },
    })
}
