//! `orteam backup` and `orteam restore`: a consistent copy of a SQLite ledger while it is
//! served, and its restoration into a ledger no gateway serves.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::args_ops::{BackupArgs, RestoreArgs};

pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let to = args.to.clone();
    let summary = tokio::task::spawn_blocking(move || {
        orteam_ledger::backup::backup(&args.database_url, &args.to)
    })
    .await?
    .context("backing up the ledger")?;
    writeln!(
        std::io::stdout(),
        "backed up {} usage events (schema version {}, {} journal segments replayed) to {}",
        summary.events,
        summary.schema_version,
        summary.journal_segments,
        to.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let url = args.database_url.clone();
    let summary = tokio::task::spawn_blocking(move || {
        orteam_ledger::backup::restore(&args.file, &args.database_url, args.force)
    })
    .await?
    .context("restoring the ledger")?;
    writeln!(
        std::io::stdout(),
        "restored {} usage events (schema version {}) into {url}",
        summary.events,
        summary.schema_version,
    )?;
    Ok(ExitCode::SUCCESS)
}
