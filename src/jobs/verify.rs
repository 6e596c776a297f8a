//! `studyledger verify [--member ID] [--save-heads FILE] [--check-heads FILE]`: recomputes
//! every stream's hash chain (`crate::store::chain`) and names each broken link; keeps each
//! stream's head in a file outside the database, or checks such a file, so that events removed
//! from a stream's end, or a stream rebuilt with all its hashes, are found too. The same check
//! runs for auditors over HTTP ([`start`]).

use crate::config::VerifyArgs;
use crate::jobs::progress::Progress;
use crate::store::chain::{self, Head};
use crate::store::database;
use crate::store::verifications::{self, Break};
use crate::JobError;

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

pub async fn run(args: VerifyArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database.database_url, 2).await?;
    // Another version's chains follow another definition: every link would look broken.
    if !database::migrations_applied(&pool).await? {
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
    let broken = check_chains(&pool, member.as_deref(), args.save_heads.as_deref()).await?;
    let moved = match saved {
        Some(saved) => check_saved_heads(&pool, saved, member.as_deref()).await?,
        None => 0,
    };
    if broken == 0 && moved == 0 {
        Ok(())
    } else {
        Err(format!("{broken} broken links, {moved} moved heads").into())
    }
}

/// Walks every chain (or one member's), printing each broken link, and writes the heads to
/// `save_heads` when asked; answers how many links are broken.
async fn check_chains(
    pool: &sqlx::PgPool,
    member: Option<&str>,
    save_heads: Option<&std::path::Path>,
) -> Result<usize, JobError> {
    let total = chain::count_events(pool, member).await?;
    let mut heads_file = save_heads.map(HeadsFile::create).transpose()?;
    let progress = Progress::new("verify", u64::try_from(total).unwrap_or(0));
    let found = chain::verify_with_heads(
        pool,
        member,
        |n| progress.advance(n),
        |head| heads_file.as_mut().map_or(Ok(()), |file| file.write(head)),
    )
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
    Ok(found.broken.len())
}

/// Checks heads saved earlier, printing each one that moved; answers how many did.
async fn check_saved_heads(
    pool: &sqlx::PgPool,
    saved: Vec<u8>,
    member: Option<&str>,
) -> Result<usize, JobError> {
    let (count, moved) = chain::check_heads(pool, saved, member).await?;
    for head in &moved {
        let what = if head.found {
            "has another hash"
        } else {
            "is gone"
        };
        println!(
            "moved head: {} {} sequence {} {what}",
            head.aggregate_type, head.aggregate_id, head.sequence
        );
    }
    println!("checked {count} saved heads: {} moved", moved.len());
    Ok(moved.len())
}

/// A verification asked for over HTTP: recorded in `verifications` as it goes, so any instance
/// can answer how it went. Answers its id at once; the work runs in the background.
pub async fn start(
    pool: sqlx::PgPool,
    member: Option<uuid::Uuid>,
    requested_by: &str,
) -> Result<uuid::Uuid, sqlx::Error> {
    let verification_id = uuid::Uuid::new_v4();
    let member_id = member.map(|m| m.to_string());
    let total = chain::count_events(&pool, member_id.as_deref()).await?;
    verifications::record_start(&pool, verification_id, member, total, requested_by).await?;
    tokio::spawn(async move {
        let checked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let reporter = tokio::spawn(report_progress(
            pool.clone(),
            verification_id,
            checked.clone(),
        ));
        let found = chain::verify_with_heads(
            &pool,
            member_id.as_deref(),
            |n| {
                checked.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
            |_| Ok(()),
        )
        .await;
        reporter.abort();
        let outcome = match &found {
            Ok(found) => {
                let broken: Vec<Break> = found
                    .broken
                    .iter()
                    .map(|b| Break {
                        aggregate_type: b.aggregate_type.clone(),
                        aggregate_id: b.aggregate_id.clone(),
                        sequence: b.sequence,
                    })
                    .collect();
                let checked = i64::try_from(found.checked).unwrap_or(i64::MAX);
                verifications::record_end(&pool, verification_id, Ok((checked, &broken))).await
            }
            Err(error) => {
                let error = error.to_string();
                verifications::record_end(&pool, verification_id, Err(&error)).await
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%verification_id, %error, "cannot record the verification's end");
        }
    });
    Ok(verification_id)
}

/// Writes the events checked so far into the verification's row twice a second.
async fn report_progress(
    pool: sqlx::PgPool,
    verification_id: uuid::Uuid,
    checked: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let done = checked.load(std::sync::atomic::Ordering::Relaxed);
        let done = i64::try_from(done).unwrap_or(i64::MAX);
        let _ = verifications::record_progress(&pool, verification_id, done).await;
    }
}
