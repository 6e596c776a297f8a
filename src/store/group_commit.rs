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
//! event is durable. A batch sent on a connection whose session PostgreSQL had ended (it
//! restarted meanwhile) did not run, and goes once more on a fresh connection.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::store::connections::{self, Lease, WriteConnections};

/// The most rows one batch carries.
const MAX_BATCH: usize = 128;

/// What a committed batch answers: each row's (aggregate type, id, sequence) → position.
type Positions = HashMap<(String, String, i64), i64>;

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

impl AppendError {
    /// A failure of the INSERT itself. PostgreSQL refusing it means nothing was committed —
    /// because the database cannot serve now (shutting down, ending the session, out of
    /// connections: 503), or for another reason; anything else (the connection broke, the
    /// statement timed out on our side) happened after the statement was sent, so it may have
    /// committed.
    fn of_statement(error: &sqlx::Error) -> AppendError {
        match error {
            sqlx::Error::Database(_) if connections::is_unavailable(error) => {
                AppendError::Unavailable(error.to_string())
            }
            sqlx::Error::Database(refusal) => AppendError::Failed(refusal.to_string()),
            _ => AppendError::Unknown,
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
    ///
    /// Cancellation-safe: a caller dropped while its row waits in the queue withdraws the
    /// row; a batch that carries other callers' rows runs in a task of its own, so a leader
    /// whose request is dropped does not abandon them. Only a batch of the caller's own row
    /// alone runs inline (no hand-off, and nobody else depends on it).
    pub async fn append(&self, row: EventRow) -> Result<i64, AppendError> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (reply, mut answer) = oneshot::channel();
        self.queue().push_back(Pending { ticket, row, reply });
        let _withdraw_if_dropped = Withdraw {
            queue: &self.queue,
            ticket,
        };
        loop {
            match answer.try_recv() {
                Ok(outcome) => return outcome,
                // The leader that took our row went away without answering.
                Err(oneshot::error::TryRecvError::Closed) => return Err(AppendError::Unknown),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let lease = match self.connections.lease().await {
                Ok(lease) => lease,
                Err(error) => {
                    // Withdraw the row if no leader has taken it; else its leader answers.
                    if withdraw(&self.queue, ticket) {
                        return Err(AppendError::Unavailable(error.to_string()));
                    }
                    return answer.await.unwrap_or(Err(AppendError::Unknown));
                }
            };
            let batch = take_batch(&mut self.queue());
            if batch.is_empty() {
                // Our row is in a batch another leader is committing right now.
                drop(lease);
                return answer.await.unwrap_or(Err(AppendError::Unknown));
            }
            let alone = batch.len() == 1 && batch[0].ticket == ticket;
            let writer = self.connections.clone();
            let commit = async move {
                let outcome = commit_batch(lease, &writer, &batch).await;
                answer_batch(batch, outcome);
            };
            if alone {
                commit.await;
            } else {
                // Answers travel through the oneshot channels; the task cannot fail otherwise.
                let _ = tokio::spawn(commit).await;
            }
        }
    }
}

/// Takes a row out of the queue if it is still there; says whether it was.
fn withdraw(queue: &Mutex<VecDeque<Pending>>, ticket: u64) -> bool {
    let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
    let before = queue.len();
    queue.retain(|p| p.ticket != ticket);
    queue.len() < before
}

/// Withdraws a queued row when its caller goes away before a leader takes it.
struct Withdraw<'a> {
    queue: &'a Mutex<VecDeque<Pending>>,
    ticket: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        withdraw(self.queue, self.ticket);
    }
}

