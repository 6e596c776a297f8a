//! The Organisation aggregate: a node of the organisation tree, its names over time, its moves
//! under other parents, and its closing.
//!
//! A parent must exist before its children (the caller checks, since that is another
//! aggregate), so the tree can never hold a cycle. What a closing needs of other streams (no
//! member belongs from the closing day on, no open child) is the caller's to hold: it checks
//! under the organisation's lock, which every move into the organisation shares
//! (`src/ledger/closures.rs`). A move under another parent is decided here on what the stream
//! knows (registered, open, not under itself, from a quarter's first day, never before its
//! last move); that the new parent is registered, open and outside the subtree is the
//! caller's to check, under the tree's lock (`src/ledger/moves.rs`).

use chrono::NaiveDate;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::rejection::{Classify, RejectionKind};
use crate::values::{Name, OrgId, Quarter, Reason};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationRecord {
    pub org_id: OrgId,
    pub name: Name,
    pub parent_id: Option<OrgId>,
}

/// A new name, from when it is recorded on; `rename_id` makes a resend exact.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub rename_id: Uuid,
    pub name: Name,
}

/// The organisation closes from `closed_on` on: nobody belongs to it from that day, and it takes
/// no new members, transfers, rejoinings or children. `merged_into` names the organisation its
/// members were transferred to when the closing ends a merge.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub closure_id: Uuid,
    pub closed_on: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<OrgId>,
}

