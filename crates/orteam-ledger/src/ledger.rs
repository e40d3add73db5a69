//! [`Ledger`]: the public handle. Opens a backend, keeps the directory snapshot and the budget
//! engine, runs the background tasks (change watcher, maintenance, PostgreSQL writer) on a
//! `TaskTracker`, and exposes directory CRUD, authentication, reservations and queries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{Money, SharedClock, SystemClock, Window};
use parking_lot::{Mutex, RwLock};
use secrecy::SecretString;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::budget::engine::{BudgetEngine, CellKey, Mode, TryReserve};
use crate::budget::{Durability, Reservation, Settled};
use crate::directory::{Directory, DirectoryChange};
use crate::error::{AuthError, BudgetExceeded, LedgerError};
use crate::events::{Correction, WriteJob, WriterMsg, WriterTx};
use crate::journal::Journal;
use crate::keys::{self, SecretKey};
use crate::model::*;
use crate::postgres::PgStore;
use crate::postgres::lease::LeaseResult;
use crate::query::{self, DailyPoint, EventFilter, UsageGroup, UsageQuery};
use crate::sqlite::{SqliteStore, SqliteTarget};
use crate::store::{AnyStore, Store, WindowRow};

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
}

impl std::fmt::Debug for LedgerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerOptions")
            .field("role", &self.role)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("flush_interval", &self.flush_interval)
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
            secret_key: None,
            change_poll_interval: Duration::from_millis(200),
            lease_ttl: Duration::from_secs(30),
            lease_idle: Duration::from_secs(2),
            sqlite_synchronous_full: false,
            postgres_synchronous_commit: true,
            journal: true,
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
    opts: LedgerOptions,
    secret_key: Option<SecretKey>,
    writer: Option<WriterTx>,
    /// SQLite serving: the write-ahead journal of settled events (`journal.rs`).
    journal: Option<Arc<Journal>>,
    /// How many times the change watcher has looked for directory changes.
    change_polls: Arc<AtomicU64>,
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
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
        let (store, pg, engine, writer, journal, backend_name) = if url.starts_with("postgres://")
            || url.starts_with("postgresql://")
        {
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
            let sync_full = opts.sqlite_synchronous_full;
            let t2 = target.clone();
            let store =
                tokio::task::spawn_blocking(move || SqliteStore::open(&t2, serving, sync_full))
                    .await
                    .map_err(|e| LedgerError::storage("opening the sqlite database", e))??;
            let engine = Arc::new(BudgetEngine::new(Mode::Owned, td(opts.reservation_ttl)));
            let (writer, journal) = if serving {
                let mut conn = target.connect(sync_full)?;
                // Checkpointing inside the writer's commits costs it a large share of its
                // time; let the WAL grow and checkpoint from the maintenance task instead.
                // A 4 MiB page cache holds the hot right edges of the table and its indexes;
                // 32 MiB was slower (more page allocation) and 15 MiB more of the gateway's RSS.
                conn.execute_batch(
                        "PRAGMA wal_autocheckpoint=16384; PRAGMA journal_size_limit=134217728; PRAGMA cache_size=-4096;",
                    )
                    .map_err(|e| LedgerError::storage("configuring the sqlite writer", e))?;
                // Events the previous serving process journaled but may not have committed
                // go in before the durable spend is loaded.
                let journal = match (&target, opts.journal) {
                    (SqliteTarget::File(path), true) => {
                        crate::sqlite::writer::replay_journal(&mut conn, path)?;
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
                    crate::sqlite::writer::replay_journal(&mut conn, path)?;
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
            opts,
            secret_key,
            writer,
            journal,
            change_polls: Arc::new(AtomicU64::new(0)),
            touched: Mutex::new(HashMap::new()),
            tracker,
            cancel,
            closed: AtomicBool::new(false),
            backend_name,
        });
        let ledger = Ledger { inner };
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
            let (client, mut conn) = pg
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(crate::postgres::db("connecting the change listener"))?;
            let c2 = cancel.clone();
            self.inner.tracker.spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                loop {
                    tokio::select! {
                        _ = c2.cancelled() => break,
                        m = futures::StreamExt::next(&mut messages) => match m {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => { let _ = wake_tx.send(()); }
                            Some(Ok(_)) => {}
                            _ => break,
                        }
                    }
                }
            });
            client
                .batch_execute(&format!("LISTEN \"{}\"", pg.channel))
                .await
                .map_err(crate::postgres::db("listening for directory changes"))?;
            // Keep the client alive as long as the watcher runs.
            let c3 = cancel.clone();
            self.inner.tracker.spawn(async move {
                c3.cancelled().await;
                drop(client);
            });
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
                    if let Err(e) = ledger.maintain(&mut last_heartbeat).await {
                        tracing::warn!(error = %e, "ledger maintenance failed");
                    }
                }
            });
        }
        Ok(())
    }

    /// Periodic upkeep: expire leaked holds, flush key last-use times, and on PostgreSQL renew,
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

    // ---------------------------------------------------------------- directory

    /// The current directory snapshot.
    pub fn directory(&self) -> Arc<Directory> {
        self.inner.dir.read().clone()
    }

    /// Reloads the directory if another process changed it.
    pub async fn refresh_if_changed(&self) -> Result<bool, LedgerError> {
        let seq = self.inner.store.change_seq().await?;
        if seq == self.inner.dir.read().seq {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Reloads the directory now (explicit auth-cache invalidation).
    pub async fn reload(&self) -> Result<(), LedgerError> {
        let _g = self.inner.reload_lock.lock().await;
        let data = self.inner.store.load_directory().await?;
        let dir = Directory::build(data, self.inner.secret_key.as_ref());
        let (members, limits) = dir.engine_tables();
        self.inner.engine.set_directory(members, limits);
        *self.inner.dir.write() = Arc::new(dir);
        Ok(())
    }

    async fn change(&self, change: DirectoryChange) -> Result<(), LedgerError> {
        self.inner.store.apply(change, self.now()).await?;
        // Our own change is visible to us before we return: revocation is immediate here.
        self.reload().await
    }

    pub async fn put_org(&self, id: &str, name: &str) -> Result<Org, LedgerError> {
        valid_id(id)?;
        let org = Org {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: self
                .directory()
                .orgs
                .get(id)
                .map(|o| o.created_at)
                .unwrap_or_else(|| self.now()),
        };
        self.change(DirectoryChange::PutOrg(org.clone())).await?;
        Ok(org)
    }

    pub async fn put_team(&self, id: &str, org_id: &str, name: &str) -> Result<Team, LedgerError> {
        valid_id(id)?;
        let dir = self.directory();
        if !dir.orgs.contains_key(org_id) {
            return Err(not_found("org", org_id));
        }
        let team = Team {
            id: id.to_owned(),
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            created_at: dir
                .teams
                .get(id)
                .map(|t| t.created_at)
                .unwrap_or_else(|| self.now()),
        };
        self.change(DirectoryChange::PutTeam(team.clone())).await?;
        Ok(team)
    }

    pub async fn put_tier(&self, tier: Tier) -> Result<(), LedgerError> {
        valid_id(&tier.id)?;
        self.change(DirectoryChange::PutTier(tier)).await
    }

    /// Creates or updates a member (a removed member put again becomes active).
    pub async fn put_member(&self, m: NewMember) -> Result<Member, LedgerError> {
        valid_id(&m.id)?;
        let dir = self.directory();
        if !dir.teams.contains_key(&m.team_id) {
            return Err(not_found("team", &m.team_id));
        }
        if !dir.tiers.contains_key(&m.tier_id) {
            return Err(not_found("tier", &m.tier_id));
        }
        let member = Member {
            id: m.id.clone(),
            display_name: m.display_name,
            team_id: m.team_id,
            tier_id: m.tier_id,
            state: MemberState::Active,
            created_at: dir
                .members
                .get(&m.id)
                .map(|x| x.created_at)
                .unwrap_or_else(|| self.now()),
            removed_at: None,
        };
        self.change(DirectoryChange::PutMember(member.clone()))
            .await?;
        Ok(member)
    }

    /// Marks a member removed: their keys stop authenticating and they cannot reserve.
    /// History is kept.
    pub async fn remove_member(&self, id: &str) -> Result<(), LedgerError> {
        let mut m = self
            .directory()
            .members
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("member", id))?;
        m.state = MemberState::Removed;
        m.removed_at = Some(self.now());
        self.change(DirectoryChange::PutMember(m)).await
    }

    /// Sets a budget limit for a scope and window (windows are UTC calendar windows; weeks start
    /// on Monday).
    pub async fn set_budget(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
        limit: Money,
    ) -> Result<(), LedgerError> {
        if limit.is_negative() {
            return Err(LedgerError::Invalid(
                "a budget limit cannot be negative".into(),
            ));
        }
        self.check_scope(scope, scope_id)?;
        self.change(DirectoryChange::SetBudget(Budget {
            scope,
            scope_id: scope_id.to_owned(),
            window,
            limit,
        }))
        .await
    }

    pub async fn clear_budget(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
    ) -> Result<(), LedgerError> {
        self.change(DirectoryChange::ClearBudget {
            scope,
            scope_id: scope_id.to_owned(),
            window,
        })
        .await
    }

    /// Adds `amount` to a budget's limit until `until`, after which it is gone by itself.
    pub async fn add_raise(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
        amount: Money,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<BudgetRaise, LedgerError> {
        if amount.is_negative() || amount.is_zero() {
            return Err(LedgerError::Invalid("a raise must be positive".into()));
        }
        self.check_scope(scope, scope_id)?;
        let raise = BudgetRaise {
            id: uuid::Uuid::new_v4().to_string(),
            scope,
            scope_id: scope_id.to_owned(),
            window,
            amount,
            until,
            reason: reason.to_owned(),
            created_at: self.now(),
        };
        self.change(DirectoryChange::AddRaise(raise.clone()))
            .await?;
        Ok(raise)
    }

    pub async fn remove_raise(&self, id: &str) -> Result<(), LedgerError> {
        self.change(DirectoryChange::RemoveRaise(id.to_owned()))
            .await
    }

    fn check_scope(&self, scope: BudgetScope, id: &str) -> Result<(), LedgerError> {
        let dir = self.directory();
        let ok = match scope {
            BudgetScope::Member => dir.members.contains_key(id),
            BudgetScope::Team => dir.teams.contains_key(id),
            BudgetScope::Org => dir.orgs.contains_key(id),
        };
        if ok {
            Ok(())
        } else {
            Err(not_found(scope.as_str(), id))
        }
    }

    /// Issues a virtual key. The returned secret is the only copy: only its hash is stored.
    pub async fn create_virtual_key(
        &self,
        member_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedKey, LedgerError> {
        self.issue_key(member_id, name, expires_at, None).await
    }

    async fn issue_key(
        &self,
        member_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        replaces: Option<String>,
    ) -> Result<IssuedKey, LedgerError> {
        if !self.directory().members.contains_key(member_id) {
            return Err(not_found("member", member_id));
        }
        let (public_id, secret) = keys::generate_key();
        let key = VirtualKey {
            id: public_id,
            member_id: member_id.to_owned(),
            name: name.to_owned(),
            key_hash: keys::hash_key(secrecy::ExposeSecret::expose_secret(&secret)),
            created_at: self.now(),
            expires_at,
            disabled: false,
            revoked_at: None,
            replaces,
            last_used_at: None,
        };
        self.change(DirectoryChange::InsertVirtualKey(key.clone()))
            .await?;
        Ok(IssuedKey { key, secret })
    }

    /// Issues a replacement for key `id` (same member and name) and revokes the old one.
    pub async fn rotate_virtual_key(&self, id: &str) -> Result<IssuedKey, LedgerError> {
        let old = self.virtual_key(id)?;
        let new = self
            .issue_key(
                &old.member_id,
                &old.name,
                old.expires_at,
                Some(old.id.clone()),
            )
            .await?;
        self.revoke_virtual_key(id).await?;
        Ok(new)
    }

    fn virtual_key(&self, id: &str) -> Result<VirtualKey, LedgerError> {
        self.directory()
            .virtual_keys
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("virtual key", id))
    }

    pub async fn revoke_virtual_key(&self, id: &str) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled: k.disabled,
            revoked_at: Some(k.revoked_at.unwrap_or_else(|| self.now())),
            expires_at: k.expires_at,
        })
        .await
    }

    pub async fn set_virtual_key_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
        })
        .await
    }

    pub async fn set_virtual_key_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled: k.disabled,
            revoked_at: k.revoked_at,
            expires_at,
        })
        .await
    }

    /// Records a member's upstream OpenRouter key by its hash; its secret only when the gateway
    /// must hold it, encrypted with `ORTEAM_SECRET_KEY` (an error if no key is configured).
    pub async fn add_upstream_key(
        &self,
        member_id: &str,
        label: &str,
        key_hash: &str,
        secret: Option<&SecretString>,
    ) -> Result<UpstreamKey, LedgerError> {
        if !self.directory().members.contains_key(member_id) {
            return Err(not_found("member", member_id));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let secret_enc = match secret {
            Some(s) => Some(
                self.inner
                    .secret_key
                    .as_ref()
                    .ok_or(LedgerError::SecretKeyMissing)?
                    .encrypt(&id, s)?,
            ),
            None => None,
        };
        let key = UpstreamKey {
            id,
            member_id: member_id.to_owned(),
            label: label.to_owned(),
            key_hash: key_hash.to_owned(),
            has_secret: secret_enc.is_some(),
            created_at: self.now(),
            disabled: false,
        };
        self.change(DirectoryChange::PutUpstreamKey {
            key: key.clone(),
            secret_enc,
        })
        .await?;
        Ok(key)
    }

    pub async fn remove_upstream_key(&self, id: &str) -> Result<(), LedgerError> {
        self.change(DirectoryChange::RemoveUpstreamKey(id.to_owned()))
            .await
    }

    /// Authenticates a virtual key from memory: parse, look up by public id, compare SHA-256 in
    /// constant time, check revoked / disabled / expired / member removed.
    pub fn authenticate(&self, presented: &SecretString) -> Result<AuthContext, AuthError> {
        let now = self.now();
        let ctx = self.inner.dir.read().authenticate(presented, now)?;
        self.inner.touched.lock().insert(ctx.key_id.clone(), now);
        Ok(ctx)
    }

    // ---------------------------------------------------------------- budgets

    fn writer(&self) -> Result<&WriterTx, LedgerError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(LedgerError::Closed);
        }
        self.inner.writer.as_ref().ok_or(LedgerError::NotServing)
    }

    /// Holds `max_cost` against every budget that applies to `member` (member, team, org; every
    /// window with a limit, including active raises), atomically. Fails with
    /// [`LedgerError::BudgetExceeded`] naming the exhausted budget and when it resets.
    pub async fn reserve(&self, member: &str, max_cost: Money) -> Result<Reservation, LedgerError> {
        self.writer()?;
        let now = self.now();
        let mut last_denial: Option<(CellKey, Money, BudgetExceeded)> = None;
        for _ in 0..RESERVE_ATTEMPTS {
            let shorts = match self.inner.engine.try_reserve(member, max_cost, now)? {
                TryReserve::Held { id, member } => {
                    return Ok(Reservation {
                        id,
                        member: member.id,
                        team: member.team,
                        org: member.org,
                        amount: max_cost,
                        at: now,
                        ledger: Some(self.clone()),
                    });
                }
                TryReserve::Short(s) => s,
            };
            // Leased mode: ask the database for what the local lease lacks.
            let pg = self.inner.pg.as_ref().ok_or(LedgerError::NotServing)?;
            if let Some((key, need, err)) = &last_denial
                && shorts.iter().any(|s| &s.key == key && s.need >= *need)
            {
                // Denied by the database, and our own free lease has not grown since: a true denial.
                return Err(LedgerError::BudgetExceeded(Box::new(err.clone())));
            }
            let instance = &self.inner.opts.instance_id;
            let expires = now + td(self.inner.opts.lease_ttl);
            let want = max_cost
                .checked_mul_u64(LEASE_MULTIPLIER)
                .unwrap_or(max_cost);
            for s in shorts {
                let id = match s.db_id {
                    Some(id) => id,
                    None => pg.ensure_window(&s.key).await?,
                };
                match pg
                    .acquire_lease(id, &s.key, s.need, want.max(s.need), instance, now, expires)
                    .await?
                {
                    LeaseResult::Granted {
                        granted,
                        free,
                        spent,
                    } => {
                        self.inner
                            .engine
                            .add_lease(&s.key, id, granted, free, spent);
                    }
                    LeaseResult::Denied {
                        limit,
                        spent,
                        leased,
                    } => {
                        let free = limit
                            .saturating_sub_floor_zero(spent)
                            .saturating_sub_floor_zero(leased);
                        self.inner.engine.observe(&s.key, id, free, spent);
                        if free >= s.need {
                            // The conditional UPDATE judged an older row version than this
                            // read: a lease return or a settle committed in between, and the
                            // budget has room after all. Ask again rather than deny.
                            break;
                        }
                        last_denial = Some((
                            s.key.clone(),
                            s.need,
                            BudgetExceeded {
                                scope: s.key.scope,
                                scope_id: s.key.id.to_string(),
                                window: s.key.window,
                                limit,
                                spent,
                                held: leased,
                                requested: max_cost,
                                reset_at: s.key.window.reset_at(now),
                            },
                        ));
                        break;
                    }
                    LeaseResult::NoBudget => {
                        // The budget was removed by another process: pick that up and retry.
                        self.reload().await?;
                    }
                }
            }
        }
        match last_denial {
            Some((_, _, err)) => Err(LedgerError::BudgetExceeded(Box::new(err))),
            None => Err(LedgerError::Storage {
                op: "reserving budget",
                source: "budget lease contention did not settle".into(),
            }),
        }
    }

    pub(crate) fn release_hold(&self, id: u64) {
        self.inner.engine.release(id);
    }

    /// Moves the hold into spend in memory and builds the write job (no waiter yet).
    fn settle_job(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<(&WriterTx, WriteJob), LedgerError> {
        if usage.cost.is_negative() {
            self.release_hold(r.id);
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        let writer = match self.writer() {
            Ok(w) => w,
            Err(e) => {
                self.release_hold(r.id);
                return Err(e);
            }
        };
        let keys = CellKey::all_for(&r.member, &r.team, &r.org, r.at);
        let takes = self
            .inner
            .engine
            .settle(r.id, &keys, usage.cost, self.now());
        let event = UsageEvent {
            time: r.at,
            member_id: r.member.to_string(),
            team_id: r.team.to_string(),
            org_id: r.org.to_string(),
            usage,
        };
        Ok((
            writer,
            WriteJob {
                event,
                keys,
                takes,
                ack: None,
            },
        ))
    }

    /// Queues a job for the writer and waits for its commit.
    async fn commit_job(
        &self,
        writer: &WriterTx,
        mut job: WriteJob,
    ) -> Result<Settled, LedgerError> {
        let request_id = job.event.usage.request_id.clone();
        let cost = job.event.usage.cost;
        let (tx, rx) = oneshot::channel();
        job.ack = Some(tx);
        if let Err(mpsc::error::SendError(msg)) = writer.send(WriterMsg::Event(job)) {
            if let WriterMsg::Event(job) = msg {
                self.inner.engine.refund(&job.keys, cost, &job.takes);
            }
            return Err(LedgerError::Closed);
        }
        let new = rx.await.map_err(|_| LedgerError::Closed)??;
        Ok(Settled {
            request_id,
            cost,
            duplicate: !new,
        })
    }

    pub(crate) async fn settle_reservation(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<Settled, LedgerError> {
        let (writer, job) = self.settle_job(r, usage)?;
        self.commit_job(writer, job).await
    }

    /// Journals the settled event and returns (SQLite serving with a journal); otherwise, or
    /// when the journal cannot take it, waits for the database commit like a plain settle.
    pub(crate) async fn settle_reservation_journaled(
        &self,
        r: &Reservation,
        usage: Usage,
    ) -> Result<Durability, LedgerError> {
        let (writer, mut job) = self.settle_job(r, usage)?;
        if let Some(journal) = &self.inner.journal {
            match journal.append(job) {
                Ok(appended) => {
                    if appended.wake {
                        let _ = writer.send(WriterMsg::Kick);
                    }
                    if journal.written(appended.seq).await.is_ok() {
                        return Ok(Durability::Journaled);
                    }
                    // The journal write failed; the event is queued for the database.
                    self.flush().await?;
                    return Ok(Durability::Committed { duplicate: false });
                }
                // The journal cannot take it (broken, or the writer too far behind).
                Err(back) => job = *back,
            }
        }
        self.commit_job(writer, job)
            .await
            .map(|s| Durability::Committed {
                duplicate: s.duplicate,
            })
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

    /// Makes reads see every journaled event: waits for the writer when it is behind.
    async fn catch_up(&self) -> Result<(), LedgerError> {
        match &self.inner.journal {
            Some(j) if j.behind() => self.flush().await,
            _ => Ok(()),
        }
    }

    /// Replaces a (provisional) event's cost with the exact one and adjusts every budget window
    /// it counted against by the difference. A `provisional` event takes `outcome`, the outcome
    /// it has once its cost is exact (`Outcome::Ok`, or `Outcome::Partial` for a cut stream);
    /// any other outcome stays. A difference that overflows is an error and changes nothing.
    pub async fn correct_cost(
        &self,
        request_id: &str,
        exact: Money,
        outcome: Outcome,
    ) -> Result<Correction, LedgerError> {
        if exact.is_negative() {
            return Err(LedgerError::Invalid("a cost cannot be negative".into()));
        }
        if outcome == Outcome::Provisional {
            return Err(LedgerError::Invalid(
                "a corrected cost is exact: its outcome cannot be provisional".into(),
            ));
        }
        let (tx, rx) = oneshot::channel();
        self.writer()?
            .send(WriterMsg::Correct {
                request_id: request_id.to_owned(),
                exact,
                outcome,
                ack: tx,
            })
            .map_err(|_| LedgerError::Closed)?;
        rx.await
            .map_err(|_| LedgerError::Closed)??
            .ok_or_else(|| not_found("usage event", request_id))
    }

    /// Every budget window that applies to `member`, with what remains.
    pub async fn budget_status(&self, member: &str) -> Result<Vec<BudgetStatus>, LedgerError> {
        if self.inner.engine.mode() == Mode::Owned && self.inner.writer.is_some() {
            return self.inner.engine.status(member, self.now());
        }
        let dir = self.directory();
        let m = dir
            .members
            .get(member)
            .ok_or_else(|| LedgerError::UnknownMember(member.to_owned()))?;
        let org = dir.org_of_team(&m.team_id).unwrap_or_default().to_owned();
        let scopes = [
            (BudgetScope::Member, m.id.clone()),
            (BudgetScope::Team, m.team_id.clone()),
            (BudgetScope::Org, org),
        ];
        self.status_from_db(&dir, Some(&scopes)).await
    }

    /// Same as [`Ledger::budget_status`].
    pub async fn remaining(&self, member: &str) -> Result<Vec<BudgetStatus>, LedgerError> {
        self.budget_status(member).await
    }

    /// Every budget window of every scope.
    pub async fn all_budget_status(&self) -> Result<Vec<BudgetStatus>, LedgerError> {
        if self.inner.engine.mode() == Mode::Owned && self.inner.writer.is_some() {
            return Ok(self.inner.engine.all_status(self.now()));
        }
        let dir = self.directory();
        self.status_from_db(&dir, None).await
    }

    async fn status_from_db(
        &self,
        dir: &Directory,
        scopes: Option<&[(BudgetScope, String)]>,
    ) -> Result<Vec<BudgetStatus>, LedgerError> {
        let now = self.now();
        let starts = Window::ALL
            .iter()
            .map(|w| (*w, w.start_date(now.date_naive())))
            .collect();
        let rows: Vec<WindowRow> = self.inner.store.window_rows(starts).await?;
        let find = |b: &Budget| {
            rows.iter().find(|r| {
                r.key.scope == b.scope
                    && &*r.key.id == b.scope_id.as_str()
                    && r.key.window == b.window
            })
        };
        let mut out = Vec::new();
        let order: Vec<(BudgetScope, String)> = match scopes {
            Some(s) => s.to_vec(),
            None => dir
                .budgets
                .iter()
                .map(|b| (b.scope, b.scope_id.clone()))
                .collect(),
        };
        let mut seen = std::collections::HashSet::new();
        for (scope, id) in order {
            for b in dir
                .budgets
                .iter()
                .filter(|b| b.scope == scope && b.scope_id == id)
            {
                if !seen.insert((b.scope, b.scope_id.clone(), b.window)) {
                    continue;
                }
                let raised: Money = dir
                    .raises
                    .iter()
                    .filter(|r| {
                        r.scope == b.scope
                            && r.scope_id == b.scope_id
                            && r.window == b.window
                            && r.until > now
                    })
                    .map(|r| r.amount)
                    .sum();
                let limit = b.limit.checked_add(raised).unwrap_or(b.limit);
                let (spent, held) = find(b).map(|r| (r.spent, r.leased)).unwrap_or_default();
                out.push(BudgetStatus {
                    scope: b.scope,
                    scope_id: b.scope_id.clone(),
                    window: b.window,
                    window_start: b.window.start_date(now.date_naive()),
                    reset_at: b.window.reset_at(now),
                    base_limit: b.limit,
                    raised,
                    limit,
                    spent,
                    held,
                    remaining: limit
                        .saturating_sub_floor_zero(spent)
                        .saturating_sub_floor_zero(held),
                });
            }
        }
        Ok(out)
    }

    /// The budget with the least room for `member`, from memory (for the gateway's max_tokens
    /// clamp). `None` when no budget applies.
    pub fn tightest_remaining(&self, member: &str) -> Result<Option<TightestBudget>, LedgerError> {
        self.inner.engine.tightest(member, self.now())
    }

    /// Reclaims holds past their TTL and (PostgreSQL) the expired leases of dead instances.
    pub async fn reclaim_stale(&self) -> Result<Reclaimed, LedgerError> {
        let now = self.now();
        let holds = self.inner.engine.expire_holds(now);
        let leases = match &self.inner.pg {
            Some(pg) => {
                pg.reclaim_expired(&self.inner.opts.instance_id, now)
                    .await?
            }
            None => 0,
        };
        Ok(Reclaimed { holds, leases })
    }

    /// Number of live holds in this process.
    pub fn holds_in_flight(&self) -> usize {
        self.inner.engine.holds_len()
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
        let flushed = self.flush().await;
        if flushed.is_ok()
            && let Some(j) = &self.inner.journal
        {
            // Everything journaled is committed: a clean stop leaves no segment to replay.
            j.close();
        }
        if let Some(pg) = &self.inner.pg {
            let now = self.now();
            let all = self.inner.engine.take_idle_leases(now, now, true);
            self.return_leases(pg, all).await?;
            pg.drop_empty_leases(&self.inner.opts.instance_id).await?;
        }
        if let AnyStore::Sqlite(s) = &self.inner.store {
            s.release_serve_lock();
        }
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        flushed
    }

    // ---------------------------------------------------------------- queries

    /// Spend and requests over a period grouped by any combination of member, team, model, day,
    /// provider, key and API route. Sums are exact.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageGroup>, LedgerError> {
        self.catch_up().await?;
        let events = self
            .inner
            .store
            .events(EventFilter {
                from: q.from,
                to: q.to,
                member: q.member.clone(),
                team: q.team.clone(),
                route: q.route,
                ..EventFilter::default()
            })
            .await?;
        Ok(query::aggregate(&events, &q.group_by))
    }

    /// The last `days` UTC days (today included) of a member's spend, zero-filled.
    pub async fn daily_series(
        &self,
        member: &str,
        days: u32,
    ) -> Result<Vec<DailyPoint>, LedgerError> {
        self.catch_up().await?;
        let today = self.now().date_naive();
        let first = today - chrono::Days::new(u64::from(days.saturating_sub(1)));
        let events = self
            .inner
            .store
            .events(EventFilter {
                from: Some(orteam_core::window::midnight(first)),
                member: Some(member.to_owned()),
                ..EventFilter::default()
            })
            .await?;
        Ok(query::daily_series(&events, today, days))
    }

    /// The newest `limit` events.
    pub async fn recent_events(&self, limit: usize) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner
            .store
            .events(EventFilter {
                newest_first: true,
                limit: Some(limit),
                ..EventFilter::default()
            })
            .await
    }

    /// Events still awaiting their exact cost.
    pub async fn provisional_events(&self) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner
            .store
            .events(EventFilter {
                provisional_only: true,
                ..EventFilter::default()
            })
            .await
    }

    /// Any event filter.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner.store.events(filter).await
    }

    pub async fn event(&self, request_id: &str) -> Result<Option<UsageEvent>, LedgerError> {
        self.catch_up().await?;
        self.inner.store.event(request_id.to_owned()).await
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