/// The next batch from the queue: up to [`MAX_BATCH`] rows, in arrival order, never two rows
/// for the same (aggregate, sequence) — a second one stays queued for the next batch, where
/// it conflicts on its own. (Within one statement `ON CONFLICT DO NOTHING` would skip it
/// silently and both waiters would read the first row's position as theirs.)
fn take_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut keys = std::collections::HashSet::new();
    let mut batch = Vec::new();
    let mut deferred = VecDeque::new();
    while let Some(pending) = queue.pop_front() {
        if batch.len() == MAX_BATCH {
            deferred.push_back(pending);
            break;
        }
        let key = (
            pending.row.aggregate_type,
            pending.row.aggregate_id.clone(),
            pending.row.sequence,
        );
        if keys.insert(key) {
            batch.push(pending);
        } else {
            deferred.push_back(pending);
        }
    }
    deferred.append(queue);
    *queue = deferred;
    batch
}

/// Commits a batch on the leased connection. When PostgreSQL ended that connection's session
/// instead of running the statement (it restarted, or the session was terminated, since the
/// connection was last used), nothing was committed: the batch goes once more on a fresh
/// connection rather than failing its commands.
async fn commit_batch(
    mut lease: Lease,
    writer: &WriteConnections,
    batch: &[Pending],
) -> Result<Positions, AppendError> {
    let first = lease
        .run(|connection| insert_batch(connection, batch))
        .await;
    // Closes the connection if it is lost, which frees its place for the fresh one.
    drop(lease);
    match first {
        Err(error) if connections::session_ended(&error) => {
            tracing::info!(%error, "the write connection's session had ended; sending again");
            let mut fresh = writer
                .lease()
                .await
                .map_err(|e| AppendError::Unavailable(e.to_string()))?;
            fresh
                .run(|connection| insert_batch(connection, batch))
                .await
                .map_err(|e| AppendError::of_statement(&e))
        }
        other => other.map_err(|e| AppendError::of_statement(&e)),
    }
}

async fn insert_batch(
    connection: &mut sqlx::PgConnection,
    batch: &[Pending],
) -> Result<Positions, sqlx::Error> {
    let column = |f: fn(&EventRow) -> String| batch.iter().map(|p| f(&p.row)).collect::<Vec<_>>();
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(APPEND_BATCH)
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
        .into_iter()
        .map(|(aggregate_type, aggregate_id, sequence, position)| {
            ((aggregate_type, aggregate_id, sequence), position)
        })
        .collect())
}

fn answer_batch(batch: Vec<Pending>, outcome: Result<Positions, AppendError>) {
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
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(ticket: u64, member: &str, sequence: i64) -> Pending {
        let (reply, _) = oneshot::channel();
        Pending {
            ticket,
            row: EventRow {
                aggregate_type: "member",
                aggregate_id: member.to_owned(),
                sequence,
                event_type: "StudySessionRecorded".to_owned(),
                event_version: "1".to_owned(),
                payload: "{}".to_owned(),
                metadata: "{}".to_owned(),
                recorded_at: Utc::now(),
            },
            reply,
        }
    }

    #[test]
    fn a_batch_never_carries_two_rows_for_the_same_sequence() {
        let mut queue: VecDeque<Pending> = [
            pending(1, "a", 5),
            pending(2, "b", 5),
            pending(3, "a", 5),
            pending(4, "a", 6),
        ]
        .into_iter()
        .collect();
        let batch = take_batch(&mut queue);
        let tickets: Vec<u64> = batch.iter().map(|p| p.ticket).collect();
        assert_eq!(tickets, [1, 2, 4]);
        let left: Vec<u64> = queue.iter().map(|p| p.ticket).collect();
        assert_eq!(left, [3], "the duplicate waits for the next batch");
        let next = take_batch(&mut queue);
        assert_eq!(next.iter().map(|p| p.ticket).collect::<Vec<_>>(), [3]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_batch_is_bounded_and_keeps_arrival_order() {
        let mut queue: VecDeque<Pending> = (0..300u64)
            .map(|n| pending(n, &format!("m{n}"), 1))
            .collect();
        let batch = take_batch(&mut queue);
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(batch.first().map(|p| p.ticket), Some(0));
        assert_eq!(queue.front().map(|p| p.ticket), Some(MAX_BATCH as u64));
        assert_eq!(queue.len(), 300 - MAX_BATCH);
    }
}
