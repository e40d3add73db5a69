//! Durable budget spend on SQLite (`budget_windows`; the writer moves it).

use std::sync::Arc;

use chrono::NaiveDate;
use orteam_core::{Money, Window};
use rusqlite::{Connection, params};

use super::{SqliteStore, all, db};
use crate::budget::engine::CellKey;
use crate::error::LedgerError;
use crate::rows::Columns;
use crate::store::{BudgetStore, WindowRow};

impl BudgetStore for SqliteStore {
    async fn window_rows(
        &self,
        starts: Vec<(Window, NaiveDate)>,
    ) -> Result<Vec<WindowRow>, LedgerError> {
        self.run(move |c| window_rows_sync(c, &starts)).await
    }
}

/// Spend rows of the given window instances (also read at start, before the async runtime
/// serves anything).
pub(crate) fn window_rows_sync(
    c: &Connection,
    starts: &[(Window, NaiveDate)],
) -> Result<Vec<WindowRow>, LedgerError> {
    let op = "reading budget windows";
    let mut stmt = c
        .prepare_cached("SELECT scope, scope_id, spent FROM budget_windows WHERE win = ?1 AND window_start = ?2")
        .map_err(db(op))?;
    let mut out = Vec::new();
    for (w, start) in starts {
        let rows = all(
            &mut stmt,
            params![w.as_str(), start.to_string()],
            |r| Ok((r.parsed(0)?, r.text(1)?, r.money(2)?)),
            op,
        )?;
        for (scope, id, spent) in rows {
            out.push(WindowRow {
                key: CellKey {
                    scope,
                    id: Arc::from(id.as_str()),
                    window: *w,
                    start: *start,
                },
                spent,
                leased: Money::ZERO,
            });
        }
    }
    Ok(out)
}
