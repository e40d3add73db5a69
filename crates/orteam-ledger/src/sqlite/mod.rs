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

pub mod writer;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{ApiRoute, Money, Window};
use parking_lot::Mutex;
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use crate::budget::engine::CellKey;
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::model::*;
use crate::query::EventFilter;
use crate::store::{Store, WindowRow};

/// Where the SQLite database lives.
#[derive(Debug, Clone)]
pub enum SqliteTarget {
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

    pub fn describe(&self) -> String {
        match self {
            SqliteTarget::File(p) => p.display().to_string(),
            SqliteTarget::Memory(_) => ":memory:".to_owned(),
        }
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
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Held while serving; released at shutdown (or by the kernel when the process dies).
    serve_lock: Mutex<Option<std::fs::File>>,
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
        crate::migrate::migrate_sqlite(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            serve_lock: Mutex::new(serve_lock),
        })
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

// ---- column helpers ----

pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn conv_err(idx: usize, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into())
}

pub(crate) fn time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let v: i64 = row.get(idx)?;
    DateTime::from_timestamp_micros(v).ok_or_else(|| conv_err(idx, "timestamp out of range"))
}

pub(crate) fn opt_time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = row.get(idx)?;
    v.map(|v| {
        DateTime::from_timestamp_micros(v).ok_or_else(|| conv_err(idx, "timestamp out of range"))
    })
    .transpose()
}

pub(crate) fn parsed<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.get(idx)?;
    s.parse::<T>().map_err(|e| conv_err(idx, e.to_string()))
}

fn u64_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| conv_err(idx, e))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) const EVENT_COLUMNS: &str = "time, member_id, team_id, org_id, request_id, virtual_key_id, upstream_key_hash, \
     requested_model, served_model, provider, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, \
     cost, generation_id, streamed, outcome, latency_ms, title, route";

pub(crate) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<UsageEvent> {
    Ok(UsageEvent {
        time: time_col(r, 0)?,
        member_id: r.get(1)?,
        team_id: r.get(2)?,
        org_id: r.get(3)?,
        usage: Usage {
            request_id: r.get(4)?,
            virtual_key_id: r.get(5)?,
            upstream_key_hash: r.get(6)?,
            requested_model: r.get(7)?,
            served_model: r.get(8)?,
            provider: r.get(9)?,
            prompt_tokens: u64_col(r, 10)?,
            completion_tokens: u64_col(r, 11)?,
            reasoning_tokens: u64_col(r, 12)?,
            cached_tokens: u64_col(r, 13)?,
            cost: parsed(r, 14)?,
            generation_id: r.get(15)?,
            streamed: r.get(16)?,
            outcome: parsed(r, 17)?,
            latency_ms: u64_col(r, 18)?,
            title: r.get(19)?,
            route: parsed(r, 20)?,
        },
    })
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
    ])
}

fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}

