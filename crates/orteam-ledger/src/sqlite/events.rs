//! Reading usage events on SQLite (the writer inserts them, `writer.rs`).

use orteam_core::ApiRoute;
use rusqlite::params;

use super::{SqliteStore, all, db, first, ts};
use crate::error::LedgerError;
use crate::model::UsageEvent;
use crate::query::EventFilter;
use crate::rows::{self, EVENT_READ_COLUMNS};
use crate::store::EventStore;

impl EventStore for SqliteStore {
    async fn events(&self, f: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        self.run(move |c| {
            let op = "reading events";
            let order = if f.newest_first { "time DESC, seq DESC" } else { "time ASC, seq ASC" };
            let sql = format!(
                "SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE (?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR time < ?2) \
                 AND (?3 IS NULL OR member_id = ?3) AND (?4 IS NULL OR team_id = ?4) AND (?5 = 0 OR outcome = 'provisional') \
                 AND (?7 IS NULL OR route = ?7) AND (?8 = 0 OR served_outside_tier = 1) ORDER BY {order} LIMIT ?6"
            );
            let limit = f.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)).unwrap_or(-1);
            let mut stmt = c.prepare_cached(&sql).map_err(db(op))?;
            all(
                &mut stmt,
                params![
                    f.from.map(ts),
                    f.to.map(ts),
                    f.member,
                    f.team,
                    f.provisional_only,
                    limit,
                    f.route.map(ApiRoute::as_str),
                    f.outside_tier_only,
                ],
                |r| rows::event(r),
                op,
            )
        })
        .await
    }

    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        self.run(move |c| {
            let op = "reading an event";
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE request_id = ?1"
                ))
                .map_err(db(op))?;
            first(&mut stmt, params![request_id], |r| rows::event(r), op)
        })
        .await
    }
}
