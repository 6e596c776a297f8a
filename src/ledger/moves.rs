//! Moving an organisation, with its subtree, under another parent from a quarter's first day.
//!
//! Whether the move makes a cycle, or cuts into the tree of an earlier move, depends on the
//! whole tree, which no one stream holds. So every move holds the tree's lock alone in the
//! transaction that records it (moves are rare; only merges share that lock, so that the
//! organisation a merge goes into stays outside the subtree it closes), shares the
//! locks of the organisation and its new parent (a closing of either waits, and a closed one
//! is refused), waits for the views to hold the log, and only then reads the tree of today and
//! the ancestors over time (`org_ancestry_view`) to decide.

use chrono::Utc;
use studyledger_aggregates::organisation::{
    Move, Organisation, OrganisationCommand, OrganisationRejection,
};
use studyledger_aggregates::values::{local_date, OrgId, Quarter};
use studyledger_projections::sql::orgs;

use super::closures::TreeError;
use super::{CommandError, Fact, Ledger};
use crate::store::organisations;
use crate::store::record::Metadata;

impl Ledger {
    /// Moves `org_id` with its subtree under `to.parent_id` from `to.moved_on` on. A resend
    /// answers the move recorded before.
    pub async fn move_organisation(
        &self,
        org_id: &OrgId,
        to: Move,
        metadata: &Metadata,
    ) -> Result<Fact<()>, TreeError> {
        let mut tx = self.pool().begin().await?;
        organisations::take_tree(&mut tx).await?;
        let closed =
            organisations::share(&mut tx, &[org_id.as_str(), to.parent_id.as_str()]).await?;
        let command = OrganisationCommand::Move(to.clone());
        let (current, _) = self.read::<Organisation>(org_id.as_str()).await?;
        if current
            .decide(&command)
            .map_err(CommandError::Rejected)?
            .is_empty()
        {
            return self.moved_before(org_id, &current, &to).await;
        }
        if closed.iter().any(|c| c == to.parent_id.as_str()) {
            let closed = OrganisationRejection::ParentClosed(to.parent_id.clone());
            return Err(CommandError::Rejected(closed).into());
        }
        let first = Quarter::of_date(local_date(Utc::now(), self.tz())).first_day();
        if to.moved_on > first {
            return Err(TreeError::AheadOfQuarter(first));
        }
        self.views_hold_the_log().await?;
        self.check_tree(org_id, &to).await?;
        self.record_tree_change(tx, org_id, command, metadata, |org| {
            org.moves()
                .find(|(_, m)| m.move_id == to.move_id)
                .map_or(0, |(sequence, _)| sequence)
        })
        .await
    }

    /// The new parent is registered and outside the subtree, and no move of the subtree, of
    /// anything in it or of anything above the new parent takes effect after the day.
    async fn check_tree(&self, org_id: &OrgId, to: &Move) -> Result<(), TreeError> {
        let Some(parent) = orgs::node(self.pool(), to.parent_id.as_str()).await? else {
            return Err(TreeError::ParentUnknown(to.parent_id.clone()));
        };
        if parent.path.iter().any(|o| o == org_id.as_str()) {
            return Err(TreeError::UnderOwnSubtree {
                org_id: org_id.clone(),
                parent: to.parent_id.clone(),
            });
        }
        let last = orgs::last_move(self.pool(), org_id.as_str(), to.parent_id.as_str()).await?;
        match last {
            Some(day) if day > to.moved_on => Err(TreeError::BeforeEarlierMove {
                org_id: org_id.clone(),
                parent: to.parent_id.clone(),
                day,
            }),
            _ => Ok(()),
        }
    }

    /// The answer to an exact resend: the move recorded before.
    async fn moved_before(
        &self,
        org_id: &OrgId,
        current: &Organisation,
        to: &Move,
    ) -> Result<Fact<()>, TreeError> {
        let Some((sequence, _)) = current.moves().find(|(_, m)| m.move_id == to.move_id) else {
            return Err(CommandError::Vanished.into());
        };
        let position = self
            .position_after::<Organisation>(org_id.as_str(), &[], sequence)
            .await?;
        Ok(Fact {
            sequence,
            position,
            value: (),
        })
    }
}
