//! The SQLite migration runner.

use crate::error::LedgerError;
use crate::migrate::{MIGRATIONS_TABLE, SQLITE};

/// Applies missing SQLite migrations. `BEGIN IMMEDIATE` serialises concurrent openers.
pub(crate) fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<(), LedgerError> {
    let err = |e| LedgerError::storage("migrating the sqlite schema", e);
    conn.execute_batch(MIGRATIONS_TABLE).map_err(err)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    // Every migration not recorded yet, not only those above the newest: migrations written on
    // parallel branches land with numbers that interleave.
    let applied: Vec<i64> = {
        let mut st = tx
            .prepare("SELECT version FROM schema_migrations")
            .map_err(err)?;
        st.query_map([], |r| r.get(0))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?
    };
    let current = applied.iter().copied().max().unwrap_or(0);
    crate::migrate::refuse_newer(current, SQLITE)?;
    for m in SQLITE.iter().filter(|m| !applied.contains(&m.version)) {
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

/// The schema version recorded in the database (0 for a database orteam never migrated).
pub(crate) fn schema_version(conn: &rusqlite::Connection) -> Result<i64, LedgerError> {
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| LedgerError::storage("reading the schema version", e))?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
    .map_err(|e| LedgerError::storage("reading the schema version", e))
}
