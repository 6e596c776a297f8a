//! Command-line interface and configuration: every setting has a flag and an environment
//! variable (DESIGN §6), parsed once into typed values.

use std::net::SocketAddr;

use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};

/// The xAPI accounts' `homePage` when none is configured.
pub const XAPI_HOMEPAGE: &str = "https://studyledger.invalid/";

#[derive(Debug, Parser)]
#[command(
    name = "studyledger",
    version,
    about = "An event-sourced study-credit ledger"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, publish the initial rules if needed, and serve HTTP.
    Serve(ServeArgs),
    /// Apply the SQL migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the `pg_resetwal` arguments (`-e EPOCH -x XID`) the PostgreSQL cluster needs before
    /// it may append to the log restored into it (nothing when it needs none).
    XidFloor(DatabaseArgs),
    /// Rebuild every view under the current rules and swap it in; with --dry-run, only list
    /// the (member, evaluation) pairs whose recorded eligibility differs under them.
    Replay(ReplayArgs),
    /// Recompute every stream's hash chain and name each broken link (exit status 1 if any).
    Verify(VerifyArgs),
    /// Load the demo data set (one city, 500 members, twelve quarters) through the command path.
    DemoData(DemoArgs),
    /// Import a CSV (with a header) or NDJSON file of enrolments, study sessions, course
    /// completions and xAPI statements, every row through the ledger's rules; importing the
    /// same file again records nothing new.
    Import(ImportArgs),
    /// Issue, list or revoke bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Measure study-session commands per second over HTTP against PostgreSQL's own insert rate.
    BenchWrite(BenchArgs),
    /// Measure the projector's catch-up rate on a large store against a COPY scan of it.
    BenchProjector(BenchProjectorArgs),
    /// Measure a bulk import of sessions and completions of existing members against a COPY
    /// of the same event rows into the events table.
    BenchImport(BenchImportArgs),
    /// Measure a full replay of a large store against a COPY scan of it in member order.
    BenchReplay(BenchReplayArgs),
    /// Measure reads (p50/p99 under 16 readers and a background of commands) on a ledger of
    /// 10,000 members and one of 1,000,000, and pass when the large one is no more than 1.5
    /// times slower at the 99th percentile.
    BenchReads(BenchReadsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 32)]
    pub pool_size: u32,
    /// A standby for reads of the views (`serve` only; libpq's multi-host form with
    /// `target_session_attrs=prefer-standby` or `standby` is the usual value). A read waits
    /// there until the standby has what it must see, or goes to the primary after a short bound.
    #[arg(long, env = "DATABASE_READ_URL")]
    pub read_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LedgerArgs {
    /// Time zone whose local dates decide quarters and enrolment days.
    #[arg(long, env = "LEDGER_TIMEZONE", default_value = "Asia/Shanghai")]
    pub timezone: Tz,
    /// How many member aggregates the write path keeps in memory.
    #[arg(long, env = "LEDGER_MEMBER_CACHE", default_value_t = 20_000)]
    pub member_cache: usize,
    /// Connections reserved for the command path, besides the pool for reads. Few is better:
    /// appends that arrive while all are busy share the next commit (see `group_commit`).
    #[arg(long, env = "LEDGER_WRITE_CONNECTIONS", default_value_t = 4)]
    pub write_connections: usize,
    /// The `homePage` of the xAPI accounts that name members (`actor.account.name` is the
    /// member id): statements of other actors are stored and credit nothing.
    #[arg(long, env = "LEDGER_XAPI_HOMEPAGE", default_value = XAPI_HOMEPAGE)]
    pub xapi_homepage: String,
}

