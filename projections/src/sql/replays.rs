//! The record of replays (rule 10): one row per replay with its progress and outcome, and its
//! work list — every (member, evaluation) whose recorded eligibility differs under the rules
//! it replayed with.
//!
//! These tables live beside the views but are not rebuilt with them, so every statement names
//! them with their schema: a rebuild writes from a connection whose `search_path` points at
//! the new view tables.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use studyledger_aggregates::rules::eligibility::EligibilityChange;
use studyledger_aggregates::rules::status::QuarterStatus;
use studyledger_aggregates::values::Quarter;
use uuid::Uuid;

/// A replay as recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ReplayRecord {
    pub replay_id: Uuid,
    pub dry_run: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub events_processed: i64,
    pub events_total: i64,
    pub members_processed: i64,
    pub rules_version: Option<i32>,
    pub actor: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub changes_total: i64,
}

/// One quarter whose status moved, as the work list shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterChange {
    pub quarter: Quarter,
    pub recorded_status: QuarterStatus,
    pub status_now: QuarterStatus,
    pub recorded_ruleset_version: Option<u32>,
    pub ruleset_version_now: Option<u32>,
}

/// A change of the work list, to be recorded.
#[derive(Debug, Clone)]
pub struct ReplayChange {
    pub member_id: Uuid,
    pub evaluation_id: String,
    pub determination_id: Uuid,
    pub change: EligibilityChange,
}

/// A change of the work list as recorded, with the member's number and name for the people
/// reading it (absent when the views do not know the member).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRecord {
    pub member_id: Uuid,
    pub member_no: Option<String>,
    pub name: Option<String>,
    pub evaluation_id: String,
    pub determination_id: Uuid,
    pub recorded_eligible: bool,
    pub eligible_now: bool,
    pub quarters_changed: Json<Vec<QuarterChange>>,
}

/// Whether a replay is marked running.
pub async fn any_running(connection: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(concat!(
        "SELECT EXISTS (SELECT 1 FROM public.",
        table!(replays),
        " WHERE status = 'running')"
    ))
    .fetch_one(connection)
    .await
}

/// Marks every replay still running as interrupted (the caller holds the replay lock, so none
/// of them is).
pub async fn mark_interrupted(connection: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE public.",
        table!(replays),
        " SET status = 'failed', error = 'interrupted', finished_at = now()
          WHERE status = 'running'"
    ))
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn record_start(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    dry_run: bool,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO public.",
        table!(replays),
        " (replay_id, dry_run, status, actor) VALUES ($1, $2, 'running', $3)"
    ))
    .bind(replay_id)
    .bind(dry_run)
    .bind(actor)
    .execute(connection)
    .await?;
    Ok(())
}

/// Sets two counts of a replay's row with `statement` (`$1` the replay, `$2` and `$3` the
/// counts).
async fn set_counts(
    connection: impl PgExecutor<'_>,
    statement: &'static str,
    replay_id: Uuid,
    counts: (i64, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(replay_id)
        .bind(counts.0)
        .bind(counts.1)
        .execute(connection)
        .await?;
    Ok(())
}

/// How many member events the replay reads, and the highest ruleset version it judges under.
pub async fn record_total(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    events_total: i64,
    rules_version: i32,
) -> Result<(), sqlx::Error> {
    let statement = concat!(
        "UPDATE public.",
        table!(replays),
        " SET events_total = $2, rules_version = $3::int WHERE replay_id = $1"
    );
    let counts = (events_total, i64::from(rules_version));
    set_counts(connection, statement, replay_id, counts).await
}

/// Events and members replayed so far.
pub async fn record_progress(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    events: i64,
    members: i64,
) -> Result<(), sqlx::Error> {
    let statement = concat!(
        "UPDATE public.",
        table!(replays),
        " SET events_processed = $2, members_processed = $3 WHERE replay_id = $1"
    );
    set_counts(connection, statement, replay_id, (events, members)).await
}

/// The replay finished, with its final counts.
pub async fn mark_succeeded(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    events: i64,
    members: i64,
) -> Result<(), sqlx::Error> {
    let statement = concat!(
        "UPDATE public.",
        table!(replays),
        " SET status = 'succeeded', finished_at = now(), events_processed = $2,
              members_processed = $3
          WHERE replay_id = $1"
    );
    set_counts(connection, statement, replay_id, (events, members)).await
}

pub async fn mark_failed(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "UPDATE public.",
        table!(replays),
        " SET status = 'failed', finished_at = now(), error = $2 WHERE replay_id = $1"
    ))
    .bind(replay_id)
    .bind(error)
    .execute(connection)
    .await?;
    Ok(())
}

