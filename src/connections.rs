//! Connections reserved for the write path.
//!
//! sqlx's pool pings every connection when it is released (`/* SQLx ping */`, a whole round
//! trip), because it cannot know whether a dropped query left the connection mid-protocol.
//! On the write path that doubles the statements the database sees: measured here, a
//! single-row INSERT through the pool runs at about 0.65× the rate of the same INSERT on a
//! held connection. So the write path keeps a small set of connections of its own and knows
//! exactly when one is clean: a lease is marked busy while a statement runs, and a lease
//! dropped while busy (a cancelled request) closes its connection instead of returning it.

use std::sync::Mutex;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct WriteConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    permits: Semaphore,
}

impl WriteConnections {
    pub fn new(options: PgConnectOptions, size: usize) -> WriteConnections {
        WriteConnections {
            options,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        // Each operation under this lock is a single push or pop: a poisoned lock is intact.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A clean connection: an idle one, or a new one while fewer than `size` are out.
    pub async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.options.connect().await?,
        };
        Ok(Lease {
            owner: self,
            connection: Some(connection),
            busy: false,
            _permit: permit,
        })
    }
}

pub struct Lease<'a> {
    owner: &'a WriteConnections,
    connection: Option<PgConnection>,
    busy: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
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
        let outcome = statement(connection).await;
        if matches!(
            &outcome,
            Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound)
        ) {
            self.busy = false;
        }
        outcome
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            if !self.busy {
                self.owner.idle().push(connection);
            }
            // A busy connection is dropped here, which closes its socket.
        }
    }
}
