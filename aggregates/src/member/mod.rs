//! The Member aggregate: one learner's ledger, the busiest stream in the system.
//!
//! - [`state`]: what the stream holds, and the questions asked of it (answered by the rules);
//! - [`command`] and [`event`]: what can be asked, and what is recorded;
//! - `decide/`: one file per command, each a plain function from state and command to events
//!   or a [`rejection`]; `apply`: how an event moves the state;
//! - `snapshot`: how the state is written into a snapshot.
//!
//! The cqrs-es `Aggregate::handle` adapter only writes the decided events to the sink.

mod apply;
pub mod command;
mod decide;
pub mod event;
pub mod rejection;
mod snapshot;
pub mod state;

use cqrs_es::Aggregate;

pub use command::{Clock, MemberCommand};
pub use event::MemberEvent;
pub use rejection::MemberRejection;
pub use state::Member;

impl Aggregate for Member {
    const TYPE: &'static str = "member";
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberRejection;
    type Services = ();

    crate::handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}

#[cfg(test)]
mod tests;
