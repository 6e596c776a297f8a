//! A member's state: every fact the rules need, in the order the rules read them, and the
//! questions the rest of the system asks of it. Each answer is one of the rules of
//! `crate::rules`; nothing here decides or changes anything.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::facts::{
    Adjustment, Appeal, AppealStatus, Completion, Correction, Departure, Enrolment, Rejoining,
    SetAside, StudySession, Transfer,
};
use crate::member::command::Clock;
use crate::member::rejection::MemberRejection;
use crate::member::snapshot::{self, Layout};
use crate::rules::appeals::{FinalEligibility, Hearings};
use crate::rules::credit::{credit_by_quarter, QuarterTotals};
use crate::rules::eligibility::{judge_evaluation, Determination, QuarterJudgement};
use crate::rules::membership::organisation_on;
use crate::rules::rulesets::Ruleset;
use crate::rules::sessions::TimeViolation;
use crate::rules::tenure::{Away, Tenure};
use crate::values::{local_date, EvaluationId, MemberNo, Name, OrgId, Quarter};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// How a snapshot of this state is written (see `snapshot`): one of another layout is
    /// refused, and the state is rebuilt from the events.
    pub(super) layout: Layout,
    /// The sequence of the last applied event; each event's own sequence is its version.
    pub(super) version: usize,
    pub(super) enrolment: Option<Enrolment>,
    /// Sorted by start and pairwise disjoint; withdrawn sessions (rule 11) are not here.
    #[serde(serialize_with = "snapshot::write_sessions")]
    #[serde(deserialize_with = "snapshot::read_sessions")]
    pub(super) sessions: Vec<StudySession>,
    /// Sessions withdrawn (rule 11), in the order withdrawn: they count for nothing and
    /// overlap nothing, yet their ids stay taken.
    #[serde(serialize_with = "snapshot::write_sessions")]
    #[serde(deserialize_with = "snapshot::read_sessions")]
    pub(super) withdrawn_sessions: Vec<StudySession>,
    /// In the order recorded.
    #[serde(serialize_with = "snapshot::write_completions")]
    #[serde(deserialize_with = "snapshot::read_completions")]
    pub(super) completions: Vec<Completion>,
    /// In the order recorded.
    #[serde(default)]
    pub(super) transfers: Vec<Transfer>,
    /// Corrections of the member's name and number, in the order recorded.
    #[serde(default)]
    pub(super) corrections: Vec<Correction>,
    /// Rule 12, in the order recorded (which is their order in time: each departure follows
    /// the last rejoining, each rejoining the last departure).
    #[serde(default)]
    pub(super) departures: Vec<Departure>,
    #[serde(default)]
    pub(super) rejoinings: Vec<Rejoining>,
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

    pub fn corrections(&self) -> &[Correction] {
        &self.corrections
    }

    pub fn correction(&self, correction_id: Uuid) -> Option<&Correction> {
        self.corrections
            .iter()
            .find(|c| c.correction_id == correction_id)
    }

    /// The member's name now: the latest correction's, else the enrolment's.
    pub fn name(&self) -> Option<&Name> {
        self.corrections
            .iter()
            .rev()
            .find_map(|c| c.name.as_ref())
            .or(self.enrolment.as_ref().map(|e| &e.name))
    }

    /// The member's number now: the latest correction's, else the enrolment's.
    pub fn member_no(&self) -> Option<&MemberNo> {
        self.corrections
            .iter()
            .rev()
            .find_map(|c| c.member_no.as_ref())
            .or(self.enrolment.as_ref().map(|e| &e.member_no))
    }

    pub fn departures(&self) -> &[Departure] {
        &self.departures
    }

    pub fn departure(&self, departure_id: Uuid) -> Option<&Departure> {
        self.departures
            .iter()
            .find(|d| d.departure_id == departure_id)
    }

    pub fn rejoinings(&self) -> &[Rejoining] {
        &self.rejoinings
    }

    pub fn rejoining(&self, rejoining_id: Uuid) -> Option<&Rejoining> {
        self.rejoinings
            .iter()
            .find(|r| r.rejoining_id == rejoining_id)
    }

    /// Rule 12: the enrolment day and the periods away; `None` when not enrolled.
    pub fn tenure(&self) -> Option<Tenure> {
        let enrolment = self.enrolment.as_ref()?;
        let away = self
            .departures
            .iter()
            .enumerate()
            .map(|(i, d)| Away {
                left_on: d.left_on,
                rejoined_on: self.rejoinings.get(i).map(|r| r.rejoined_on),
            })
            .collect();
        Some(Tenure {
            enrolled_on: enrolment.enrolled_on,
            away,
        })
    }

    /// Rule 12: a study fact from `from` to `to` must not fall on a day the member was away.
    pub(crate) fn check_present(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
    ) -> Result<(), TimeViolation> {
        let away = self.tenure().and_then(|t| {
            t.away_between(local_date(from, tz), local_date(to, tz))
                .copied()
        });
        match away {
            Some(away) => Err(TimeViolation::WhileAway {
                left_on: away.left_on,
            }),
            None => Ok(()),
        }
    }

    /// Where the member belongs from a day on (rule 7): the enrolment, each transfer and each
    /// rejoining, as (day, sequence, organisation), sorted. Rule 12's periods away cut it.
    pub fn placements(&self) -> Vec<(NaiveDate, usize, &OrgId)> {
        let Some(enrolment) = self.enrolment.as_ref() else {
            return Vec::new();
        };
        let mut placements: Vec<(NaiveDate, usize, &OrgId)> =
            std::iter::once((enrolment.enrolled_on, 1, &enrolment.org_id))
                .chain(
                    self.transfers
                        .iter()
                        .map(|t| (t.effective_on, t.sequence, &t.to_org_id)),
                )
                .chain(
                    self.rejoinings
                        .iter()
                        .map(|r| (r.rejoined_on, r.sequence, &r.org_id)),
                )
                .collect();
        placements.sort();
        placements
    }

    /// The organisation the member belongs to on a local date (rules 7 and 12): `None` before
    /// the enrolment and while away.
    pub fn organisation_on(&self, day: NaiveDate) -> Option<&OrgId> {
        if self.tenure()?.away_on(day) {
            return None;
        }
        organisation_on(&self.placements(), day)
    }

    /// The organisation whose administrators answer for the member on `day`: where they
    /// belong, or while away where they were last, or before the enrolment where they enrol.
    pub fn home_organisation(&self, day: NaiveDate) -> Option<&OrgId> {
        let placements = self.placements();
        organisation_on(&placements, day).or_else(|| placements.first().map(|(_, _, org)| *org))
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
        let tenure = self.tenure()?;
        let today = local_date(clock.now, clock.tz);
        Some(judge_evaluation(totals, quarters, &tenure, rulesets, today))
    }
}
