//! The read log: every read of a member's record by someone other than the member is on
//! record before the answer leaves (personal information law), yet costs the read path no
//! statement of its own.
//!
//! Reads queue here and one writer commits whatever has queued in a single statement; each
//! reader waits for the commit that carries its entry (as appends wait for their group
//! commit), so an answer never goes out unrecorded, and a read whose record cannot be
//! written fails instead of going out.

use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::sync::{oneshot, Notify};

use crate::store::access_log::{self, Read};

/// Entries per statement at the most.
const MAX_BATCH: usize = 2_000;

type Waiting = (Read, oneshot::Sender<Result<(), String>>);

pub struct ReadLog {
    queue: Mutex<Vec<Waiting>>,
    wake: Notify,
}

impl ReadLog {
    /// The log, with its writer running on `pool` (for as long as the runtime runs).
    pub fn start(pool: PgPool) -> Arc<ReadLog> {
        let log = Arc::new(ReadLog {
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
        });
        tokio::spawn(write(Arc::clone(&log), pool));
        log
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // Every operation under this lock is a single push or take: never half done.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a read; answers once it is committed (or why it could not be).
    pub async fn record(&self, read: Read) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.queue().push((read, done));
        self.wake.notify_one();
        committed
            .await
            .unwrap_or_else(|_| Err("the read log stopped".to_owned()))
    }
}

/// The writer: waits for entries, commits all that queued meanwhile, answers their readers.
async fn write(log: Arc<ReadLog>, pool: PgPool) {
    loop {
        log.wake.notified().await;
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = log.queue();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                break;
            }
            let (reads, waiters): (Vec<Read>, Vec<_>) = batch.into_iter().unzip();
            let outcome = access_log::record(&pool, &reads)
                .await
                .map_err(|e| e.to_string());
            if let Err(error) = &outcome {
                tracing::warn!(%error, reads = reads.len(), "the read log could not be written");
            }
            for waiter in waiters {
                let _ = waiter.send(outcome.clone());
            }
        }
    }
}
