//! [`Ledger`]: the public handle. Opens a backend, keeps the directory snapshot and the budget
//! engine, runs the background tasks (change watcher, maintenance, PostgreSQL writer) on a
//! `TaskTracker`, and exposes directory CRUD, authentication, reservations and queries, in
//! `impl` blocks by concern: `directory.rs`, `keys.rs`, `budgets.rs`, `usage.rs`, `outbox.rs`.

mod access;
mod budgets;

pub use access::TokenRefused;
mod directory;
mod health;
mod inflight;
mod keys;
mod outbox;
mod refusals;
mod usage;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{Money, SharedClock, SystemClock, Window};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::AnyStore;
use crate::budget::engine::{BudgetEngine, Mode};
use crate::directory::Directory;
use crate::error::LedgerError;
use crate::events::{WriterMsg, WriterTx};
use crate::journal::Journal;
use crate::keys::SecretKey;
use crate::postgres::PgStore;
use crate::sqlite::{SqliteStore, SqliteTarget};
use crate::store::DirectoryStore;

/// What a process does with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A gateway: reserves and settles. On SQLite only one serving process may own the file.
    Serving,
    /// A CLI or tool that changes the directory and reads reports; no budget engine or writer.
    Admin,
}

/// How to open a ledger.
#[derive(Clone)]
pub struct LedgerOptions {
    pub clock: SharedClock,
    pub role: Role,
    /// A hold not settled or released within this time is reclaimed (default 15 min, longer
    /// than any streaming response).
    pub reservation_ttl: Duration,
    /// How long the writer lingers after the first queued event to gather a bigger batch
    /// (default 0: group commit already batches whatever queued during the previous commit).
    pub flush_interval: Duration,
    /// Identifies this process's leases on PostgreSQL (default: a random UUID).
    pub instance_id: String,
    /// PostgreSQL: how long a stream runs before its generation id is added to its in-flight
    /// row (default 250 ms). The `UPDATE` is a group commit that a short stream's settle would
    /// queue behind; a stream that ends sooner skips it (its event carries the id), and a crash
    /// before it charges the hold's worst case, repaired from `/activity`.
    pub stream_generation_after: Duration,
    /// Encryption key for upstream secrets; `None` reads `ORTEAM_SECRET_KEY`.
    pub secret_key: Option<SecretKey>,
    /// How often the change log is polled (default 200 ms; PostgreSQL also gets NOTIFY).
    pub change_poll_interval: Duration,
    /// Expiry of PostgreSQL leases, renewed by a heartbeat every third of it (default 30 s).
    pub lease_ttl: Duration,
    /// Unused PostgreSQL lease is returned after this long without activity (default 2 s).
    pub lease_idle: Duration,
    /// SQLite `synchronous=FULL` (survives power loss) instead of `NORMAL` (survives process
    /// crashes, the default).
    pub sqlite_synchronous_full: bool,
    /// PostgreSQL: the event writer commits with `synchronous_commit=on` (each group commit
    /// waits for the WAL flush: survives a crash of the database server too; the default) or
    /// `off` (survives any crash of the gateway; see `postgres/writer.rs`). `off` is not the
    /// default yet: its faster commits expose a false denial in the lease path (DESIGN.md).
    pub postgres_synchronous_commit: bool,
    /// SQLite serving: journal settled events to a local append-only file so
    /// [`Reservation::settle_journaled`] returns after one `write(2)` instead of a database
    /// commit (default on; see `journal.rs`).
    pub journal: bool,
    /// A SQLite file that does not exist is an error ([`LedgerError::NoLedger`]) instead of a
    /// new, empty ledger: for commands that only read or change an existing one.
    pub must_exist: bool,
}

impl std::fmt::Debug for LedgerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerOptions")
            .field("role", &self.role)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("flush_interval", &self.flush_interval)
            .field("stream_generation_after", &self.stream_generation_after)
            .field("instance_id", &self.instance_id)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            clock: Arc::new(SystemClock),
            role: Role::Serving,
            reservation_ttl: Duration::from_secs(15 * 60),
            flush_interval: Duration::ZERO,
            instance_id: uuid::Uuid::new_v4().to_string(),
            stream_generation_after: Duration::from_millis(250),
            secret_key: None,
            change_poll_interval: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(30),
            lease_idle: Duration::from_secs(2),
            sqlite_synchronous_full: false,
            postgres_synchronous_commit: true,
            journal: true,
            must_exist: false,
        }
    }
}

impl LedgerOptions {
    pub fn serving() -> Self {
        Self::default()
    }
    pub fn admin() -> Self {
        LedgerOptions {
            role: Role::Admin,
            ..Self::default()
        }
    }
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
    pub fn with_secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }
    pub fn with_reservation_ttl(mut self, ttl: Duration) -> Self {
        self.reservation_ttl = ttl;
        self
    }
    /// See [`LedgerOptions::must_exist`].
    pub fn existing(mut self) -> Self {
        self.must_exist = true;
        self
    }
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }
}

