//! Skipped events: an event of the stream that the ledger could not apply (its payload no
//! current type reads, or the views could not hold it) is passed over everywhere, and the
//! member's record is incomplete — no determination is made — until an administrator sets
//! it aside with a note. Setting aside records a decision; the skipped event stays stored.

use crate::member::command::SetAsideSkipped;
use crate::member::event::MemberEvent;
use crate::member::rejection::MemberRejection;
use crate::member::state::Member;

pub(super) fn set_aside(
    member: &Member,
    command: &SetAsideSkipped,
) -> Result<Vec<MemberEvent>, MemberRejection> {
    let SetAsideSkipped {
        skipped_sequence,
        note,
        skipped,
        clock,
    } = command;
    if let Some(earlier) = member
        .set_aside()
        .iter()
        .find(|a| a.skipped_sequence == *skipped_sequence)
    {
        return if &earlier.note == note {
            Ok(vec![])
        } else {
            Err(MemberRejection::AlreadySetAside(*skipped_sequence))
        };
    }
    let known =
        member.passed_over().contains(skipped_sequence) || skipped.contains(skipped_sequence);
    if !known {
        return Err(MemberRejection::NoSkippedEvent(*skipped_sequence));
    }
    Ok(vec![MemberEvent::SkippedEventSetAside {
        skipped_sequence: *skipped_sequence,
        note: note.clone(),
        set_aside_at: clock.now,
    }])
}
