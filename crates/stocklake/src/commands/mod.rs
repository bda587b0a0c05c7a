//! One module per subcommand.

mod alerts;
mod demo;
mod evaluate;
mod ingest;
mod init;
pub mod model;
mod refine;
mod replay;
pub mod run;
mod simulate;
mod status;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config;

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate::run(args).await,
        Command::Demo(args) => demo::run(&cli.global, args).await,
        Command::Evaluate(args) => evaluate::run(&config::load(&cli.global)?, args).await,
        Command::Init(args) => init::run(&config::load(&cli.global)?, args).await,
        Command::Ingest(args) => ingest::run(&config::load(&cli.global)?, args).await,
        Command::Refine(args) => refine::run(&config::load(&cli.global)?, args).await,
        Command::Model(args) => model::run(&config::load(&cli.global)?, args).await,
        Command::Alerts(args) => alerts::run(&config::load(&cli.global)?, args).await,
        Command::Run(args) => run::run(&config::load(&cli.global)?, args).await,
        Command::Status(args) => status::run(&config::load(&cli.global)?, args).await,
        Command::Replay(args) => replay::run(&config::load(&cli.global)?, args).await,
        Command::Maintain(args) => refine::run_maintain(&config::load(&cli.global)?, args).await,
    }
}

/// A token cancelled on Ctrl-C or SIGTERM: the start of a graceful shutdown.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: finishing and committing what is in flight");
        t.cancel();
    });
    token
}
