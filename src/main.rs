//! The `studyledger` binary: clap commands mapped to functions, nothing else.

use clap::Parser;
use studyledger::config::{Cli, Command};
use studyledger::{app, bench, jobs, telemetry};

/// mimalloc rather than the system's allocator: the projector and the replay allocate and free
/// many small values across threads, where glibc's malloc spent up to 40 % of their time
/// consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => app::serve(args).await,
        Command::Migrate(args) => app::migrate(args).await,
        Command::XidFloor(args) => app::xid_floor(args).await,
        Command::Replay(args) => app::replay(args).await,
        Command::Verify(args) => jobs::verify::run(args).await,
        Command::DemoData(args) => app::demo_data(args).await,
        Command::Import(args) => app::import(args).await,
        Command::Token(command) => app::token(command).await,
        Command::BenchWrite(args) => bench::write::run(args).await,
        Command::BenchProjector(args) => bench::projector::run(args).await,
        Command::BenchReplay(args) => bench::replay::run(args).await,
        Command::BenchImport(args) => bench::import::run(args).await,
        Command::BenchReads(args) => bench::reads::run(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("studyledger: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
