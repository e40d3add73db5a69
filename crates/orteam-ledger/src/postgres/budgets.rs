//! Durable budget spend on PostgreSQL (`budget_windows`; leases are in `lease.rs`).

use std::sync::Arc;

use chrono::NaiveDate;
use orteam_core::Window;

use super::{PgStore, db};
use crate::budget::engine::CellKey;
use crate::error::LedgerError;
use crate::rows::Columns;
use crate::store::{BudgetStore, WindowRow};

impl BudgetStore for PgStore {
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
                let id = r.text(1)?;
                out.push(WindowRow {
                    key: CellKey {
                        scope: r.parsed(0)?,
                        id: Arc::from(id.as_str()),
                        window: w,
                        start,
                    },
                    spent: r.money(2)?,
                    leased: r.money(3)?,
                });
            }
        }
        Ok(out)
    }
}