impl LedgerArgs {
    /// The defaults, for commands that only read and write a little.
    pub fn quiet() -> LedgerArgs {
        LedgerArgs {
            timezone: chrono_tz::Asia::Shanghai,
            member_cache: 1_000,
            write_connections: 1,
            xapi_homepage: XAPI_HOMEPAGE.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,
    /// Bearer token of the bootstrap administrator (32 characters or more); requests carrying
    /// it are recorded as the token `bootstrap`.
    #[arg(long, env = "LEDGER_ADMIN_TOKEN", hide_env_values = true, value_parser = admin_token)]
    pub admin_token: Option<String>,
    /// Let requests without a token in, as an administrator: for a developer's machine only.
    #[arg(long)]
    pub insecure_open: bool,
    /// Load the demo data set first when the ledger holds no members yet.
    #[arg(long)]
    pub demo_data_if_empty: bool,
    /// Issue an administrator's and a demo member's token (valid for 7 days) and write them to
    /// this file as shell variables (ADMIN_TOKEN, MEMBER_TOKEN, MEMBER_ID, …) for the README's
    /// examples.
    #[arg(long, value_name = "FILE")]
    pub demo_tokens: Option<std::path::PathBuf>,
}

/// How the service meets its clients: bounds that keep a slow, idle or overwhelming client
/// from holding the service, and how long a stop waits for requests in flight.
#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// Requests handled at once; beyond them a request is answered 503 with `Retry-After` at
    /// once. A request counts until its answer is sent in full. `/healthz` and `/readyz` are
    /// never refused.
    #[arg(long, env = "LEDGER_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Seconds a client has to send a request's headers: from the connection's opening for
    /// its first request, from the request's first byte for later ones.
    #[arg(long, env = "LEDGER_HEADER_TIMEOUT", value_name = "SECONDS", default_value = "10",
          value_parser = seconds)]
    pub header_timeout: std::time::Duration,
    /// Seconds a kept-alive connection may sit idle (no request in progress, no byte moving)
    /// before it is closed.
    #[arg(long, env = "LEDGER_IDLE_TIMEOUT", value_name = "SECONDS", default_value = "60",
          value_parser = seconds)]
    pub idle_timeout: std::time::Duration,
    /// Seconds a stop (SIGTERM, Ctrl-C) gives the requests in flight to finish; the ones still
    /// running then are given up. The projector then applies what was committed, for what is
    /// left of this time (a second at least), and stops at a committed checkpoint.
    #[arg(long, env = "LEDGER_SHUTDOWN_TIMEOUT", value_name = "SECONDS", default_value = "10",
          value_parser = seconds)]
    pub shutdown_timeout: std::time::Duration,
}

