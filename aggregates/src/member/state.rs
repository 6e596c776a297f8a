//! A member's state: every fact the rules need, in the order the rules read them, and the
//! questions the rest of the system asks of it. Each answer is one of the rules of
//! `crate::rules`; nothing here decides or changes anything.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::{
    Adjustment, Appeal, AppealStatus, Completion, Enrolment, SetAside, StudySession, Transfer,
};
use crate::member::command::Clock;
use crate::member::rejection::MemberRejection;
use crate::rules::appeals::{FinalEligibility, Hearings};
use crate::rules::credit::{credit_by_quarter, QuarterTotals};
use crate::rules::eligibility::{judge_evaluation, Determination, QuarterJudgement};
use crate::rules::membership::organisation_on;
use crate::rules::rulesets::Ruleset;
use crate::values::{local_date, EvaluationId, OrgId, Quarter};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The sequence of the last applied event; each event's own sequence is its version.
    pub(super) version: usize,
    pub(super) enrolment: Option<Enrolment>,
    /// Sorted by start and pairwise disjoint; withdrawn sessions (rule 11) are not here.
    pub(super) sessions: Vec<StudySession>,
    /// Sessions withdrawn (rule 11), in the order withdrawn: they count for nothing and
    /// overlap nothing, yet their ids stay taken.
    #[serde(default)]
    pub(super) withdrawn_sessions: Vec<StudySession>,
    /// In the order recorded.
    pub(super) completions: Vec<Completion>,
    /// In the order recorded.
    #[serde(default)]
    pub(super) transfers: Vec<Transfer>,
    /// In the order recorded.
    #[serde(default)]
    pub(super) determinations: Vec<Determination>,
    /// In the order recorded.
    #[serde(default)]
    pub(super) adjustments: Vec<Adjustment>,
    /// In the order filed, each with its resolution once resolved.
    #[serde(default)]
    pub(super) appeals: Vec<Appeal>,
    /// Sequences of this stream's events that no current type can read (written before a
    /// rule of the value types, or by hand): passed over, never applied.
    #[serde(default)]
    pub(super) passed_over: Vec<usize>,
    /// Skipped events an administrator set aside, in the order recorded.
    #[serde(default)]
    pub(super) set_aside: Vec<SetAside>,
}

impl Member {
    pub fn version(&self) -> usize {
        self.version
    }

    /// Takes the place of the next event, which cannot be read: the stream's sequences stay
    /// those of the store, and the member's record is incomplete until the event is set aside.
    pub fn pass_over(&mut self) {
        self.version += 1;
        self.passed_over.push(self.version);
    }

    /// The sequences passed over while this state was built.
    pub fn passed_over(&self) -> &[usize] {
        &self.passed_over
    }

    pub fn set_aside(&self) -> &[SetAside] {
        &self.set_aside
    }

    /// The skipped events not yet set aside: those this state passed over and those another
    /// reader of the stream skipped (`skipped`, from the projector's listing), sorted.
    pub fn open_skips(&self, skipped: &[usize]) -> Vec<usize> {
        let mut open: Vec<usize> = self
            .passed_over
            .iter()
            .chain(skipped)
            .copied()
            .filter(|s| !self.set_aside.iter().any(|a| a.skipped_sequence == *s))
            .collect();
        open.sort_unstable();
        open.dedup();
        open
    }

    pub fn enrolment(&self) -> Option<&Enrolment> {
        self.enrolment.as_ref()
    }

    /// The enrolment every command but the enrolment itself needs.
    pub(crate) fn enrolled(&self) -> Result<&Enrolment, MemberRejection> {
        self.enrolment.as_ref().ok_or(MemberRejection::NotEnrolled)
    }

    pub fn sessions(&self) -> &[StudySession] {
        &self.sessions
    }

    /// Every session recorded, withdrawn or not.
    pub fn session(&self, session_id: Uuid) -> Option<&StudySession> {
        self.sessions
            .iter()
            .chain(&self.withdrawn_sessions)
            .find(|s| s.session_id == session_id)
    }

