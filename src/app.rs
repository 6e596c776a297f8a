//! The application, built once the same way for `serve`, the command-line jobs and the tests:
//! [`App::build`] connects, migrates, and publishes ruleset 1 into an empty ledger;
//! [`App::router`] is the HTTP service and [`App::start_projector`] its read side. The
//! command-line commands that need the ledger are here too, each a few lines over `App`.
//!
//! [`serve`] stops in order on SIGTERM or Ctrl-C: no new connection is accepted, requests in
//! flight finish (for `LEDGER_SHUTDOWN_TIMEOUT` at most, then they are given up; a second
//! signal gives up at once), the projector applies what was committed and stops at a
//! committed checkpoint, and the process exits 0.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use studyledger_aggregates::member::Member;
use studyledger_aggregates::organisation::Organisation;
use studyledger_aggregates::values::OrgId;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{
    DatabaseArgs, DemoArgs, ImportArgs, IssueArgs, LedgerArgs, ReplayArgs, RevokeArgs, ServeArgs,
    TokenCommand,
};
use crate::http::server::{self, Timeouts};
use crate::http::{in_flight, Access};
use crate::jobs::demo::{self, DemoPlan, Leavers};
use crate::jobs::import::rows::Format;
use crate::jobs::import::{self, Importer};
use crate::jobs::progress::Progress;
use crate::jobs::projector::Projector;
use crate::jobs::replay;
use crate::ledger::{Ledger, LedgerSettings};
use crate::store::imports;
use crate::store::record::Metadata;
use crate::store::tokens::{self, NewToken, Role};
use crate::store::{commit_order, database, streams};
use crate::JobError;

/// The ledger, ready: migrated, with ruleset 1 published.
pub struct App {
    ledger: Arc<Ledger>,
    member_cache: usize,
}

impl App {
    pub async fn build(database: &DatabaseArgs, ledger: &LedgerArgs) -> Result<App, JobError> {
        App::build_reading_from(database, ledger, None).await
    }

