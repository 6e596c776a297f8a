//! One batch of the projector: its events sorted by what they change, member states advanced
//! by them, and the member rows written.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::Aggregate;
use sqlx::PgConnection;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::organisation::{Organisation, OrganisationEvent};
use studyledger_aggregates::rules::rulesets::Ruleset;
use studyledger_projections::fold::MemberFold;
use studyledger_projections::sql::members::replace_members;
use studyledger_projections::sql::orgs::OrgChange;

use crate::ledger::Ledger;
use crate::store::commit_order::{Committed, CommittedEvent};
use crate::store::skipped::{self, Skip};

/// A member event of the batch: its sequence, and the event (`None`: it cannot be read).
pub(super) type MemberStep = (usize, Option<MemberEvent>);

/// What an event of a batch says, read from its payload: done where the batch is read (on
/// a blocking thread while the batch before it is applied), so that parsing JSON overlaps with
/// writing the views.
pub(super) enum Read {
    Organisation(Result<OrganisationEvent, String>),
    Member(Result<MemberEvent, String>),
    /// Courses and rulesets change no view row by themselves: completions carry their course's
    /// terms, and rows say which ruleset version judged them.
    Other,
}

/// A batch as read: its events in commit order, and what each says.
pub(super) struct ReadBatch {
    pub committed: Committed,
    pub reads: Vec<Read>,
}

impl ReadBatch {
    /// Reads the payloads of the batch's events.
    pub fn of(committed: Committed) -> ReadBatch {
        let reads = committed.events.iter().map(read).collect();
        ReadBatch { committed, reads }
    }

    /// The same, on a thread where blocking is allowed.
    pub async fn off_the_runtime(committed: Committed) -> ReadBatch {
        tokio::task::spawn_blocking(move || ReadBatch::of(committed))
            .await
            .expect("reading payloads does not panic")
    }
}

fn read(event: &CommittedEvent) -> Read {
    match event.aggregate_type.as_str() {
        t if t == Organisation::TYPE => Read::Organisation(
            serde_json::from_str(&event.payload).map_err(|e| Skip::reason_of(&e)),
        ),
        t if t == Member::TYPE => {
            Read::Member(serde_json::from_str(&event.payload).map_err(|e| Skip::reason_of(&e)))
        }
        _ => Read::Other,
    }
}

/// A batch sorted by what its events change.
pub(super) struct Sorted<'a> {
    /// Organisations' changes, in commit order (parents registered before children).
    pub organisations: Vec<OrgChange>,
    /// Member events per member, in sequence order (commit order is sequence order within
    /// one stream: an append is decided on the committed state before it).
    pub members: BTreeMap<&'a str, Vec<MemberStep>>,
    /// The events no current type can read, to be listed as skipped.
    pub unreadable: Vec<Skip>,
    /// Members whose events here set aside a skipped event.
    pub set_aside: BTreeSet<&'a str>,
}