    /// The sessions withdrawn (rule 11), in the order withdrawn.
    pub fn withdrawn_sessions(&self) -> &[StudySession] {
        &self.withdrawn_sessions
    }

    pub fn completions(&self) -> &[Completion] {
        &self.completions
    }

    pub fn completion(&self, completion_id: Uuid) -> Option<&Completion> {
        self.completions
            .iter()
            .find(|c| c.completion_id == completion_id)
    }

    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    pub fn transfer(&self, transfer_id: Uuid) -> Option<&Transfer> {
        self.transfers.iter().find(|t| t.transfer_id == transfer_id)
    }

    /// The organisation the member belongs to on a local date (rule 7).
    pub fn organisation_on(&self, day: NaiveDate) -> Option<&OrgId> {
        organisation_on(self.enrolment.as_ref()?, &self.transfers, day)
    }

    pub fn adjustments(&self) -> &[Adjustment] {
        &self.adjustments
    }

    pub fn adjustment(&self, adjustment_id: Uuid) -> Option<&Adjustment> {
        self.adjustments
            .iter()
            .find(|a| a.adjustment_id == adjustment_id)
    }

    /// Every determination recorded, oldest first.
    pub fn determinations(&self) -> &[Determination] {
        &self.determinations
    }

    pub fn determination(&self, determination_id: Uuid) -> Option<&Determination> {
        self.determinations
            .iter()
            .find(|d| d.determination_id == determination_id)
    }

    pub fn appeals(&self) -> &[Appeal] {
        &self.appeals
    }

    pub fn appeal(&self, appeal_id: Uuid) -> Option<&Appeal> {
        self.appeals.iter().find(|a| a.appeal_id == appeal_id)
    }

    /// The member's determinations and appeals, as rule 9 reads them.
    pub fn hearings(&self) -> Hearings<'_> {
        Hearings {
            determinations: &self.determinations,
            appeals: &self.appeals,
        }
    }

    /// Rule 9's final recorded eligibility for an evaluation; `None` without a determination.
    pub fn final_eligibility(&self, evaluation_id: &EvaluationId) -> Option<FinalEligibility<'_>> {
        self.hearings().final_eligibility(evaluation_id)
    }

    /// The appeal against a determination (rule 9: a determination is heard once).
    pub fn appeal_against(&self, determination_id: Uuid) -> Option<&Appeal> {
        self.hearings().appeal_against(determination_id)
    }

    /// Where an appeal of this member stands.
    pub fn appeal_status(&self, appeal: &Appeal) -> AppealStatus {
        self.hearings().status(appeal)
    }

    /// Rules 2, 3 and 4: the class hours per quarter under `rulesets`.
    pub fn quarter_totals(&self, rulesets: &[Ruleset], tz: Tz) -> BTreeMap<Quarter, QuarterTotals> {
        credit_by_quarter(
            &self.sessions,
            &self.completions,
            &self.adjustments,
            rulesets,
            tz,
        )
    }

    /// Rule 8 on the member's facts as they stand: each quarter judged under its own ruleset
    /// among `rulesets`, and the outcome. `None` when the member is not enrolled.
    pub fn eligibility(
        &self,
        quarters: &[Quarter],
        rulesets: &[Ruleset],
        clock: Clock,
    ) -> Option<(bool, Vec<QuarterJudgement>)> {
        self.eligibility_on(
            &self.quarter_totals(rulesets, clock.tz),
            quarters,
            rulesets,
            clock,
        )
    }

    /// Rule 8 on quarter totals already computed under the same `rulesets` (by
    /// `quarter_totals`), for callers that judge several evaluations of one member.
    pub fn eligibility_on(
        &self,
        totals: &BTreeMap<Quarter, QuarterTotals>,
        quarters: &[Quarter],
        rulesets: &[Ruleset],
        clock: Clock,
    ) -> Option<(bool, Vec<QuarterJudgement>)> {
        let enrolled_on = self.enrolment.as_ref()?.enrolled_on;
        let today = local_date(clock.now, clock.tz);
        Some(judge_evaluation(
            totals,
            quarters,
            enrolled_on,
            rulesets,
            today,
        ))
    }
}