    /// [`App::build`], with the views read from `read_pool` when it is given (`serve` only).
    async fn build_reading_from(
        database: &DatabaseArgs,
        ledger: &LedgerArgs,
        read_pool: Option<PgPool>,
    ) -> Result<App, JobError> {
        let pool = database::connect(&database.database_url, database.pool_size).await?;
        database::migrate(&pool).await?;
        database::ensure_transaction_ids_ahead(&pool).await?;
        let settings = LedgerSettings {
            member_cache: ledger.member_cache,
            write_connections: ledger.write_connections,
            xapi_homepage: ledger.xapi_homepage.clone(),
            read_pool,
        };
        let built = Ledger::new(pool, ledger.timezone, &settings);
        built
            .publish_initial_rules()
            .await
            .map_err(|e| format!("publishing ruleset 1: {e}"))?;
        Ok(App {
            ledger: built,
            member_cache: ledger.member_cache,
        })
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Starts this instance's projector: it waits for the database's projector lock, then keeps
    /// the views (one projector per database works at a time). Dropping the answer leaves it
    /// running; [`ProjectorTask::stop`] stops it.
    pub fn start_projector(&self) -> ProjectorTask {
        let projector = Projector::new(Arc::clone(&self.ledger), self.member_cache);
        ProjectorTask {
            task: tokio::spawn(projector.run()),
            ledger: Arc::clone(&self.ledger),
            member_cache: self.member_cache,
        }
    }

    /// Issues a token (checking that its organisation or member exists); answers its id and
    /// secret.
    pub async fn issue_token(&self, token: &NewToken) -> Result<(uuid::Uuid, String), JobError> {
        let ledger = &self.ledger;
        match (token.role, &token.org_id, &token.member_id) {
            (Role::OrgAdmin, Some(org), None) => {
                let org: OrgId = org.parse().map_err(|e| format!("--org: {e}"))?;
                let organisation = ledger.read_immutable::<Organisation>(org.as_str()).await?;
                if organisation.record().is_none() {
                    return Err(format!("organisation {org} is not registered").into());
                }
            }
            (Role::Member, None, Some(member)) => {
                let (member_state, _) = ledger.read::<Member>(&member.to_string()).await?;
                if member_state.enrolment().is_none() {
                    return Err(format!("member {member} is not enrolled").into());
                }
            }
            (Role::OrgAdmin, _, _) => return Err("an org_admin token needs --org".into()),
            (Role::Member, _, _) => return Err("a member token needs --member".into()),
            (_, None, None) => {}
            (_, _, _) => return Err("only org_admin takes --org, only member --member".into()),
        }
        Ok(tokens::issue(ledger.pool(), token).await?)
    }

    /// The HTTP service over this ledger.
    pub fn router(&self, access: &Access) -> axum::Router {
        crate::http::router(Arc::clone(&self.ledger), access)
    }
}

/// The projector of a running service.
pub struct ProjectorTask {
    task: JoinHandle<()>,
    ledger: Arc<Ledger>,
    member_cache: usize,
}

/// The least time a stop gives the projector to apply what was committed.
const CATCH_UP_AT_LEAST: Duration = Duration::from_secs(1);

impl ProjectorTask {
    /// Stops the projector at a committed checkpoint, having applied what was committed before
    /// the call if `deadline` (or [`CATCH_UP_AT_LEAST`]) allows. Its loop ends at its next
    /// await: a batch it was applying is rolled back with its transaction, checkpoint
    /// included, since views and checkpoint commit together; then batches are applied, each
    /// committed with its checkpoint, until the views hold everything committed before.
    pub async fn stop(self, deadline: Instant) {
        self.task.abort();
        // The loop never ends by itself; aborted is the only outcome.
        let _ = self.task.await;
        let projector = Projector::new(Arc::clone(&self.ledger), self.member_cache);
        let deadline = deadline.max(Instant::now() + CATCH_UP_AT_LEAST);
        let caught_up = catch_up(&projector, self.ledger.pool());
        match tokio::time::timeout_at(deadline.into(), caught_up).await {
            Ok(Ok(applied)) => tracing::info!(applied, "projector caught up and stopped"),
            Ok(Err(error)) => tracing::warn!(%error, "projector stopped before catching up"),
            Err(_) => tracing::warn!("projector stopped at the deadline, before catching up"),
        }
    }
}

/// Applies batches until the views hold every event committed before the call.
async fn catch_up(projector: &Projector, pool: &sqlx::PgPool) -> Result<usize, JobError> {
    let horizon = commit_order::horizon(pool).await?;
    let mut applied = 0;
    while !commit_order::caught_up_to(pool, horizon).await? {
        let batch = projector.step().await?;
        if batch == 0 {
            // An older transaction still holds the projector back: wait for it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        applied += batch;
    }
    Ok(applied)
}

/// `studyledger serve`: migrate, publish ruleset 1 into an empty ledger, (load the demo data),
/// start the projector and serve HTTP until Ctrl-C or SIGTERM, then stop in order.
pub async fn serve(args: ServeArgs) -> Result<(), JobError> {
    // A standby out of reach at start does not stop the service: the primary answers every
    // read, as when a standby lags.
    let read_pool = match &args.database.read_url {
        Some(url) => match database::connect(url, args.database.pool_size).await {
            Ok(pool) => Some(pool),
            Err(error) => {
                tracing::warn!(%error, "DATABASE_READ_URL cannot be reached; the primary answers every read");
                None
            }
        },
        None => None,
    };
    let app = App::build_reading_from(&args.database, &args.ledger, read_pool).await?;
    let pool = app.ledger().pool();
    database::warn_without_synchronous_standby(pool).await;
    if args.demo_data_if_empty && !streams::has_members(pool).await? {
        tracing::info!("empty ledger: loading the demo data set");
        demo::load(app.ledger(), &DemoPlan::default()).await?;
    }
    let listener = TcpListener::bind(args.listen_addr).await?;
    let address = listener.local_addr()?;
    let member = streams::first_member(pool).await.ok().flatten();
    if let Some(file) = &args.demo_tokens {
        demo_tokens(&app, file, address, member.as_deref()).await?;
    }
    print_welcome(address, member.as_deref().unwrap_or("<member_id>"));
    serve_until_stopped(&app, listener, &args).await;
    Ok(())
}

/// Runs the projector and serves HTTP until SIGTERM or Ctrl-C, then stops in order: see the
/// module's documentation.
async fn serve_until_stopped(app: &App, listener: TcpListener, args: &ServeArgs) {
    let projector = app.start_projector();
    let access = Access {
        admin_token: args.admin_token.clone(),
        insecure_open: args.insecure_open,
    };
    let router = in_flight::bound(app.router(&access), args.transport.max_in_flight);
    let timeouts = Timeouts::of(&args.transport);
    let draining = server::serve(listener, router, timeouts, shutdown_signal()).await;
    let deadline = Instant::now() + args.transport.shutdown_timeout;
    tracing::info!("stopping: no new connections; finishing the requests in flight");
    let abandoned = draining.finish(deadline, shutdown_signal()).await;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "connections closed with requests still in flight"
        );
    }
    projector.stop(deadline).await;
    tracing::info!("stopped");
}

