//! Connections reserved for the write path, and what a failed statement says about its
//! connection and about the database.
//!
//! sqlx's pool pings every connection when it is released (`/* SQLx ping */`, a whole round
//! trip), because it cannot know whether a dropped query left the connection mid-protocol.
//! On the write path that doubles the statements the database sees: measured here, a
//! single-row INSERT through the pool runs at about 0.65× the rate of the same INSERT on a
//! held connection. So the write path keeps a small set of connections of its own and knows
//! exactly when one is clean: a lease is marked busy while a statement runs, and a lease
//! dropped while busy (a cancelled request) closes its connection instead of returning it.
//!
//! A connection can die while it sits idle (PostgreSQL restarted, a network cut). One idle for
//! [`CHECK_IDLE_AFTER`] or longer is pinged before it is lent, and one found dead is closed and
//! replaced, so a statement is only sent on a connection that answered a moment ago (a busy
//! connection is never pinged: that round trip would cost the hot path). A statement whose
//! session ended under it closes its connection and every idle one of the set, which most
//! likely died with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgSeverity};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a command may wait for a write connection (a free one, or a new one) before it is
/// answered 503: short, so that a database that is not there is reported well within 5 s.
const LEASE_TIMEOUT: Duration = Duration::from_secs(3);
/// PostgreSQL cancels a write statement after this long (nothing is committed then) ...
const STATEMENT_TIMEOUT: &str = "30s";
/// ... and we give up on an answer a little later (the outcome is unknown then).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(35);
/// A connection idle this long is pinged before it is used (write connections and the pool's).
/// Shorter than any restart of PostgreSQL: a connection that died in a restart that is over
/// has been idle at least as long as the restart took, so it is always pinged, while one in
/// steady use is not.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_millis(100);
/// How long that ping may take before the connection is given up as dead.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `error` means the database is not there or cannot serve now, as opposed to a bug
/// or bad data: the request may succeed if sent again later (a 503 with `Retry-After`).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(refusal) => refusal.code().is_some_and(|c| unavailable_code(&c)),
        _ => false,
    }
}

/// SQLSTATEs (PostgreSQL's appendix A) that say "not now" rather than "never".
/// read_only_sql_transaction: the server is a standby now.
const READ_ONLY: &str = "25006";

fn unavailable_code(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources (too many connections, disk
    // full, out of memory); 57P: operator intervention (administrator or crash shutdown,
    // cannot connect now: starting up or shutting down, database dropped).
    ["08", "53", "57P"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(
            code,
            // query_canceled (statement_timeout), lock_not_available (lock_timeout),
            // read_only_sql_transaction (a standby answers: the primary is gone),
            // serialization_failure and deadlock_detected (try again).
            "57014" | "55P03" | READ_ONLY | "40001" | "40P01"
        )
}

/// Whether PostgreSQL ended the session with this answer (severity FATAL or PANIC: the
/// server closes the connection, and the transaction it was in did not commit).
pub fn session_ended(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        .is_some_and(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic))
}

/// Whether the connection is gone after `error`: the socket failed, or the server ended the
/// session. A connection on a server that became read-only (a primary demoted) counts as gone:
/// a new one goes to the host that serves writes now.
fn connection_lost(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_))
        || session_ended(error)
        || error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == READ_ONLY)
}

/// Whether a connection that has been idle answers a ping in time.
pub async fn answers(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    match tokio::time::timeout(CHECK_TIMEOUT, connection.ping()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "an idle connection did not answer a ping",
        ))),
    }
}

/// Cheap to clone: clones share the same connections.
#[derive(Clone)]
pub struct WriteConnections {
    shared: Arc<Shared>,
}

/// An idle connection and since when it has been idle.
struct Idle {
    connection: PgConnection,
    since: Instant,
}

struct Shared {
    /// New connections go where the pool's do now (after a failover: the new primary).
    pool: PgPool,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // Each operation under this lock is a single push, pop or clear: a poisoned lock is
        // intact.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl WriteConnections {
    pub fn new(pool: PgPool, size: usize) -> WriteConnections {
        WriteConnections {
            shared: Arc::new(Shared {
                pool,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size.max(1))),
            }),
        }
    }

    /// A clean connection that answers: an idle one, or a new one while fewer than `size` are
    /// out.
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
        let connection = self.live_connection().await?;
        Ok(Lease {
            owner: Arc::clone(&self.shared),
            connection: Some(connection),
            busy: false,
            _permit: permit,
        })
    }

    /// The most recently used idle connection, pinged first if it has been idle a while; a
    /// dead one is dropped (which closes it) for the next; a new one when none is left.
    async fn live_connection(&self) -> Result<PgConnection, sqlx::Error> {
        loop {
            let Some(mut idle) = self.shared.idle().pop() else {
                let options: PgConnectOptions = (*self.shared.pool.connect_options()).clone();
                return options
                    .options([("statement_timeout", STATEMENT_TIMEOUT)])
                    .connect()
                    .await;
            };
            if idle.since.elapsed() < CHECK_IDLE_AFTER {
                return Ok(idle.connection);
            }
            match answers(&mut idle.connection).await {
                Ok(()) => return Ok(idle.connection),
                Err(error) => tracing::info!(%error, "an idle write connection was dead; replaced"),
            }
        }
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
    /// rather than reused; a database error (constraint violation, ...) leaves it clean, unless
    /// the server ended the session with it. A lost connection also closes every idle one.
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
        match &outcome {
            Err(error) if connection_lost(error) => self.owner.idle().clear(),
            Ok(_) | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound) => self.busy = false,
            Err(_) => {}
        }
        outcome
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            if !self.busy {
                self.owner.idle().push(Idle {
                    connection,
                    since: Instant::now(),
                });
            }
            // A busy connection is dropped here, which closes its socket.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_mean_not_now_are_unavailable() {
        let unavailable = [
            "08006", "53300", "57P01", "57P02", "57P03", "57014", "55P03", "25006", "40001",
        ];
        for code in unavailable {
            assert!(unavailable_code(code), "{code}");
        }
        // Unique violation, check violation, syntax error, undefined table: bugs or bad data.
        for code in ["23505", "23514", "42601", "42P01", "22P02"] {
            assert!(!unavailable_code(code), "{code}");
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
