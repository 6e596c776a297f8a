//! Each stream's hash chain, recomputed from the stored events to verify it.
//!
//! The chain is computed by the database as events are inserted (migrations/0004_hash_chain.sql,
//! with the content of 0006_hash_chain_identity.sql), except for bulk appends, which compute
//! their links with [`link`] (0025_writer_links.sql); [`link`] also recomputes every link here,
//! from the same definition. Each link is checked on its own (the stored hash of the event before,
//! and this event's content), so an event changed behind the service's back is named itself
//! when only its content changed; someone who also recomputes its stored hash moves the break to
//! the next event, and only recomputing every later hash of the stream hides it (the chain has
//! no key: it proves that the record was not edited by hand, not that it was not rebuilt).

use std::fmt::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use studyledger_aggregates::member::Member;

/// What one event's link covers: its stream, type, version, sequence, recording time,
/// metadata and payload.
#[derive(Debug, sqlx::FromRow)]
pub struct Content {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub event_version: String,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub metadata: String,
    pub payload: String,
}

/// The fields of one event that its link covers, borrowed: from a stored row ([`Content`]) or
/// from an append being written (a bulk append computes its links itself, from this same
/// definition, so that the database need not compute them row by row).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub metadata: &'a str,
    pub payload: &'a str,
}

impl Content {
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            event_type: &self.event_type,
            event_version: &self.event_version,
            sequence: self.sequence,
            recorded_at: self.recorded_at,
            metadata: &self.metadata,
            payload: &self.payload,
        }
    }
}

/// One event's link: `sha256(previous || type \n id \n event type \n version \n sequence \n
/// recorded_at \n len(metadata) \n metadata payload)`, `recorded_at` written as
/// `%Y-%m-%dT%H:%M:%S%.6fZ`.
pub fn link(previous: &[u8], content: &Fields<'_>) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    for part in [
        content.aggregate_type,
        content.aggregate_id,
        content.event_type,
        content.event_version,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let mut line = String::with_capacity(64);
    let at = content.recorded_at;
    // A bulk append hashes thousands of events: the timestamp is written from its parts,
    // which costs a tenth of chrono's format string, parsed anew for each call. Times chrono's
    // `%Y` writes with a sign (outside years 0 to 9999), and leap seconds, take the format.
    let usual = (0..=9999).contains(&at.year()) && at.timestamp_subsec_nanos() < 1_000_000_000;
    let written = if usual {
        writeln!(
            line,
            "{}\n{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\n{}",
            content.sequence,
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.timestamp_subsec_micros(),
            content.metadata.len(),
        )
    } else {
        writeln!(
            line,
            "{}\n{}\n{}",
            content.sequence,
            at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            content.metadata.len(),
        )
    };
    written.expect("writing to a String does not fail");
    hasher.update(line.as_bytes());
    hasher.update(content.metadata.as_bytes());
    hasher.update(content.payload.as_bytes());
    hasher.finalize().to_vec()
}

/// A link that does not hold: the stream and the sequence of the event it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

/// The last event of a stream as checked: what an auditor keeps to prove later that nothing up
/// to it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub hash: Vec<u8>,
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct Verification {
    pub checked: u64,
    pub broken: Vec<BrokenLink>,
}

/// A stored event: its content and its stored link.
#[derive(sqlx::FromRow)]
struct StoredLink {
    #[sqlx(flatten)]
    content: Content,
    hash: Vec<u8>,
}

/// Walks the events of every stream in stream order, checking each link against the stored
/// hash of the event before it, and handing each stream's head on as the stream ends.
struct Walk<F> {
    found: Verification,
    /// The last event seen: its stream, sequence and stored hash.
    previous: Option<Head>,
    head: F,
}

impl<F: FnMut(&Head) -> std::io::Result<()>> Walk<F> {
    fn step(&mut self, event: StoredLink) -> std::io::Result<()> {
        let content = &event.content;
        let before: &[u8] = match &self.previous {
            Some(p)
                if p.aggregate_type == content.aggregate_type
                    && p.aggregate_id == content.aggregate_id
                    && p.sequence == content.sequence - 1 =>
            {
                &p.hash
            }
            // A stream starts at sequence 1 with nothing before it; anything else is a gap.
            _ if content.sequence == 1 => &[],
            _ => &[0xff],
        };
        if link(before, &content.fields()) != event.hash {
            self.found.broken.push(BrokenLink {
                aggregate_type: content.aggregate_type.clone(),
                aggregate_id: content.aggregate_id.clone(),
                sequence: content.sequence,
            });
        }
        let next = Head {
            aggregate_type: event.content.aggregate_type,
            aggregate_id: event.content.aggregate_id,
            sequence: event.content.sequence,
            hash: event.hash,
        };
        if let Some(previous) = self.previous.replace(next) {
            let same_stream = self.previous.as_ref().is_some_and(|n| {
                n.aggregate_type == previous.aggregate_type
                    && n.aggregate_id == previous.aggregate_id
            });
            if !same_stream {
                (self.head)(&previous)?;
            }
        }
        self.found.checked += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<Verification> {
        if let Some(last) = self.previous.take() {
            (self.head)(&last)?;
        }
        Ok(self.found)
    }
}

/// Checks every chain (or one member's); answers the events checked and the broken links.
pub async fn verify(
    pool: &sqlx::PgPool,
    member: Option<&str>,
) -> Result<(u64, Vec<BrokenLink>), sqlx::Error> {
    let found = verify_with_heads(pool, member, |_| (), |_| Ok(())).await?;
    Ok((found.checked, found.broken))
}

/// Checks every chain (or one member's), telling `progress` of each event checked and handing
/// each stream's head to `head` as the stream ends.
pub async fn verify_with_heads(
    pool: &sqlx::PgPool,
    member: Option<&str>,
    progress: impl Fn(u64),
    head: impl FnMut(&Head) -> std::io::Result<()>,
) -> Result<Verification, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let mut events = sqlx::query_as::<_, StoredLink>(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, recorded_at,
                payload::text AS payload, hash, metadata::text AS metadata
           FROM events
          WHERE $1::text IS NULL OR (aggregate_type = $2 AND aggregate_id = $1)
          ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(member)
    .bind(Member::TYPE)
    .fetch(&mut *connection);
    let mut walk = Walk {
        found: Verification::default(),
        previous: None,
        head,
    };
    while let Some(event) = events.try_next().await? {
        walk.step(event).map_err(sqlx::Error::Io)?;
        progress(1);
    }
    walk.finish().map_err(sqlx::Error::Io)
}

/// How many events a verification checks: all of them, or one member's.
pub async fn count_events(pool: &sqlx::PgPool, member: Option<&str>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE $1::text IS NULL OR (aggregate_type = $2 AND aggregate_id = $1)",
    )
    .bind(member)
    .bind(Member::TYPE)
    .fetch_one(pool)
    .await
}

