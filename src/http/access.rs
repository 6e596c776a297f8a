//! What a caller may see and touch, checked where the data is read, and the record of who
//! read whose record.
//!
//! - A `member` reaches their own record only; an `org_admin` the members who belong to their
//!   subtree today (rule 7: a transfer moves a member out of the old subtree from its
//!   `effective_on`) and the organisations of that subtree; `ingest`, `auditor` and `admin`
//!   reach every member their routes admit.
//! - Anything out of reach, existing or not, is the same 403 with the same body: a 403 never
//!   tells whether somebody exists. A member token is compared with the id, nothing read; an
//!   organisation's administrator has the member's stream read (one load), so an unknown
//!   member costs what a known one does.
//! - Every read of a member's record by another token is recorded before the answer leaves.

use chrono::Utc;
use studyledger_aggregates::member::Member;
use studyledger_aggregates::values::{local_date, MemberId, OrgId};
use uuid::Uuid;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::access_log::Read;
use crate::store::tokens::Role;

/// Whether the caller may reach a member; the same 403 otherwise.
pub async fn member(
    state: &AppState,
    caller: &Caller,
    member_id: MemberId,
) -> Result<(), ApiError> {
    match caller.role() {
        Role::OrgAdmin => {
            let (member, _) = state
                .ledger()
                .read::<Member>(&member_id.to_string())
                .await?;
            reaches(state, caller, member_id, &member).await
        }
        _ => reaches(state, caller, member_id, &Member::default()).await,
    }
}

/// Whether the caller may reach a member whose stream was read already.
pub async fn reaches(
    state: &AppState,
    caller: &Caller,
    member_id: MemberId,
    member: &Member,
) -> Result<(), ApiError> {
    let principal = &caller.principal;
    match principal.role {
        Role::Admin | Role::Auditor | Role::Ingest => Ok(()),
        Role::Member if principal.member == Some(member_id) => Ok(()),
        Role::Member => Err(ApiError::Forbidden),
        Role::OrgAdmin => {
            let today = local_date(Utc::now(), state.ledger().tz());
            within_subtree(state, caller, member.home_organisation(today)).await
        }
    }
}

/// Whether the caller may reach an organisation (and its subtree); the same 403 otherwise.
pub async fn organisation(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
) -> Result<(), ApiError> {
    match caller.role() {
        Role::Admin | Role::Auditor => Ok(()),
        Role::OrgAdmin => within_subtree(state, caller, Some(org_id)).await,
        Role::Member | Role::Ingest => Err(ApiError::Forbidden),
    }
}

async fn within_subtree(
    state: &AppState,
    caller: &Caller,
    org_id: Option<&OrgId>,
) -> Result<(), ApiError> {
    let (Some(org_id), Some(scope)) = (org_id, caller.principal.org.as_ref()) else {
        return Err(ApiError::Forbidden);
    };
    if state.ledger().organisation_within(org_id, scope).await? {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Records that the caller read these members' records (nothing when a member reads their
/// own); the answer must not leave unless this succeeds.
pub async fn log_read(
    state: &AppState,
    caller: &Caller,
    member_ids: Vec<Uuid>,
) -> Result<(), ApiError> {
    let own = caller
        .principal
        .member
        .is_some_and(|own| member_ids.iter().all(|m| *m == own.uuid()));
    if member_ids.is_empty() || (caller.role() == Role::Member && own) {
        return Ok(());
    }
    let principal = &caller.principal;
    let read = Read {
        token_id: principal.token_id.clone(),
        role: principal.role.as_str().to_owned(),
        name: principal.name.clone(),
        route: caller.route.clone(),
        request_id: caller.request_id.clone(),
        member_ids,
    };
    state.read_log().record(read).await.map_err(|error| {
        tracing::warn!(%error, "a read could not be logged; it is refused");
        ApiError::Unavailable
    })
}
