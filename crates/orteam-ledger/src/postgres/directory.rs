//! The directory on PostgreSQL: loading the snapshot, applying a change with its change-log row
//! and NOTIFY.

use chrono::{DateTime, Utc};
use tokio_postgres::{Row, Transaction};

use super::{PgStore, all, db, dec};
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::rows::{self, tier_parts};
use crate::store::DirectoryStore;

const SEQ_SQL: &str = "SELECT COALESCE(MAX(seq), 0)::BIGINT FROM change_log";

/// Every row of `SELECT {columns} FROM {from}`.
async fn table<T>(
    tx: &Transaction<'_>,
    columns: &str,
    from: &str,
    map: impl Fn(&Row) -> Result<T, LedgerError>,
) -> Result<Vec<T>, LedgerError> {
    let rows = tx
        .query(&format!("SELECT {columns} FROM {from}"), &[])
        .await
        .map_err(db("loading the directory"))?;
    all(&rows, map)
}

impl DirectoryStore for PgStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        let err = db("loading the directory");
        let mut c = self.client().await?;
        // REPEATABLE READ: one consistent snapshot of every table and the change sequence.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(&err)?;
        let seq: i64 = tx.query_one(SEQ_SQL, &[]).await.map_err(&err)?.get(0);
        let data = DirectoryData {
            seq,
            orgs: table(&tx, rows::ORG_COLUMNS, "orgs ORDER BY id", rows::org).await?,
            teams: table(&tx, rows::TEAM_COLUMNS, "teams ORDER BY id", rows::team).await?,
            tiers: table(&tx, rows::TIER_COLUMNS, "tiers ORDER BY id", rows::tier).await?,
            members: table(
                &tx,
                rows::MEMBER_COLUMNS,
                "members ORDER BY id",
                rows::member,
            )
            .await?,
            budgets: table(
                &tx,
                rows::BUDGET_COLUMNS,
                "budgets ORDER BY scope, scope_id, win",
                rows::budget,
            )
            .await?,
            raises: table(
                &tx,
                rows::RAISE_COLUMNS,
                "budget_raises ORDER BY created_at",
                rows::raise,
            )
            .await?,
            virtual_keys: table(
                &tx,
                rows::VIRTUAL_KEY_COLUMNS,
                "virtual_keys ORDER BY created_at",
                rows::virtual_key,
            )
            .await?,
            upstream_keys: table(
                &tx,
                rows::UPSTREAM_KEY_COLUMNS,
                "upstream_keys ORDER BY created_at, id",
                rows::upstream_key,
            )
            .await?,
            gateway_keys: table(
                &tx,
                rows::GATEWAY_KEY_COLUMNS,
                "gateway_keys ORDER BY registered_at, key_hash",
                rows::gateway_key,
            )
            .await?,
        };
        tx.commit().await.map_err(&err)?;
        Ok(data)
    }

    async fn change_seq(&self) -> Result<i64, LedgerError> {
        let c = self.client().await?;
        Ok(c.query_one(SEQ_SQL, &[])
            .await
            .map_err(db("reading the change log"))?
            .get(0))
    }

    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let op = "changing the directory";
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db(op))?;
        let n = match &change {
            DirectoryChange::PutOrg(o) => {
                tx.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                    &[&o.id, &o.name, &o.created_at],
                )
                .await
            }
            DirectoryChange::PutTeam(t) => {
                tx.execute(
                    "INSERT INTO teams (id, org_id, name, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET org_id = EXCLUDED.org_id, name = EXCLUDED.name",
                    &[&t.id, &t.org_id, &t.name, &t.created_at],
                )
                .await
            }
            DirectoryChange::PutTier(t) => {
                let p = tier_parts(t);
                tx.execute(
                    "INSERT INTO tiers (id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute, routing) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, all_models = EXCLUDED.all_models, \
                     allowed_models = EXCLUDED.allowed_models, on_disallowed = EXCLUDED.on_disallowed, downgrade_model = EXCLUDED.downgrade_model, \
                     requests_per_minute = EXCLUDED.requests_per_minute, tokens_per_minute = EXCLUDED.tokens_per_minute, routing = EXCLUDED.routing",
                    &[&t.id, &t.name, &p.all_models, &p.allowed, &p.policy, &p.downgrade, &p.rpm, &p.tpm, &p.routing],
                )
                .await
            }
            DirectoryChange::PutMember(m) => {
                tx.execute(
                    "INSERT INTO members (id, display_name, team_id, tier_id, state, created_at, removed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, team_id = EXCLUDED.team_id, \
                     tier_id = EXCLUDED.tier_id, state = EXCLUDED.state, removed_at = EXCLUDED.removed_at",
                    &[&m.id, &m.display_name, &m.team_id, &m.tier_id, &m.state.as_str(), &m.created_at, &m.removed_at],
                )
                .await
            }
            DirectoryChange::SetBudget(b) => {
                tx.execute(
                    "INSERT INTO budgets (scope, scope_id, win, limit_amount) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope, scope_id, win) DO UPDATE SET limit_amount = EXCLUDED.limit_amount",
                    &[&b.scope.as_str(), &b.scope_id, &b.window.as_str(), &dec(b.limit)],
                )
                .await
            }
            DirectoryChange::ClearBudget { scope, scope_id, window } => {
                tx.execute(
                    "DELETE FROM budgets WHERE scope = $1 AND scope_id = $2 AND win = $3",
                    &[&scope.as_str(), scope_id, &window.as_str()],
                )
                .await
            }
            DirectoryChange::AddRaise(r) => {
                tx.execute(
                    "INSERT INTO budget_raises (id, scope, scope_id, win, amount, until, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&r.id, &r.scope.as_str(), &r.scope_id, &r.window.as_str(), &dec(r.amount), &r.until, &r.reason, &r.created_at],
                )
                .await
            }
            DirectoryChange::RemoveRaise(id) => tx.execute("DELETE FROM budget_raises WHERE id = $1", &[id]).await,
            DirectoryChange::InsertVirtualKey(k) => {
                tx.execute(
                    "INSERT INTO virtual_keys (id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[&k.id, &k.member_id, &k.name, &k.key_hash, &k.created_at, &k.expires_at, &k.disabled, &k.revoked_at, &k.replaces],
                )
                .await
            }
            DirectoryChange::UpdateVirtualKey {
                id,
                disabled,
                revoked_at,
                expires_at,
            } => {
                tx.execute(
                    "UPDATE virtual_keys SET disabled = $2, revoked_at = $3, expires_at = $4 WHERE id = $1",
                    &[id, disabled, revoked_at, expires_at],
                )
                .await
            }
            DirectoryChange::PutUpstreamKey { key, secret_enc } => {
                tx.execute(
                    "INSERT INTO upstream_keys (id, member_id, label, key_hash, secret_enc, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (id) DO UPDATE SET member_id = EXCLUDED.member_id, label = EXCLUDED.label, key_hash = EXCLUDED.key_hash, \
                     secret_enc = EXCLUDED.secret_enc, disabled = EXCLUDED.disabled",
                    &[&key.id, &key.member_id, &key.label, &key.key_hash, secret_enc, &key.created_at, &key.disabled],
                )
                .await
            }
            DirectoryChange::RemoveUpstreamKey(id) => tx.execute("DELETE FROM upstream_keys WHERE id = $1", &[id]).await,
            DirectoryChange::PutGatewayKey(k) => {
                tx.execute(
                    "INSERT INTO gateway_keys (key_hash, label, registered_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key_hash) DO UPDATE SET label = EXCLUDED.label",
                    &[&k.key_hash, &k.label, &k.registered_at],
                )
                .await
            }
        }
        .map_err(db(op))?;
        if n == 0
            && let DirectoryChange::UpdateVirtualKey { id, .. } = &change
        {
            return Err(LedgerError::NotFound {
                kind: "virtual key",
                id: id.clone(),
            });
        }
        let (kind, entity) = change.describe();
        let seq: i64 = tx
            .query_one(
                "INSERT INTO change_log (at, kind, entity) VALUES ($1, $2, $3) RETURNING seq",
                &[&now, &kind, &entity],
            )
            .await
            .map_err(db(op))?
            .get(0);
        // Delivered at commit to every instance listening on this schema's channel.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&self.channel, &seq.to_string()],
        )
        .await
        .map_err(db(op))?;
        tx.commit().await.map_err(db(op))
    }
}

impl PgStore {
    /// LISTENs on this schema's change channel on a dedicated connection (driven on `tracker`
    /// until `cancel`): every directory change another instance commits sends on `wake`.
    pub(crate) async fn listen_for_changes(
        &self,
        wake: tokio::sync::mpsc::UnboundedSender<()>,
        tracker: &tokio_util::task::TaskTracker,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), LedgerError> {
        let (client, mut conn) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(db("connecting the change listener"))?;
        let c2 = cancel.clone();
        tracker.spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            loop {
                tokio::select! {
                    _ = c2.cancelled() => break,
                    m = futures::StreamExt::next(&mut messages) => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => { let _ = wake.send(()); }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.channel))
            .await
            .map_err(db("listening for directory changes"))?;
        // Keep the client alive as long as the watcher runs.
        let c3 = cancel.clone();
        tracker.spawn(async move {
            c3.cancelled().await;
            drop(client);
        });
        Ok(())
    }
}
