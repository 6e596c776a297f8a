//! `studyledger bench-import`: how fast a bulk import records sessions and completions of
//! existing members, against PostgreSQL's own COPY of the same event rows into `events` (the
//! hash-chain trigger on), in the same run.
//!
//! The ledger: `--members` members enrolled by an import of enrolment rows (not timed). Per
//! run: a CSV file of `--rows` new rows (a session and a completion per member and day, days
//! after the earlier runs'), imported from disk as `studyledger import` does; then the events
//! that import appended are copied out and COPYed back into `events` under new stream ids
//! (sequences from 1, so every row goes through the hash chain's trigger as the import's
//! did) — the baseline. Memory: the process's peak resident memory during the import.

use std::io::Write;
use std::time::Instant;

use futures::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use uuid::Uuid;

use studyledger_aggregates::course::{Course, CourseCommand, CourseRecord};
use studyledger_aggregates::organisation::{Organisation, OrganisationCommand, OrganisationRecord};
use studyledger_aggregates::values::{Category, Hours};

use crate::app::App;
use crate::bench::{fresh_app, in_scratch_database, median, memory_mib, reset_peak_memory};
use crate::config::BenchImportArgs;
use crate::jobs::import::rows::Format;
use crate::jobs::import::{self, Importer};
use crate::store::imports;
use crate::store::record::Metadata;
use crate::JobError;

pub async fn run(args: BenchImportArgs) -> Result<(), JobError> {
    in_scratch_database(&args.database_url, "studyledger_bench_import", |options| {
        measure(&args, options)
    })
    .await
}

struct Run {
    import: f64,
    copy: f64,
    /// The same COPY into a table like `events` without its triggers: what the hash chain
    /// costs.
    copy_unchained: f64,
    peak_mib: f64,
}

async fn measure(args: &BenchImportArgs, options: PgConnectOptions) -> Result<(), JobError> {
    let app = fresh_app(&options).await?;
    let members = ledger_of(&app, args.members).await?;
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        let measured = measure_run(&app, &options, &members, args.rows, run).await?;
        eprintln!(
            "run {run}: import {:.0} rows/s; COPY of its events {:.0} rows/s; ratio {:.2}; \
             COPY without the hash chain {:.0} rows/s; peak resident memory {:.0} MiB",
            measured.import,
            measured.copy,
            measured.import / measured.copy,
            measured.copy_unchained,
            measured.peak_mib
        );
        runs.push(measured);
    }
    let import = median(&mut runs.iter().map(|r| r.import).collect::<Vec<_>>());
    let copy = median(&mut runs.iter().map(|r| r.copy).collect::<Vec<_>>());
    let ratio = median(&mut runs.iter().map(|r| r.import / r.copy).collect::<Vec<_>>());
    let unchained = median(&mut runs.iter().map(|r| r.copy_unchained).collect::<Vec<_>>());
    let peak = runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max);
    println!(
        "import benchmark: {} members, {} rows per run, {} runs, medians",
        args.members,
        args.rows,
        runs.len()
    );
    println!("  import (sessions, completions): {import:>10.0} rows/s");
    println!("  COPY of the same event rows:    {copy:>10.0} rows/s");
    println!("  ratio of the runs:              {ratio:>10.2}");
    println!("  COPY without the hash chain:    {unchained:>10.0} rows/s (a table like events, no triggers)");
    println!("  peak resident memory:           {peak:>10.0} MiB (whole process)");
    Ok(())
}

fn importer() -> Importer {
    Importer {
        metadata: Metadata::system("bench-import"),
    }
}

/// An organisation, two courses and `members` members, enrolled by an import.
async fn ledger_of(app: &App, members: usize) -> Result<Vec<Uuid>, JobError> {
    let pool = app.ledger().pool();
    catalog(app).await?;
    let ids: Vec<Uuid> = (0..members).map(|_| Uuid::new_v4()).collect();
    let mut csv = String::from("kind,member_id,member_no,name,org_id,enrolled_on\n");
    for (n, id) in ids.iter().enumerate() {
        csv.push_str(&format!("enrolment,{id},B-{n},成员{n},bench,2015-01-01\n"));
    }
    let import_id = Uuid::new_v4();
    imports::start(pool, import_id, "csv", "bench").await?;
    let record = import::run(
        app.ledger(),
        &importer(),
        import_id,
        Format::Csv,
        Box::new(std::io::Cursor::new(csv.into_bytes())),
        |_| {},
    )
    .await?;
    if record.rows_recorded != members as i64 {
        return Err(format!("enrolling the members: {record:?}").into());
    }
    eprintln!("ledger: {members} members");
    Ok(ids)
}