/// A number of seconds, fractions allowed: more than 0, at most a day.
fn seconds(raw: &str) -> Result<std::time::Duration, String> {
    let value: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of seconds"))?;
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err("give more than 0 and at most 86400 seconds".to_owned())
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Issue a token; prints its id and details, then its secret alone on the last line (the
    /// secret is shown this once: only its hash is stored).
    Issue(IssueArgs),
    /// Every token, newest first (never a secret).
    List(DatabaseArgs),
    /// Revoke a token by id, or by its secret (`--token`); effective within a second.
    Revoke(RevokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// member, ingest, org_admin, auditor or admin.
    #[arg(long)]
    pub role: String,
    /// The organisation whose subtree an `org_admin` reaches.
    #[arg(long)]
    pub org: Option<String>,
    /// The member a `member` token is.
    #[arg(long)]
    pub member: Option<uuid::Uuid>,
    /// Who holds it (shown in event metadata and the read log).
    #[arg(long)]
    pub name: Option<String>,
    /// Days until it expires (never, without it).
    #[arg(long, value_name = "DAYS")]
    pub expires: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The token's id.
    pub id: Option<uuid::Uuid>,
    /// The token's secret, when its id is not at hand.
    #[arg(long, value_name = "SECRET", conflicts_with = "id")]
    pub token: Option<String>,
}

/// `LEDGER_ADMIN_TOKEN` must be hard to guess: 32 characters at least.
fn admin_token(raw: &str) -> Result<String, String> {
    if raw.chars().count() >= 32 {
        Ok(raw.to_owned())
    } else {
        Err("the administrator's token must have 32 characters or more".to_owned())
    }
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Number of members to enrol.
    #[arg(long, default_value_t = 500)]
    pub members: usize,
    /// Commands in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// What becomes of the members who stop studying (one in twenty-five): `leave` records
    /// their departure (rule 12), `stay` records nothing (non-compliant from then on), `none`
    /// has nobody stop.
    #[arg(long, default_value = "leave", value_parser = ["leave", "stay", "none"])]
    pub leavers: String,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// PostgreSQL server URL; each run creates and drops its own database on that server.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Client counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub clients: Vec<usize>,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Also measure, in the same runs, commits that do not wait for a synchronous standby
    /// (`synchronous_commit = local`, what a lone primary does), through a second instance of
    /// the service, and report the ratio of each rate to its local-commit rate. Meant for a
    /// primary with a synchronous standby.
    #[arg(long)]
    pub local_commit: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchProjectorArgs {
    /// PostgreSQL server URL; the run creates and drops its own database on that server.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// About how many events to fill the store with.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: usize,
    /// Runs (scan + catch-up each); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// The format of an import file.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    Csv,
    Ndjson,
}

impl ImportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Csv => "csv",
            ImportFormat::Ndjson => "ndjson",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// The file: `.csv` (a header line naming the columns) or `.ndjson` / `.jsonl`.
    pub file: std::path::PathBuf,
    /// The file's format, when its name does not say.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Write the refused rows (line, reason) to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub refused: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// List who changes eligibility under the current rules; change no view.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BenchReplayArgs {
    /// PostgreSQL server URL (a superuser: the baseline COPY writes to the server's /dev/null);
    /// the run creates and drops its own database on that server.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// About how many member events to fill the store with.
    #[arg(long, default_value_t = 5_000_000)]
    pub events: usize,
    /// Runs (scan + replay each); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchImportArgs {
    /// PostgreSQL server URL (a superuser's); the run creates and drops its own database on
    /// that server.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Members the rows are about, enrolled first (not timed).
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// Rows (sessions and completions) per run.
    #[arg(long, default_value_t = 500_000)]
    pub rows: usize,
    /// Runs (import + baseline COPY each); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Clone, Args)]
pub struct BenchReadsArgs {
    /// PostgreSQL server URL (a superuser's: the large ledger starts as a copy of the small
    /// one's database); the run creates its two databases on that server and drops them
    /// afterwards.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Members of the small ledger, loaded through the command path.
    #[arg(long, default_value_t = 10_000)]
    pub small: usize,
    /// Members of the large ledger: the small one with its member streams copied under new
    /// ids (a multiple of --small).
    #[arg(long, default_value_t = 1_000_000)]
    pub large: usize,
    /// Concurrent readers of the measured route.
    #[arg(long, default_value_t = 16)]
    pub readers: usize,
    /// Seconds each route is measured at each size, after a warm-up of --warm-up seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of reads before each measurement that are not counted.
    #[arg(long, default_value_t = 2.0)]
    pub warm_up: f64,
    /// Study-session commands per second sent in the background while reads are measured.
    #[arg(long, default_value_t = 50)]
    pub write_rate: u32,
    /// Keep the large ledger's database afterwards (its URL is printed), for later timings.
    #[arg(long)]
    pub keep_database: bool,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only this member's stream.
    #[arg(long)]
    pub member: Option<uuid::Uuid>,
    /// Also write the head (last sequence and hash) of every stream checked to this CSV file, for
    /// an auditor to keep outside the database.
    #[arg(long, value_name = "FILE")]
    pub save_heads: Option<std::path::PathBuf>,
    /// Also check heads saved earlier: each must still be in its stream with the same hash, so
    /// events removed from the end of a stream, or a stream rechained, are found too.
    #[arg(long, value_name = "FILE")]
    pub check_heads: Option<std::path::PathBuf>,
}
