//! Refused requests: counted in memory on the request path, written by the event writer.

use super::Ledger;
use crate::error::LedgerError;
use crate::events::WriterMsg;
use crate::refusals::{Refusal, RefusalCount, RefusalFilter};
use crate::store::RefusalStore;

impl Ledger {
    /// Counts one refused request at the ledger clock's minute. A memory operation (one mutex,
    /// one map entry); the maintenance task hands the counts to the writer twice a second.
    /// Processes without a writer (the CLI) keep nothing.
    pub fn record_refusal(&self, refusal: Refusal) {
        if self.inner.writer.is_none() {
            return;
        }
        let now = self.now();
        self.inner.refused.lock().add(refusal, now);
    }

    /// Sends the counts gathered so far to the writer.
    pub(super) fn hand_refusals_to_writer(&self) {
        let Some(w) = &self.inner.writer else {
            return;
        };
        let counts = self.inner.refused.lock().take();
        if !counts.is_empty() {
            let _ = w.send(WriterMsg::Refusals(counts));
        }
    }

    /// Refusal counts per minute × member × route × model × reason × detail, oldest first.
    /// A serving process reads its own counts: those still in memory are written first.
    pub async fn refusals(&self, filter: RefusalFilter) -> Result<Vec<RefusalCount>, LedgerError> {
        if self.inner.writer.is_some() {
            self.hand_refusals_to_writer();
            self.flush().await?;
        }
        self.inner.store.refusals(filter).await
    }
}
