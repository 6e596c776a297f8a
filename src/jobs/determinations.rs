//! Eligibility determinations as background jobs (rule 8).
//!
//! A determination records one `EligibilityDetermined` event on each member's stream, decided
//! by the member aggregate under the rulesets published when the job started. Each member's
//! event is idempotent per `determination_id`, so a job that stops half-way (an error, a
//! restart) is finished by sending the same request again. Progress lives in the instance that
//! runs the job; what was decided lives in the members' streams.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use lru::LruCache;
use serde::Serialize;
use studyledger_aggregates::evaluation::EvaluationRecord;
use studyledger_aggregates::member::command::DetermineEligibility;
use studyledger_aggregates::member::{Member, MemberCommand};
use studyledger_aggregates::rejection::{Classify, RejectionKind};
use tokio::sync::watch;
use uuid::Uuid;

use crate::ledger::{CommandError, Ledger};
use crate::store::error::StoreError;
use crate::store::record::Metadata;
use crate::store::skipped::SkipMap;
use crate::store::streams;

/// Members decided at the same time by one job.
const CONCURRENCY: usize = 8;
/// Finished jobs remembered for their progress answers.
const REMEMBERED: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

/// Where a determination job stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobState {
    pub determination_id: Uuid,
    pub evaluation_id: String,
    pub status: JobStatus,
    /// The token that asked for it.
    pub requested_by: String,
    pub members: usize,
    pub determined: usize,
    pub eligible: usize,
    pub ineligible: usize,
    /// Why the job failed; its kind says how to answer it.
    pub error: Option<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub error_kind: Option<RejectionKind>,
}

/// The jobs this instance runs or ran.
pub struct Jobs {
    jobs: Mutex<LruCache<Uuid, watch::Receiver<JobState>>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            jobs: Mutex::new(LruCache::new(
                NonZeroUsize::new(REMEMBERED).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

impl Jobs {
    fn jobs(&self) -> std::sync::MutexGuard<'_, LruCache<Uuid, watch::Receiver<JobState>>> {
        // Every operation under this lock is a single LruCache call: never half done.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, determination_id: Uuid) -> Option<watch::Receiver<JobState>> {
        self.jobs().get(&determination_id).cloned()
    }

    /// Starts deciding `members` for `evaluation`, or joins the job already running under
    /// this id. A finished job with the same id runs again: every member already decided
    /// answers its recorded outcome, and members missed before are decided now.
    pub fn start(
        &self,
        ledger: Arc<Ledger>,
        determination_id: Uuid,
        evaluation: EvaluationRecord,
        members: Vec<Uuid>,
        skips: Arc<SkipMap>,
        metadata: Metadata,
    ) -> watch::Receiver<JobState> {
        let mut jobs = self.jobs();
        if let Some(running) = jobs.get(&determination_id) {
            if running.borrow().status == JobStatus::Running {
                return running.clone();
            }
        }
        let (sender, receiver) = watch::channel(JobState {
            determination_id,
            evaluation_id: evaluation.evaluation_id.to_string(),
            status: JobStatus::Running,
            requested_by: metadata.token_id.clone(),
            members: members.len(),
            determined: 0,
            eligible: 0,
            ineligible: 0,
            error: None,
            error_kind: None,
        });
        jobs.put(determination_id, receiver.clone());
        tokio::spawn(run(
            ledger,
            determination_id,
            evaluation,
            members,
            skips,
            metadata,
            sender,
        ));
        receiver
    }
}

async fn run(
    ledger: Arc<Ledger>,
    determination_id: Uuid,
    evaluation: EvaluationRecord,
    members: Vec<Uuid>,
    skips: Arc<SkipMap>,
    metadata: Metadata,
    progress: watch::Sender<JobState>,
) {
    let outcome = async {
        // One set of rules for the whole job, read once: every member judged alike.
        let rulesets = ledger.rulesets().await.map_err(CommandError::Store)?;
        futures::stream::iter(members)
            .map(|member_id| {
                let id = member_id.to_string();
                let command = MemberCommand::DetermineEligibility(DetermineEligibility {
                    determination_id,
                    evaluation_id: evaluation.evaluation_id.clone(),
                    quarters: evaluation.quarters.clone(),
                    rulesets: rulesets.clone(),
                    skipped: skips
                        .get(&id)
                        .map(|s| s.iter().copied().collect())
                        .unwrap_or_default(),
                    clock: ledger.clock(),
                });
                let ledger = &ledger;
                let metadata = &metadata;
                async move {
                    ledger
                        .execute::<Member, _>(&id, command, metadata, |m| {
                            m.determination(determination_id).map(|d| d.eligible)
                        })
                        .await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_for_each(|executed| {
                progress.send_modify(|state| {
                    state.determined += 1;
                    match executed.answer {
                        Some(true) => state.eligible += 1,
                        _ => state.ineligible += 1,
                    }
                });
                futures::future::ready(Ok(()))
            })
            .await
    }
    .await;
    progress.send_modify(|state| match outcome {
        Ok(()) => state.status = JobStatus::Succeeded,
        Err(error) => {
            tracing::warn!(%determination_id, %error, "determination failed");
            state.status = JobStatus::Failed;
            state.error_kind = match &error {
                CommandError::Rejected(rejection) => Some(rejection.kind()),
                _ => None,
            };
            state.error = Some(error.to_string());
        }
    });
}

/// Members that cannot be determined: not enrolled (their stream does not start with an
/// enrolment). One indexed statement for the whole list, straight from the log.
pub async fn not_enrolled(ledger: &Ledger, members: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<String> = members.iter().map(Uuid::to_string).collect();
    let enrolled = streams::enrolled_among(ledger.pool(), &ids).await?;
    let mut missing: Vec<Uuid> = members
        .iter()
        .copied()
        .filter(|m| !enrolled.contains(&m.to_string()))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    Ok(missing)
}
