//! Closing an organisation, and merging one into another (which transfers its members, then
//! closes it).
//!
//! A closing holds the organisation's lock alone (`store::organisations`) in the transaction
//! that records it: every move into the organisation has committed by then, or waits and
//! then finds the closing. It waits for the views to hold the whole log below that point,
//! and only then reads who belongs to the organisation from the closing day on and which of
//! its children are open: the aggregate cannot see other streams, so the check happens here,
//! under the lock, where no move can slip past it.

use std::time::Duration;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use futures::{StreamExt, TryStreamExt};
use studyledger_aggregates::member::command::Transfer;
use studyledger_aggregates::member::{Member, MemberCommand, MemberRejection};
use studyledger_aggregates::organisation::{
    Closure, Organisation, OrganisationCommand, OrganisationRejection,
};
use studyledger_aggregates::values::OrgId;
use studyledger_projections::sql::orgs;
use uuid::Uuid;

use super::{CommandError, Fact, Ledger};
use crate::store::commit_order;
use crate::store::error::StoreError;
use crate::store::organisations;
use crate::store::record::Metadata;

/// How long a closing waits for the views to hold the log before it answers "retry".
const VIEWS_WAIT: Duration = Duration::from_secs(10);
/// Members named in a refusal (the count says how many there are).
const NAMED: usize = 5;
/// A merge's transfers in flight at once (each on a connection of the pool).
const TRANSFERS_AT_ONCE: usize = 4;

/// Why a change to the tree (a closing, a merge, a move) was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Command(#[from] CommandError<OrganisationRejection>),
    #[error(
        "{count} member(s) belong to {org_id} on {day} or later (among them {named}): \
         transfer them first, or merge the organisation into another"
    )]
    Occupied {
        org_id: OrgId,
        day: NaiveDate,
        count: usize,
        named: String,
    },
    #[error("{org_id} has open child organisations ({children}): close or merge them first")]
    OpenChildren { org_id: OrgId, children: String },
    #[error("{into} lies inside the subtree of {org_id}: merge into an organisation outside it")]
    IntoOwnSubtree { org_id: OrgId, into: OrgId },
    #[error("organisation {0} to merge into is not registered")]
    IntoUnknown(OrgId),
    #[error("transferring member {member_id} refused: {rejection}")]
    TransferRefused {
        member_id: Uuid,
        rejection: MemberRejection,
    },
    #[error(
        "{parent} lies inside the subtree of {org_id}: move it under an organisation outside it"
    )]
    UnderOwnSubtree { org_id: OrgId, parent: OrgId },
    #[error("organisation {0} to move under is not registered")]
    ParentUnknown(OrgId),
    #[error("a move takes effect no later than the current quarter's first day ({0})")]
    AheadOfQuarter(NaiveDate),
    #[error(
        "{org_id} moved on {day}, and its subtree or {parent} with it: \
         a later move cannot take effect before that"
    )]
    BeforeEarlierMove {
        org_id: OrgId,
        parent: OrgId,
        day: NaiveDate,
    },
    #[error("the views have not caught up with the log yet; retry shortly")]
    ViewsBehind,
}

impl From<StoreError> for TreeError {
    fn from(error: StoreError) -> Self {
        TreeError::Command(CommandError::Store(error))
    }
}

impl From<sqlx::Error> for TreeError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// What a closing did: its event (or the one a resend found) and the members a merge
/// transferred (none for a plain closing or a resend).
#[derive(Debug)]
pub struct Closed {
    pub fact: Fact<()>,
    pub transferred: usize,
}

