//! Refusal counts on SQLite: read here, added by the writer (`writer.rs`, [`add_refusals`]).

use rusqlite::{Transaction, params};

use super::{SqliteStore, all, db, ts};
use crate::error::LedgerError;
use crate::refusals::{RefusalCount, RefusalFilter};
use crate::rows::{self, REFUSAL_COLUMNS};
use crate::store::RefusalStore;

impl RefusalStore for SqliteStore {
    async fn refusals(&self, f: RefusalFilter) -> Result<Vec<RefusalCount>, LedgerError> {
        self.run(move |c| {
            let op = "reading refusals";
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {REFUSAL_COLUMNS} FROM refusals WHERE (?1 IS NULL OR minute >= ?1) \
                     AND (?2 IS NULL OR minute < ?2) AND (?3 IS NULL OR member_id = ?3) \
                     ORDER BY minute, member_id, route, model, reason, detail"
                ))
                .map_err(db(op))?;
            all(
                &mut stmt,
                params![f.from.map(ts), f.to.map(ts), f.member],
                |r| rows::refusal(r),
                op,
            )
        })
        .await
    }
}

/// Adds counts to their rows inside the writer's transaction.
pub(crate) fn add_refusals(
    tx: &Transaction<'_>,
    counts: &[RefusalCount],
) -> Result<(), rusqlite::Error> {
    let mut st = tx.prepare_cached(
        "INSERT INTO refusals (minute, member_id, route, model, reason, detail, count) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT(minute, member_id, route, model, reason, detail) \
         DO UPDATE SET count = count + excluded.count",
    )?;
    for c in counts {
        let k = &c.key;
        st.execute(params![
            ts(k.minute),
            k.member_id,
            k.route.as_str(),
            k.model,
            k.reason,
            k.detail,
            i64::try_from(c.count).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}