/// `studyledger migrate`.
pub async fn migrate(args: DatabaseArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database_url, 2).await?;
    database::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// `studyledger xid-floor`: the `pg_resetwal` arguments a cluster needs before it may append
/// to the log restored into it, or nothing when it needs none.
pub async fn xid_floor(args: DatabaseArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database_url, 2).await?;
    if let Some(floor) = database::transaction_ids_behind(&pool).await? {
        println!("-e {} -x {}", floor.epoch, floor.xid);
    }
    Ok(())
}

/// `studyledger demo-data [--members N]`.
pub async fn demo_data(args: DemoArgs) -> Result<(), JobError> {
    let app = App::build(&args.database, &args.ledger).await?;
    let plan = DemoPlan {
        members: args.members,
        concurrency: args.concurrency.max(1),
        leavers: match args.leavers.as_str() {
            "stay" => Leavers::Stay,
            "none" => Leavers::None,
            _ => Leavers::Leave,
        },
        ..DemoPlan::default()
    };
    demo::load(app.ledger(), &plan).await
}

/// `studyledger replay [--dry-run]`: runs a replay in this process and prints its summary.
pub async fn replay(args: ReplayArgs) -> Result<(), JobError> {
    let app = App::build(&args.database, &args.ledger).await?;
    let started = replay::start(app.ledger(), args.dry_run, "operator").await?;
    let replay_id = started.replay_id;
    let dry = if args.dry_run { " (dry run)" } else { "" };
    eprintln!("replay {replay_id}{dry}");
    let summary = replay::run_with_progress(Arc::clone(app.ledger()), started).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "{} change(s) of eligibility: GET /v1/replays/{replay_id} (JSON) or \
         /v1/replays/{replay_id}/changes.csv",
        summary.changes
    );
    Ok(())
}

/// `studyledger import FILE`: the file imported with a progress bar (by bytes read), its
/// record printed, and the refused rows written where `--refused` says.
pub async fn import(args: ImportArgs) -> Result<(), JobError> {
    let format = match args.format {
        Some(format) => format,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("ndjson" | "jsonl") => Format::Ndjson,
            _ => return Err("name the file's format with --format csv|ndjson".into()),
        },
    };
    let file =
        std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let size = file.metadata()?.len();
    let app = App::build(&args.database, &args.ledger).await?;
    let import_id = uuid::Uuid::new_v4();
    let metadata = Metadata {
        actor: "studyledger import".to_owned(),
        token_id: "command-line".to_owned(),
        role: Role::Admin.as_str().to_owned(),
        request_id: format!("import {import_id}"),
        recorded_at: chrono::Utc::now(),
    };
    imports::start(
        app.ledger().pool(),
        import_id,
        format.as_str(),
        &metadata.actor,
    )
    .await?;
    eprintln!("import {import_id} of {}", args.file.display());
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = CountingReader {
        inner: file,
        read: Arc::clone(&read),
    };
    let progress = Progress::new("import (bytes)", size);
    let shown = std::sync::atomic::AtomicU64::new(0);
    let record = import::run(
        app.ledger(),
        &Importer { metadata },
        import_id,
        format,
        Box::new(reader),
        |_| {
            let now = read.load(std::sync::atomic::Ordering::Relaxed);
            let before = shown.swap(now, std::sync::atomic::Ordering::Relaxed);
            progress.advance(now.saturating_sub(before));
        },
    )
    .await?;
    progress.finish();
    println!("{}", serde_json::to_string_pretty(&record)?);
    if let Some(path) = args.refused {
        write_refusals(app.ledger().pool(), import_id, &path).await?;
        eprintln!("refused rows: {}", path.display());
    }
    match record.error {
        Some(error) => Err(format!("the import stopped: {error}").into()),
        None => Ok(()),
    }
}

