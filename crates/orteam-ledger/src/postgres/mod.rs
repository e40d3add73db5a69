//! PostgreSQL backend: correct across any number of gateway instances sharing one database.
//!
//! Budget windows live in `budget_windows (spent, leased)`. An instance *leases* a slice of a
//! window with one conditional UPDATE ([`lease`]) that only succeeds while
//! `spent + leased + slice <= limit`, and then reserves locally out of that slice in memory.
//! The group-commit [`writer`] inserts events and moves settled amounts from `leased` to `spent`
//! in the same transaction. Leases carry the instance id and an expiry renewed by a heartbeat;
//! any instance returns the leases of dead instances to the pool.

mod access;
mod budgets;
mod directory;
mod events;
mod inflight;
pub(crate) mod lease;
mod migrate;
mod outbox;
pub(crate) mod refusals;
pub(crate) mod writer;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use orteam_core::Money;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{NoTls, Row};

use crate::error::LedgerError;
use crate::rows::{Columns, corrupt};

pub(crate) struct PgStore {
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

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<Self, LedgerError> {
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
        migrate::migrate_postgres(&mut client).await?;
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

    /// The schema version the database records (a round trip: the database answers).
    pub(crate) async fn schema_version(&self) -> Result<i64, LedgerError> {
        let client = self.client().await?;
        migrate::schema_version(&client).await
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool.get().await.map_err(pool_err)
    }
}

fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, LedgerError> {
    r.try_get(i).map_err(|e| corrupt(i, e))
}

/// PostgreSQL's storage types: money as NUMERIC, instants as `timestamptz`.
impl Columns for Row {
    fn text(&self, i: usize) -> Result<String, LedgerError> {
        get(self, i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, LedgerError> {
        get(self, i)
    }
    fn flag(&self, i: usize) -> Result<bool, LedgerError> {
        get(self, i)
    }
    fn int(&self, i: usize) -> Result<i64, LedgerError> {
        self.opt_int(i)?
            .ok_or_else(|| corrupt(i, "unexpected NULL"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, LedgerError> {
        match self.columns().get(i).map(|c| c.type_()) {
            Some(&Type::INT4) => Ok(get::<Option<i32>>(self, i)?.map(i64::from)),
            Some(&Type::INT2) => Ok(get::<Option<i16>>(self, i)?.map(i64::from)),
            _ => get(self, i),
        }
    }
    fn money(&self, i: usize) -> Result<Money, LedgerError> {
        get(self, i).map(money)
    }
    fn opt_money(&self, i: usize) -> Result<Option<Money>, LedgerError> {
        Ok(get::<Option<rust_decimal::Decimal>>(self, i)?.map(money))
    }
    fn time(&self, i: usize) -> Result<DateTime<Utc>, LedgerError> {
        get(self, i)
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, LedgerError> {
        get(self, i)
    }
}

/// Every row, mapped.
pub(crate) fn all<T>(
    rows: &[Row],
    map: impl Fn(&Row) -> Result<T, LedgerError>,
) -> Result<Vec<T>, LedgerError> {
    rows.iter().map(map).collect()
}

pub(crate) use i64_of as pg_i64;
