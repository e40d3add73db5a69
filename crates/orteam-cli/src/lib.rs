//! The orteam command line: argument definitions in [`args`], one module per command under
//! [`commands`]. The `orteam` binary only calls [`main`], which resolves one [`context::Context`]
//! (clock, ledger opener, OpenRouter client, secret sink) and passes it to the commands.
//!
//! Output rules: data goes to stdout, diagnostics and progress to stderr; an error prints one
//! line `error: …` and exits non-zero.

use std::io::Write;
use std::process::ExitCode;

use clap::FromArgMatches;

pub mod args;
pub mod args_access;
pub mod args_insight;
pub mod args_ops;
pub mod args_team;
pub mod commands;
mod confirm;
pub mod context;
mod logging;
mod sd_notify;
mod shutdown;

use args::{Cli, Command};

/// Parses the command line, runs the command and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&args::command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let server = matches!(
        cli.command,
        Command::Serve(_) | Command::Sim(_) | Command::Mcp(_)
    );
    logging::init(&cli.global, server);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return report(&anyhow::Error::from(err)),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cx = &context::Context::from_env()?;
    match cli.command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Sim(args) => commands::sim::run(args).await,
        Command::Mcp(args) => commands::mcp::run(args).await,
        Command::Serve(args) => commands::serve::run(cx, args).await,
        Command::Team(args) => commands::team::run(cx, args).await,
        Command::Keys(args) => commands::keys::run(cx, args).await,
        Command::Member(args) => commands::member::run(cx, args).await,
        Command::Budget(args) => commands::budget::run(cx, args).await,
        Command::Top(args) => commands::top::run(args).await,
        Command::Me(args) => commands::me::run(args).await,
        Command::Token(args) => commands::token::run(cx, args).await,
        Command::Audit(args) => commands::audit::run(cx, args).await,
        Command::Report(args) => commands::report::run(cx, args).await,
        Command::Reconcile(args) => commands::reconcile::run(cx, args).await,
        Command::Alerts(args) => commands::alerts::run(cx, args).await,
        Command::Backup(args) => commands::backup::backup(args).await,
        Command::Restore(args) => commands::backup::restore(args).await,
    }
}

fn report(err: &anyhow::Error) -> ExitCode {
    // A closed stdout (e.g. `orteam … | head`) is not a failure.
    if err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(std::io::stderr(), "error: {}", error_line(err));
    ExitCode::FAILURE
}

/// An error and its causes on one line, each said once: a cause whose text an outer error
/// already carries (many errors repeat their source in their own message) is left out.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in err.chain() {
        let text = e.to_string();
        let text = text.trim();
        if text.is_empty() || parts.iter().any(|p| p.contains(text)) {
            continue;
        }
        parts.push(text.to_owned());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_says_each_thing_once() {
        let inner = anyhow::anyhow!("error connecting to server");
        let err = inner
            .context("error connecting to server")
            .context("request failed after 3 retries in 2.0s: error connecting to server")
            .context("reading the key");
        assert_eq!(
            error_line(&err),
            "reading the key: request failed after 3 retries in 2.0s: error connecting to server"
        );
    }
}