impl<'a> Sorted<'a> {
    pub fn of(batch: &'a [CommittedEvent], reads: Vec<Read>) -> Sorted<'a> {
        let mut sorted = Sorted {
            organisations: Vec::new(),
            members: BTreeMap::new(),
            unreadable: Vec::new(),
            set_aside: BTreeSet::new(),
        };
        for (event, read) in batch.iter().zip(reads) {
            match read {
                Read::Organisation(Ok(org_event)) => {
                    let change = OrgChange::of(&event.aggregate_id, org_event);
                    sorted.organisations.push(change);
                }
                Read::Organisation(Err(error)) => sorted.unreadable.push(skip(event, &error)),
                Read::Member(read) => sorted.add_member_event(event, read),
                Read::Other => {}
            }
        }
        for events in sorted.members.values_mut() {
            events.sort_by_key(|(sequence, _)| *sequence);
        }
        sorted
    }

    fn add_member_event(&mut self, event: &'a CommittedEvent, read: Result<MemberEvent, String>) {
        let read = match read {
            Ok(read) => Some(read),
            Err(error) => {
                self.unreadable.push(skip(event, &error));
                None
            }
        };
        if matches!(read, Some(MemberEvent::SkippedEventSetAside { .. })) {
            self.set_aside.insert(&event.aggregate_id);
        }
        self.members
            .entry(&event.aggregate_id)
            .or_default()
            .push((event.sequence, read));
    }

    /// The sequences of a member's unreadable events in this batch.
    pub fn unreadable_of<'s>(&'s self, member_id: &'s str) -> impl Iterator<Item = usize> + 's {
        self.unreadable
            .iter()
            .filter(move |s| s.aggregate_type == Member::TYPE && s.aggregate_id == member_id)
            .map(|s| usize::try_from(s.sequence).unwrap_or(0))
    }
}

/// The member advanced by its events of the batch, when it holds everything before them;
/// `None` when only the store can say what it holds.
pub(super) fn advanced(mut member: Member, events: Vec<MemberStep>) -> Option<Member> {
    let held = member.version();
    if !follows(held, events.iter().map(|(sequence, _)| *sequence)) {
        return None;
    }
    for (_, event) in events.into_iter().filter(|(sequence, _)| *sequence > held) {
        match event {
            Some(event) => member.apply(event),
            None => member.pass_over(),
        }
    }
    Some(member)
}

/// Whether a state holding sequences up to `held` can take events of these sequences (sorted):
/// those it holds are skipped, so a batch applied twice changes nothing, and the new ones must
/// follow without a gap.
fn follows(held: usize, sequences: impl Iterator<Item = usize>) -> bool {
    sequences
        .filter(|s| *s > held)
        .zip(held + 1..)
        .all(|(sequence, expected)| sequence == expected)
}

/// Writes the members' view rows, and marks the skipped events their batch set aside.
pub(super) async fn write_members(
    tx: &mut PgConnection,
    states: &[(String, Member)],
    rulesets: &[Ruleset],
    ledger: &Ledger,
    set_aside: &BTreeSet<&str>,
) -> Result<(), sqlx::Error> {
    let folded: Vec<(&Member, MemberFold)> = states
        .iter()
        .map(|(_, member)| (member, MemberFold::new(member, rulesets, ledger.tz())))
        .collect();
    replace_members(tx, &folded, rulesets).await?;
    for (id, member) in states
        .iter()
        .filter(|(id, _)| set_aside.contains(id.as_str()))
    {
        let decisions: Vec<(i64, i64)> = member
            .set_aside()
            .iter()
            .map(|a| (to_i64(a.skipped_sequence), to_i64(a.sequence)))
            .collect();
        skipped::set_aside(&mut *tx, id, &decisions).await?;
    }
    Ok(())
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An event as listed when it is passed over.
pub(super) fn skip(event: &CommittedEvent, why: &dyn std::fmt::Display) -> Skip {
    Skip {
        position: event.position,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        sequence: to_i64(event.sequence),
        event_type: event.event_type.clone(),
        reason: Skip::reason_of(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_member_takes_only_the_events_that_directly_follow_it() {
        let follows_with = |sequences: &[usize]| follows(1, sequences.iter().copied());
        assert!(follows_with(&[2, 3]));
        assert!(follows_with(&[1, 2]), "an event already held is skipped");
        assert!(follows_with(&[1]), "nothing new is fine too");
        assert!(
            !follows_with(&[3]),
            "a gap sends the member back to the store"
        );
        assert!(!follows_with(&[2, 4]));
    }

    fn committed(sequence: usize, payload: &str) -> CommittedEvent {
        CommittedEvent {
            transaction_id: 1,
            position: i64::try_from(sequence).unwrap_or(0),
            aggregate_type: Member::TYPE.to_owned(),
            aggregate_id: "m".to_owned(),
            sequence,
            event_type: "MemberEnrolled".to_owned(),
            payload: payload.to_owned(),
        }
    }

    #[test]
    fn an_unreadable_event_is_listed_and_passed_over_keeping_the_sequences() {
        let enrolled = r#"{"MemberEnrolled":{"member_id":"00000000-0000-0000-0000-000000000001",
            "member_no":"M1","name":"林晓","org_id":"org","enrolled_on":"2018-01-01"}}"#;
        let poisoned = enrolled.replace("林晓", "林\\u0000晓");
        let batch = [committed(1, enrolled), committed(2, &poisoned)];
        let reads = batch.iter().map(read).collect();
        let mut sorted = Sorted::of(&batch, reads);
        assert_eq!(sorted.unreadable.len(), 1);
        assert_eq!(sorted.unreadable[0].sequence, 2);
        assert!(sorted.unreadable[0]
            .reason
            .contains("control character U+0000"));
        let events = sorted.members.remove("m").expect("member events");
        let member = advanced(Member::default(), events).expect("from the start");
        assert_eq!(member.version(), 2);
        assert_eq!(member.passed_over(), &[2]);
        assert_eq!(member.enrolment().map(|e| e.name.as_str()), Some("林晓"));
    }
}
