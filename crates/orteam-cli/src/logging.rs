//! Logs always go to stderr: stdout carries data (and, for `orteam mcp`, the protocol).

use tracing_subscriber::EnvFilter;

use crate::args::{GlobalArgs, LogFormat};
use orteam_core::env::ORTEAM_LOG;

pub fn init(global: &GlobalArgs) {
    let default = match global.verbose {
        0 => "warn,orteam=info",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env(ORTEAM_LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
