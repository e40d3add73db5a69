//! Online backup and restore of a SQLite ledger (SQLite's backup API).
//!
//! A backup is one self-contained SQLite file: the database as of one read transaction, plus
//! every event the serving process had journaled but not yet committed. The journal is copied
//! *before* the database is read: an event acknowledged before the backup began is then either
//! in a copied segment or, if its segment was deleted meanwhile, committed before the deletion
//! and so in the database snapshot taken after. Replaying a segment whose events were committed
//! too changes nothing (inserts are idempotent by request id).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::db as db_err;
use crate::error::LedgerError;
use crate::migrate::SQLITE;

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySummary {
    /// Usage events in the copy.
    pub events: u64,
    /// The copy's schema version.
    pub schema_version: i64,
    /// Journal segments of the serving process replayed into the copy.
    pub journal_segments: usize,
}

/// The SQLite backup API, one step for the whole database: a single read transaction, so the
/// copy is consistent even while the server commits (WAL readers never block the writer).
fn copy_database(from: &Connection, to: &mut Connection) -> Result<(), LedgerError> {
    let backup = Backup::new(from, to).map_err(db_err("starting the sqlite backup"))?;
    // -1: every page in one step. Busy or locked (another connection is writing in rollback
    // mode, or checkpointing): wait and try again, within `COPY_ATTEMPTS`.
    for _ in 0..COPY_ATTEMPTS {
        match backup
            .step(-1)
            .map_err(db_err("copying the sqlite database"))?
        {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Err(LedgerError::storage(
        "copying the sqlite database",
        std::io::Error::other("the database stayed locked; try again"),
    ))
}

/// Attempts at the one-step copy before giving up (10 s of 50 ms pauses).
const COPY_ATTEMPTS: usize = 200;

fn open_existing(path: &Path, flags: OpenFlags) -> Result<Connection, LedgerError> {
    if !path.is_file() {
        return Err(LedgerError::Invalid(format!(
            "{} does not exist or is not a file",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(db_err("opening the sqlite database"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(db_err("opening the sqlite database"))?;
    Ok(conn)
}

fn summary(conn: &Connection, journal_segments: usize) -> Result<CopySummary, LedgerError> {
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM usage_events", [], |r| r.get(0))
        .map_err(db_err("counting usage events"))?;
    Ok(CopySummary {
        events: u64::try_from(events).unwrap_or(0),
        schema_version: super::migrate::schema_version(conn)?,
        journal_segments,
    })
}

fn integrity_ok(conn: &Connection, what: &Path) -> Result<(), LedgerError> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(db_err("checking the database's integrity"))?;
    if verdict != "ok" {
        return Err(LedgerError::Corrupt(format!(
            "{} fails SQLite's integrity check: {verdict}",
            what.display()
        )));
    }
    Ok(())
}

fn partial_path(to: &Path) -> PathBuf {
    let mut p = to.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

fn sync_dir_of(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Copies the ledger at `ledger` (served or not) to the new file `to`.
pub(crate) fn backup(ledger: &Path, to: &Path) -> Result<CopySummary, LedgerError> {
    if to.exists() {
        return Err(LedgerError::Invalid(format!(
            "{} already exists; back up to a new file",
            to.display()
        )));
    }
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    crate::journal::remove_all_segments(&partial)?;
    // The journal first (see the module docs), then the database.
    let segments = crate::journal::copy_segments(ledger, &partial)?;
    let result = (|| {
        let source = open_existing(ledger, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let mut copy = Connection::open(&partial).map_err(db_err("creating the backup file"))?;
        copy_database(&source, &mut copy)?;
        drop(source);
        // A serving process of another version would have left another schema.
        super::migrate::migrate_sqlite(&mut copy)?;
        super::writer::replay_journal(&mut copy, &partial)?;
        // One self-contained file: no -wal beside it.
        copy.execute_batch("PRAGMA journal_mode=DELETE;")
            .map_err(db_err("finishing the backup file"))?;
        integrity_ok(&copy, to)?;
        let summary = summary(&copy, segments)?;
        copy.close()
            .map_err(|(_, e)| LedgerError::storage("closing the backup file", e))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| LedgerError::storage("syncing the backup file", e))?;
        Ok(summary)
    })();
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, to)
                .map_err(|e| LedgerError::storage("moving the backup into place", e))?;
            sync_dir_of(to);
            Ok(summary)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            let _ = crate::journal::remove_all_segments(&partial);
            Err(err)
        }
    }
}

/// Replaces the ledger at `db` with the backup `from`. Refused while a process serves `db`
/// (its serve lock is held for the whole restore, so none can start meanwhile), and, unless
/// `replace`, when `db` already exists.
pub(crate) fn restore(from: &Path, db: &Path, replace: bool) -> Result<CopySummary, LedgerError> {
    let source = open_existing(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    integrity_ok(&source, from)?;
    let version = super::migrate::schema_version(&source)?;
    if version == 0 {
        return Err(LedgerError::Invalid(format!(
            "{} is not an orteam ledger (no schema_migrations table)",
            from.display()
        )));
    }
    crate::migrate::refuse_newer(version, SQLITE)?;
    let Some(lock) = super::try_serve_lock(db)? else {
        return Err(LedgerError::AlreadyServing {
            path: db.display().to_string(),
        });
    };
    if db.exists() && !replace {
        return Err(LedgerError::Invalid(format!(
            "{} already holds a ledger; pass --force to replace it with the backup",
            db.display()
        )));
    }
    // The replaced ledger's unreplayed events are not the backup's.
    crate::journal::remove_all_segments(db)?;
    let mut target = Connection::open(db).map_err(db_err("opening the ledger to restore"))?;
    target
        .busy_timeout(Duration::from_secs(10))
        .map_err(db_err("opening the ledger to restore"))?;
    // The backup API cannot write a WAL database of another page size: copy in rollback mode.
    target
        .execute_batch("PRAGMA journal_mode=DELETE;")
        .map_err(db_err("preparing the ledger to restore"))?;
    copy_database(&source, &mut target)?;
    target
        .execute_batch("PRAGMA journal_mode=WAL;")
        .map_err(db_err("finishing the restored ledger"))?;
    let summary = summary(&target, 0)?;
    drop(target);
    drop(lock);
    Ok(summary)
}
