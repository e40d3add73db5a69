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
