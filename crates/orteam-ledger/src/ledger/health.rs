//! Readiness: the database answers and its schema is the one this process migrated it to.

use super::Ledger;
use crate::error::LedgerError;

impl Ledger {
    /// Checks that the database answers a query and records exactly the schema version this
    /// build migrates to (not behind: replaced under us; not ahead: a newer orteam migrated
    /// it). One round trip; callers bound it with their own timeout.
    pub async fn check_schema(&self) -> Result<i64, LedgerError> {
        let store = self.store();
        let found = store.schema_version().await?;
        crate::migrate::check_current(found, store.migrations())?;
        Ok(found)
    }
}
