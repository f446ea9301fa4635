//! `ftp-tunnel`: the command-line entry point.
#![deny(unsafe_code)]

mod malloc_arenas;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ftp_tunnel::cli::{Cli, Command};
use ftp_tunnel::tunnel::{Tunnel, TunnelError};
use tracing_subscriber::EnvFilter;

/// OpenSSH's exit status for connection errors.
const EXIT_SSH_FAILURE: u8 = 255;
/// clap's exit status for usage errors.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    malloc_arenas::use_one_arena();
    let cli = Cli::parse();
    // -f: the foreground process only waits for a copy of itself (see background.rs).
    if cli.background && cli.command.is_none() && !ftp_tunnel::background::is_child() {
        return ftp_tunnel::background::run_in_background();
    }
    if let Err(message) = init_logging(&cli) {
        return fail(EXIT_USAGE, &message);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(EXIT_SSH_FAILURE, &format!("cannot start: {error}")),
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    #[cfg(feature = "demo")]
    if let Some(Command::Demo(options)) = cli.command {
        return match ftp_tunnel::demo::run(options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(1, &format!("demo failed: {error:#}")),
        };
    }
    let config = match cli.tunnel_config() {
        Ok(config) => config,
        Err(error) => return fail(EXIT_USAGE, &error.to_string()),
    };
    let tunnel = match Tunnel::start(config).await {
        Ok(tunnel) => tunnel,
        // A policy, plugin or audit log the admin named that cannot be used: bad usage.
        Err(error @ TunnelError::Admin(_)) => return fail(EXIT_USAGE, &error.to_string()),
        Err(error) => return fail(EXIT_SSH_FAILURE, &error.to_string()),
    };
    // The handlers are registered before anything says "listening": a script that signals
    // the moment it reads that line must get a clean shutdown, not death by signal.
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => return fail(EXIT_SSH_FAILURE, &format!("cannot handle signals: {error}")),
    };
    tunnel.announce();
    if ftp_tunnel::background::is_child() {
        ftp_tunnel::background::announce_ready();
    }
    match tunnel.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(EXIT_SSH_FAILURE, &error.to_string()),
    }
}

/// Registers SIGINT and SIGTERM now; the future resolves on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

fn fail(code: u8, message: &str) -> ExitCode {
    // Not eprintln!: it panics when standard error is closed, and the exit code still counts.
    let _ = writeln!(std::io::stderr(), "ftp-tunnel: {message}");
    ExitCode::from(code)
}

fn init_logging(cli: &Cli) -> Result<(), String> {
    // The demo prints its own report; the tunnel's info lines would interleave with it.
    let quiet = cli.quiet || cli.command.is_some();
    let default = match (quiet, cli.verbose) {
        (true, 0) => "warn",
        (false, 0) => "info,russh=warn",
        (_, 1) => "debug,russh=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // -E LOGFILE: appended to, as ssh -E does.
    if let Some(path) = &cli.log_file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("-E {}: {e}", path.display()))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .with_target(false)
            .with_ansi(false)
            // tracing-subscriber reports a failed write with eprintln!, which panics when
            // standard error is closed (after -f, or a reader that went away): a log line
            // that cannot be written is dropped instead.
            .log_internal_errors(false)
            .init();
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false)
        .init();
    Ok(())
}
