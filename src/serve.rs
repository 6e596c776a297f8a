//! `studyledger serve` and `studyledger migrate`: bring the database up to date, publish the
//! initial rules into an empty ledger, optionally load the demo data, and serve HTTP until
//! Ctrl-C or SIGTERM.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{DatabaseArgs, ServeArgs};
use crate::http::{router, AppState};
use crate::ledger::{Ledger, LedgerSettings};
use crate::{db, demo, JobError};

pub async fn migrate_only(args: DatabaseArgs) -> Result<(), JobError> {
    let pool = db::connect(&args.database_url, 2).await?;
    db::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Migrates, publishes ruleset 1 when the ledger has none, and returns the ready ledger.
pub async fn prepare_ledger(
    database: &DatabaseArgs,
    ledger: &crate::config::LedgerArgs,
) -> Result<Arc<Ledger>, JobError> {
    let pool = db::connect(&database.database_url, database.pool_size).await?;
    db::migrate(&pool).await?;
    let ledger = Ledger::new(
        pool,
        ledger.timezone,
        &LedgerSettings {
            member_cache: ledger.member_cache,
            write_connections: ledger.write_connections,
        },
    );
    ledger
        .publish_initial_rules()
        .await
        .map_err(|e| format!("publishing ruleset 1: {e}"))?;
    Ok(ledger)
}

pub async fn run(args: ServeArgs) -> Result<(), JobError> {
    let ledger = prepare_ledger(&args.database, &args.ledger).await?;
    if args.demo_data_if_empty && !demo::ledger_has_members(ledger.pool()).await? {
        tracing::info!("empty ledger: loading the demo data set");
        demo::load(&ledger, &demo::DemoPlan::default()).await?;
    }
    let listener = TcpListener::bind(args.listen_addr).await?;
    let address = listener.local_addr()?;
    print_welcome(address, ledger.pool()).await;
    let projector = crate::projector::Projector::new(Arc::clone(&ledger), args.ledger.member_cache);
    tokio::spawn(projector.run());
    let app = router(AppState::new(ledger, args.admin_token));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn print_welcome(address: std::net::SocketAddr, pool: &sqlx::PgPool) {
    let example_member: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'member' ORDER BY position LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .ok()
    .flatten();
    let member = example_member.unwrap_or_else(|| "<member_id>".to_owned());
    let base = format!("http://{address}");
    let text = format!(
        "\nstudyledger is serving at {base}\n\nTry:\n  curl -s {base}/readyz\n  curl -s {base}/v1/members/{member}\n  curl -s '{base}/v1/members/{member}/compliance'\n"
    );
    println!("{text}");
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
