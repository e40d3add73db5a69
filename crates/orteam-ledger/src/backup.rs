//! Backup and restore of a SQLite ledger while it is served; PostgreSQL ledgers are backed up
//! with `pg_dump` (docs/operations.md).

use std::path::Path;

use crate::error::LedgerError;
use crate::sqlite::SqliteTarget;
pub use crate::sqlite::backup::CopySummary;

fn sqlite_file(url: &str) -> Result<std::path::PathBuf, LedgerError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(LedgerError::Invalid(
            "a PostgreSQL ledger is backed up with pg_dump and restored with psql or pg_restore (see docs/operations.md)".into(),
        ));
    }
    match SqliteTarget::parse(url) {
        Some(SqliteTarget::File(path)) => Ok(path),
        Some(SqliteTarget::Memory(_)) => Err(LedgerError::Invalid(
            "an in-memory ledger has nothing to back up or restore".into(),
        )),
        None => Err(LedgerError::UnsupportedUrl(url.to_owned())),
    }
}

/// Writes a consistent copy of the SQLite ledger at `url` to the new file `to`, while a gateway
/// may be serving it: every event it acknowledged before the backup began is in the copy
/// (journaled events included). Blocking: call it off the async runtime.
pub fn backup(url: &str, to: &Path) -> Result<CopySummary, LedgerError> {
    crate::sqlite::backup::backup(&sqlite_file(url)?, to)
}

/// Replaces the SQLite ledger at `url` with the backup file `from`. Refused while a gateway
/// serves that ledger, and when it exists unless `replace`. A backup of an older schema is
/// migrated when the ledger is next opened; one of a newer schema is refused. Blocking.
pub fn restore(from: &Path, url: &str, replace: bool) -> Result<CopySummary, LedgerError> {
    crate::sqlite::backup::restore(from, &sqlite_file(url)?, replace)
}
