//! Reading the log in commit order, and where a reader of it stands.
//!
//! postgres-es has no global order, and a position taken from a sequence is not commit order:
//! a transaction holding position 10 can commit after the one holding 11, and a reader that
//! followed positions would skip 10 for ever. So readers take only events whose transaction id
//! is below `pg_snapshot_xmin(pg_current_snapshot())` — every transaction that could still add
//! rows there has ended — in (transaction id, position) order, and checkpoint that pair.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sqlx::{PgConnection, PgExecutor, PgPool};

/// Where a reader stands: the last event it applied, in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Checkpoint {
    pub transaction_id: u64,
    pub position: i64,
}

/// One event in commit order.
#[derive(Debug, Clone)]
pub struct CommittedEvent {
    pub transaction_id: u64,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: usize,
    pub event_type: String,
    pub payload: String,
}

impl CommittedEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

/// A transaction id from its text form (sqlx has no `xid8` type); an `xid8` always parses.
fn parse_xid(text: &str) -> u64 {
    text.parse().unwrap_or(0)
}

/// A batch of committed events, and the horizon below which they were read.
#[derive(Debug, Default)]
pub struct Committed {
    pub events: Vec<CommittedEvent>,
    /// Every transaction below it had ended when the batch was read: when the batch is not
    /// full, the views hold every event below it once the batch is applied.
    pub below: u64,
}

/// The next committed events after `after`, at most `limit`, in commit order. Only events of
/// transactions older than every transaction still running are returned, so nothing that
/// could still commit before them is skipped.
///
/// The rows come by `COPY … TO STDOUT (FORMAT binary)`: decoding ten thousand rows one by
/// one through sqlx took about 40 % of a catch-up's time, and the binary form costs both sides
/// least — PostgreSQL sends the numbers as they are and the texts without quoting, and reading
/// them is taking lengths, where CSV makes the server double every quote of a JSON payload
/// and the reader undo it. (The values written into the statement are numbers.)
pub async fn read_committed(
    connection: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Committed, sqlx::Error> {
    let below: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .fetch_one(&mut *connection)
        .await?;
    let below = parse_xid(&below);
    let statement = format!(
        "COPY (SELECT transaction_id, position, aggregate_type, aggregate_id, sequence,
                      event_type, payload
                 FROM events
                WHERE (transaction_id, position) > ('{}'::xid8, {})
                  AND transaction_id < '{below}'::xid8
                ORDER BY transaction_id, position
                LIMIT {limit}) TO STDOUT (FORMAT binary)",
        after.transaction_id, after.position
    );
    let decode = |e: CopyError| sqlx::Error::Decode(Box::new(e));
    let mut rows = CommittedRows::default();
    let mut failed = None;
    let mut stream = connection.copy_out_raw(&statement).await?;
    // Read to the end even after a piece that does not read: a COPY left half read would
    // hand its rest to the next statement on the connection.
    while let Some(chunk) = stream.try_next().await? {
        if failed.is_none() {
            failed = rows.feed(&chunk).err();
        }
    }
    drop(stream);
    if let Some(error) = failed {
        return Err(decode(error));
    }
    let events = rows.finish().map_err(decode)?;
    Ok(Committed { events, below })
}

/// Events from the binary COPY of [`read_committed`], read as its pieces arrive (PostgreSQL
/// sends a message per row): the format's signature, flags and header extension, then per row
/// a count of fields and each field as a length and its bytes (`xid8` and `bigint` as eight
/// bytes in network order, texts and `json` as UTF-8), then a count of -1. Only a row cut
/// between two pieces is copied, so a batch of tens of megabytes is never gathered in one
/// buffer before it is read.
#[derive(Default)]
struct CommittedRows {
    /// The start of a row (or of the header) whose end has not arrived yet.
    pending: Vec<u8>,
    started: bool,
    ended: bool,
    events: Vec<CommittedEvent>,
}

