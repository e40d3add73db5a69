//! SQLite backend: the embedded default.
//!
//! One *serving* process owns the file (an OS file lock on `<db>.serve-lock`, released by the
//! kernel when the process dies, so a `kill -9` never leaves a stale owner). That process holds
//! the entire budget in its [`crate::budget::engine::BudgetEngine`] (Owned mode): reservations
//! are memory operations and settled events go to [`writer`], a dedicated thread doing group
//! commit. Admin processes (the CLI) open the same file without the lock to change the directory;
//! the server sees their changes through the `change_log` poll.
//!
//! Money is stored as canonical decimal TEXT and summed in Rust; instants as INTEGER
//! microseconds (UTC); the database runs in WAL mode.

mod access;
pub(crate) mod backup;
mod budgets;
mod directory;
mod events;
mod migrate;
mod outbox;
pub(crate) mod refusals;
pub(crate) mod writer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use orteam_core::Money;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, Params, Row, Statement, params};

pub(crate) use self::budgets::window_rows_sync;
use crate::error::LedgerError;
use crate::model::UsageEvent;
use crate::rows::{Columns, corrupt};

/// Where the SQLite database lives.
#[derive(Debug, Clone)]
pub(crate) enum SqliteTarget {
    File(std::path::PathBuf),
    /// A shared-cache in-memory database, alive while the ledger is.
    Memory(String),
}

impl SqliteTarget {
    pub fn parse(url: &str) -> Option<Self> {
        if url == "sqlite::memory:" || url == ":memory:" || url == "sqlite://:memory:" {
            return Some(SqliteTarget::Memory(format!(
                "file:orteam-{}?mode=memory&cache=shared",
                uuid::Uuid::new_v4().simple()
            )));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return None;
        }
        Some(SqliteTarget::File(path.into()))
    }

    /// Opens a connection with the pragmas every connection needs.
    pub fn connect(&self, synchronous_full: bool) -> Result<Connection, LedgerError> {
        let err = |e| LedgerError::storage("opening the sqlite database", e);
        let conn = match self {
            SqliteTarget::File(p) => Connection::open(p).map_err(err)?,
            SqliteTarget::Memory(uri) => Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(err)?,
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        if let SqliteTarget::File(_) = self {
            // WAL: readers never block the writer. synchronous=NORMAL in WAL mode loses nothing
            // on a process crash (kill -9): a committed transaction is in the WAL file, which the
            // OS keeps. FULL also survives power loss, at one fsync per group commit.
            let sync = if synchronous_full { "FULL" } else { "NORMAL" };
            conn.execute_batch(&format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};"
            ))
            .map_err(err)?;
        }
        conn.execute_batch("PRAGMA foreign_keys=ON;").map_err(err)?;
        Ok(conn)
    }
}

impl SqliteTarget {
    /// The writer thread's connection: [`SqliteTarget::connect`], tuned for group commit.
    pub(crate) fn connect_writer(&self, synchronous_full: bool) -> Result<Connection, LedgerError> {
        let conn = self.connect(synchronous_full)?;
        // Checkpointing inside the writer's commits costs it a large share of its
        // time; let the WAL grow and checkpoint from the maintenance task instead.
        // A 4 MiB page cache holds the hot right edges of the table and its indexes;
        // 32 MiB was slower (more page allocation) and 15 MiB more of the gateway's RSS.
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=16384; PRAGMA journal_size_limit=134217728; PRAGMA cache_size=-4096;",
        )
        .map_err(|e| LedgerError::storage("configuring the sqlite writer", e))?;
        Ok(conn)
    }
}

/// Takes the exclusive serve lock of the database at `db` (`<db>.serve-lock`); `None` when a
/// live serving process holds it. The kernel releases it when the holder dies.
pub(crate) fn try_serve_lock(db: &std::path::Path) -> Result<Option<std::fs::File>, LedgerError> {
    let lock_path = format!("{}.serve-lock", db.display());
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LedgerError::storage("opening the serve lock file", e))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(LedgerError::storage("locking the serve lock file", e))
        }
    }
}

/// The SQLite store: one connection for directory changes and reads (served on the blocking
/// pool), the writer thread has its own.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Held while serving; released at shutdown (or by the kernel when the process dies).
    serve_lock: Mutex<Option<std::fs::File>>,
    /// The opened file's path and identity: readiness fails once the path names another file
    /// or none (a deleted database would be recreated empty at the next start).
    file: Option<(std::path::PathBuf, FileIdentity)>,
}

/// A file's device and inode.
type FileIdentity = (u64, u64);

