//! Commands that need something held beyond their own stream, in the same transaction as
//! their event:
//!
//! - a member number (an enrolment, a correction of the number) is claimed, so no two
//!   members' current numbers are ever the same, whatever instance or import records them;
//! - an organisation the command places someone in (an enrolment, a transfer, a rejoining, a
//!   child's registration) shares the organisation's lock and must not be closed, so a
//!   closing never misses a move (`store::organisations`).

use cqrs_es::event_sink::EventSink;
use rand::Rng;
use sqlx::PgConnection;
use studyledger_aggregates::member::MemberRejection;
use studyledger_aggregates::organisation::OrganisationRejection;
use studyledger_aggregates::values::{MemberNo, OrgId};
use uuid::Uuid;

use super::{CommandError, Fact, Ledger, Stored, MAX_ATTEMPTS};
use crate::store::error::StoreError;
use crate::store::record::Metadata;
use crate::store::{member_numbers, organisations};

/// What a command holds in the transaction that records it.
#[derive(Debug, Clone)]
pub enum Hold {
    /// The number the member has from now on: claimed for them.
    Number(Uuid, MemberNo),
    /// An organisation the command places someone in: it must be open.
    Open(OrgId),
}

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

/// Takes every hold inside the caller's transaction; the first that fails, if any.
async fn take_holds(tx: &mut PgConnection, holds: Vec<Hold>) -> Result<Option<Held>, StoreError> {
    let (orgs, numbers): (Vec<Hold>, Vec<Hold>) =
        holds.into_iter().partition(|h| matches!(h, Hold::Open(_)));
    let orgs: Vec<OrgId> = orgs
        .into_iter()
        .filter_map(|hold| match hold {
            Hold::Open(org_id) => Some(org_id),
            Hold::Number(..) => None,
        })
        .collect();
    if !orgs.is_empty() {
        let ids: Vec<&str> = orgs.iter().map(OrgId::as_str).collect();
        if let Some(closed) = organisations::share(tx, &ids).await?.first() {
            // One of `orgs`, as the log names it.
            let at = ids.iter().position(|o| *o == closed).unwrap_or(0);
            return Ok(Some(Held::Closed(orgs[at].clone())));
        }
    }
    for hold in numbers {
        if let Hold::Number(member_id, member_no) = hold {
            let holder = member_numbers::claim(tx, member_no.as_str(), member_id).await?;
            if holder != member_id {
                return Ok(Some(Held::Number(member_no)));
            }
        }
    }
    Ok(None)
}

impl Ledger {
    /// Records a command as [`Ledger::record`] does, in a transaction of its own that also
    /// takes what `holds` names for the aggregate as it stands before the command (a number
    /// the member does not have yet, the organisation they move into). A hold that fails
    /// refuses the command ([`Held`]) and records nothing; an exact resend takes nothing.
    pub async fn record_held<A, T>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &Metadata,
        holds: impl Fn(&A) -> Vec<Hold>,
        find: impl Fn(&A) -> Option<(usize, T)>,
    ) -> Result<Fact<T>, CommandError<A::Error>>
    where
        A: Stored,
        A::Command: Clone,
        A::Error: From<Held>,
    {
        let _guard = self.lock_for::<A>(aggregate_id).lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let mut context = self.take::<A>(aggregate_id).await?;
            let holding = holds(&context.aggregate);
            let sink = EventSink::<A>::default();
            if let Err(rejection) = context.aggregate.handle(command.clone(), &(), &sink).await {
                self.keep(context);
                return Err(CommandError::Rejected(rejection));
            }
            let events = sink.collect().await;
            let mut metadata = metadata.clone();
            metadata.recorded_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
            let mut appended = Vec::new();
            if !events.is_empty() {
                let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
                if let Some(held) = take_holds(&mut tx, holding).await? {
                    // The state applied the refused events: it goes, and is read again.
                    return Err(CommandError::Rejected(held.into()));
                }
                match self
                    .append_on::<A>(&mut tx, &events, &mut context, &metadata)
                    .await
                {
                    Ok(done) => appended = done,
                    Err(StoreError::Conflict) => {
                        let pause = rand::rng().random_range(1..=5u64 << attempt.min(6));
                        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                }
                tx.commit().await.map_err(StoreError::from)?;
            }
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
}
