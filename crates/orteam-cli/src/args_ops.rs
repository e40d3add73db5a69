//! Arguments of the operations commands: `backup`, `restore`.

use std::path::PathBuf;

use clap::Args;
use orteam_core::env::ORTEAM_DATABASE_URL;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write the copy to (it must not exist yet).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// The SQLite ledger to copy (PostgreSQL: use pg_dump, see docs/operations.md).
    #[arg(long, env = ORTEAM_DATABASE_URL, default_value = "sqlite://orteam.db")]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `orteam backup`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The SQLite ledger to restore into (refused while `orteam serve` serves it).
    #[arg(long, env = ORTEAM_DATABASE_URL, default_value = "sqlite://orteam.db")]
    pub database_url: String,
    /// Replace an existing ledger (its data, and events its journal still holds, are lost).
    #[arg(long)]
    pub force: bool,
}
