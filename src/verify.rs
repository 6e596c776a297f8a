//! `studyledger verify [--member ID]`: recomputes every stream's hash chain from the stored
//! events and names each broken link.
//!
//! The chain is computed by the database as events are inserted (migrations/0004_hash_chain.sql,
//! with the content of 0006_hash_chain_identity.sql); this recomputes it independently, from the
//! same definition. Each link is checked on its own (the stored hash of the event before, and
//! this event's content), so an event changed behind the service's back is named itself when
//! only its content changed; someone who also recomputes its stored hash moves the break to the
//! next event, and only recomputing every later hash of the stream hides it (the chain has no
//! key: it proves that the record was not edited by hand, not that it was not rebuilt).

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::VerifyArgs;
use crate::progress::Progress;
use crate::{db, JobError};

/// What one event's link covers: its stream, type, version, sequence, recording time,
/// metadata and payload.
pub struct Content<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub metadata: &'a str,
    pub payload: &'a str,
}

/// One event's link: `sha256(previous || type \n id \n event type \n version \n sequence \n
/// recorded_at \n len(metadata) \n metadata payload)`.
pub fn link(previous: &[u8], content: &Content<'_>) -> Vec<u8> {
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

/// A link that does not hold: the stream and the sequence of the event it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

/// Checks every chain (or one member's); answers the events checked and the broken links.
pub async fn verify(
    pool: &sqlx::PgPool,
    member: Option<&str>,
    progress: Option<&Progress>,
) -> Result<(u64, Vec<BrokenLink>), sqlx::Error> {
    let mut connection = pool.acquire().await?;
    let mut rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, recorded_at,
                payload::text AS payload, hash, metadata::text AS metadata
           FROM events
          WHERE $1::text IS NULL OR (aggregate_type = 'member' AND aggregate_id = $1)
          ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(member)
    .fetch(&mut *connection);
    let mut checked = 0_u64;
    let mut broken = Vec::new();
    // The stream being checked, the sequence and stored hash of its last event.
    let mut previous: Option<(String, String, i64, Vec<u8>)> = None;
    while let Some(row) = rows.try_next().await? {
        let aggregate_type: String = row.try_get(0)?;
        let aggregate_id: String = row.try_get(1)?;
        let sequence: i64 = row.try_get(2)?;
        let stored: Vec<u8> = row.try_get(7)?;
        let before: &[u8] = match &previous {
            Some((t, id, s, hash))
                if *t == aggregate_type && *id == aggregate_id && *s == sequence - 1 =>
            {
                hash
            }
            // A stream starts at sequence 1 with nothing before it; anything else is a gap.
            _ if sequence == 1 => &[],
            _ => &[0xff],
        };
        let expected = link(
            before,
            &Content {
                aggregate_type: &aggregate_type,
                aggregate_id: &aggregate_id,
                event_type: row.try_get(3)?,
                event_version: row.try_get(4)?,
                sequence,
                recorded_at: row.try_get(5)?,
                metadata: row.try_get(8)?,
                payload: row.try_get(6)?,
            },
        );
        if expected != stored {
            broken.push(BrokenLink {
                aggregate_type: aggregate_type.clone(),
                aggregate_id: aggregate_id.clone(),
                sequence,
            });
        }
        previous = Some((aggregate_type, aggregate_id, sequence, stored));
        checked += 1;
        if let Some(progress) = progress {
            progress.advance(1);
        }
    }
    Ok((checked, broken))
}

pub async fn run(args: VerifyArgs) -> Result<(), JobError> {
    let pool = db::connect(&args.database.database_url, 2).await?;
    let member = args.member.as_ref().map(uuid::Uuid::to_string);
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE $1::text IS NULL OR (aggregate_type = 'member' AND aggregate_id = $1)",
    )
    .bind(member.as_deref())
    .fetch_one(&pool)
    .await?;
    let progress = Progress::new("verify", u64::try_from(total).unwrap_or(0));
    let (checked, broken) = verify(&pool, member.as_deref(), Some(&progress)).await?;
    progress.finish();
    for link in &broken {
        println!(
            "broken link: {} {} sequence {}",
            link.aggregate_type, link.aggregate_id, link.sequence
        );
    }
    println!("verified {checked} events: {} broken links", broken.len());
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("{} broken links", broken.len()).into())
    }
}
