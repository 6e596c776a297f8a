//! Connections reserved for the write path.
//!
//! sqlx's pool pings every connection when it is released (`/* SQLx ping */`, a whole round
//! trip), because it cannot know whether a dropped query left the connection mid-protocol.
//! On the write path that doubles the statements the database sees: measured here, a
//! single-row INSERT through the pool runs at about 0.65× the rate of the same INSERT on a
//! held connection. So the write path keeps a small set of connections of its own and knows
//! exactly when one is clean: a lease is marked busy while a statement runs, and a lease
//! dropped while busy (a cancelled request) closes its connection instead of returning it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a command may wait for a write connection before it is answered 503.
const LEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL cancels a write statement after this long (nothing is committed then) ...
const STATEMENT_TIMEOUT: &str = "30s";
/// ... and we give up on an answer a little later (the outcome is unknown then).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(35);

/// Cheap to clone: clones share the same connections.
#[derive(Clone)]
pub struct WriteConnections {
    shared: Arc<Shared>,
}

struct Shared {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Arc<Semaphore>,
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        // Each operation under this lock is a single push or pop: a poisoned lock is intact.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WriteConnections {
    pub fn new(options: PgConnectOptions, size: usize) -> WriteConnections {
        WriteConnections {
            shared: Arc::new(Shared {
                options: options.options([("statement_timeout", STATEMENT_TIMEOUT)]),
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size.max(1))),
            }),
        }
    }

    /// A clean connection: an idle one, or a new one while fewer than `size` are out.
    pub async fn lease(&self) -> Result<Lease, sqlx::Error> {
        tokio::time::timeout(LEASE_TIMEOUT, self.lease_unbounded())
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    async fn lease_unbounded(&self) -> Result<Lease, sqlx::Error> {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.shared.idle().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.shared.options.connect().await?,
        };
        Ok(Lease {
            owner: Arc::clone(&self.shared),
            connection: Some(connection),
            busy: false,
            _permit: permit,
        })
    }
}

/// A connection out of the set, owned (so it can move into a task of its own).
pub struct Lease {
    owner: Arc<Shared>,
    connection: Option<PgConnection>,
    busy: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// Runs one statement on the leased connection. A statement that fails at the protocol
    /// level (I/O, a broken connection) leaves the lease busy, so the connection is closed
    /// rather than reused; a database error (constraint violation, ...) leaves it clean.
    pub async fn run<'c, T, F, Fut>(&'c mut self, statement: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(&'c mut PgConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let Some(connection) = self.connection.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        self.busy = true;
        let outcome = tokio::time::timeout(ANSWER_TIMEOUT, statement(connection))
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer from the database",
                )))
            });
        if matches!(
            &outcome,
            Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
        ) {
            self.busy = false;
        }
        outcome
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            if !self.busy {
                self.owner.idle().push(connection);
            }
            // A busy connection is dropped here, which closes its socket.
        }
    }
}