/// A saved head that no longer holds: its event is gone, or carries another hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MovedHead {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub found: bool,
}

/// Checks heads saved earlier (CSV with the header `aggregate_type,aggregate_id,sequence,hash`)
/// against the stored events, in the database: the file goes in by COPY and one join finds
/// every head that moved. With `member`, only that member's head is checked. Answers the heads
/// checked and those that moved.
pub async fn check_heads(
    pool: &sqlx::PgPool,
    saved: Vec<u8>,
    member: Option<&str>,
) -> Result<(u64, Vec<MovedHead>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMPORARY TABLE saved_heads (aggregate_type text, aggregate_id text,
                                             sequence bigint, hash text) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY saved_heads FROM STDIN (FORMAT csv, HEADER match)")
        .await?;
    copy.send(saved).await?;
    copy.finish().await?;
    let saved_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM saved_heads h
          WHERE $1::text IS NULL OR (h.aggregate_type = $2 AND h.aggregate_id = $1)",
    )
    .bind(member)
    .bind(Member::TYPE)
    .fetch_one(&mut *tx)
    .await?;
    let moved: Vec<MovedHead> = sqlx::query_as(
        "SELECT h.aggregate_type, h.aggregate_id, h.sequence, e.hash IS NOT NULL AS found
           FROM saved_heads h
           LEFT JOIN events e USING (aggregate_type, aggregate_id, sequence)
          WHERE ($1::text IS NULL OR (h.aggregate_type = $2 AND h.aggregate_id = $1))
            AND (e.hash IS NULL OR encode(e.hash, 'hex') <> lower(h.hash))
          ORDER BY h.aggregate_type, h.aggregate_id",
    )
    .bind(member)
    .bind(Member::TYPE)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((u64::try_from(saved_count).unwrap_or(0), moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The definition as the database's trigger writes it, with chrono's format string.
    fn by_definition(previous: &[u8], content: &Fields<'_>) -> Vec<u8> {
        let mut hasher = Sha256::new();
        hasher.update(previous);
        hasher.update(
            format!(
                "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
                content.aggregate_type,
                content.aggregate_id,
                content.event_type,
                content.event_version,
                content.sequence,
                content.recorded_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                content.metadata.len(),
            )
            .as_bytes(),
        );
        hasher.update(content.metadata.as_bytes());
        hasher.update(content.payload.as_bytes());
        hasher.finalize().to_vec()
    }

    #[test]
    fn a_link_is_the_definition_for_every_kind_of_time() {
        let utc = |s: &str| s.parse::<DateTime<Utc>>().expect(s);
        let times = [
            utc("2026-12-03T16:33:45.123456Z"),
            utc("2026-01-01T00:00:00Z"),
            utc("1999-12-31T23:59:59.999999Z"),
            utc("2026-06-30T08:05:09.123456789Z"),
            utc("0001-02-03T04:05:06.000007Z"),
            Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap(),
            // A leap second, as chrono holds one.
            Utc.from_utc_datetime(
                &chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                    .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
                    .expect("a leap second"),
            ),
        ];
        for (n, recorded_at) in times.into_iter().enumerate() {
            let fields = Fields {
                aggregate_type: "member",
                aggregate_id: "fd9c94e2-5639-457d-8d3a-d3a2e52732b5",
                event_type: "StudySessionRecorded",
                event_version: "1",
                sequence: 7 + n as i64,
                recorded_at,
                metadata: r#"{"actor":"导入","request_id":"x"}"#,
                payload: r#"{"StudySessionRecorded":{"minutes":45}}"#,
            };
            let previous = vec![n as u8; 32];
            assert_eq!(
                link(&previous, &fields),
                by_definition(&previous, &fields),
                "{recorded_at:?}"
            );
        }
    }
}
