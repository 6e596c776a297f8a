//! How each recorded event moves a member's state. Applying only moves state; it never
//! decides, so a stream replays to the same state whatever the rules say today.

use crate::facts::{
    Adjustment, Appeal, Completion, Correction, CourseTerms, Departure, Rejoining, Resolution,
    SetAside, StudySession, Transfer, Withdrawal,
};
use crate::member::event::MemberEvent;
use crate::member::state::Member;

impl Member {
    /// Applies the next event of the stream; its sequence is the member's new version.
    pub(crate) fn apply_event(&mut self, event: MemberEvent) {
        self.version += 1;
        let sequence = self.version;
        match event {
            MemberEvent::MemberEnrolled(enrolment) => self.enrolment = Some(enrolment),
            MemberEvent::StudySessionRecorded {
                session_id,
                course_id,
                started_at,
                ended_at,
                minutes: _,
                source,
            } => {
                // Kept sorted by start: rule 1's overlap check reads them in that order.
                let at = self.sessions.partition_point(|s| s.started_at < started_at);
                let session = StudySession {
                    session_id,
                    course_id,
                    started_at,
                    ended_at,
                    sequence,
                    source,
                    withdrawn: None,
                };
                self.sessions.insert(at, session);
            }
            MemberEvent::CourseCompleted {
                completion_id,
                course_id,
                category,
                credit_hours,
                min_study_minutes,
                completed_at,
                source,
            } => {
                let course = CourseTerms {
                    course_id,
                    category,
                    credit_hours,
                    min_study_minutes,
                };
                self.completions.push(Completion {
                    completion_id,
                    course,
                    completed_at,
                    sequence,
                    source,
                    withdrawn: None,
                });
            }
            MemberEvent::MemberTransferred {
                transfer_id,
                to_org_id,
                effective_on,
            } => self.transfers.push(Transfer {
                transfer_id,
                to_org_id,
                effective_on,
                sequence,
            }),
            tenure @ (MemberEvent::MemberDeparted { .. }
            | MemberEvent::MemberRejoined { .. }
            | MemberEvent::MemberCorrected { .. }) => {
                self.apply_membership(tenure, sequence);
            }
            withdrawal @ MemberEvent::FactWithdrawn { .. } => {
                self.apply_withdrawal(withdrawal, sequence);
            }
            decision => self.apply_decision(decision, sequence),
        }
    }

    /// Determinations, corrections and appeals: what people decided about the member's credit.
    fn apply_decision(&mut self, event: MemberEvent, sequence: usize) {
        match event {
            MemberEvent::EligibilityDetermined(determination) => {
                self.determinations.push(determination);
            }
            MemberEvent::CreditAdjusted {
                adjustment_id,
                category,
                hours,
                effective_at,
                reason,
                appeal_id,
            } => self.adjustments.push(Adjustment {
                adjustment_id,
                category,
                hours,
                effective_at,
                reason,
                appeal_id,
                sequence,
            }),
            MemberEvent::AppealFiled {
                appeal_id,
                evaluation_id,
                determination_id,
                reason,
                filed_at,
            } => self.appeals.push(Appeal {
                appeal_id,
                evaluation_id,
                determination_id,
                reason,
                filed_at,
                sequence,
                resolution: None,
            }),
            MemberEvent::AppealResolved {
                appeal_id,
                outcome,
                note,
                resolved_at,
            } => {
                let resolution = Resolution {
                    outcome,
                    note,
                    resolved_at,
                    sequence,
                };
                if let Some(appeal) = self.appeals.iter_mut().find(|a| a.appeal_id == appeal_id) {
                    appeal.resolution = Some(resolution);
                }
            }
            MemberEvent::SkippedEventSetAside {
                skipped_sequence,
                note,
                set_aside_at,
            } => self.set_aside.push(SetAside {
                skipped_sequence,
                note,
                set_aside_at,
                sequence,
            }),
            // The study facts are applied by `apply_event` before it hands over.
            MemberEvent::MemberEnrolled(_)
            | MemberEvent::StudySessionRecorded { .. }
            | MemberEvent::CourseCompleted { .. }
            | MemberEvent::MemberTransferred { .. }
            | MemberEvent::MemberDeparted { .. }
            | MemberEvent::MemberRejoined { .. }
            | MemberEvent::MemberCorrected { .. }
            | MemberEvent::FactWithdrawn { .. } => {}
        }
    }

    /// Rule 12: a departure or a rejoining (they alternate, so each list is in time order),
    /// and corrections of who the member is.
    fn apply_membership(&mut self, event: MemberEvent, sequence: usize) {
        match event {
            MemberEvent::MemberCorrected {
                correction_id,
                name,
                member_no,
                reason,
            } => self.corrections.push(Correction {
                correction_id,
                name,
                member_no,
                reason,
                sequence,
            }),
            MemberEvent::MemberDeparted {
                departure_id,
                left_on,
                reason,
            } => self.departures.push(Departure {
                departure_id,
                left_on,
                reason,
                sequence,
            }),
            MemberEvent::MemberRejoined {
                rejoining_id,
                rejoined_on,
                org_id,
            } => self.rejoinings.push(Rejoining {
                rejoining_id,
                rejoined_on,
                org_id,
                sequence,
            }),
            _ => {}
        }
    }

    /// Rule 11: a withdrawn session leaves the sessions the rules read; a withdrawn
    /// completion stays, marked, so the ledger still lists it.
    fn apply_withdrawal(&mut self, event: MemberEvent, sequence: usize) {
        let MemberEvent::FactWithdrawn {
            fact_id,
            voided_statement,
            voiding_statement,
            withdrawn_at,
        } = event
        else {
            return;
        };
        let withdrawal = Withdrawal {
            voided_statement,
            voiding_statement,
            withdrawn_at,
            sequence,
        };
        if let Some(at) = self.sessions.iter().position(|s| s.session_id == fact_id) {
            let mut session = self.sessions.remove(at);
            session.withdrawn = Some(withdrawal);
            self.withdrawn_sessions.push(session);
        } else if let Some(completion) = self
            .completions
            .iter_mut()
            .find(|c| c.completion_id == fact_id)
        {
            completion.withdrawn = Some(withdrawal);
        }
    }
}