/// The organisation, with its whole subtree, lies under `parent_id` from `moved_on` (a
/// quarter's first day) on: roll-ups of quarters before it keep counting where members
/// belonged then (rule 7).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub move_id: Uuid,
    pub parent_id: OrgId,
    pub moved_on: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrganisationCommand {
    Register(OrganisationRecord),
    Rename(Rename),
    Close(Closure),
    Move(Move),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganisationEvent {
    OrganisationRegistered(OrganisationRecord),
    OrganisationRenamed(Rename),
    OrganisationClosed(Closure),
    OrganisationMoved(Move),
}

impl DomainEvent for OrganisationEvent {
    fn event_type(&self) -> String {
        match self {
            OrganisationEvent::OrganisationRegistered(_) => "OrganisationRegistered".to_owned(),
            OrganisationEvent::OrganisationRenamed(_) => "OrganisationRenamed".to_owned(),
            OrganisationEvent::OrganisationClosed(_) => "OrganisationClosed".to_owned(),
            OrganisationEvent::OrganisationMoved(_) => "OrganisationMoved".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganisationRejection {
    #[error("organisation {0} is already registered with other details")]
    RegisteredDifferently(OrgId),
    #[error("an organisation cannot be its own parent")]
    OwnParent,
    #[error("the organisation is not registered")]
    NotRegistered,
    #[error("rename {0} was recorded with another name")]
    RenamedDifferently(Uuid),
    #[error("the organisation was closed on {0} (closure {1})")]
    Closed(NaiveDate, Uuid),
    #[error("an organisation cannot be merged into itself")]
    MergedIntoItself,
    /// Held by the caller: the organisation the command places someone in is closed.
    #[error("organisation {0} is closed")]
    ParentClosed(OrgId),
    #[error("move {0} was recorded with other details")]
    MovedDifferently(Uuid),
    #[error("the organisation already lies under {0}")]
    AlreadyUnder(OrgId),
    #[error("a move takes effect from a quarter's first day, not {0}")]
    NotQuarterStart(NaiveDate),
    #[error("the organisation moved on {0}: a later move cannot take effect before it")]
    BeforeEarlierMove(NaiveDate),
}

impl Classify for OrganisationRejection {
    fn kind(&self) -> RejectionKind {
        match self {
            OrganisationRejection::RegisteredDifferently(_)
            | OrganisationRejection::RenamedDifferently(_)
            | OrganisationRejection::Closed(..)
            | OrganisationRejection::ParentClosed(_)
            | OrganisationRejection::MovedDifferently(_)
            | OrganisationRejection::AlreadyUnder(_)
            | OrganisationRejection::BeforeEarlierMove(_) => RejectionKind::Conflict,
            OrganisationRejection::NotRegistered => RejectionKind::NotFound,
            OrganisationRejection::OwnParent
            | OrganisationRejection::MergedIntoItself
            | OrganisationRejection::NotQuarterStart(_) => RejectionKind::RuleViolation,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organisation {
    /// As registered (a resend of the registration compares with it).
    record: Option<OrganisationRecord>,
    /// The renames, in order, with the sequence of their events.
    #[serde(default)]
    renames: Vec<(usize, Rename)>,
    /// The closing, with the sequence of its event.
    #[serde(default)]
    closure: Option<(usize, Closure)>,
    /// The moves under other parents, in order, with the sequence of their events.
    #[serde(default)]
    moves: Vec<(usize, Move)>,
    /// Events applied: the sequence of the last.
    #[serde(default)]
    applied: usize,
}

impl Organisation {
    /// The organisation as registered (its name then: see [`Organisation::name`]).
    pub fn record(&self) -> Option<&OrganisationRecord> {
        self.record.as_ref()
    }

    /// The name now: the last rename's, or the registered one.
    pub fn name(&self) -> Option<&Name> {
        match self.renames.last() {
            Some((_, rename)) => Some(&rename.name),
            None => self.record.as_ref().map(|r| &r.name),
        }
    }

    /// The renames, in order, each with the sequence of its event.
    pub fn renames(&self) -> impl Iterator<Item = (usize, &Rename)> {
        self.renames
            .iter()
            .map(|(sequence, rename)| (*sequence, rename))
    }

    /// The parent now: the last move's, or the registered one.
    pub fn parent(&self) -> Option<&OrgId> {
        match self.moves.last() {
            Some((_, last)) => Some(&last.parent_id),
            None => self.record.as_ref().and_then(|r| r.parent_id.as_ref()),
        }
    }

    /// The moves under other parents, in order, each with the sequence of its event.
    pub fn moves(&self) -> impl Iterator<Item = (usize, &Move)> {
        self.moves.iter().map(|(sequence, m)| (*sequence, m))
    }

    /// The closing, with the sequence of its event, once recorded.
    pub fn closure(&self) -> Option<(usize, &Closure)> {
        self.closure.as_ref().map(|(sequence, c)| (*sequence, c))
    }

    /// An event of the stream passed over: counted, so later sequences stay right.
    pub fn pass_over(&mut self) {
        self.applied += 1;
    }

    pub fn decide(
        &self,
        command: &OrganisationCommand,
    ) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        match command {
            OrganisationCommand::Register(record) => self.register(record),
            OrganisationCommand::Rename(rename) => self.rename(rename),
            OrganisationCommand::Close(closure) => self.close(closure),
            OrganisationCommand::Move(to) => self.move_under(to),
        }
    }

    /// A move is recorded once by its id; an open organisation moves under another parent
    /// from a quarter's first day, never before its last move.
    fn move_under(&self, to: &Move) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        let Some(record) = &self.record else {
            return Err(OrganisationRejection::NotRegistered);
        };
        if let Some((_, recorded)) = self.moves.iter().find(|(_, m)| m.move_id == to.move_id) {
            return if recorded == to {
                Ok(vec![])
            } else {
                Err(OrganisationRejection::MovedDifferently(to.move_id))
            };
        }
        if let Some((_, closure)) = &self.closure {
            return Err(OrganisationRejection::Closed(
                closure.closed_on,
                closure.closure_id,
            ));
        }
        if to.parent_id == record.org_id {
            return Err(OrganisationRejection::OwnParent);
        }
        if self.parent() == Some(&to.parent_id) {
            return Err(OrganisationRejection::AlreadyUnder(to.parent_id.clone()));
        }
        if Quarter::of_date(to.moved_on).first_day() != to.moved_on {
            return Err(OrganisationRejection::NotQuarterStart(to.moved_on));
        }
        match self.moves.last() {
            Some((_, last)) if to.moved_on < last.moved_on => {
                Err(OrganisationRejection::BeforeEarlierMove(last.moved_on))
            }
            _ => Ok(vec![OrganisationEvent::OrganisationMoved(to.clone())]),
        }
    }

    /// A closing is recorded once; a resend of it records nothing, any other is refused.
    fn close(&self, closure: &Closure) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        let Some(record) = &self.record else {
            return Err(OrganisationRejection::NotRegistered);
        };
        match &self.closure {
            Some((_, recorded)) if recorded == closure => Ok(vec![]),
            Some((_, recorded)) => Err(OrganisationRejection::Closed(
                recorded.closed_on,
                recorded.closure_id,
            )),
            None if closure.merged_into.as_ref() == Some(&record.org_id) => {
                Err(OrganisationRejection::MergedIntoItself)
            }
            None => Ok(vec![OrganisationEvent::OrganisationClosed(closure.clone())]),
        }
    }

    fn rename(&self, rename: &Rename) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        if self.record.is_none() {
            return Err(OrganisationRejection::NotRegistered);
        }
        match self
            .renames
            .iter()
            .find(|(_, r)| r.rename_id == rename.rename_id)
        {
            Some((_, recorded)) if recorded == rename => Ok(vec![]),
            Some(_) => Err(OrganisationRejection::RenamedDifferently(rename.rename_id)),
            None => Ok(vec![OrganisationEvent::OrganisationRenamed(rename.clone())]),
        }
    }

    fn register(
        &self,
        record: &OrganisationRecord,
    ) -> Result<Vec<OrganisationEvent>, OrganisationRejection> {
        match &self.record {
            Some(existing) if existing == record => Ok(vec![]),
            Some(existing) => Err(OrganisationRejection::RegisteredDifferently(
                existing.org_id.clone(),
            )),
            None if record.parent_id.as_ref() == Some(&record.org_id) => {
                Err(OrganisationRejection::OwnParent)
            }
            None => Ok(vec![OrganisationEvent::OrganisationRegistered(
                record.clone(),
            )]),
        }
    }
}

impl Aggregate for Organisation {
    const TYPE: &'static str = "organisation";
    type Command = OrganisationCommand;
    type Event = OrganisationEvent;
    type Error = OrganisationRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        self.applied += 1;
        match event {
            OrganisationEvent::OrganisationRegistered(record) => self.record = Some(record),
            OrganisationEvent::OrganisationRenamed(rename) => {
                self.renames.push((self.applied, rename));
            }
            OrganisationEvent::OrganisationClosed(closure) => {
                self.closure = Some((self.applied, closure));
            }
            OrganisationEvent::OrganisationMoved(to) => self.moves.push((self.applied, to)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn record(id: &str, parent: Option<&str>) -> OrganisationRecord {
        OrganisationRecord {
            org_id: id.parse().expect("slug"),
            name: "福州市".parse().expect("text"),
            parent_id: parent.map(|p| p.parse().expect("slug")),
        }
    }

    #[test]
    fn registering_an_organisation_records_it_once() {
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Register(record("fz", None)))
            .then_expect_events(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))]);
        TestFramework::<Organisation>::with(())
            .given(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))])
            .when(OrganisationCommand::Register(record("fz", None)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_organisation_cannot_be_registered_twice_differently_or_under_itself() {
        TestFramework::<Organisation>::with(())
            .given(vec![OrganisationEvent::OrganisationRegistered(record(
                "fz", None,
            ))])
            .when(OrganisationCommand::Register(record("fz", Some("other"))))
            .then_expect_error(OrganisationRejection::RegisteredDifferently(
                "fz".parse().expect("slug"),
            ));
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Register(record("fz", Some("fz"))))
            .then_expect_error(OrganisationRejection::OwnParent);
    }

    #[test]
    fn a_rename_is_recorded_once_by_its_id_and_the_registration_still_resends() {
        let registered = OrganisationEvent::OrganisationRegistered(record("fz", None));
        let rename = Rename {
            rename_id: Uuid::from_u128(1),
            name: "福州市委".parse().expect("text"),
        };
        TestFramework::<Organisation>::with(())
            .given(vec![registered.clone()])
            .when(OrganisationCommand::Rename(rename.clone()))
            .then_expect_events(vec![OrganisationEvent::OrganisationRenamed(rename.clone())]);
        let renamed = vec![
            registered.clone(),
            OrganisationEvent::OrganisationRenamed(rename.clone()),
        ];
        TestFramework::<Organisation>::with(())
            .given(renamed.clone())
            .when(OrganisationCommand::Rename(rename.clone()))
            .then_expect_events(vec![]);
        TestFramework::<Organisation>::with(())
            .given(renamed.clone())
            .when(OrganisationCommand::Register(record("fz", None)))
            .then_expect_events(vec![]);
        let other = Rename {
            name: "别名".parse().expect("text"),
            ..rename.clone()
        };
        TestFramework::<Organisation>::with(())
            .given(renamed.clone())
            .when(OrganisationCommand::Rename(other))
            .then_expect_error(OrganisationRejection::RenamedDifferently(rename.rename_id));
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Rename(rename.clone()))
            .then_expect_error(OrganisationRejection::NotRegistered);
        let mut org = Organisation::default();
        for event in renamed {
            org.apply(event);
        }
        assert_eq!(org.name().map(Name::as_str), Some("福州市委"));
        assert_eq!(org.renames().map(|(s, _)| s).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_closing_is_recorded_once_and_a_closed_organisation_says_when() {
        let registered = OrganisationEvent::OrganisationRegistered(record("fz", None));
        let closure = Closure {
            closure_id: Uuid::from_u128(7),
            closed_on: NaiveDate::from_ymd_opt(2026, 7, 1).expect("date"),
            reason: "撤并".parse().expect("text"),
            merged_into: None,
        };
        TestFramework::<Organisation>::with(())
            .given(vec![registered.clone()])
            .when(OrganisationCommand::Close(closure.clone()))
            .then_expect_events(vec![OrganisationEvent::OrganisationClosed(closure.clone())]);
        let closed = vec![
            registered.clone(),
            OrganisationEvent::OrganisationClosed(closure.clone()),
        ];
        TestFramework::<Organisation>::with(())
            .given(closed.clone())
            .when(OrganisationCommand::Close(closure.clone()))
            .then_expect_events(vec![]);
        let again = Closure {
            closure_id: Uuid::from_u128(8),
            ..closure.clone()
        };
        TestFramework::<Organisation>::with(())
            .given(closed.clone())
            .when(OrganisationCommand::Close(again))
            .then_expect_error(OrganisationRejection::Closed(
                closure.closed_on,
                closure.closure_id,
            ));
        let into_itself = Closure {
            merged_into: Some("fz".parse().expect("slug")),
            ..closure.clone()
        };
        TestFramework::<Organisation>::with(())
            .given(vec![registered])
            .when(OrganisationCommand::Close(into_itself))
            .then_expect_error(OrganisationRejection::MergedIntoItself);
        TestFramework::<Organisation>::with(())
            .given_no_previous_events()
            .when(OrganisationCommand::Close(closure.clone()))
            .then_expect_error(OrganisationRejection::NotRegistered);
        let mut org = Organisation::default();
        for event in closed {
            org.apply(event);
        }
        assert_eq!(org.closure(), Some((2, &closure)));
    }

    #[test]
    fn a_move_is_recorded_once_from_a_quarter_start_and_never_before_the_last() {
        let registered = OrganisationEvent::OrganisationRegistered(record("fz-a", Some("fz")));
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).expect("date");
        let to = Move {
            move_id: Uuid::from_u128(9),
            parent_id: "xm".parse().expect("slug"),
            moved_on: day(7),
            reason: "改隶".parse().expect("text"),
        };
        let moved = vec![
            registered.clone(),
            OrganisationEvent::OrganisationMoved(to.clone()),
        ];
        let refused = |given: Vec<OrganisationEvent>, to: Move, error| {
            TestFramework::<Organisation>::with(())
                .given(given)
                .when(OrganisationCommand::Move(to))
                .then_expect_error(error);
        };
        TestFramework::<Organisation>::with(())
            .given(vec![registered.clone()])
            .when(OrganisationCommand::Move(to.clone()))
            .then_expect_events(vec![OrganisationEvent::OrganisationMoved(to.clone())]);
        TestFramework::<Organisation>::with(())
            .given(moved.clone())
            .when(OrganisationCommand::Move(to.clone()))
            .then_expect_events(vec![]);
        let back = |moved_on| Move {
            move_id: Uuid::from_u128(10),
            parent_id: "fz".parse().expect("slug"),
            moved_on,
            ..to.clone()
        };
        refused(
            moved.clone(),
            back(day(4)),
            OrganisationRejection::BeforeEarlierMove(day(7)),
        );
        refused(
            moved.clone(),
            back(day(8)),
            OrganisationRejection::NotQuarterStart(day(8)),
        );
        let other = Move {
            moved_on: day(10),
            ..to.clone()
        };
        refused(
            moved.clone(),
            other,
            OrganisationRejection::MovedDifferently(to.move_id),
        );
        let again = Move {
            move_id: Uuid::from_u128(11),
            moved_on: day(10),
            ..to.clone()
        };
        refused(
            moved.clone(),
            again,
            OrganisationRejection::AlreadyUnder(to.parent_id.clone()),
        );
        let under_itself = Move {
            parent_id: "fz-a".parse().expect("slug"),
            ..to.clone()
        };
        refused(
            vec![registered.clone()],
            under_itself,
            OrganisationRejection::OwnParent,
        );
        refused(vec![], to.clone(), OrganisationRejection::NotRegistered);
        let mut org = Organisation::default();
        for event in moved.iter().cloned() {
            org.apply(event);
        }
        assert_eq!(org.parent().map(OrgId::as_str), Some("xm"));
        TestFramework::<Organisation>::with(())
            .given(moved)
            .when(OrganisationCommand::Move(back(day(10))))
            .then_expect_events(vec![OrganisationEvent::OrganisationMoved(back(day(10)))]);
    }
}
