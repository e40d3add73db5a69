//! Logs always go to stderr: stdout carries data (and, for `orteam mcp`, the protocol). Colour
//! only when stderr is a terminal (and `NO_COLOR` is unset): a log redirected to a file or a
//! pipe carries no ANSI escape codes.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::args::{GlobalArgs, LogFormat};
use orteam_core::env::ORTEAM_LOG;

/// `servers`: a long-running command (serve, sim, mcp) whose INFO lines are its log; other
/// commands print their results and only warnings unless `-v`.
pub fn init(global: &GlobalArgs, server: bool) {
    let default = match global.verbose {
        0 if server => "warn,orteam=info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env(ORTEAM_LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
