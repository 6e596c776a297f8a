//! `/v1/members/{id}/corrections`: who the member is, corrected — a new name, a new member
//! number, or both — as an event; the enrolment is never edited. Views and lists show the
//! current values, the profile and the events the history. A new number must be free: no two
//! members' current numbers are the same (409).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use studyledger_aggregates::member::command::Correct;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::values::{MemberId, MemberNo, Name, Reason};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::access;
use crate::http::answer::Created;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::{text, ApiJson, ApiPath};
use crate::http::openapi as doc;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_correction))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordCorrection {
    correction_id: Uuid,
    #[schema(value_type = Option<Name>)]
    name: Option<String>,
    #[schema(value_type = Option<MemberNo>)]
    member_no: Option<String>,
    #[schema(value_type = Reason)]
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct Corrected {
    member_id: MemberId,
    correction_id: Uuid,
    /// The member's name and number after the correction.
    name: String,
    member_no: String,
    sequence: usize,
    position: Option<i64>,
}

/// `POST /v1/members/{id}/corrections`: a new name or member number (at least one that
/// differs from the current one, else 422), with a reason. 409 when another member holds the
/// number; the same id with other content is 409, an exact resend answers the same.
#[utoipa::path(post, path = "/v1/members/{member_id}/corrections", tag = "members",
    params(("member_id" = MemberId, Path)),
    request_body = RecordCorrection,
    responses(
        (status = 201, body = Corrected),
        doc::CommandRefusals,
    ),
    security(("bearer" = ["admin", "org_admin"])))]
async fn record_correction(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(member_id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RecordCorrection>,
) -> Result<Created<Corrected>, ApiError> {
    let name: Option<Name> = body.name.map(|n| text("name", n)).transpose()?;
    let member_no: Option<MemberNo> = body.member_no.map(|n| text("member_no", n)).transpose()?;
    let reason = text("reason", body.reason)?;
    access::member(&state, &caller, member_id).await?;
    let ledger = state.ledger();
    let correction_id = body.correction_id;
    let command = MemberCommand::Correct(Correct {
        correction_id,
        name,
        member_no: member_no.clone(),
        reason,
    });
    let find = |m: &Member| {
        let current = (m.name()?.to_string(), m.member_no()?.to_string());
        m.correction(correction_id).map(|c| (c.sequence, current))
    };
    let id = member_id.uuid();
    // A number the member has already claims nothing (a member enrolled before numbers were
    // claimed may share theirs, and can still be renamed).
    let claim = |m: &Member| {
        member_no
            .clone()
            .filter(|n| m.member_no() != Some(n))
            .map(|n| (id, n))
    };
    let fact = ledger
        .record_held::<Member, _>(
            &id.to_string(),
            command,
            &caller.metadata(),
            None,
            claim,
            find,
        )
        .await?;
    let (name, member_no) = fact.value;
    Ok(Created(Corrected {
        member_id,
        correction_id,
        name,
        member_no,
        sequence: fact.sequence,
        position: fact.position,
    }))
}