/// Organisation `bench`, a required and an elective course needing 30 minutes of study.
async fn catalog(app: &App) -> Result<(), JobError> {
    let ledger = app.ledger();
    let metadata = Metadata::system("bench-import");
    let org = OrganisationRecord {
        org_id: "bench".parse()?,
        name: "基准".parse()?,
        parent_id: None,
    };
    ledger
        .execute::<Organisation, _>(
            "bench",
            OrganisationCommand::Register(org),
            &metadata,
            |_| (),
        )
        .await
        .map_err(|e| e.to_string())?;
    for (id, category) in [
        ("bench-required", Category::Required),
        ("bench-elective", Category::Elective),
    ] {
        let course = CourseRecord {
            course_id: id.parse()?,
            title: id.parse()?,
            category,
            credit_hours: Hours::whole(2),
            min_study_minutes: 30,
        };
        ledger
            .execute::<Course, _>(id, CourseCommand::Register(course), &metadata, |_| ())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One run: a fresh file imported, then the baseline COPY of the events it appended.
async fn measure_run(
    app: &App,
    options: &PgConnectOptions,
    members: &[Uuid],
    rows: usize,
    run: usize,
) -> Result<Run, JobError> {
    let pool = app.ledger().pool();
    let path = std::env::temp_dir().join(format!("studyledger-bench-import-{run}.csv"));
    let written = write_history(&path, members, rows, run)?;
    let before: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let import_id = Uuid::new_v4();
    imports::start(pool, import_id, "csv", "bench").await?;
    reset_peak_memory();
    let started = Instant::now();
    let file = std::fs::File::open(&path)?;
    let record = import::run(
        app.ledger(),
        &importer(),
        import_id,
        Format::Csv,
        Box::new(file),
        |_| {},
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_mib = memory_mib("VmHWM:");
    std::fs::remove_file(&path)?;
    if record.rows_recorded != written as i64 {
        return Err(format!("the import recorded other than it was given: {record:?}").into());
    }
    let copy = copy_baseline(options, before, run, "events").await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_unchained (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    sqlx::query("ALTER TABLE bench_unchained ALTER COLUMN hash DROP NOT NULL")
        .execute(pool)
        .await?;
    let copy_unchained = copy_baseline(options, before, run, "bench_unchained").await?;
    Ok(Run {
        import: written as f64 / seconds,
        copy,
        copy_unchained,
        peak_mib,
    })
}

/// Rows of sessions and completions of existing members: member by member within a day, day
/// after day (each run's days after the last run's), so every batch touches many members.
fn write_history(
    path: &std::path::Path,
    members: &[Uuid],
    rows: usize,
    run: usize,
) -> Result<usize, JobError> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "kind,member_id,session_id,completion_id,course_id,started_at,ended_at,completed_at"
    )?;
    let first_day = chrono::NaiveDate::from_ymd_opt(2016, 1, 1).ok_or("a date")?;
    let days_per_run = rows.div_ceil(2 * members.len().max(1)) as i64;
    let mut written = 0;
    'days: for day in 0..days_per_run {
        let date = first_day + chrono::Duration::days((run as i64 - 1) * days_per_run + day);
        for member in members {
            if written + 2 > rows {
                break 'days;
            }
            let course = if day % 2 == 0 {
                "bench-required"
            } else {
                "bench-elective"
            };
            writeln!(
                out,
                "session,{member},{},,{course},{date}T01:00:00Z,{date}T01:40:00Z,\n\
                 completion,{member},,{},{course},,,{date}T01:41:00Z",
                Uuid::new_v4(),
                Uuid::new_v4()
            )?;
            written += 2;
        }
    }
    out.flush()?;
    Ok(written)
}

/// The events appended after `position`, copied out and COPYed back into `table` under new
/// stream ids with sequences from 1: rows per second of the COPY in.
async fn copy_baseline(
    options: &PgConnectOptions,
    position: i64,
    run: usize,
    table: &str,
) -> Result<f64, JobError> {
    let mut connection = sqlx::PgConnection::connect_with(options).await?;
    let out = format!(
        "COPY (SELECT aggregate_type, 'copy-{run}-' || aggregate_id,
                      row_number() OVER (PARTITION BY aggregate_id ORDER BY sequence),
                      event_type, event_version, payload, metadata, recorded_at
                 FROM events WHERE position > {position}
                ORDER BY aggregate_id, sequence) TO STDOUT"
    );
    let chunks: Vec<_> = connection.copy_out_raw(&out).await?.try_collect().await?;
    let rows: usize = chunks
        .iter()
        .map(|c| c.iter().filter(|b| **b == b'\n').count())
        .sum();
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw(&format!(
            "COPY {table} (aggregate_type, aggregate_id, sequence, event_type,
                               event_version, payload, metadata, recorded_at) FROM STDIN"
        ))
        .await?;
    for chunk in chunks {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(rows as f64 / seconds)
}