/// A reader that counts the bytes read through it (for a progress bar by bytes).
struct CountingReader {
    inner: std::fs::File,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl std::io::Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

async fn write_refusals(
    pool: &sqlx::PgPool,
    import_id: uuid::Uuid,
    path: &std::path::Path,
) -> Result<(), JobError> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record(["行号 line", "原因 reason"])?;
    let mut after = 0;
    loop {
        let page = imports::refusals(pool, import_id, after, 5_000).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = *last;
        for (line, reason) in &page {
            out.write_record([line.to_string().as_str(), reason.as_str()])?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `serve --demo-tokens FILE`: an administrator's and the first member's token, for a week,
/// printed and written to `FILE` as shell variables for the README's examples.
async fn demo_tokens(
    app: &App,
    file: &std::path::Path,
    address: std::net::SocketAddr,
    member: Option<&str>,
) -> Result<(), JobError> {
    let week = Some(chrono::Utc::now() + chrono::Duration::days(7));
    let issue = |role, member_id, name: &str| NewToken {
        role,
        org_id: None,
        member_id,
        name: name.to_owned(),
        expires_at: week,
        issued_by: "serve --demo-tokens".to_owned(),
    };
    let (_, admin) = app
        .issue_token(&issue(Role::Admin, None, "演示管理员 demo admin"))
        .await?;
    let mut lines = vec![
        format!("BASE=http://{address}"),
        format!("ADMIN_TOKEN={admin}"),
    ];
    if let Some(member) = member {
        let member_id: uuid::Uuid = member.parse()?;
        let (_, secret) = app
            .issue_token(&issue(
                Role::Member,
                Some(member_id),
                "演示成员 demo member",
            ))
            .await?;
        lines.push(format!("MEMBER_TOKEN={secret}"));
        lines.push(format!("MEMBER_ID={member}"));
    }
    let text: String = lines.iter().map(|l| format!("export {l}\n")).collect();
    std::fs::write(file, &text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    println!(
        "\nDemo tokens (valid for 7 days), also in {}:\n{text}",
        file.display()
    );
    Ok(())
}

/// `studyledger token issue|list|revoke`.
pub async fn token(command: TokenCommand) -> Result<(), JobError> {
    match command {
        TokenCommand::Issue(args) => issue(args).await,
        TokenCommand::List(database) => list_tokens(database).await,
        TokenCommand::Revoke(args) => revoke(args).await,
    }
}

async fn issue(args: IssueArgs) -> Result<(), JobError> {
    let role: Role = args.role.parse()?;
    let app = App::build(&args.database, &LedgerArgs::quiet()).await?;
    let token = NewToken {
        role,
        org_id: args.org,
        member_id: args.member,
        name: args.name.unwrap_or_else(|| format!("{role} token")),
        expires_at: args
            .expires
            .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days))),
        issued_by: "studyledger token issue".to_owned(),
    };
    let (token_id, secret) = app.issue_token(&token).await?;
    println!("token {token_id}");
    println!("role {role}");
    if let Some(org) = &token.org_id {
        println!("org {org}");
    }
    if let Some(member) = &token.member_id {
        println!("member {member}");
    }
    println!("name {}", token.name);
    match token.expires_at {
        Some(at) => println!("expires {}", at.to_rfc3339()),
        None => println!("expires never"),
    }
    println!("{secret}");
    Ok(())
}

async fn list_tokens(args: DatabaseArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database_url, 2).await?;
    database::migrate(&pool).await?;
    let now = chrono::Utc::now();
    for token in tokens::list(&pool).await? {
        let state = match (token.revoked_at, token.expires_at) {
            (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
            (None, Some(at)) if at <= now => format!("expired {}", at.to_rfc3339()),
            (None, Some(at)) => format!("valid until {}", at.to_rfc3339()),
            (None, None) => "valid".to_owned(),
        };
        let scope = token
            .org_id
            .clone()
            .or(token.member_id.map(|m| m.to_string()))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{}\t{}\t{scope}\t{}\t{state}",
            token.token_id, token.role, token.name
        );
    }
    Ok(())
}

async fn revoke(args: RevokeArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database.database_url, 2).await?;
    database::migrate(&pool).await?;
    let token_id = match (args.id, &args.token) {
        (Some(id), _) => id,
        (None, Some(secret)) => {
            tokens::by_secret(&pool, secret)
                .await?
                .ok_or("no token has this secret")?
                .token_id
        }
        (None, None) => return Err("give the token's id, or --token SECRET".into()),
    };
    if tokens::revoke(&pool, token_id, "studyledger token revoke").await? {
        println!("revoked {token_id}");
        Ok(())
    } else {
        Err(format!("token {token_id} is unknown or revoked already").into())
    }
}

fn print_welcome(address: std::net::SocketAddr, member: &str) {
    let base = format!("http://{address}");
    let auth = "-H \"Authorization: Bearer $ADMIN_TOKEN\"";
    println!(
        "\nstudyledger is serving at {base} (API browser: {base}/docs)\n\n\
         Dashboard 管理看板: open {base}/ and sign in with a token (ADMIN_TOKEN for an \
         administrator, MEMBER_TOKEN for a member, when the demo's tokens are printed above)\n\n\
         Try:\n  \
         curl -s {base}/readyz\n  curl -s {auth} {base}/v1/members/{member}\n  \
         curl -s {auth} '{base}/v1/members/{member}/compliance'\n"
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("signal received");
}
