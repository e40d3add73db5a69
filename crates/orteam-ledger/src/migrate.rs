//! A small versioned migration runner. Migrations are SQL files embedded at build time, applied
//! in order inside one transaction each, and recorded in `schema_migrations`. Opening a ledger
//! applies whatever is missing, so every process runs on the schema it was built for.

use crate::error::LedgerError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "insight",
        sql: include_str!("../migrations/sqlite/0002_insight.sql"),
    },
    Migration {
        version: 3,
        name: "event_outcome_check",
        sql: include_str!("../migrations/sqlite/0003_event_outcome_check.sql"),
    },
    Migration {
        version: 4,
        name: "event_route",
        sql: include_str!("../migrations/sqlite/0004_event_route.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "insight",
        sql: include_str!("../migrations/postgres/0002_insight.sql"),
    },
    Migration {
        version: 3,
        name: "event_route",
        sql: include_str!("../migrations/postgres/0003_event_route.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Applies missing SQLite migrations. `BEGIN IMMEDIATE` serialises concurrent openers.
pub fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<(), LedgerError> {
    let err = |e| LedgerError::storage("migrating the sqlite schema", e);
    conn.execute_batch(CREATE_TABLE).map_err(err)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    for m in SQLITE.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql)
            .map_err(|e| LedgerError::Migration {
                version: m.version,
                name: m.name,
                source: Box::new(e),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, chrono::Utc::now().to_rfc3339()],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}

/// Applies missing PostgreSQL migrations under a transaction-scoped advisory lock keyed by the
/// schema, so instances starting together do not race.
pub async fn migrate_postgres(client: &mut tokio_postgres::Client) -> Result<(), LedgerError> {
    let err = |e| LedgerError::storage("migrating the postgres schema", e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('orteam-migrate:' || current_schema()))",
        &[],
    )
    .await
    .map_err(err)?;
    tx.batch_execute(CREATE_TABLE).await.map_err(err)?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    for m in POSTGRES.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| LedgerError::Migration {
                version: m.version,
                name: m.name,
                source: Box::new(e),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &chrono::Utc::now().to_rfc3339()],
        )
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}
