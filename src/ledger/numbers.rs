//! Commands that give a member a number (an enrolment, a correction of the number): the number
//! is claimed in the same transaction as the event, so no two members' current numbers are
//! ever the same, whatever instance or import records them.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use rand::Rng;
use studyledger_aggregates::member::{Member, MemberCommand, MemberRejection};
use studyledger_aggregates::values::MemberNo;
use uuid::Uuid;

use super::{CommandError, Fact, Ledger, MAX_ATTEMPTS};
use crate::store::error::StoreError;
use crate::store::member_numbers;
use crate::store::record::Metadata;

impl Ledger {
    /// Records a member command that gives the member `member_no`, as [`Ledger::record`]
    /// does, with the number's claim (when the number is new to the member) committed together
    /// with the event: refused with
    /// [`MemberRejection::MemberNoHeld`] (nothing recorded) when another member holds it.
    pub async fn record_numbered<T>(
        &self,
        member_id: Uuid,
        member_no: &MemberNo,
        command: MemberCommand,
        metadata: &Metadata,
        find: impl Fn(&Member) -> Option<(usize, T)>,
    ) -> Result<Fact<T>, CommandError<MemberRejection>> {
        let id = member_id.to_string();
        let _locks = self.lock_members(std::slice::from_ref(&id)).await;
        for attempt in 0..MAX_ATTEMPTS {
            let mut context = self.take::<Member>(&id).await?;
            let number_before = context.aggregate.member_no().cloned();
            let sink = EventSink::<Member>::default();
            if let Err(rejection) = context.aggregate.handle(command.clone(), &(), &sink).await {
                self.keep(context);
                return Err(CommandError::Rejected(rejection));
            }
            let events = sink.collect().await;
            let mut metadata = metadata.clone();
            metadata.recorded_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
            // An exact resend appends nothing and claims nothing.
            let mut appended = Vec::new();
            if !events.is_empty() {
                let mut tx = self.pool().begin().await.map_err(StoreError::from)?;
                // Only a number the member did not have is claimed: a rename that repeats
                // the current number claims nothing (a member enrolled before numbers were
                // claimed may share theirs).
                if context.aggregate.member_no() != number_before.as_ref() {
                    let holder = member_numbers::claim(&mut tx, member_no.as_str(), member_id)
                        .await
                        .map_err(StoreError::from)?;
                    if holder != member_id {
                        // The state applied the refused events: it goes, and is read again.
                        return Err(CommandError::Rejected(MemberRejection::MemberNoHeld(
                            member_no.clone(),
                        )));
                    }
                }
                match self
                    .append_on::<Member>(&mut tx, &events, &mut context, &metadata)
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
                .position_after::<Member>(&id, &appended, sequence)
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
