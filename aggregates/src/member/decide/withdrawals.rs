//! Rule 11: when a statement is voided, every session and completion recorded from it is
//! withdrawn — one event each, never an edit. A fact already withdrawn stays as it is, so a
//! voiding sent again withdraws nothing more.

use crate::member::command::Withdraw;
use crate::member::event::MemberEvent;
use crate::member::state::Member;

pub(super) fn decide(member: &Member, command: &Withdraw) -> Vec<MemberEvent> {
    let from_voided = |source: Option<uuid::Uuid>| source == Some(command.voided);
    let sessions = member
        .sessions()
        .iter()
        .filter(|s| from_voided(s.source))
        .map(|s| s.session_id);
    let completions = member
        .completions()
        .iter()
        .filter(|c| c.withdrawn.is_none() && from_voided(c.source))
        .map(|c| c.completion_id);
    sessions
        .chain(completions)
        .map(|fact_id| MemberEvent::FactWithdrawn {
            fact_id,
            voided_statement: command.voided,
            voiding_statement: command.voiding,
            withdrawn_at: command.clock.now,
        })
        .collect()
}
