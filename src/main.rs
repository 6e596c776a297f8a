//! The `studyledger` binary: clap commands mapped to functions, nothing else.

use clap::Parser;
use studyledger::config::{Cli, Command};
use studyledger::{bench, bench_projector, bench_replay, demo, replay, serve, telemetry, verify};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Migrate(args) => serve::migrate_only(args).await,
        Command::Replay(args) => replay::run_cli(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::DemoData(args) => demo::run(args).await,
        Command::BenchWrite(args) => bench::run(args).await,
        Command::BenchProjector(args) => bench_projector::run(args).await,
        Command::BenchReplay(args) => bench_replay::run(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("studyledger: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