impl Ledger {
    /// Closes `org_id` as `closure` says; with `closure.merged_into`, first transfers everyone
    /// who belongs to it from the closing day on to that organisation, from that day (or
    /// from the day they arrive, when later). Each transfer's id comes from the closing's id
    /// and the stay it ends, so a resend after a failure half-way transfers nobody twice.
    pub async fn close_organisation(
        &self,
        org_id: &OrgId,
        closure: Closure,
        metadata: &Metadata,
    ) -> Result<Closed, TreeError> {
        let into = closure.merged_into.clone();
        let mut tx = self.pool().begin().await?;
        if into.is_some() {
            // No move runs while a merge decides and transfers (moves take the tree's lock
            // alone): the organisation it merges into stays outside its subtree.
            organisations::share_tree(&mut tx).await?;
        }
        organisations::take_alone(&mut tx, org_id.as_str(), into.as_ref().map(OrgId::as_str))
            .await?;
        // Under the lock no other closing of it runs, in any instance.
        let command = OrganisationCommand::Close(closure.clone());
        let (current, _) = self.read::<Organisation>(org_id.as_str()).await?;
        if current
            .decide(&command)
            .map_err(CommandError::Rejected)?
            .is_empty()
        {
            return self.closed_before(org_id, &current).await;
        }
        if let Some(into) = &into {
            self.check_into(&mut tx, into).await?;
        }
        self.views_hold_the_log().await?;
        if let Some(into) = &into {
            if into != org_id && self.organisation_within(into, org_id).await? {
                return Err(TreeError::IntoOwnSubtree {
                    org_id: org_id.clone(),
                    into: into.clone(),
                });
            }
        }
        self.check_children(org_id).await?;
        let transferred = match &into {
            Some(into) => {
                let moved = self
                    .transfer_stays(org_id, &closure, into, metadata)
                    .await?;
                self.views_hold_the_log().await?;
                moved
            }
            None => 0,
        };
        self.check_empty(org_id, closure.closed_on).await?;
        let fact = self
            .record_tree_change(tx, org_id, command, metadata, |org| {
                org.closure().map_or(0, |(sequence, _)| sequence)
            })
            .await?;
        Ok(Closed { fact, transferred })
    }

    /// Records a change of the tree in the transaction that holds its locks, under the
    /// aggregate's lock in this process (taken only now: a merge's transfers take members'
    /// locks, which may share its stripe); `sequence_of` finds the change's event.
    pub(super) async fn record_tree_change(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        org_id: &OrgId,
        command: OrganisationCommand,
        metadata: &Metadata,
        sequence_of: impl Fn(&Organisation) -> usize,
    ) -> Result<Fact<()>, TreeError> {
        let _guard = self.lock_for::<Organisation>(org_id.as_str()).lock().await;
        let mut context = self.take::<Organisation>(org_id.as_str()).await?;
        let sink = EventSink::<Organisation>::default();
        if let Err(rejection) = context.aggregate.handle(command, &(), &sink).await {
            self.keep(context);
            return Err(CommandError::Rejected(rejection).into());
        }
        let events = sink.collect().await;
        let mut metadata = metadata.clone();
        metadata.recorded_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
        let appended = match self
            .append_on::<Organisation>(&mut tx, &events, &mut context, &metadata)
            .await
        {
            Ok(appended) => appended,
            // A rename from another instance came first: the caller sends the closing again.
            Err(StoreError::Conflict) => return Err(CommandError::Contention.into()),
            Err(other) => return Err(other.into()),
        };
        tx.commit().await?;
        let sequence = sequence_of(&context.aggregate);
        self.keep(context);
        Ok(Fact {
            sequence,
            position: appended.last().map(|a| a.position),
            value: (),
        })
    }

    /// The answer to an exact resend: the closing recorded before.
    async fn closed_before(
        &self,
        org_id: &OrgId,
        current: &Organisation,
    ) -> Result<Closed, TreeError> {
        let Some((sequence, _)) = current.closure() else {
            return Err(CommandError::Vanished.into());
        };
        let position = self
            .position_after::<Organisation>(org_id.as_str(), &[], sequence)
            .await?;
        Ok(Closed {
            fact: Fact {
                sequence,
                position,
                value: (),
            },
            transferred: 0,
        })
    }

