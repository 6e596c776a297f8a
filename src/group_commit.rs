//! Group commit: concurrent single-event appends share one INSERT statement, one transaction
//! and one WAL flush.
//!
//! Each append queues its row and then tries to lead: whoever gets one of the reserved write
//! connections takes every row queued so far (its own and others') and commits them in one
//! statement. Alone, a command leads its own batch of one, inline, with no hand-off to another
//! task; under load, the rows that arrive while the connections are busy ride in the next
//! batch. `ON CONFLICT DO NOTHING` keeps one stale row from failing its batch: a row that was
//! not inserted lost its sequence number to another writer, and only its command is decided
//! again. A reply is sent only after the batch has committed, so an answer always means the
//! event is durable.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::oneshot;

use crate::connections::WriteConnections;

/// The most rows one batch carries.
const MAX_BATCH: usize = 128;

const APPEND_BATCH: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, recorded_at)
SELECT u.aggregate_type, u.aggregate_id, u.sequence, u.event_type, u.event_version,
       u.payload::json, u.metadata::json, u.recorded_at
  FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::timestamptz[])
       AS u(aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
            metadata, recorded_at)
    ON CONFLICT (aggregate_type, aggregate_id, sequence) DO NOTHING
RETURNING aggregate_type, aggregate_id, sequence, position";

/// One event, serialised, ready to be appended.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// Another writer holds this sequence number already.
    #[error("sequence taken by another writer")]
    Conflict,
    /// The database could not be reached; nothing was committed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The batch failed for another reason; nothing was committed.
    #[error("append failed: {0}")]
    Failed(String),
    /// The batch carrying this row was abandoned mid-flight; it may or may not have committed.
    #[error("the outcome of the append is unknown")]
    Unknown,
}

impl From<sqlx::Error> for AppendError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => AppendError::Unavailable(error.to_string()),
            other => AppendError::Failed(other.to_string()),
        }
    }
}

struct Pending {
    ticket: u64,
    row: EventRow,
    reply: oneshot::Sender<Result<i64, AppendError>>,
}

pub struct GroupCommit {
    connections: WriteConnections,
    queue: Mutex<VecDeque<Pending>>,
    tickets: AtomicU64,
}

impl GroupCommit {
    pub fn new(connections: WriteConnections) -> GroupCommit {
        GroupCommit {
            connections,
            queue: Mutex::new(VecDeque::new()),
            tickets: AtomicU64::new(0),
        }
    }

    pub fn connections(&self) -> &WriteConnections {
        &self.connections
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // Every operation under this lock is a single push, drain or retain: never half done.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one event; answers its global position once it is committed.
    pub async fn append(&self, row: EventRow) -> Result<i64, AppendError> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (reply, mut answer) = oneshot::channel();
        self.queue().push_back(Pending { ticket, row, reply });
        loop {
            if let Ok(outcome) = answer.try_recv() {
                return outcome;
            }
            let mut lease = match self.connections.lease().await {
                Ok(lease) => lease,
                Err(error) => {
                    // Withdraw the row if no leader has taken it; else its leader answers.
                    let withdrawn = {
                        let mut queue = self.queue();
                        let before = queue.len();
                        queue.retain(|p| p.ticket != ticket);
                        queue.len() < before
                    };
                    if withdrawn {
                        return Err(error.into());
                    }
                    return answer.await.unwrap_or(Err(AppendError::Unknown));
                }
            };
            let batch: Vec<Pending> = {
                let mut queue = self.queue();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                // Our row is in a batch another leader is committing right now.
                drop(lease);
                return answer.await.unwrap_or(Err(AppendError::Unknown));
            }
            let outcome = lease
                .run(|connection| insert_batch(connection, &batch))
                .await;
            drop(lease);
            answer_batch(batch, outcome);
        }
    }
}

async fn insert_batch(
    connection: &mut sqlx::PgConnection,
    batch: &[Pending],
) -> Result<HashMap<(String, String, i64), i64>, sqlx::Error> {
    let column = |f: fn(&EventRow) -> String| batch.iter().map(|p| f(&p.row)).collect::<Vec<_>>();
    let rows = sqlx::query(APPEND_BATCH)
        .bind(column(|r| r.aggregate_type.to_owned()))
        .bind(column(|r| r.aggregate_id.clone()))
        .bind(batch.iter().map(|p| p.row.sequence).collect::<Vec<i64>>())
        .bind(column(|r| r.event_type.clone()))
        .bind(column(|r| r.event_version.clone()))
        .bind(column(|r| r.payload.clone()))
        .bind(column(|r| r.metadata.clone()))
        .bind(batch.iter().map(|p| p.row.recorded_at).collect::<Vec<_>>())
        .fetch_all(connection)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                (
                    row.get::<String, _>("aggregate_type"),
                    row.get::<String, _>("aggregate_id"),
                    row.get::<i64, _>("sequence"),
                ),
                row.get::<i64, _>("position"),
            )
        })
        .collect())
}

fn answer_batch(
    batch: Vec<Pending>,
    outcome: Result<HashMap<(String, String, i64), i64>, sqlx::Error>,
) {
    match outcome {
        Ok(positions) => {
            for pending in batch {
                let key = (
                    pending.row.aggregate_type.to_owned(),
                    pending.row.aggregate_id.clone(),
                    pending.row.sequence,
                );
                let answer = positions.get(&key).copied().ok_or(AppendError::Conflict);
                // A waiter that went away needs no answer.
                let _ = pending.reply.send(answer);
            }
        }
        Err(error) => {
            tracing::warn!(%error, rows = batch.len(), "batch append failed");
            let error = AppendError::from(error);
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}
