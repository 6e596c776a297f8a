//! The pure domain of studyledger: values, facts, the rules of DESIGN §3 as pure functions, and
//! the cqrs-es aggregates that decide on commands. No I/O and no SQL live here.
//!
//! Module map:
//! - [`values`]: `Hours`, `Quarter`, `Slug`, `MemberId`, `Category` — parse, don't validate.
//! - [`facts`]: what a member's ledger records (enrolment, sessions, completions, transfers,
//!   adjustments, appeals), as the rules read them.
//! - [`rules`]: every rule of DESIGN §3 once, one file per rule family (`sessions`, `credit`,
//!   `rulesets`, `status`, `membership`, `eligibility`, `appeals`).
//! - [`member`] (a folder: state, commands, events, one decision file per command),
//!   [`course`], [`activity`] (an xAPI activity's course), [`organisation`], [`rulebook`], [`evaluation`], [`determination_run`]: the
//!   aggregates.
//! - [`rejection`]: the kinds of refusal, for the HTTP layer's single error table.

/// The cqrs-es `handle` of an aggregate whose plain `decide(&self, &Command)` says what happens:
/// it writes the decided events to the sink, or returns the rejection (nothing written).
macro_rules! handle_by_deciding {
    () => {
        async fn handle(
            &mut self,
            command: Self::Command,
            _services: &Self::Services,
            sink: &cqrs_es::event_sink::EventSink<Self>,
        ) -> Result<(), Self::Error> {
            for event in self.decide(&command)? {
                sink.write(event, self).await;
            }
            Ok(())
        }
    };
}
pub(crate) use handle_by_deciding;

pub mod activity;
pub mod course;
pub mod determination_run;
pub mod evaluation;
pub mod facts;
pub mod member;
pub mod organisation;
pub mod rejection;
pub mod rulebook;
pub mod rules;
pub mod values;
