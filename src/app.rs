//! The application, built once the same way for `serve`, the command-line jobs and the tests:
//! [`App::build`] connects, migrates, and publishes ruleset 1 into an empty ledger;
//! [`App::router`] is the HTTP service and [`App::start_projector`] its read side. The
//! command-line commands that need the ledger are here too, each a few lines over `App`.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{DatabaseArgs, DemoArgs, LedgerArgs, ReplayArgs, ServeArgs};
use crate::http::state::AppState;
use crate::jobs::demo::{self, DemoPlan};
use crate::jobs::projector::Projector;
use crate::jobs::replay;
use crate::ledger::{Ledger, LedgerSettings};
use crate::store::{database, streams};
use crate::JobError;

/// The ledger, ready: migrated, with ruleset 1 published.
pub struct App {
    ledger: Arc<Ledger>,
    member_cache: usize,
}

impl App {
    pub async fn build(database: &DatabaseArgs, ledger: &LedgerArgs) -> Result<App, JobError> {
        let pool = database::connect(&database.database_url, database.pool_size).await?;
        database::migrate(&pool).await?;
        let settings = LedgerSettings {
            member_cache: ledger.member_cache,
            write_connections: ledger.write_connections,
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
    /// the views (one projector per database works at a time).
    pub fn start_projector(&self) {
        let projector = Projector::new(Arc::clone(&self.ledger), self.member_cache);
        tokio::spawn(projector.run());
    }

    /// The HTTP service over this ledger.
    pub fn router(&self, admin_token: Option<String>) -> axum::Router {
        crate::http::router(AppState::new(Arc::clone(&self.ledger), admin_token))
    }
}

/// `studyledger serve`: migrate, publish ruleset 1 into an empty ledger, (load the demo data),
/// start the projector and serve HTTP until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), JobError> {
    let app = App::build(&args.database, &args.ledger).await?;
    let pool = app.ledger().pool();
    if args.demo_data_if_empty && !streams::has_members(pool).await? {
        tracing::info!("empty ledger: loading the demo data set");
        demo::load(app.ledger(), &DemoPlan::default()).await?;
    }
    let listener = TcpListener::bind(args.listen_addr).await?;
    let address = listener.local_addr()?;
    let member = streams::first_member(pool).await.ok().flatten();
    print_welcome(address, member.as_deref().unwrap_or("<member_id>"));
    app.start_projector();
    axum::serve(listener, app.router(args.admin_token))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// `studyledger migrate`.
pub async fn migrate(args: DatabaseArgs) -> Result<(), JobError> {
    let pool = database::connect(&args.database_url, 2).await?;
    database::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// `studyledger demo-data [--members N]`.
pub async fn demo_data(args: DemoArgs) -> Result<(), JobError> {
    let app = App::build(&args.database, &args.ledger).await?;
    let plan = DemoPlan {
        members: args.members,
        concurrency: args.concurrency.max(1),
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

fn print_welcome(address: std::net::SocketAddr, member: &str) {
    let base = format!("http://{address}");
    println!(
        "\nstudyledger is serving at {base}\n\nTry:\n  curl -s {base}/readyz\n  \
         curl -s {base}/v1/members/{member}\n  curl -s '{base}/v1/members/{member}/compliance'\n"
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
    tracing::info!("shutting down");
}
