//! Commands that need something held beyond their own stream, in the same transaction as
//! their event:
//!
//! - a member number (an enrolment, a correction of the number) is claimed, so no two
//!   members' current numbers are ever the same, whatever instance or import records them;
//! - an organisation the command places someone in (an enrolment, a transfer, a rejoining, a
//!   child's registration) shares the organisation's lock and must not be closed, so a
//!   closing never misses a move (`store::organisations`).
//!
//! Locks are taken in one order everywhere: an organisation's advisory lock, then the
//! aggregate's lock in this process.

use cqrs_es::event_sink::EventSink;
use rand::Rng;
use studyledger_aggregates::member::MemberRejection;
use studyledger_aggregates::organisation::OrganisationRejection;
use studyledger_aggregates::values::{MemberNo, OrgId};
use uuid::Uuid;

use super::{CommandError, Fact, Ledger, Stored, MAX_ATTEMPTS};
use crate::store::error::StoreError;
use crate::store::record::Metadata;
use crate::store::{member_numbers, organisations};

/// Why a hold failed: the command is refused and nothing is recorded.
#[derive(Debug)]
pub enum Held {
    /// Another member holds the number.
    Number(MemberNo),
    /// The organisation is closed.
    Closed(OrgId),
}

impl From<Held> for MemberRejection {
    fn from(held: Held) -> Self {
        match held {
            Held::Number(member_no) => MemberRejection::MemberNoHeld(member_no),
            Held::Closed(org_id) => MemberRejection::OrganisationClosed(org_id),
        }
    }
}

impl From<Held> for OrganisationRejection {
    fn from(held: Held) -> Self {
        match held {
            // Organisations hold no numbers: only the parent's closing can refuse them.
            Held::Number(_) => OrganisationRejection::NotRegistered,
            Held::Closed(org_id) => OrganisationRejection::ParentClosed(org_id),
        }
    }
}

impl Ledger {
    /// Records a command as [`Ledger::record`] does, in a transaction of its own that also
    /// holds what the command needs beyond its stream: the lock of the organisation it places
    /// someone in (`into`, which must be open), and the claim of a number `claim` names for
    /// the aggregate as it stands before the command (one the member does not have yet). A
    /// hold that fails refuses the command ([`Held`]) and records nothing; an exact resend
    /// answers as before, whatever has changed since.
    pub async fn record_held<A, T>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        into: Option<&OrgId>,
        claim: impl Fn(&A) -> Option<(Uuid, MemberNo)>,
        find: impl Fn(&A) -> Option<(usize, T)>,
    ) -> Result<Fact<T>, CommandError<A::Error>>
    where
        A: Stored,
        A::Command: Clone,
        A::Error: From<Held>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
            // The organisation's lock before any lock of this process: a closing holds it
            // alone while its merge's transfers take members' locks.
            let closed = match into {
                Some(org_id) => !organisations::share(&mut tx, &[org_id.as_str()])
                    .await
                    .map_err(StoreError::from)?
                    .is_empty(),
                None => false,
            };
            let _guard = self.lock_for::<A>(aggregate_id).lock().await;
            let mut context = self.take::<A>(aggregate_id).await?;
            let claiming = claim(&context.aggregate);
            let sink = EventSink::<A>::default();
            if let Err(rejection) = context.aggregate.handle(command.clone(), &(), &sink).await {
                self.keep(context);
                return Err(CommandError::Rejected(rejection));
            }
            let events = sink.collect().await;
            if events.is_empty() {
                return self.answer_resend(context, find).await;
            }
            // From here on a refusal drops the state, which applied the refused events.
            if let (true, Some(org_id)) = (closed, into) {
                return Err(CommandError::Rejected(Held::Closed(org_id.clone()).into()));
            }
            if let Some((member_id, member_no)) = claiming {
                let holder = member_numbers::claim(&mut tx, member_no.as_str(), member_id)
                    .await
                    .map_err(StoreError::from)?;
                if holder != member_id {
                    return Err(CommandError::Rejected(Held::Number(member_no).into()));
                }
            }
            let mut metadata = metadata.clone();
            metadata.recorded_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
            let appended = match self
                .append_on::<A>(&mut tx, &events, &mut context, &metadata)
                .await
            {
                Ok(appended) => appended,
                Err(StoreError::Conflict) => {
                    drop(_guard);
                    let pause = rand::rng().random_range(1..=5u64 << attempt.min(6));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    continue;
                }
                Err(other) => return Err(other.into()),
            };
            tx.commit().await.map_err(StoreError::from)?;
            let Some((sequence, value)) = find(&context.aggregate) else {
                return Err(CommandError::Vanished);
            };
            self.keep(context);
            let position = self
                .position_after::<A>(aggregate_id, &appended, sequence)
                .await?;
            return Ok(Fact {
                sequence,
                position,
                value,
            });
        }
        Err(CommandError::Contention)
    }

    /// The answer to an exact resend, which appended nothing: the fact recorded before.
    async fn answer_resend<A: Stored, T>(
        &self,
        context: crate::store::event_store::LedgerContext<A>,
        find: impl Fn(&A) -> Option<(usize, T)>,
    ) -> Result<Fact<T>, CommandError<A::Error>> {
        let Some((sequence, value)) = find(&context.aggregate) else {
            return Err(CommandError::Vanished);
        };
        let aggregate_id = context.aggregate_id.clone();
        self.keep(context);
        let position = self
            .position_after::<A>(&aggregate_id, &[], sequence)
            .await?;
        Ok(Fact {
            sequence,
            position,
            value,
        })
    }
}
