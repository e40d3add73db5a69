//! Reading usage events on PostgreSQL (the writer inserts them, `writer.rs`).

use orteam_core::ApiRoute;

use super::{PgStore, all, db};
use crate::error::LedgerError;
use crate::model::UsageEvent;
use crate::query::EventFilter;
use crate::rows::{self, EVENT_READ_COLUMNS};
use crate::store::EventStore;

impl EventStore for PgStore {
    async fn events(&self, f: EventFilter) -> Result<Vec<UsageEvent>, LedgerError> {
        let c = self.client().await?;
        let order = if f.newest_first {
            "time DESC, seq DESC"
        } else {
            "time ASC, seq ASC"
        };
        let sql = format!(
            "SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE ($1::timestamptz IS NULL OR time >= $1) \
             AND ($2::timestamptz IS NULL OR time < $2) AND ($3::text IS NULL OR member_id = $3) \
             AND ($4::text IS NULL OR team_id = $4) AND (NOT $5 OR outcome = 'provisional') \
             AND ($7::text IS NULL OR route = $7) AND (NOT $8 OR served_outside_tier) ORDER BY {order} LIMIT $6"
        );
        let limit = f.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = c
            .query(
                &sql,
                &[
                    &f.from,
                    &f.to,
                    &f.member,
                    &f.team,
                    &f.provisional_only,
                    &limit,
                    &f.route.map(ApiRoute::as_str),
                    &f.outside_tier_only,
                ],
            )
            .await
            .map_err(db("reading events"))?;
        all(&rows, rows::event)
    }

    async fn event(&self, request_id: String) -> Result<Option<UsageEvent>, LedgerError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {EVENT_READ_COLUMNS} FROM usage_events WHERE request_id = $1"),
                &[&request_id],
            )
            .await
            .map_err(db("reading an event"))?;
        row.as_ref().map(rows::event).transpose()
    }
}