fn load_directory_sync(c: &mut Connection) -> rusqlite::Result<DirectoryData> {
    let tx = c.transaction()?;
    let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |r| {
        r.get(0)
    })?;
    let orgs = tx
        .prepare("SELECT id, name, created_at FROM orgs ORDER BY id")?
        .query_map([], |r| {
            Ok(Org {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: time_col(r, 2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let teams = tx
        .prepare("SELECT id, org_id, name, created_at FROM teams ORDER BY id")?
        .query_map([], |r| {
            Ok(Team {
                id: r.get(0)?,
                org_id: r.get(1)?,
                name: r.get(2)?,
                created_at: time_col(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let tiers = tx
        .prepare("SELECT id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute FROM tiers ORDER BY id")?
        .query_map([], |r| {
            let all: bool = r.get(2)?;
            let allowed: String = r.get(3)?;
            let policy: String = r.get(4)?;
            let downgrade: Option<String> = r.get(5)?;
            tier_from_parts(r.get(0)?, r.get(1)?, all, &allowed, &policy, downgrade, (r.get(6)?, r.get(7)?))
                .map_err(|e| conv_err(3, e))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let members = tx
        .prepare("SELECT id, display_name, team_id, tier_id, state, created_at, removed_at FROM members ORDER BY id")?
        .query_map([], |r| {
            Ok(Member {
                id: r.get(0)?,
                display_name: r.get(1)?,
                team_id: r.get(2)?,
                tier_id: r.get(3)?,
                state: parsed(r, 4)?,
                created_at: time_col(r, 5)?,
                removed_at: opt_time_col(r, 6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let budgets = tx
        .prepare(
            "SELECT scope, scope_id, win, limit_amount FROM budgets ORDER BY scope, scope_id, win",
        )?
        .query_map([], |r| {
            Ok(Budget {
                scope: parsed(r, 0)?,
                scope_id: r.get(1)?,
                window: parsed(r, 2)?,
                limit: parsed(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let raises = tx
        .prepare("SELECT id, scope, scope_id, win, amount, until, reason, created_at FROM budget_raises ORDER BY created_at")?
        .query_map([], |r| {
            Ok(BudgetRaise {
                id: r.get(0)?,
                scope: parsed(r, 1)?,
                scope_id: r.get(2)?,
                window: parsed(r, 3)?,
                amount: parsed(r, 4)?,
                until: time_col(r, 5)?,
                reason: r.get(6)?,
                created_at: time_col(r, 7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let virtual_keys = tx
        .prepare(
            "SELECT id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces, last_used_at \
             FROM virtual_keys ORDER BY created_at",
        )?
        .query_map([], |r| {
            Ok(VirtualKey {
                id: r.get(0)?,
                member_id: r.get(1)?,
                name: r.get(2)?,
                key_hash: r.get(3)?,
                created_at: time_col(r, 4)?,
                expires_at: opt_time_col(r, 5)?,
                disabled: r.get(6)?,
                revoked_at: opt_time_col(r, 7)?,
                replaces: r.get(8)?,
                last_used_at: opt_time_col(r, 9)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let upstream_keys = tx
        .prepare("SELECT id, member_id, label, key_hash, secret_enc, created_at, disabled FROM upstream_keys ORDER BY created_at, id")?
        .query_map([], |r| {
            let enc: Option<String> = r.get(4)?;
            Ok((
                UpstreamKey {
                    id: r.get(0)?,
                    member_id: r.get(1)?,
                    label: r.get(2)?,
                    key_hash: r.get(3)?,
                    has_secret: enc.is_some(),
                    created_at: time_col(r, 5)?,
                    disabled: r.get(6)?,
                },
                enc,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.commit()?;
    Ok(DirectoryData {
        seq,
        orgs,
        teams,
        tiers,
        members,
        budgets,
        raises,
        virtual_keys,
        upstream_keys,
    })
}

/// Builds a tier from its stored columns (shared with PostgreSQL).
pub(crate) fn tier_from_parts(
    id: String,
    name: String,
    all_models: bool,
    allowed_json: &str,
    policy: &str,
    downgrade: Option<String>,
    (rpm, tpm): (Option<i64>, Option<i64>),
) -> Result<Tier, String> {
    let models = if all_models {
        ModelAccess::All
    } else {
        ModelAccess::Allow(serde_json::from_str(allowed_json).map_err(|e| e.to_string())?)
    };
    let on_disallowed = match (policy, downgrade) {
        ("deny", _) => OnDisallowed::Deny,
        ("downgrade", Some(m)) => OnDisallowed::Downgrade(m),
        (other, _) => return Err(format!("bad tier policy {other:?}")),
    };
    Ok(Tier {
        id,
        name,
        models,
        on_disallowed,
        requests_per_minute: rpm.and_then(|n| u32::try_from(n).ok()),
        tokens_per_minute: tpm.and_then(|n| u64::try_from(n).ok()),
    })
}

/// The tier's rate limits as stored (shared with PostgreSQL).
pub(crate) fn tier_limit_parts(t: &Tier) -> (Option<i64>, Option<i64>) {
    (
        t.requests_per_minute.map(i64::from),
        t.tokens_per_minute.and_then(|n| i64::try_from(n).ok()),
    )
}

/// (all_models, allowed json, policy, downgrade model) of a tier (shared with PostgreSQL).
pub(crate) fn tier_parts(t: &Tier) -> (bool, String, &'static str, Option<String>) {
    let (all, list) = match &t.models {
        ModelAccess::All => (true, Vec::new()),
        ModelAccess::Allow(l) => (false, l.clone()),
    };
    let allowed = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
    let (policy, down) = match &t.on_disallowed {
        OnDisallowed::Deny => ("deny", None),
        OnDisallowed::Downgrade(m) => ("downgrade", Some(m.clone())),
    };
    (all, allowed, policy, down)
}

fn apply_sync(
    c: &mut Connection,
    change: &DirectoryChange,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = match change {
        DirectoryChange::PutOrg(o) => tx.execute(
            "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            params![o.id, o.name, ts(o.created_at)],
        )?,
        DirectoryChange::PutTeam(t) => tx.execute(
            "INSERT INTO teams (id, org_id, name, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name",
            params![t.id, t.org_id, t.name, ts(t.created_at)],
        )?,
        DirectoryChange::PutTier(t) => {
            let (all, allowed, policy, down) = tier_parts(t);
            let (rpm, tpm) = tier_limit_parts(t);
            tx.execute(
                "INSERT INTO tiers (id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, all_models = excluded.all_models, \
                 allowed_models = excluded.allowed_models, on_disallowed = excluded.on_disallowed, downgrade_model = excluded.downgrade_model, \
                 requests_per_minute = excluded.requests_per_minute, tokens_per_minute = excluded.tokens_per_minute",
                params![t.id, t.name, all, allowed, policy, down, rpm, tpm],
            )?
        }
        DirectoryChange::PutMember(m) => tx.execute(
            "INSERT INTO members (id, display_name, team_id, tier_id, state, created_at, removed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, team_id = excluded.team_id, \
             tier_id = excluded.tier_id, state = excluded.state, removed_at = excluded.removed_at",
            params![m.id, m.display_name, m.team_id, m.tier_id, m.state.as_str(), ts(m.created_at), m.removed_at.map(ts)],
        )?,
        DirectoryChange::SetBudget(b) => tx.execute(
            "INSERT INTO budgets (scope, scope_id, win, limit_amount) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(scope, scope_id, win) DO UPDATE SET limit_amount = excluded.limit_amount",
            params![b.scope.as_str(), b.scope_id, b.window.as_str(), b.limit.to_canonical_string()],
        )?,
        DirectoryChange::ClearBudget { scope, scope_id, window } => tx.execute(
            "DELETE FROM budgets WHERE scope = ?1 AND scope_id = ?2 AND win = ?3",
            params![scope.as_str(), scope_id, window.as_str()],
        )?,
        DirectoryChange::AddRaise(r) => tx.execute(
            "INSERT INTO budget_raises (id, scope, scope_id, win, amount, until, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.id,
                r.scope.as_str(),
                r.scope_id,
                r.window.as_str(),
                r.amount.to_canonical_string(),
                ts(r.until),
                r.reason,
                ts(r.created_at)
            ],
        )?,
        DirectoryChange::RemoveRaise(id) => tx.execute("DELETE FROM budget_raises WHERE id = ?1", params![id])?,
        DirectoryChange::InsertVirtualKey(k) => tx.execute(
            "INSERT INTO virtual_keys (id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                k.id,
                k.member_id,
                k.name,
                k.key_hash,
                ts(k.created_at),
                k.expires_at.map(ts),
                k.disabled,
                k.revoked_at.map(ts),
                k.replaces
            ],
        )?,
        DirectoryChange::UpdateVirtualKey {
            id,
            disabled,
            revoked_at,
            expires_at,
        } => tx.execute(
            "UPDATE virtual_keys SET disabled = ?2, revoked_at = ?3, expires_at = ?4 WHERE id = ?1",
            params![id, disabled, revoked_at.map(ts), expires_at.map(ts)],
        )?,
        DirectoryChange::PutUpstreamKey { key, secret_enc } => tx.execute(
            "INSERT INTO upstream_keys (id, member_id, label, key_hash, secret_enc, created_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET member_id = excluded.member_id, label = excluded.label, key_hash = excluded.key_hash, \
             secret_enc = excluded.secret_enc, disabled = excluded.disabled",
            params![key.id, key.member_id, key.label, key.key_hash, secret_enc, ts(key.created_at), key.disabled],
        )?,
        DirectoryChange::RemoveUpstreamKey(id) => tx.execute("DELETE FROM upstream_keys WHERE id = ?1", params![id])?,
    };
    let (kind, entity) = change.describe();
    tx.execute(
        "INSERT INTO change_log (at, kind, entity) VALUES (?1, ?2, ?3)",
        params![ts(now), kind, entity],
    )?;
    tx.commit()?;
    Ok(n)
}

impl Store for SqliteStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        self.run(|c| load_directory_sync(c).map_err(db("loading the directory")))
            .await
    }

    async fn change_seq(&self) -> Result<i64, LedgerError> {
        self.run(|c| {
            c.query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |r| {
                r.get(0)
            })
            .map_err(db("reading the change log"))
        })
        .await
    }

    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.run(move |c| {
            let n = apply_sync(c, &change, now).map_err(db("changing the directory"))?;
            match change {
                DirectoryChange::UpdateVirtualKey { id, .. } if n == 0 => {
                    Err(LedgerError::NotFound {
                        kind: "virtual key",
                        id,
                    })
                }
                _ => Ok(()),
            }
        })
        .await
    }

    async fn events(&self, f: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        self.run(move |c| {
            let order = if f.newest_first { "time DESC, seq DESC" } else { "time ASC, seq ASC" };
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM usage_events WHERE (?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR time < ?2) \
                 AND (?3 IS NULL OR member_id = ?3) AND (?4 IS NULL OR team_id = ?4) AND (?5 = 0 OR outcome = 'provisional') \
                 AND (?7 IS NULL OR route = ?7) ORDER BY {order} LIMIT ?6"
            );
            let limit = f.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)).unwrap_or(-1);
            let mut stmt = c.prepare_cached(&sql).map_err(db("reading events"))?;
            stmt.query_map(
                params![
                    f.from.map(ts),
                    f.to.map(ts),
                    f.member,
                    f.team,
                    f.provisional_only,
                    limit,
                    f.route.map(ApiRoute::as_str),
                ],
                event_from_row,
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db("reading events"))
        })
        .await
    }

    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM usage_events WHERE request_id = ?1"),
                params![request_id],
                event_from_row,
            )
            .optional()
            .map_err(db("reading an event"))
        })
        .await
    }

    async fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> Result<Vec<WindowRow>, LedgerError> {
        self.run(move |c| window_rows_sync(c, &starts)).await
    }
}

pub(crate) fn window_rows_sync(
    c: &Connection,
    starts: &[(Window, NaiveDate)],
) -> Result<Vec<WindowRow>, LedgerError> {
    let mut out = Vec::new();
    let mut stmt = c
        .prepare_cached("SELECT scope, scope_id, spent FROM budget_windows WHERE win = ?1 AND window_start = ?2")
        .map_err(db("reading budget windows"))?;
    for (w, start) in starts {
        let rows = stmt
            .query_map(params![w.as_str(), start.to_string()], |r| {
                Ok((
                    parsed::<BudgetScope>(r, 0)?,
                    r.get::<_, String>(1)?,
                    parsed::<Money>(r, 2)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db("reading budget windows"))?;
        for (scope, id, spent) in rows {
            out.push(WindowRow {
                key: CellKey {
                    scope,
                    id: Arc::from(id.as_str()),
                    window: *w,
                    start: *start,
                },
                spent,
                leased: Money::ZERO,
            });
        }
    }
    Ok(out)
}