    /// The organisation a merge sends members to must be registered and open (its lock is
    /// shared by the caller's transaction, so it stays open until the merge commits).
    async fn check_into(&self, tx: &mut sqlx::PgConnection, into: &OrgId) -> Result<(), TreeError> {
        let registered = self
            .read_immutable::<Organisation>(into.as_str())
            .await?
            .record()
            .is_some();
        if !registered {
            return Err(TreeError::IntoUnknown(into.clone()));
        }
        if !organisations::closed_among(tx, &[into.as_str()])
            .await?
            .is_empty()
        {
            let closed = OrganisationRejection::ParentClosed(into.clone());
            return Err(CommandError::Rejected(closed).into());
        }
        Ok(())
    }

    /// Waits until the views hold every event committed before now.
    pub(super) async fn views_hold_the_log(&self) -> Result<(), TreeError> {
        let (horizon, fresh) = commit_order::fresh_now(self.pool()).await?;
        if fresh || commit_order::wait_until_covered(self.pool(), horizon, VIEWS_WAIT).await? {
            return Ok(());
        }
        Err(TreeError::ViewsBehind)
    }

    async fn check_children(&self, org_id: &OrgId) -> Result<(), TreeError> {
        let children = orgs::open_children(self.pool(), org_id.as_str()).await?;
        if children.is_empty() {
            return Ok(());
        }
        Err(TreeError::OpenChildren {
            org_id: org_id.clone(),
            children: children.join(", "),
        })
    }

    async fn check_empty(&self, org_id: &OrgId, day: NaiveDate) -> Result<(), TreeError> {
        let staying = orgs::staying_from(self.pool(), org_id.as_str(), day).await?;
        if staying.is_empty() {
            return Ok(());
        }
        let mut members: Vec<Uuid> = staying.iter().map(|(member, _)| *member).collect();
        members.dedup();
        let named: Vec<String> = members.iter().take(NAMED).map(Uuid::to_string).collect();
        Err(TreeError::Occupied {
            org_id: org_id.clone(),
            day,
            count: members.len(),
            named: named.join(", "),
        })
    }

    /// Transfers each stay in `org_id` that reaches the closing day to `into`, a few at a time,
    /// and answers how many transfers it recorded; the first refusal ends it.
    async fn transfer_stays(
        &self,
        org_id: &OrgId,
        closure: &Closure,
        into: &OrgId,
        metadata: &Metadata,
    ) -> Result<usize, TreeError> {
        let staying = orgs::staying_from(self.pool(), org_id.as_str(), closure.closed_on).await?;
        futures::stream::iter(staying)
            .map(|(member_id, arrived_on)| {
                self.transfer_stay(member_id, arrived_on, closure, into, metadata)
            })
            .buffer_unordered(TRANSFERS_AT_ONCE)
            .try_fold(0, |transferred, ()| async move { Ok(transferred + 1) })
            .await
    }

    /// Ends one stay in a merge: a transfer to `into` from the later of the closing day and the
    /// stay's first day, its id derived from the merge's and the stay's.
    async fn transfer_stay(
        &self,
        member_id: Uuid,
        arrived_on: NaiveDate,
        closure: &Closure,
        into: &OrgId,
        metadata: &Metadata,
    ) -> Result<(), TreeError> {
        let name = format!("{member_id}/{arrived_on}");
        let transfer_id = Uuid::new_v5(&closure.closure_id, name.as_bytes());
        let command = MemberCommand::Transfer(Transfer {
            transfer_id,
            to_org_id: into.clone(),
            effective_on: arrived_on.max(closure.closed_on),
        });
        let recorded = self
            .record_held::<Member, _>(
                &member_id.to_string(),
                command,
                metadata,
                Some(into),
                |_| None,
                |m| m.transfer(transfer_id).map(|t| (t.sequence, ())),
            )
            .await;
        match recorded {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(rejection)) => Err(TreeError::TransferRefused {
                member_id,
                rejection,
            }),
            Err(CommandError::Store(error)) => Err(error.into()),
            Err(CommandError::Contention) => Err(CommandError::Contention.into()),
            Err(CommandError::Vanished) => Err(CommandError::Vanished.into()),
        }
    }
}
