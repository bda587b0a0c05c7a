//! # stocklake
//!
//! The `stocklake` binary: command line, configuration and orchestration of the stages
//! (ingest → refine → model) that live in their own crates.

mod allocator;
mod cli;
mod commands;
mod config;
mod oneline;
mod stages;
mod supervisor;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::tune();
    let cli = cli::Cli::parse();
    // Both rustls providers are compiled in (the AWS SDK and object_store pick different ones);
    // choose one before any client is built.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    init_logging(cli.global.log_format);
    log_panics();
    // the end-to-end tests' way to see a panic reach the log (debug builds only)
    #[cfg(debug_assertions)]
    if std::env::var_os("STOCKLAKE_DEBUG_PANIC").is_some() {
        panic!("STOCKLAKE_DEBUG_PANIC is set");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `stocklake alerts | head`: the reader had all it wanted
        Err(e) if e.downcast_ref::<commands::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", supervisor::describe(&e));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: Option<cli::LogFormat>) {
    use tracing_subscriber::EnvFilter;
    // the Delta kernel reports a table that does not exist yet as an ERROR before stocklake
    // creates it: silenced unless asked for by name
    const QUIET: &str = "buoyant_kernel=off,delta_kernel=off";
    let asked = std::env::var("STOCKLAKE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .filter(|s| !s.trim().is_empty());
    let directives = match asked {
        Some(s) if s.contains("kernel") => s,
        Some(s) => format!("{s},{QUIET}"),
        // delta-rs warns of every commit that met another one (table care commits beside
        // refine by design) and retries it; one that still fails reaches stocklake as an error
        None => format!(
            "info,aws_config=warn,aws_smithy_runtime=warn,deltalake=warn,deltalake_core=warn,deltalake_core::kernel::transaction=error,deltalake_aws=warn,{QUIET}"
        ),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("warning: log filter {directives:?} is not valid ({e}); using info");
        EnvFilter::new("info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false);
    let _ = match format {
        Some(cli::LogFormat::Json) => builder.with_writer(std::io::stderr).json().try_init(),
        _ => builder
            .with_writer(oneline::OneLineStderr { ansi })
            .compact()
            .try_init(),
    };
}

/// A panic is logged as one ERROR event in the log's own format (JSON logs stay JSON lines),
/// with where it happened; its backtrace only when `RUST_BACKTRACE` asks for one. Not every
/// panic ends the process: during an S3 outage delta-rs catches the one object_store raises
/// when a failed upload is aborted, and the batch is retried, so the hook has to speak the
/// log's language rather than print a bare backtrace between its lines.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let backtrace = std::backtrace::Backtrace::capture();
        let captured = backtrace.status() == std::backtrace::BacktraceStatus::Captured;
        if !tracing::enabled!(tracing::Level::ERROR) {
            // logging switched off (`STOCKLAKE_LOG=off`): a panic is still said, plainly
            eprintln!("panic at {location} in thread {thread}: {message}");
            if captured {
                eprintln!("{backtrace}");
            }
        } else if captured {
            tracing::error!(%location, thread, %backtrace, "panic: {message}");
        } else {
            tracing::error!(%location, thread, "panic: {message}");
        }
    }));
}

/// The text a panic was raised with (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_is_logged_with_its_message() {
        let fixed = std::panic::catch_unwind(|| panic!("Already shut down"));
        let formatted = std::panic::catch_unwind(|| panic!("{} of {}", 3, 4));
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8));
        let message = |r: std::thread::Result<()>| {
            r.err().map(|p| super::panic_message(p.as_ref()).to_owned())
        };
        assert_eq!(message(fixed).as_deref(), Some("Already shut down"));
        assert_eq!(message(formatted).as_deref(), Some("3 of 4"));
        assert_eq!(
            message(other).as_deref(),
            Some("(a panic without a message)")
        );
    }
}
