//! The member aggregate's decisions: a plain function from state and command to the events
//! to record, or the reason to refuse — one file per kind of command. A decision never
//! changes state (applying the events does), so a refused command leaves nothing behind.
//!
//! Every decision that carries a client-chosen id first looks for that id: the same content
//! again is a resend and records nothing; other content under the same id is a conflict.

mod adjustments;
mod appeals;
mod completions;
mod corrections;
mod determinations;
mod enrol;
mod sessions;
mod skipped;
mod tenure;
mod transfers;
mod withdrawals;

use crate::member::command::MemberCommand;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

impl Member {
    /// The events `command` records on this member's stream (none for an exact resend).
    pub fn decide(&self, command: &MemberCommand) -> Result<Vec<MemberEvent>, MemberRejection> {
        match command {
            MemberCommand::Enrol(enrolment) => enrol::decide(self, enrolment),
            MemberCommand::RecordStudySession(session) => sessions::decide(self, session),
            MemberCommand::RecordCompletion(completion) => completions::decide(self, completion),
            MemberCommand::Transfer(transfer) => transfers::decide(self, transfer),
            MemberCommand::Correct(correction) => corrections::decide(self, correction),
            MemberCommand::Depart(departure) => tenure::depart(self, departure),
            MemberCommand::Rejoin(rejoining) => tenure::rejoin(self, rejoining),
            MemberCommand::AdjustCredit(adjustment) => adjustments::decide(self, adjustment),
            MemberCommand::FileAppeal(appeal) => appeals::file(self, appeal),
            MemberCommand::ResolveAppeal(resolution) => appeals::resolve(self, resolution),
            MemberCommand::DetermineEligibility(determination) => {
                determinations::decide(self, determination)
            }
            MemberCommand::SetAsideSkipped(command) => skipped::set_aside(self, command),
            MemberCommand::Withdraw(command) => Ok(withdrawals::decide(self, command)),
        }
    }
}
