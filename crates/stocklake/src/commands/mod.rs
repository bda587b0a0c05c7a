//! One module per subcommand.

/// A line of a command's report on stdout, in a function returning `anyhow::Result`. When the
/// reader has gone away (`stocklake alerts | head`) the command stops and `main` exits quietly,
/// as other Unix tools do, instead of panicking the way `println!` does.
macro_rules! say {
    () => {
        $crate::commands::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// A line of a long-running command's progress on stdout: a reader that went away loses the
/// line and stops nothing (a server keeps serving).
macro_rules! progress {
    ($($arg:tt)*) => {
        let _ = $crate::commands::write_stdout(format_args!("{}\n", format_args!($($arg)*)));
    };
}

mod alerts;
mod closed_loop;
mod demo;
mod evaluate;
mod ingest;
mod init;
pub mod model;
mod orders;
pub mod refine;
mod replay;
pub mod run;
mod simulate;
mod status;

use std::io::Write;

use tokio_util::sync::CancellationToken;

/// A progress bar on stderr for long CLI work, every command's bar drawn alike: `what` is the
/// text before the bar, `counted` what follows it (indicatif's template keys, such as
/// `{pos}/{len} {msg}`).
pub(crate) fn progress_bar(len: u64, what: &str, counted: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {counted}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

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
        Command::Orders(args) => orders::run(&config::load(&cli.global)?, args).await,
        Command::Run(args) => run::run(&config::load(&cli.global)?, args).await,
        Command::Status(args) => status::run(&config::load(&cli.global)?, args).await,
        Command::Replay(args) => replay::run(&config::load(&cli.global)?, args).await,
        Command::Maintain(args) => refine::run_maintain(&config::load(&cli.global)?, args).await,
    }
}

/// Stdout's reader went away: the report has nowhere to go, and nothing failed.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout's reader has gone away")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes to stdout (through [`say!`]); a closed pipe is [`StdoutClosed`].
pub fn write_stdout(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
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