/// What [`Ledger::reclaim_stale`] reclaimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Local holds past their TTL.
    pub holds: usize,
    /// PostgreSQL lease rows of dead instances.
    pub leases: u64,
}

/// The ledger. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    store: AnyStore,
    pg: Option<Arc<PgStore>>,
    engine: Arc<BudgetEngine>,
    dir: RwLock<Arc<Directory>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Held by a maintenance tick for its whole run, and by `shutdown` before it returns the
    /// leases: a tick that already took idle leases out of the engine finishes returning them
    /// first, and none starts afterwards (see `shutdown`).
    maintenance: tokio::sync::Mutex<()>,
    opts: LedgerOptions,
    secret_key: Option<SecretKey>,
    writer: Option<WriterTx>,
    /// SQLite serving: the write-ahead journal of settled events (`journal.rs`).
    journal: Option<Arc<Journal>>,
    /// What resolving requests left in flight by dead processes has done (`inflight.rs`).
    resolved: Mutex<crate::inflight::Resolved>,
    /// How many times the change watcher has looked for directory changes.
    change_polls: Arc<AtomicU64>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Refusal counts not yet handed to the writer (`refusals.rs`).
    refused: Mutex<crate::refusals::PendingRefusals>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    closed: AtomicBool,
    backend_name: &'static str,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.inner.backend_name)
            .field("role", &self.inner.opts.role)
            .finish_non_exhaustive()
    }
}

const LEASE_MULTIPLIER: u64 = 32;
const RESERVE_ATTEMPTS: usize = 6;

fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Ledger {
    /// Opens a ledger. `url` is `sqlite://PATH`, `sqlite:PATH`, a plain path,
    /// `sqlite::memory:`, or `postgres://…` (`?options=-c search_path=SCHEMA` selects a schema).
    /// Migrations are applied before anything else.
    pub async fn open(url: &str, opts: LedgerOptions) -> Result<Ledger, LedgerError> {
        let secret_key = match &opts.secret_key {
            Some(k) => Some(k.clone()),
            None => SecretKey::from_env()?,
        };
        let serving = opts.role == Role::Serving;
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let mut resolved = crate::inflight::Resolved::default();
        let (store, pg, engine, writer, journal, backend_name) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let pg = Arc::new(PgStore::open(url).await?);
                let engine = Arc::new(BudgetEngine::new(Mode::Leased, td(opts.reservation_ttl)));
                let writer = if serving {
                    let client = pg.connect_dedicated(&tracker).await?;
                    let (tx, rx) = mpsc::unbounded_channel();
                    tracker.spawn(crate::postgres::writer::run(
                        pg.clone(),
                        client,
                        rx,
                        engine.clone(),
                        crate::postgres::writer::WriterSettings {
                            instance: opts.instance_id.clone(),
                            linger: opts.flush_interval,
                            synchronous_commit: opts.postgres_synchronous_commit,
                        },
                        tracker.clone(),
                    ));
                    Some(tx)
                } else {
                    None
                };
                (
                    AnyStore::Postgres(pg.clone()),
                    Some(pg),
                    engine,
                    writer,
                    None,
                    "postgres",
                )
            } else {
                let target = SqliteTarget::parse(url)
                    .ok_or_else(|| LedgerError::UnsupportedUrl(url.to_owned()))?;
                if let SqliteTarget::File(path) = &target {
                    check_sqlite_path(path, opts.must_exist)?;
                }
                let sync_full = opts.sqlite_synchronous_full;
                let t2 = target.clone();
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::open(&t2, serving, sync_full))
                        .await
                        .map_err(|e| LedgerError::storage("opening the sqlite database", e))??;
                let engine = Arc::new(BudgetEngine::new(Mode::Owned, td(opts.reservation_ttl)));
                let (writer, journal) = if serving {
                    let mut conn = target.connect_writer(sync_full)?;
                    // Events the previous serving process journaled but may not have committed
                    // go in before the durable spend is loaded.
                    let journal = match (&target, opts.journal) {
                        (SqliteTarget::File(path), true) => {
                            resolved = crate::sqlite::writer::replay_journal(&mut conn, path)?;
                            Some(Arc::new(Journal::create(path)?))
                        }
                        _ => None,
                    };
                    // The serving process owns the whole budget: load the durable spend of the
                    // current windows once; from here on the engine is authoritative.
                    let now = opts.clock.now();
                    let starts: Vec<_> = Window::ALL
                        .iter()
                        .map(|w| (*w, w.start_date(now.date_naive())))
                        .collect();
                    let rows = store.run_sync(|c| crate::sqlite::window_rows_sync(c, &starts))?;
                    engine.load_spent(rows.into_iter().map(|r| (r.key, r.spent)));
                    let (tx, rx) = mpsc::unbounded_channel();
                    crate::sqlite::writer::spawn(
                        conn,
                        rx,
                        engine.clone(),
                        opts.flush_interval,
                        journal.clone(),
                    )?;
                    (Some(tx), journal)
                } else {
                    // A serving process that died leaves journaled events behind; with no server
                    // running, an admin process commits them so reports never miss them.
                    if let SqliteTarget::File(path) = &target
                        && crate::journal::has_leftovers(path)
                        && let Some(lock) = crate::sqlite::try_serve_lock(path)?
                    {
                        let mut conn = target.connect(sync_full)?;
                        resolved = crate::sqlite::writer::replay_journal(&mut conn, path)?;
                        drop(lock);
                    }
                    (None, None)
                };
                (
                    AnyStore::Sqlite(Arc::new(store)),
                    None,
                    engine,
                    writer,
                    journal,
                    "sqlite",
                )
            };
        let data = store.load_directory().await?;
        let dir = Directory::build(data, secret_key.as_ref());
        let (members, limits) = dir.engine_tables();
        engine.set_directory(members, limits);
        let inner = Arc::new(Inner {
            store,
            pg,
            engine,
            dir: RwLock::new(Arc::new(dir)),
            reload_lock: tokio::sync::Mutex::new(()),
            maintenance: tokio::sync::Mutex::new(()),
            opts,
            secret_key,
            writer,
            journal,
            resolved: Mutex::new(resolved),
            change_polls: Arc::new(AtomicU64::new(0)),
            touched: Mutex::new(HashMap::new()),
            refused: Mutex::new(Default::default()),
            tracker,
            cancel,
            closed: AtomicBool::new(false),
            backend_name,
        });
        let ledger = Ledger { inner };
        ledger.start_in_flight().await?;
        ledger.spawn_background().await?;
        Ok(ledger)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend_name
    }

    pub fn role(&self) -> Role {
        self.inner.opts.role
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.opts.instance_id
    }

    /// The ledger clock's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.opts.clock.now()
    }

    /// The storage backend (for the outbox and correction queue in `outbox.rs`).
    pub(crate) fn store(&self) -> &AnyStore {
        &self.inner.store
    }

    async fn spawn_background(&self) -> Result<(), LedgerError> {
        let weak = Arc::downgrade(&self.inner);
        let cancel = self.inner.cancel.clone();
        let poll = self.inner.opts.change_poll_interval;
        // PostgreSQL: LISTEN on a dedicated connection wakes the watcher at once; the poll is
        // the safety net if a notification is missed or the connection drops.
        let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
        if let Some(pg) = &self.inner.pg {
            pg.listen_for_changes(wake_tx, &self.inner.tracker, &cancel)
                .await?;
        }
        let w = weak.clone();
        let c = cancel.clone();
        let polls = self.inner.change_polls.clone();
        self.inner.tracker.spawn(async move {
            // Without a listener (SQLite) or once it is gone, `recv` would answer `None` at once
            // on every turn: the watcher must then only poll, or it spins.
            let mut listening = true;
            loop {
                tokio::select! {
                    _ = c.cancelled() => break,
                    _ = tokio::time::sleep(poll) => {}
                    woken = wake_rx.recv(), if listening => {
                        if woken.is_none() {
                            listening = false;
                            continue;
                        }
                    }
                }
                let Some(inner) = w.upgrade() else { break };
                let ledger = Ledger { inner };
                polls.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = ledger.refresh_if_changed().await {
                    tracing::warn!(error = %e, "directory refresh failed");
                }
            }
        });
        if self.inner.opts.role == Role::Serving {
            let w = weak;
            let c = cancel;
            self.inner.tracker.spawn(async move {
                let mut last_heartbeat: Option<DateTime<Utc>> = None;
                loop {
                    tokio::select! {
                        _ = c.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    let Some(inner) = w.upgrade() else { break };
                    let ledger = Ledger { inner };
                    let _tick = ledger.inner.maintenance.lock().await;
                    if ledger.inner.closed.load(Ordering::Acquire) {
                        break;
                    }
                    if let Err(e) = ledger.maintain(&mut last_heartbeat).await {
                        tracing::warn!(error = %e, "ledger maintenance failed");
                    }
                }
            });
        }
        Ok(())
    }

    /// Periodic upkeep: expire leaked holds, flush key last-use times and refusal counts, and on PostgreSQL renew,
    /// return and reclaim leases.
    async fn maintain(
        &self,
        last_heartbeat: &mut Option<DateTime<Utc>>,
    ) -> Result<(), LedgerError> {
        let now = self.now();
        self.inner.engine.expire_holds(now);
        self.inner.engine.gc(now);
        let touched: Vec<_> = self.inner.touched.lock().drain().collect();
        if !touched.is_empty()
            && let Some(w) = &self.inner.writer
        {
            let _ = w.send(WriterMsg::TouchKeys(touched));
        }
        self.hand_refusals_to_writer();
        if let AnyStore::Sqlite(s) = &self.inner.store {
            s.checkpoint().await?;
        }
        if let Some(pg) = &self.inner.pg {
            let instance = &self.inner.opts.instance_id;
            let idle = self.inner.engine.take_idle_leases(
                now,
                now - td(self.inner.opts.lease_idle),
                false,
            );
            self.return_leases(pg, idle).await?;
            let ttl = td(self.inner.opts.lease_ttl);
            if last_heartbeat.is_none_or(|t| now - t >= ttl / 3) {
                pg.heartbeat(instance, now + ttl).await?;
                // After the leases: an instance never looks alive longer than its leases do.
                pg.register_instance(instance, now + ttl).await?;
                // A dead instance's holds are charged before its leases return to the budgets
                // (same `now` for both), so what upstream may have billed is never re-granted.
                self.resolve_in_flight(now, false).await?;
                pg.reclaim_expired(instance, now).await?;
                *last_heartbeat = Some(now);
            }
        }
        Ok(())
    }

    async fn return_leases(
        &self,
        pg: &PgStore,
        items: Vec<(i64, Money)>,
    ) -> Result<(), LedgerError> {
        if items.is_empty() {
            return Ok(());
        }
        match pg.debit_leases(&self.inner.opts.instance_id, &items).await {
            Ok(_) => Ok(()),
            Err(e) => {
                for (id, amt) in items {
                    self.inner.engine.restore_lease(id, amt);
                }
                Err(e)
            }
        }
    }

    /// How many times this process has looked for directory changes (the change watcher's
    /// cadence: once per poll interval or notification, never a busy loop).
    pub fn change_polls(&self) -> u64 {
        self.inner.change_polls.load(Ordering::Relaxed)
    }

    /// Whether settles are journaled (SQLite serving with the journal on): then
    /// [`Reservation::settle_journaled`] completes without waiting.
    pub fn journaling(&self) -> bool {
        self.inner.journal.is_some()
    }

    /// Waits until everything settled so far is committed.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let Some(w) = &self.inner.writer else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        w.send(WriterMsg::Flush(tx))
            .map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)
    }

    /// Drains every queued write, returns unused PostgreSQL leases and stops background tasks.
    /// Reservations and settles fail with [`LedgerError::Closed`] afterwards.
    pub async fn shutdown(&self) -> Result<(), LedgerError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let touched: Vec<_> = self.inner.touched.lock().drain().collect();
        if !touched.is_empty()
            && let Some(w) = &self.inner.writer
        {
            let _ = w.send(WriterMsg::TouchKeys(touched));
        }
        self.hand_refusals_to_writer();
        let flushed = self.flush().await;
        if flushed.is_ok()
            && let Some(j) = &self.inner.journal
        {
            // Everything journaled is committed: a clean stop leaves no segment to replay.
            j.close();
        }
        // Wait for a maintenance tick in progress: it may have taken idle leases out of the
        // engine and still be returning them; a process ending before that round trip
        // completed would leave them counted as leased until they expire.
        let _no_more_ticks = self.inner.maintenance.lock().await;
        if let Some(pg) = &self.inner.pg {
            let now = self.now();
            let all = self.inner.engine.take_idle_leases(now, now, true);
            self.return_leases(pg, all).await?;
            pg.drop_empty_leases(&self.inner.opts.instance_id).await?;
            pg.unregister_instance(&self.inner.opts.instance_id).await?;
        }
        if let AnyStore::Sqlite(s) = &self.inner.store {
            s.release_serve_lock();
        }
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        flushed
    }
}

/// A missing file is an error when it must exist; a missing directory always is (SQLite would
/// only say "unable to open database file").
fn check_sqlite_path(path: &std::path::Path, must_exist: bool) -> Result<(), LedgerError> {
    if path.exists() {
        return Ok(());
    }
    let shown = path.display().to_string();
    if must_exist {
        return Err(LedgerError::NoLedger { path: shown });
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(LedgerError::MissingDirectory {
                path: shown,
                dir: dir.display().to_string(),
            })
        }
        _ => Ok(()),
    }
}

fn not_found(kind: &'static str, id: &str) -> LedgerError {
    LedgerError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

/// Directory ids are slugs: they appear in team files, URLs and CSV.
fn valid_id(id: &str) -> Result<(), LedgerError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!(
            "id {id:?} must be 1-128 characters of letters, digits, '-', '_', '.', '@'"
        )))
    }
}
