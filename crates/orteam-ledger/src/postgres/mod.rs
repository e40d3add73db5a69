//! PostgreSQL backend: correct across any number of gateway instances sharing one database.
//!
//! Budget windows live in `budget_windows (spent, leased)`. An instance *leases* a slice of a
//! window with one conditional UPDATE ([`lease`]) that only succeeds while
//! `spent + leased + slice <= limit`, and then reserves locally out of that slice in memory.
//! The group-commit [`writer`] inserts events and moves settled amounts from `leased` to `spent`
//! in the same transaction. Leases carry the instance id and an expiry renewed by a heartbeat;
//! any instance returns the leases of dead instances to the pool.

pub mod lease;
pub mod writer;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use orteam_core::{ApiRoute, Money, Window};
use tokio_postgres::{NoTls, Row};

use crate::budget::engine::CellKey;
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::model::*;
use crate::query::EventFilter;
use crate::sqlite::{tier_from_parts, tier_limit_parts, tier_parts};
use crate::store::{Store, WindowRow};

pub struct PgStore {
    pub(crate) pool: Pool,
    pub(crate) config: tokio_postgres::Config,
    /// NOTIFY channel, per schema so that isolated test schemas do not wake each other.
    pub(crate) channel: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config may hold a password: never print it.
        f.debug_struct("PgStore")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

pub(crate) fn db(op: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}

fn pool_err(e: deadpool_postgres::PoolError) -> LedgerError {
    LedgerError::storage("connecting to postgres", e)
}

pub(crate) fn dec(m: Money) -> rust_decimal::Decimal {
    m.as_decimal()
}

pub(crate) fn money(d: rust_decimal::Decimal) -> Money {
    Money::from_decimal(d.normalize())
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn parse_col<T: std::str::FromStr>(s: &str) -> Result<T, LedgerError>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| LedgerError::Corrupt(e.to_string()))
}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, LedgerError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| LedgerError::storage("parsing the postgres url", e))?;
        let mgr = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(8)
            .build()
            .map_err(|e| LedgerError::storage("building the postgres pool", e))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| LedgerError::storage("connecting to postgres", e))?;
        crate::migrate::migrate_postgres(&mut client).await?;
        let schema: String = client
            .query_one("SELECT current_schema()::text", &[])
            .await
            .map_err(db("reading the schema"))?
            .get(0);
        let safe: String = schema
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        Ok(PgStore {
            pool,
            config,
            channel: format!("orteam_changes_{safe}"),
        })
    }

    /// A dedicated connection (writer, listener), its driver task on `tracker`.
    pub(crate) async fn connect_dedicated(
        &self,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Result<tokio_postgres::Client, LedgerError> {
        let (client, conn) = self
            .config
            .connect(NoTls)
            .await
            .map_err(db("connecting to postgres"))?;
        tracker.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool.get().await.map_err(pool_err)
    }
}

const EVENT_COLUMNS: &str = "time, member_id, team_id, org_id, request_id, virtual_key_id, upstream_key_hash, \
     requested_model, served_model, provider, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, \
     cost, generation_id, streamed, outcome, latency_ms, title, route";

pub(crate) fn event_from_row(r: &Row) -> Result<UsageEvent, LedgerError> {
    let outcome: String = r.get(17);
    let route: String = r.get(20);
    Ok(UsageEvent {
        time: r.get(0),
        member_id: r.get(1),
        team_id: r.get(2),
        org_id: r.get(3),
        usage: Usage {
            request_id: r.get(4),
            virtual_key_id: r.get(5),
            upstream_key_hash: r.get(6),
            requested_model: r.get(7),
            served_model: r.get(8),
            provider: r.get(9),
            prompt_tokens: u64_of(r.get(10)),
            completion_tokens: u64_of(r.get(11)),
            reasoning_tokens: u64_of(r.get(12)),
            cached_tokens: u64_of(r.get(13)),
            cost: money(r.get(14)),
            generation_id: r.get(15),
            streamed: r.get(16),
            outcome: parse_col(&outcome)?,
            latency_ms: u64_of(r.get(18)),
            title: r.get(19),
            route: parse_col(&route)?,
        },
    })
}

