//! The PostgreSQL migration runner.

use crate::error::LedgerError;
use crate::migrate::{MIGRATIONS_TABLE, POSTGRES};

/// Applies missing PostgreSQL migrations under a transaction-scoped advisory lock keyed by the
/// schema, so instances starting together do not race.
pub(crate) async fn migrate_postgres(
    client: &mut tokio_postgres::Client,
) -> Result<(), LedgerError> {
    let err = |e| LedgerError::storage("migrating the postgres schema", e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('orteam-migrate:' || current_schema()))",
        &[],
    )
    .await
    .map_err(err)?;
    tx.batch_execute(MIGRATIONS_TABLE).await.map_err(err)?;
    // Every migration not recorded yet, not only those above the newest: migrations written on
    // parallel branches land with numbers that interleave.
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let current = applied.iter().copied().max().unwrap_or(0);
    crate::migrate::refuse_newer(current, POSTGRES)?;
    for m in POSTGRES.iter().filter(|m| !applied.contains(&m.version)) {
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

/// The schema version recorded in the database.
pub(crate) async fn schema_version(client: &tokio_postgres::Client) -> Result<i64, LedgerError> {
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|e| LedgerError::storage("reading the schema version", e))?
        .get(0))
}