fn quarter_changes(change: &EligibilityChange) -> Json<Vec<QuarterChange>> {
    Json(
        change
            .quarters_changed
            .iter()
            .map(|(before, after)| QuarterChange {
                quarter: before.quarter,
                recorded_status: before.status,
                status_now: after.status,
                recorded_ruleset_version: before.ruleset_version,
                ruleset_version_now: after.ruleset_version,
            })
            .collect(),
    )
}

/// Adds changes to a replay's work list, in one statement.
pub async fn insert_changes(
    tx: &mut PgConnection,
    replay_id: Uuid,
    changes: &[ReplayChange],
) -> Result<(), sqlx::Error> {
    let member_ids: Vec<Uuid> = changes.iter().map(|c| c.member_id).collect();
    let evaluation_ids: Vec<&str> = changes.iter().map(|c| c.evaluation_id.as_str()).collect();
    let determination_ids: Vec<Uuid> = changes.iter().map(|c| c.determination_id).collect();
    let recorded: Vec<bool> = changes.iter().map(|c| c.change.recorded_eligible).collect();
    let now: Vec<bool> = changes.iter().map(|c| c.change.eligible_now).collect();
    let quarters: Vec<Json<Vec<QuarterChange>>> =
        changes.iter().map(|c| quarter_changes(&c.change)).collect();
    sqlx::query(concat!(
        "INSERT INTO public.",
        table!(replay_changes),
        " (replay_id, member_id, evaluation_id, determination_id, recorded_eligible,
           eligible_now, quarters_changed)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::bool[], $6::bool[],
                                  $7::jsonb[])"
    ))
    .bind(replay_id)
    .bind(&member_ids)
    .bind(&evaluation_ids)
    .bind(&determination_ids)
    .bind(&recorded)
    .bind(&now)
    .bind(&quarters)
    .execute(tx)
    .await?;
    Ok(())
}

/// A replay with the size of its work list; `None` when there is no such replay.
pub async fn replay(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
) -> Result<Option<ReplayRecord>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT r.replay_id, r.dry_run, r.status, r.events_processed, r.events_total,
                r.members_processed, r.rules_version, r.actor, r.started_at, r.finished_at,
                r.error,
                (SELECT count(*) FROM public.",
        table!(replay_changes),
        " c WHERE c.replay_id = r.replay_id) AS changes_total
           FROM public.",
        table!(replays),
        " r WHERE r.replay_id = $1"
    ))
    .bind(replay_id)
    .fetch_optional(connection)
    .await
}

/// The work list after `after` (member id, evaluation id), at most `limit`, in that order.
pub async fn changes(
    connection: impl PgExecutor<'_>,
    replay_id: Uuid,
    after: Option<(Uuid, String)>,
    limit: i64,
) -> Result<Vec<ChangeRecord>, sqlx::Error> {
    let (after_member, after_evaluation) = after.unzip();
    sqlx::query_as(concat!(
        "SELECT c.member_id, m.member_no, m.name, c.evaluation_id, c.determination_id,
                c.recorded_eligible, c.eligible_now, c.quarters_changed
           FROM public.",
        table!(replay_changes),
        " c
           LEFT JOIN ",
        table!(member),
        " m ON m.member_id = c.member_id
          WHERE c.replay_id = $1
            AND ($2::uuid IS NULL OR (c.member_id, c.evaluation_id) > ($2, $3))
          ORDER BY c.member_id, c.evaluation_id
          LIMIT $4"
    ))
    .bind(replay_id)
    .bind(after_member)
    .bind(after_evaluation)
    .bind(limit)
    .fetch_all(connection)
    .await
}
