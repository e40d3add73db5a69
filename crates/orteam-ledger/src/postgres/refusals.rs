//! Refusal counts on PostgreSQL: read here, added by the writer (`writer.rs`, [`ADD_REFUSALS_SQL`]).

use super::{PgStore, all, db};
use crate::error::LedgerError;
use crate::refusals::{RefusalCount, RefusalFilter};
use crate::rows::{self, REFUSAL_COLUMNS};
use crate::store::RefusalStore;

/// Adds one batch of counts: parallel arrays of minute, member, route, model, reason, detail,
/// count. Keys are distinct within a batch (the aggregator's map), so one statement suffices.
pub(crate) const ADD_REFUSALS_SQL: &str = "INSERT INTO refusals (minute, member_id, route, model, reason, detail, count) \
     SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) \
     ON CONFLICT (minute, member_id, route, model, reason, detail) \
     DO UPDATE SET count = refusals.count + excluded.count";

impl RefusalStore for PgStore {
    async fn refusals(&self, f: RefusalFilter) -> Result<Vec<RefusalCount>, LedgerError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {REFUSAL_COLUMNS} FROM refusals WHERE ($1::timestamptz IS NULL OR minute >= $1) \
                     AND ($2::timestamptz IS NULL OR minute < $2) AND ($3::text IS NULL OR member_id = $3) \
                     ORDER BY minute, member_id COLLATE \"C\", route COLLATE \"C\", model COLLATE \"C\", \
                     reason COLLATE \"C\", detail COLLATE \"C\""
                ),
                &[&f.from, &f.to, &f.member],
            )
            .await
            .map_err(db("reading refusals"))?;
        all(&rows, rows::refusal)
    }
}

/// Adds counts to their rows inside the writer's transaction.
pub(crate) async fn add_refusals(
    client: &tokio_postgres::Client,
    counts: &[RefusalCount],
) -> Result<(), tokio_postgres::Error> {
    if counts.is_empty() {
        return Ok(());
    }
    let minute: Vec<_> = counts.iter().map(|c| c.key.minute).collect();
    let member: Vec<&str> = counts.iter().map(|c| c.key.member_id.as_str()).collect();
    let route: Vec<&str> = counts.iter().map(|c| c.key.route.as_str()).collect();
    let model: Vec<&str> = counts.iter().map(|c| c.key.model.as_str()).collect();
    let reason: Vec<&str> = counts.iter().map(|c| c.key.reason.as_str()).collect();
    let detail: Vec<&str> = counts.iter().map(|c| c.key.detail.as_str()).collect();
    let count: Vec<i64> = counts
        .iter()
        .map(|c| i64::try_from(c.count).unwrap_or(i64::MAX))
        .collect();
    client
        .execute(
            ADD_REFUSALS_SQL,
            &[&minute, &member, &route, &model, &reason, &detail, &count],
        )
        .await?;
    Ok(())
}
