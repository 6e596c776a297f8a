//! A what-if: how a proposed ruleset, not published, would judge every member's quarters from
//! its first quarter to today, against the rulesets in force — who would change status, and
//! how many per organisation.
//!
//! It reads the log in one read-only snapshot (member order, the primary key's order, as a
//! replay does; events listed as skipped or that cannot be read are passed over, as the views
//! pass over them), folds each member twice — under the published rulesets, and under them with
//! the proposal added as the next version — and writes only its own tables (`store::what_ifs`).
//! Nothing the ledger serves is touched, so it may run beside a replay and the projector.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use sqlx::Connection;
use studyledger_aggregates::member::{Member, MemberEvent};
use studyledger_aggregates::rules::rulesets::{latest_version, Ruleset};
use studyledger_aggregates::values::{local_date, Quarter};
use studyledger_projections::fold::MemberFold;
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::store::{skipped, streams, what_ifs};
use crate::JobError;

/// Changes written per round trip.
const BATCH: usize = 2_000;
/// How often the record's progress is updated.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One quarter that would change: member, quarter, organisation then, status now, proposed.
type Change = (Uuid, String, String, String, String);

/// The rulesets with the proposal added as the next version.
pub fn with_proposal(rulesets: &[Ruleset], proposed: &Ruleset) -> Vec<Ruleset> {
    let mut all = rulesets.to_vec();
    all.push(Ruleset {
        version: latest_version(rulesets).unwrap_or(0) + 1,
        ..proposed.clone()
    });
    all
}

/// The quarters of `member` the proposal could judge otherwise, with their status now and as
/// proposed, where they differ: from the proposal's first quarter (or the enrolment's) to
/// today's.
pub fn changed_quarters(
    member: &Member,
    (rulesets, proposal): (&[Ruleset], &[Ruleset]),
    tz: chrono_tz::Tz,
    today: NaiveDate,
) -> Vec<(Quarter, String, String, String)> {
    let Some(enrolment) = member.enrolment() else {
        return Vec::new();
    };
    let Some(proposed) = proposal.last() else {
        return Vec::new();
    };
    let first = proposed
        .effective_from
        .max(Quarter::of_date(enrolment.enrolled_on));
    let now = MemberFold::new(member, rulesets, tz);
    let then = MemberFold::new(member, proposal, tz);
    first
        .through(Quarter::of_date(today))
        .filter_map(|quarter| {
            let before = now.quarter(quarter, rulesets, today).judgement.status;
            let after = then.quarter(quarter, proposal, today).judgement.status;
            (before != after).then(|| {
                let day = quarter.last_day().min(today);
                let org = member
                    .organisation_on(day)
                    .unwrap_or(&enrolment.org_id)
                    .to_string();
                (
                    quarter,
                    org,
                    before.as_str().to_owned(),
                    after.as_str().to_owned(),
                )
            })
        })
        .collect()
}

/// What the run judges with (the rulesets in force, and with the proposal; the time zone and
/// today, read once), and what it has found so far.
struct Found<'a> {
    rulesets: (&'a [Ruleset], &'a [Ruleset]),
    tz: chrono_tz::Tz,
    today: NaiveDate,
    examined: i64,
    changed: i64,
    batch: Vec<Change>,
    per_org: HashMap<String, i64>,
}

impl Found<'_> {
    fn add(&mut self, member_id: &str, member: &Member) {
        self.examined += 1;
        let changed = changed_quarters(member, self.rulesets, self.tz, self.today);
        let Ok(id) = member_id.parse::<Uuid>() else {
            return;
        };
        if changed.is_empty() {
            return;
        }
        self.changed += 1;
        let mut orgs: Vec<&String> = changed.iter().map(|c| &c.1).collect();
        orgs.sort_unstable();
        orgs.dedup();
        for org in orgs {
            *self.per_org.entry(org.clone()).or_default() += 1;
        }
        for (quarter, org, before, after) in changed {
            self.batch
                .push((id, quarter.to_string(), org, before, after));
        }
    }
}

/// Runs the what-if whose record `what_ifs::start` made; the outcome goes into the record.
pub async fn run(ledger: Arc<Ledger>, what_if_id: Uuid, proposed: Ruleset) -> Result<(), JobError> {
    let pool = ledger.pool();
    // Results past their time go first; a failure here must not leave this one `running`.
    if let Err(error) = what_ifs::sweep(pool).await {
        tracing::warn!(%error, "cannot delete expired what-ifs");
    }
    let outcome = judge_all(&ledger, what_if_id, &proposed).await;
    match outcome {
        Ok(per_org) => {
            let orgs: Vec<(String, i64)> = per_org.into_iter().collect();
            what_ifs::finish(pool, what_if_id, &orgs, None).await?;
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, %what_if_id, "what-if failed");
            what_ifs::finish(pool, what_if_id, &[], Some(&error.to_string())).await?;
            Err(error)
        }
    }
}

async fn judge_all(
    ledger: &Ledger,
    what_if_id: Uuid,
    proposed: &Ruleset,
) -> Result<HashMap<String, i64>, JobError> {
    let pool = ledger.pool();
    let tz = ledger.tz();
    let rulesets = ledger.rulesets().await?;
    let proposal = with_proposal(&rulesets, proposed);
    let mut reader = pool.acquire().await?.detach();
    let mut snapshot = reader
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let horizon: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
            .fetch_one(&mut *snapshot)
            .await?;
    // Events the projector or a replay passed over are passed over here too, as the views did.
    let skips = skipped::positions(&mut *snapshot).await?;
    let mut found = Found {
        rulesets: (&rulesets, &proposal),
        tz,
        today: local_date(Utc::now(), tz),
        examined: 0,
        changed: 0,
        batch: Vec::new(),
        per_org: HashMap::new(),
    };
    let mut current: Option<(String, Member)> = None;
    let mut last_progress = Instant::now();
    {
        let mut events = streams::member_events_by_member(&mut snapshot, &horizon);
        while let Some(event) = events.try_next().await? {
            if current
                .as_ref()
                .is_none_or(|(id, _)| *id != event.aggregate_id)
            {
                if let Some((id, member)) = current.take() {
                    found.add(&id, &member);
                }
                current = Some((event.aggregate_id.clone(), Member::default()));
            }
            if let Some((_, member)) = current.as_mut() {
                let read = (!skips.contains(&event.position))
                    .then(|| serde_json::from_str::<MemberEvent>(&event.payload).ok())
                    .flatten();
                match read {
                    Some(read) => member.apply(read),
                    None => member.pass_over(),
                }
            }
            if found.batch.len() >= BATCH || last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let batch = std::mem::take(&mut found.batch);
                what_ifs::record(pool, what_if_id, &batch, found.examined, found.changed).await?;
            }
        }
    }
    if let Some((id, member)) = current.take() {
        found.add(&id, &member);
    }
    snapshot.commit().await?;
    let batch = std::mem::take(&mut found.batch);
    what_ifs::record(pool, what_if_id, &batch, found.examined, found.changed).await?;
    Ok(found.per_org)
}