impl CommittedRows {
    fn feed(&mut self, piece: &[u8]) -> Result<(), CopyError> {
        if self.pending.is_empty() {
            let used = self.read(piece)?;
            self.pending.extend_from_slice(&piece[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(piece);
            let used = self.read(&pending)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Reads every whole row in `bytes`; answers how many bytes that used.
    fn read(&mut self, bytes: &[u8]) -> Result<usize, CopyError> {
        let mut copy = BinaryCopy { rest: bytes };
        if !self.started {
            match copy.header() {
                Ok(()) => self.started = true,
                Err(CopyError::Short) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        while !self.ended {
            let row_start = copy.rest;
            match copy.row() {
                Ok(Some(event)) => self.events.push(event),
                Ok(None) => self.ended = true,
                Err(CopyError::Short) => {
                    copy.rest = row_start;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if self.ended && !copy.rest.is_empty() {
            return Err(CopyError::Format);
        }
        Ok(bytes.len() - copy.rest.len())
    }

    /// The events, once the trailer has arrived.
    fn finish(self) -> Result<Vec<CommittedEvent>, CopyError> {
        if self.ended {
            Ok(self.events)
        } else {
            Err(CopyError::Short)
        }
    }
}

/// Events from a whole binary COPY.
#[cfg(test)]
fn parse_committed(bytes: &[u8]) -> Result<Vec<CommittedEvent>, CopyError> {
    let mut rows = CommittedRows::default();
    rows.feed(bytes)?;
    rows.finish()
}

/// The rows of a `COPY … TO STDOUT (FORMAT binary)`, field by field.
struct BinaryCopy<'a> {
    rest: &'a [u8],
}

/// What every binary COPY starts with.
const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl<'a> BinaryCopy<'a> {
    /// The signature, flags and header extension.
    fn header(&mut self) -> Result<(), CopyError> {
        let signature = self.take(BINARY_SIGNATURE.len())?;
        if signature != BINARY_SIGNATURE {
            return Err(CopyError::Format);
        }
        let _flags = self.take(4)?;
        let extension = u32::from_be_bytes(self.array()?);
        self.take(usize::try_from(extension).map_err(|_| CopyError::Format)?)?;
        Ok(())
    }

    /// The next row's event, or `None` at the trailer.
    fn row(&mut self) -> Result<Option<CommittedEvent>, CopyError> {
        match i16::from_be_bytes(self.array()?) {
            -1 => return Ok(None),
            7 => {}
            _ => return Err(CopyError::Columns),
        }
        let transaction_id = u64::from_be_bytes(self.fixed()?);
        let position = i64::from_be_bytes(self.fixed()?);
        let aggregate_type = self.text()?;
        let aggregate_id = self.text()?;
        let sequence =
            usize::try_from(i64::from_be_bytes(self.fixed()?)).map_err(|_| CopyError::Number)?;
        Ok(Some(CommittedEvent {
            transaction_id,
            position,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type: self.text()?,
            payload: self.text()?,
        }))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CopyError> {
        if self.rest.len() < n {
            return Err(CopyError::Short);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CopyError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// The next field's bytes (a NULL is not expected: every column is `NOT NULL`).
    fn field(&mut self) -> Result<&'a [u8], CopyError> {
        let length = i32::from_be_bytes(self.array()?);
        let length = usize::try_from(length).map_err(|_| CopyError::Format)?;
        self.take(length)
    }

    /// The next field, of a type sent as eight bytes.
    fn fixed(&mut self) -> Result<[u8; 8], CopyError> {
        self.field()?.try_into().map_err(|_| CopyError::Number)
    }

    /// The next field, of a type sent as its text.
    fn text(&mut self) -> Result<String, CopyError> {
        let bytes = self.field()?;
        Ok(std::str::from_utf8(bytes)
            .map_err(|_| CopyError::Format)?
            .to_owned())
    }
}

/// A COPY of events that does not read as the statement's columns.
#[derive(Debug, thiserror::Error)]
enum CopyError {
    #[error("events as copied: not PostgreSQL's binary COPY format")]
    Format,
    #[error("events as copied: cut short")]
    Short,
    #[error("events as copied: a row without every column")]
    Columns,
    #[error("events as copied: a number that does not read as one")]
    Number,
}

/// A checkpoint as read: the transaction id in its text form.
#[derive(sqlx::FromRow)]
struct CheckpointRow {
    xid: String,
    position: i64,
}

impl From<CheckpointRow> for Checkpoint {
    fn from(row: CheckpointRow) -> Self {
        Checkpoint {
            transaction_id: parse_xid(&row.xid),
            position: row.position,
        }
    }
}

/// The projector's checkpoint as seen on a connection, optionally locking its row for the
/// connection's transaction (a projector's batch, or a replay's swap).
pub async fn checkpoint_on(
    connection: &mut PgConnection,
    lock: bool,
) -> Result<Checkpoint, sqlx::Error> {
    let query = if lock {
        "SELECT transaction_id::text AS xid, position FROM projector_checkpoints
          WHERE projector = 'views' FOR UPDATE"
    } else {
        "SELECT transaction_id::text AS xid, position FROM projector_checkpoints
          WHERE projector = 'views'"
    };
    let row: CheckpointRow = sqlx::query_as(query).fetch_one(connection).await?;
    Ok(row.into())
}

pub async fn checkpoint(pool: &PgPool) -> Result<Checkpoint, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    checkpoint_on(&mut connection, false).await
}

/// Moves the checkpoint past a batch of `applied` events, in the batch's transaction; with
/// `covered`, the views hold every event below that horizon too.
pub async fn advance(
    tx: &mut PgConnection,
    to: Checkpoint,
    applied: usize,
    covered: Option<u64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints
            SET transaction_id = $1::text::xid8, position = $2,
                events_applied = events_applied + $3, batches = batches + 1, updated_at = now(),
                covered = GREATEST(covered, COALESCE($4::text::xid8, covered))
          WHERE projector = 'views'",
    )
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .bind(i64::try_from(applied).unwrap_or(i64::MAX))
    .bind(covered.map(|c| c.to_string()))
    .execute(tx)
    .await?;
    Ok(())
}

/// Sets the checkpoint (a replay's swap: the rebuilt views hold everything up to `to`, and
/// every event below `covered`).
pub async fn set(tx: &mut PgConnection, to: Checkpoint, covered: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints
            SET transaction_id = $1::text::xid8, position = $2, updated_at = now(),
                covered = $3::text::xid8
          WHERE projector = 'views'",
    )
    .bind(to.transaction_id.to_string())
    .bind(to.position)
    .bind(covered.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// Sets the checkpoint back to the start of the log, with its counters.
pub async fn reset(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints SET transaction_id = '0', position = 0, covered = '0',
                events_applied = 0, batches = 0 WHERE projector = 'views'",
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// The first transaction id not yet started now: every event committed so far lies below it.
pub async fn horizon(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let xmax: String = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        .fetch_one(pool)
        .await?;
    Ok(xmax.parse().unwrap_or(u64::MAX))
}

/// The horizon of now on the primary, with its WAL insert position: a standby that has
/// replayed that far holds every commit below the horizon.
pub async fn horizon_and_wal(pool: &PgPool) -> Result<(u64, String), sqlx::Error> {
    let (xmax, wal): (String, String) = sqlx::query_as(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text, pg_current_wal_insert_lsn()::text",
    )
    .fetch_one(pool)
    .await?;
    Ok((xmax.parse().unwrap_or(u64::MAX), wal))
}

/// Whether the server of `pool` has replayed the primary's WAL up to `wal` (a server that is
/// not in recovery — a standby promoted since — has it all).
pub async fn replayed(pool: &PgPool, wal: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, NOT pg_is_in_recovery())",
    )
    .bind(wal)
    .fetch_one(pool)
    .await
}

/// The transaction of the event at a position.
pub const TRANSACTION_OF_POSITION: &str =
    "SELECT transaction_id::text FROM events WHERE position = $1";

/// The horizon that covers the event at `position` (its transaction, and all before it).
pub async fn horizon_of_position(pool: &PgPool, position: i64) -> Result<Option<u64>, sqlx::Error> {
    let xid: Option<String> = sqlx::query_scalar(TRANSACTION_OF_POSITION)
        .bind(position)
        .fetch_optional(pool)
        .await?;
    Ok(xid.and_then(|x| x.parse::<u64>().ok()).map(|x| x + 1))
}

/// The checkpoint and the horizon the views cover, as a read sees them, and the read's own
/// horizon: every event committed before the statement lies below `horizon`.
pub const FRESHNESS: &str = "
SELECT transaction_id::text AS xid, position, covered::text AS covered,
       pg_snapshot_xmax(pg_current_snapshot())::text AS horizon
  FROM projector_checkpoints WHERE projector = 'views'";

/// Whether an event of a transaction below `$3` lies after the checkpoint (`$1`, `$2`): the
/// first event after the checkpoint in commit order, one step into the commit-order index
/// however long the log. (Asked as "is there any such event", PostgreSQL's generic plan for
/// unknown parameters scans the whole table.)
pub const BEYOND_CHECKPOINT: &str = "
SELECT COALESCE((SELECT transaction_id < $3::text::xid8 FROM events
                  WHERE (transaction_id, position) > ($1::text::xid8, $2)
                  ORDER BY transaction_id, position
                  LIMIT 1), false)";

#[derive(sqlx::FromRow)]
struct FreshnessRow {
    xid: String,
    position: i64,
    covered: String,
    horizon: String,
}

/// The horizon of now, and whether the views already hold every event committed before it.
pub async fn fresh_now(pool: &PgPool) -> Result<(u64, bool), sqlx::Error> {
    let row: FreshnessRow = sqlx::query_as(FRESHNESS).fetch_one(pool).await?;
    let horizon = parse_xid(&row.horizon);
    Ok((horizon, holds(pool, &row, horizon).await?))
}

/// How often a read waiting for the views asks again.
const VIEWS_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Waits, at most `wait`, until the views of `pool` hold every event committed below
/// `horizon`; answers whether they do.
pub async fn wait_until_covered(
    pool: &PgPool,
    horizon: u64,
    wait: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if caught_up_to(pool, horizon).await? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(VIEWS_POLL).await;
    }
}

/// Whether every committed event of a transaction below `horizon` is in the views: at once
/// when the horizon the projector covered reaches it, else by one probe just after the
/// checkpoint. Neither costs more as the log grows.
pub async fn caught_up_to(pool: &PgPool, horizon: u64) -> Result<bool, sqlx::Error> {
    let row: FreshnessRow = sqlx::query_as(FRESHNESS).fetch_one(pool).await?;
    holds(pool, &row, horizon).await
}

async fn holds(pool: &PgPool, row: &FreshnessRow, horizon: u64) -> Result<bool, sqlx::Error> {
    if parse_xid(&row.covered) >= horizon {
        return Ok(true);
    }
    let behind: bool = sqlx::query_scalar(BEYOND_CHECKPOINT)
        .bind(&row.xid)
        .bind(row.position)
        .bind(horizon.to_string())
        .fetch_one(pool)
        .await?;
    Ok(!behind)
}

/// At most this many events after the checkpoint are counted for the lag: one projector
/// batch. Beyond it the projector is catching up, and the age of the oldest says how far.
pub const LAG_COUNTED: i64 = 10_000;

/// The events after the checkpoint (`$1`, `$2`) in commit order, at most `$3` of them: how
/// many, and the age in seconds of the oldest. One range of the commit-order index however
/// long the log. (Asked as a join with the checkpoint row, with no bound, PostgreSQL scanned
/// every event: 6 s a scrape of `/metrics` on a ledger of 12 million events.)
pub const LAG: &str = "
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(recorded_at))::float8, 0)
  FROM (SELECT recorded_at FROM events
         WHERE (transaction_id, position) > ($1::text::xid8, $2)
         ORDER BY transaction_id, position
         LIMIT $3) behind";

/// How far the views trail the log: events not yet applied (those passed over count as
/// applied; counted up to [`LAG_COUNTED`]), the age in seconds of the oldest of them (0 when
/// caught up), and the skipped events not yet set aside.
pub async fn lag(pool: &PgPool) -> Result<(i64, f64, i64), sqlx::Error> {
    let (xid, position, open_skips): (String, i64, i64) = sqlx::query_as(
        "SELECT transaction_id::text, position,
                (SELECT count(*) FROM skipped_events WHERE set_aside_sequence IS NULL)
           FROM projector_checkpoints WHERE projector = 'views'",
    )
    .fetch_one(pool)
    .await?;
    let (events, seconds): (i64, f64) = sqlx::query_as(LAG)
        .bind(xid)
        .bind(position)
        .bind(LAG_COUNTED)
        .fetch_one(pool)
        .await?;
    Ok((events, seconds, open_skips))
}

/// The point in commit order a replay covers: events of transactions below `horizon`, the
/// last of them at `last`.
#[derive(Debug, Clone)]
pub struct Cover {
    /// A transaction id, in the text form statements bind.
    pub horizon: String,
    pub last: Checkpoint,
}

impl Cover {
    /// The horizon as a transaction id: the views hold every event below it after the swap.
    pub fn horizon_xid(&self) -> u64 {
        parse_xid(&self.horizon)
    }
}

/// Everything committed before now: every transaction that is open now, in this database, must
/// end first (transactions of other databases on the server cannot write these events, so they
/// are not waited for). Then the cover is the transactions below this moment's snapshot
/// `xmax` — all final. After `patience`, it settles for what is final (below
/// `pg_snapshot_xmin`) and says so in the log.
pub async fn cover(
    connection: &mut PgConnection,
    patience: Duration,
) -> Result<Cover, sqlx::Error> {
    let (asked, open): (String, Vec<String>) = sqlx::query_as(
        "SELECT pg_snapshot_xmax(s)::text, array(SELECT x::text FROM pg_snapshot_xip(s) x)
           FROM pg_current_snapshot() s",
    )
    .fetch_one(&mut *connection)
    .await?;
    let deadline = Instant::now() + patience;
    let horizon = loop {
        if still_open_here(&mut *connection, &open).await? == 0 {
            break asked;
        }
        if Instant::now() >= deadline {
            let horizon: String =
                sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                    .fetch_one(&mut *connection)
                    .await?;
            tracing::warn!(
                horizon,
                asked,
                "a transaction open since before the replay still runs; the replay covers the \
                 events committed before it, and the projector applies the rest"
            );
            break horizon;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let last: Option<CheckpointRow> = sqlx::query_as(
        "SELECT transaction_id::text AS xid, position FROM events
          WHERE transaction_id < $1::text::xid8
          ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .bind(&horizon)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(Cover {
        horizon,
        last: last.map_or_else(Checkpoint::default, Checkpoint::from),
    })
}

/// How many of `transactions` still run and are not known to belong to another database.
async fn still_open_here(
    connection: impl PgExecutor<'_>,
    transactions: &[String],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[]) x
          WHERE pg_xact_status(x::xid8) = 'in progress'
            AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                             WHERE a.backend_xid::text = (x::numeric % 4294967296)::text
                               AND a.datname <> current_database())",
    )
    .bind(transactions)
    .fetch_one(connection)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY as PostgreSQL writes it, of rows of (xid8, bigint, text, text, bigint,
    /// text, json).
    fn binary_copy(rows: &[(u64, i64, &str, &str, i64, &str, &str)]) -> Vec<u8> {
        let mut out = BINARY_SIGNATURE.to_vec();
        out.extend_from_slice(&0_i32.to_be_bytes());
        out.extend_from_slice(&4_i32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        let text = |out: &mut Vec<u8>, t: &str| {
            out.extend_from_slice(&i32::try_from(t.len()).expect("short").to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        };
        for (xid, position, kind, id, sequence, event_type, payload) in rows {
            out.extend_from_slice(&7_i16.to_be_bytes());
            out.extend_from_slice(&8_i32.to_be_bytes());
            out.extend_from_slice(&xid.to_be_bytes());
            out.extend_from_slice(&8_i32.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
            text(&mut out, kind);
            text(&mut out, id);
            out.extend_from_slice(&8_i32.to_be_bytes());
            out.extend_from_slice(&sequence.to_be_bytes());
            text(&mut out, event_type);
            text(&mut out, payload);
        }
        out.extend_from_slice(&(-1_i16).to_be_bytes());
        out
    }

    #[test]
    fn events_copied_in_binary_read_back_as_stored() {
        let payload = "{\"MemberEnrolled\":{\"name\":\"林, \\\"晓\\\"\\n\",\"org_id\":\"a\\\\b\"}}";
        let copy = binary_copy(&[
            (u64::MAX, 7, "member", "m-1", 3, "MemberEnrolled", payload),
            (
                42,
                8,
                "organisation",
                "fuzhou",
                1,
                "OrganisationRegistered",
                "{\"a\":\"line\n break\"}",
            ),
        ]);
        let events = parse_committed(&copy).expect("parses");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].transaction_id, u64::MAX);
        assert_eq!(events[0].position, 7);
        assert_eq!(events[0].aggregate_type, "member");
        assert_eq!(events[0].aggregate_id, "m-1");
        assert_eq!(events[0].sequence, 3);
        assert_eq!(events[0].event_type, "MemberEnrolled");
        assert_eq!(events[0].payload, payload);
        assert_eq!(events[1].transaction_id, 42);
        assert_eq!(events[1].payload, "{\"a\":\"line\n break\"}");
        assert!(parse_committed(&binary_copy(&[]))
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn a_copy_that_is_not_the_statements_rows_is_refused() {
        let good = binary_copy(&[(1, 2, "member", "m", 1, "E", "{}")]);
        assert!(
            parse_committed(b"1,2,member,m,1,E,{}\n").is_err(),
            "not binary"
        );
        let cut = &good[..good.len() - 5];
        assert!(parse_committed(cut).is_err(), "a row cut short");
        assert!(
            parse_committed(&good[..good.len() - 2]).is_err(),
            "no trailer"
        );
        let mut after_trailer = good.clone();
        after_trailer.push(0);
        assert!(
            parse_committed(&after_trailer).is_err(),
            "bytes after the trailer"
        );
        let negative = binary_copy(&[(1, 2, "member", "m", -1, "E", "{}")]);
        assert!(parse_committed(&negative).is_err(), "a negative sequence");
        let mut six_fields = good.clone();
        let row = BINARY_SIGNATURE.len() + 12;
        six_fields[row..row + 2].copy_from_slice(&6_i16.to_be_bytes());
        assert!(parse_committed(&six_fields).is_err(), "a row of six fields");
        let mut not_utf8 = good;
        let at = not_utf8.len() - 4;
        not_utf8[at] = 0xff;
        assert!(
            parse_committed(&not_utf8).is_err(),
            "a text that is not UTF-8"
        );
    }
}
