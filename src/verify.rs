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

/// Checks every chain (or one member's); answers the events checked and the broken links.
pub async fn verify(
    pool: &sqlx::PgPool,
    member: Option<&str>,
    progress: Option<&Progress>,
) -> Result<(u64, Vec<BrokenLink>), sqlx::Error> {
    let found = verify_with_heads(pool, member, progress, |_| Ok(())).await?;
    Ok((found.checked, found.broken))
}

/// Checks every chain (or one member's), handing each stream's head to `head` as it ends.
pub async fn verify_with_heads(
    pool: &sqlx::PgPool,
    member: Option<&str>,
    progress: Option<&Progress>,
    mut head: impl FnMut(&Head) -> std::io::Result<()>,
) -> Result<Verification, sqlx::Error> {
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
        if let Some((t, id, s, hash)) = previous.take() {
            if t != aggregate_type || id != aggregate_id {
                head(&Head {
                    aggregate_type: t,
                    aggregate_id: id,
                    sequence: s,
                    hash,
                })
                .map_err(sqlx::Error::Io)?;
            }
        }
        previous = Some((aggregate_type, aggregate_id, sequence, stored));
        checked += 1;
        if let Some(progress) = progress {
            progress.advance(1);
        }
    }
    if let Some((aggregate_type, aggregate_id, sequence, hash)) = previous {
        head(&Head {
            aggregate_type,
            aggregate_id,
            sequence,
            hash,
        })
        .map_err(sqlx::Error::Io)?;
    }
    Ok(Verification { checked, broken })
}

const HEADS_HEADER: [&str; 4] = ["aggregate_type", "aggregate_id", "sequence", "hash"];

/// A heads file being written: CSV, to `<file>.partial` until it is complete, so a verification
/// cut short never leaves a file that looks whole.
struct HeadsFile {
    path: std::path::PathBuf,
    partial: std::path::PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl HeadsFile {
    fn create(path: &std::path::Path) -> Result<HeadsFile, JobError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let mut writer = csv::Writer::from_path(&partial)
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        writer.write_record(HEADS_HEADER)?;
        Ok(HeadsFile {
            path: path.to_owned(),
            partial,
            writer,
        })
    }

    fn write(&mut self, head: &Head) -> std::io::Result<()> {
        self.writer
            .write_record([
                head.aggregate_type.as_str(),
                head.aggregate_id.as_str(),
                &head.sequence.to_string(),
                &hex::encode(&head.hash),
            ])
            .map_err(std::io::Error::other)
    }

    fn finish(mut self) -> Result<(), JobError> {
        self.writer.flush()?;
        drop(self.writer);
        std::fs::rename(&self.partial, &self.path)?;
        Ok(())
    }
}

/// A saved head that no longer holds: its event is gone, or carries another hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedHead {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub found: bool,
}

/// Checks heads saved earlier (a file written by `--save-heads`) against the stored events, in
/// the database: the file goes in by COPY and one join finds every head that moved. With
/// `member`, only that member's head is checked.
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
    let chosen = "$1::text IS NULL OR (h.aggregate_type = 'member' AND h.aggregate_id = $1)";
    let saved_count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM saved_heads h WHERE {chosen}"
    ))
    .bind(member)
    .fetch_one(&mut *tx)
    .await?;
    let moved = sqlx::query_as::<_, (String, String, i64, bool)>(&format!(
        "SELECT h.aggregate_type, h.aggregate_id, h.sequence, e.hash IS NOT NULL
           FROM saved_heads h
           LEFT JOIN events e USING (aggregate_type, aggregate_id, sequence)
          WHERE ({chosen}) AND (e.hash IS NULL OR encode(e.hash, 'hex') <> lower(h.hash))
          ORDER BY h.aggregate_type, h.aggregate_id"
    ))
    .bind(member)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        u64::try_from(saved_count).unwrap_or(0),
        moved
            .into_iter()
            .map(
                |(aggregate_type, aggregate_id, sequence, found)| MovedHead {
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    found,
                },
            )
            .collect(),
    ))
}

pub async fn run(args: VerifyArgs) -> Result<(), JobError> {
    let pool = db::connect(&args.database.database_url, 2).await?;
    // Another version's chains follow another definition: every link would look broken.
    if !db::migrations_applied(&pool).await? {
        return Err(
            "the database's migrations are not this version's: run `studyledger migrate` \
                    (or verify with the binary that wrote it)"
                .into(),
        );
    }
    let member = args.member.as_ref().map(uuid::Uuid::to_string);
    // Read before the chains are walked, so a missing file fails fast.
    let saved = args
        .check_heads
        .as_ref()
        .map(|path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())))
        .transpose()?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE $1::text IS NULL OR (aggregate_type = 'member' AND aggregate_id = $1)",
    )
    .bind(member.as_deref())
    .fetch_one(&pool)
    .await?;
    let mut heads_file = args
        .save_heads
        .as_deref()
        .map(HeadsFile::create)
        .transpose()?;
    let progress = Progress::new("verify", u64::try_from(total).unwrap_or(0));
    let found = verify_with_heads(&pool, member.as_deref(), Some(&progress), |head| {
        heads_file.as_mut().map_or(Ok(()), |file| file.write(head))
    })
    .await?;
    progress.finish();
    if let Some(file) = heads_file {
        file.finish()?;
    }
    for link in &found.broken {
        println!(
            "broken link: {} {} sequence {}",
            link.aggregate_type, link.aggregate_id, link.sequence
        );
    }
    println!(
        "verified {} events: {} broken links",
        found.checked,
        found.broken.len()
    );
    let mut moved_heads = 0;
    if let Some(saved) = saved {
        let (count, moved) = check_heads(&pool, saved, member.as_deref()).await?;
        for head in &moved {
            println!(
                "moved head: {} {} sequence {} {}",
                head.aggregate_type,
                head.aggregate_id,
                head.sequence,
                if head.found {
                    "has another hash"
                } else {
                    "is gone"
                }
            );
        }
        println!("checked {count} saved heads: {} moved", moved.len());
        moved_heads = moved.len();
    }
    if found.broken.is_empty() && moved_heads == 0 {
        Ok(())
    } else {
        Err(format!(
            "{} broken links, {moved_heads} moved heads",
            found.broken.len()
        )
        .into())
    }
}