impl Store for PgStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        let op = "loading the directory";
        let mut c = self.client().await?;
        // REPEATABLE READ: one consistent snapshot of every table and the change sequence.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db(op))?;
        let seq: i64 = tx
            .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM change_log", &[])
            .await
            .map_err(db(op))?
            .get(0);
        let orgs = tx
            .query("SELECT id, name, created_at FROM orgs ORDER BY id", &[])
            .await
            .map_err(db(op))?
            .iter()
            .map(|r| Org {
                id: r.get(0),
                name: r.get(1),
                created_at: r.get(2),
            })
            .collect();
        let teams = tx
            .query(
                "SELECT id, org_id, name, created_at FROM teams ORDER BY id",
                &[],
            )
            .await
            .map_err(db(op))?
            .iter()
            .map(|r| Team {
                id: r.get(0),
                org_id: r.get(1),
                name: r.get(2),
                created_at: r.get(3),
            })
            .collect();
        let mut tiers = Vec::new();
        for r in tx
            .query(
                "SELECT id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute FROM tiers ORDER BY id",
                &[],
            )
            .await
            .map_err(db(op))?
        {
            let allowed: String = r.get(3);
            let policy: String = r.get(4);
            tiers.push(
                tier_from_parts(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    &allowed,
                    &policy,
                    r.get(5),
                    (r.get(6), r.get(7)),
                )
                    .map_err(LedgerError::Corrupt)?,
            );
        }
        let mut members = Vec::new();
        for r in tx
            .query(
                "SELECT id, display_name, team_id, tier_id, state, created_at, removed_at FROM members ORDER BY id",
                &[],
            )
            .await
            .map_err(db(op))?
        {
            let state: String = r.get(4);
            members.push(Member {
                id: r.get(0),
                display_name: r.get(1),
                team_id: r.get(2),
                tier_id: r.get(3),
                state: parse_col(&state)?,
                created_at: r.get(5),
                removed_at: r.get(6),
            });
        }
        let mut budgets = Vec::new();
        for r in tx
            .query("SELECT scope, scope_id, win, limit_amount FROM budgets ORDER BY scope, scope_id, win", &[])
            .await
            .map_err(db(op))?
        {
            let scope: String = r.get(0);
            let win: String = r.get(2);
            budgets.push(Budget {
                scope: parse_col(&scope)?,
                scope_id: r.get(1),
                window: parse_col(&win)?,
                limit: money(r.get(3)),
            });
        }
        let mut raises = Vec::new();
        for r in tx
            .query(
                "SELECT id, scope, scope_id, win, amount, until, reason, created_at FROM budget_raises ORDER BY created_at",
                &[],
            )
            .await
            .map_err(db(op))?
        {
            let scope: String = r.get(1);
            let win: String = r.get(3);
            raises.push(BudgetRaise {
                id: r.get(0),
                scope: parse_col(&scope)?,
                scope_id: r.get(2),
                window: parse_col(&win)?,
                amount: money(r.get(4)),
                until: r.get(5),
                reason: r.get(6),
                created_at: r.get(7),
            });
        }
        let virtual_keys = tx
            .query(
                "SELECT id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces, last_used_at \
                 FROM virtual_keys ORDER BY created_at",
                &[],
            )
            .await
            .map_err(db(op))?
            .iter()
            .map(|r| VirtualKey {
                id: r.get(0),
                member_id: r.get(1),
                name: r.get(2),
                key_hash: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                disabled: r.get(6),
                revoked_at: r.get(7),
                replaces: r.get(8),
                last_used_at: r.get(9),
            })
            .collect();
        let upstream_keys = tx
            .query(
                "SELECT id, member_id, label, key_hash, secret_enc, created_at, disabled FROM upstream_keys ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(db(op))?
            .iter()
            .map(|r| {
                let enc: Option<String> = r.get(4);
                (
                    UpstreamKey {
                        id: r.get(0),
                        member_id: r.get(1),
                        label: r.get(2),
                        key_hash: r.get(3),
                        has_secret: enc.is_some(),
                        created_at: r.get(5),
                        disabled: r.get(6),
                    },
                    enc,
                )
            })
            .collect();
        tx.commit().await.map_err(db(op))?;
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

    async fn change_seq(&self) -> Result<i64, LedgerError> {
        let c = self.client().await?;
        Ok(
            c.query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM change_log", &[])
                .await
                .map_err(db("reading the change log"))?
                .get(0),
        )
    }

    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let op = "changing the directory";
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db(op))?;
        let n = match &change {
            DirectoryChange::PutOrg(o) => {
                tx.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                    &[&o.id, &o.name, &o.created_at],
                )
                .await
            }
            DirectoryChange::PutTeam(t) => {
                tx.execute(
                    "INSERT INTO teams (id, org_id, name, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET org_id = EXCLUDED.org_id, name = EXCLUDED.name",
                    &[&t.id, &t.org_id, &t.name, &t.created_at],
                )
                .await
            }
            DirectoryChange::PutTier(t) => {
                let (all, allowed, policy, down) = tier_parts(t);
                let (rpm, tpm) = tier_limit_parts(t);
                tx.execute(
                    "INSERT INTO tiers (id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, all_models = EXCLUDED.all_models, \
                     allowed_models = EXCLUDED.allowed_models, on_disallowed = EXCLUDED.on_disallowed, downgrade_model = EXCLUDED.downgrade_model, \
                     requests_per_minute = EXCLUDED.requests_per_minute, tokens_per_minute = EXCLUDED.tokens_per_minute",
                    &[&t.id, &t.name, &all, &allowed, &policy, &down, &rpm, &tpm],
                )
                .await
            }
            DirectoryChange::PutMember(m) => {
                tx.execute(
                    "INSERT INTO members (id, display_name, team_id, tier_id, state, created_at, removed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, team_id = EXCLUDED.team_id, \
                     tier_id = EXCLUDED.tier_id, state = EXCLUDED.state, removed_at = EXCLUDED.removed_at",
                    &[&m.id, &m.display_name, &m.team_id, &m.tier_id, &m.state.as_str(), &m.created_at, &m.removed_at],
                )
                .await
            }
            DirectoryChange::SetBudget(b) => {
                tx.execute(
                    "INSERT INTO budgets (scope, scope_id, win, limit_amount) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope, scope_id, win) DO UPDATE SET limit_amount = EXCLUDED.limit_amount",
                    &[&b.scope.as_str(), &b.scope_id, &b.window.as_str(), &dec(b.limit)],
                )
                .await
            }
            DirectoryChange::ClearBudget { scope, scope_id, window } => {
                tx.execute(
                    "DELETE FROM budgets WHERE scope = $1 AND scope_id = $2 AND win = $3",
                    &[&scope.as_str(), scope_id, &window.as_str()],
                )
                .await
            }
            DirectoryChange::AddRaise(r) => {
                tx.execute(
                    "INSERT INTO budget_raises (id, scope, scope_id, win, amount, until, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&r.id, &r.scope.as_str(), &r.scope_id, &r.window.as_str(), &dec(r.amount), &r.until, &r.reason, &r.created_at],
                )
                .await
            }
            DirectoryChange::RemoveRaise(id) => tx.execute("DELETE FROM budget_raises WHERE id = $1", &[id]).await,
            DirectoryChange::InsertVirtualKey(k) => {
                tx.execute(
                    "INSERT INTO virtual_keys (id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[&k.id, &k.member_id, &k.name, &k.key_hash, &k.created_at, &k.expires_at, &k.disabled, &k.revoked_at, &k.replaces],
                )
                .await
            }
            DirectoryChange::UpdateVirtualKey {
                id,
                disabled,
                revoked_at,
                expires_at,
            } => {
                tx.execute(
                    "UPDATE virtual_keys SET disabled = $2, revoked_at = $3, expires_at = $4 WHERE id = $1",
                    &[id, disabled, revoked_at, expires_at],
                )
                .await
            }
            DirectoryChange::PutUpstreamKey { key, secret_enc } => {
                tx.execute(
                    "INSERT INTO upstream_keys (id, member_id, label, key_hash, secret_enc, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET member_id = EXCLUDED.member_id, label = EXCLUDED.label, key_hash = EXCLUDED.key_hash, \
                     secret_enc = EXCLUDED.secret_enc, disabled = EXCLUDED.disabled",
                    &[&key.id, &key.member_id, &key.label, &key.key_hash, secret_enc, &key.created_at, &key.disabled],
                )
                .await
            }
            DirectoryChange::RemoveUpstreamKey(id) => tx.execute("DELETE FROM upstream_keys WHERE id = $1", &[id]).await,
        }
        .map_err(db(op))?;
        if n == 0
            && let DirectoryChange::UpdateVirtualKey { id, .. } = &change
        {
            return Err(LedgerError::NotFound {
                kind: "virtual key",
                id: id.clone(),
            });
        }
        let (kind, entity) = change.describe();
        let seq: i64 = tx
            .query_one(
                "INSERT INTO change_log (at, kind, entity) VALUES ($1, $2, $3) RETURNING seq",
                &[&now, &kind, &entity],
            )
            .await
            .map_err(db(op))?
            .get(0);
        // Delivered at commit to every instance listening on this schema's channel.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&self.channel, &seq.to_string()],
        )
        .await
        .map_err(db(op))?;
        tx.commit().await.map_err(db(op))
    }

    async fn events(&self, f: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        let c = self.client().await?;
        let order = if f.newest_first {
            "time DESC, seq DESC"
        } else {
            "time ASC, seq ASC"
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM usage_events WHERE ($1::timestamptz IS NULL OR time >= $1) \
             AND ($2::timestamptz IS NULL OR time < $2) AND ($3::text IS NULL OR member_id = $3) \
             AND ($4::text IS NULL OR team_id = $4) AND (NOT $5 OR outcome = 'provisional') \
             AND ($7::text IS NULL OR route = $7) ORDER BY {order} LIMIT $6"
        );
        let limit = f.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = c
            .query(
                &sql,
                &[
                    &f.from,
                    &f.to,
                    &f.member,
                    &f.team,
                    &f.provisional_only,
                    &limit,
                    &f.route.map(ApiRoute::as_str),
                ],
            )
            .await
            .map_err(db("reading events"))?;
        rows.iter().map(event_from_row).collect()
    }

    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {EVENT_COLUMNS} FROM usage_events WHERE request_id = $1"),
                &[&request_id],
            )
            .await
            .map_err(db("reading an event"))?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> Result<Vec<WindowRow>, LedgerError> {
        let c = self.client().await?;
        let mut out = Vec::new();
        for (w, start) in starts {
            for r in c
                .query(
                    "SELECT scope, scope_id, spent, leased FROM budget_windows WHERE win = $1 AND window_start = $2",
                    &[&w.as_str(), &start],
                )
                .await
                .map_err(db("reading budget windows"))?
            {
                let scope: String = r.get(0);
                let id: String = r.get(1);
                out.push(WindowRow {
                    key: CellKey {
                        scope: parse_col(&scope)?,
                        id: Arc::from(id.as_str()),
                        window: w,
                        start,
                    },
                    spent: money(r.get(2)),
                    leased: money(r.get(3)),
                });
            }
        }
        Ok(out)
    }
}

pub(crate) use i64_of as pg_i64;