fn file_identity(path: &std::path::Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    /// Opens (and migrates) the database. `serving` takes the exclusive serve lock.
    pub fn open(
        target: &SqliteTarget,
        serving: bool,
        synchronous_full: bool,
    ) -> Result<Self, LedgerError> {
        let serve_lock = match (target, serving) {
            (SqliteTarget::File(p), true) => match try_serve_lock(p)? {
                Some(f) => Some(f),
                None => {
                    return Err(LedgerError::AlreadyServing {
                        path: p.display().to_string(),
                    });
                }
            },
            _ => None,
        };
        let mut conn = target.connect(synchronous_full)?;
        migrate::migrate_sqlite(&mut conn)?;
        let file = match target {
            SqliteTarget::File(p) => file_identity(p).map(|id| (p.clone(), id)),
            SqliteTarget::Memory(_) => None,
        };
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            serve_lock: Mutex::new(serve_lock),
            file,
        })
    }

    /// The schema version the database records, once its file is checked to still be the one
    /// opened.
    pub async fn schema_version(&self) -> Result<i64, LedgerError> {
        if let Some((path, id)) = &self.file
            && file_identity(path) != Some(*id)
        {
            return Err(LedgerError::DatabaseFileGone {
                path: path.display().to_string(),
            });
        }
        self.run(|c| migrate::schema_version(c)).await
    }

    /// Gives up the serving role (after the writer has drained), so another process may serve.
    pub fn release_serve_lock(&self) {
        if let Some(f) = self.serve_lock.lock().take() {
            let _ = f.unlock();
        }
    }

    /// A PASSIVE WAL checkpoint (never blocks the writer), off the writer thread.
    pub async fn checkpoint(&self) -> Result<(), LedgerError> {
        self.run(|c| {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(db("checkpointing the sqlite WAL"))
        })
        .await
    }

    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock();
            f(&mut c)
        })
        .await
        .map_err(|e| LedgerError::storage("running a sqlite task", e))?
    }

    /// Synchronous variant for startup.
    pub fn run_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut c = self.conn.lock();
        f(&mut c)
    }
}

// ---- column access ----

pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn micros(i: usize, v: i64) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(i, "timestamp out of range"))
}

/// SQLite's storage types: money as canonical decimal TEXT, instants as INTEGER microseconds.
impl Columns for Row<'_> {
    fn text(&self, i: usize) -> Result<String, LedgerError> {
        self.get(i).map_err(|e| corrupt(i, e))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, LedgerError> {
        self.get(i).map_err(|e| corrupt(i, e))
    }
    fn flag(&self, i: usize) -> Result<bool, LedgerError> {
        self.get(i).map_err(|e| corrupt(i, e))
    }
    fn int(&self, i: usize) -> Result<i64, LedgerError> {
        self.get(i).map_err(|e| corrupt(i, e))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, LedgerError> {
        self.get(i).map_err(|e| corrupt(i, e))
    }
    fn money(&self, i: usize) -> Result<Money, LedgerError> {
        self.parsed(i)
    }
    fn opt_money(&self, i: usize) -> Result<Option<Money>, LedgerError> {
        self.opt_text(i)?
            .map(|t| Money::parse(&t).map_err(|e| corrupt(i, e)))
            .transpose()
    }
    fn time(&self, i: usize) -> Result<DateTime<Utc>, LedgerError> {
        micros(i, self.int(i)?)
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, LedgerError> {
        self.opt_int(i)?.map(|v| micros(i, v)).transpose()
    }
}

/// Every row of a statement, mapped.
pub(crate) fn all<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T, LedgerError>,
    op: &'static str,
) -> Result<Vec<T>, LedgerError> {
    let mut rows = stmt.query(params).map_err(db(op))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db(op))? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// The first row of a statement, mapped.
pub(crate) fn first<T>(
    stmt: &mut Statement<'_>,
    params: impl Params,
    map: impl Fn(&Row<'_>) -> Result<T, LedgerError>,
    op: &'static str,
) -> Result<Option<T>, LedgerError> {
    let mut rows = stmt.query(params).map_err(db(op))?;
    rows.next().map_err(db(op))?.map(map).transpose()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn insert_event(
    stmt: &mut rusqlite::CachedStatement<'_>,
    e: &UsageEvent,
) -> rusqlite::Result<usize> {
    let u = &e.usage;
    stmt.execute(params![
        ts(e.time),
        e.member_id,
        e.team_id,
        e.org_id,
        u.request_id,
        u.virtual_key_id,
        u.upstream_key_hash,
        u.requested_model,
        u.served_model,
        u.provider,
        i64_of(u.prompt_tokens),
        i64_of(u.completion_tokens),
        i64_of(u.reasoning_tokens),
        i64_of(u.cached_tokens),
        u.cost.to_canonical_string(),
        u.generation_id,
        u.streamed,
        u.outcome.as_str(),
        i64_of(u.latency_ms),
        u.title,
        u.route.as_str(),
        u.served_outside_tier,
        i64_of(u.latency_us),
    ])
}

pub(crate) fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}
