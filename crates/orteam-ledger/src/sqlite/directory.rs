//! The directory on SQLite: loading the snapshot, applying a change with its change-log row.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};

use super::{SqliteStore, all, db, ts};
use crate::directory::{DirectoryChange, DirectoryData};
use crate::error::LedgerError;
use crate::rows::{self, tier_parts};
use crate::store::DirectoryStore;

const SEQ_SQL: &str = "SELECT COALESCE(MAX(seq), 0) FROM change_log";

/// Every row of `SELECT {columns} FROM {table} ORDER BY {order}`.
fn table<T>(
    tx: &Transaction<'_>,
    columns: &str,
    from: &str,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, LedgerError>,
) -> Result<Vec<T>, LedgerError> {
    let op = "loading the directory";
    let mut st = tx
        .prepare(&format!("SELECT {columns} FROM {from}"))
        .map_err(db(op))?;
    all(&mut st, [], map, op)
}

fn load_directory_sync(c: &mut Connection) -> Result<DirectoryData, LedgerError> {
    let err = db("loading the directory");
    let tx = c.transaction().map_err(&err)?;
    let seq = tx.query_row(SEQ_SQL, [], |r| r.get(0)).map_err(&err)?;
    let data = DirectoryData {
        seq,
        orgs: table(&tx, rows::ORG_COLUMNS, "orgs ORDER BY id", |r| rows::org(r))?,
        teams: table(&tx, rows::TEAM_COLUMNS, "teams ORDER BY id", |r| {
            rows::team(r)
        })?,
        tiers: table(&tx, rows::TIER_COLUMNS, "tiers ORDER BY id", |r| {
            rows::tier(r)
        })?,
        members: table(&tx, rows::MEMBER_COLUMNS, "members ORDER BY id", |r| {
            rows::member(r)
        })?,
        budgets: table(
            &tx,
            rows::BUDGET_COLUMNS,
            "budgets ORDER BY scope, scope_id, win",
            |r| rows::budget(r),
        )?,
        raises: table(
            &tx,
            rows::RAISE_COLUMNS,
            "budget_raises ORDER BY created_at",
            |r| rows::raise(r),
        )?,
        virtual_keys: table(
            &tx,
            rows::VIRTUAL_KEY_COLUMNS,
            "virtual_keys ORDER BY created_at",
            |r| rows::virtual_key(r),
        )?,
        upstream_keys: table(
            &tx,
            rows::UPSTREAM_KEY_COLUMNS,
            "upstream_keys ORDER BY created_at, id",
            |r| rows::upstream_key(r),
        )?,
        gateway_keys: table(
            &tx,
            rows::GATEWAY_KEY_COLUMNS,
            "gateway_keys ORDER BY registered_at, key_hash",
            |r| rows::gateway_key(r),
        )?,
    };
    tx.commit().map_err(&err)?;
    Ok(data)
}

fn apply_sync(
    c: &mut Connection,
    change: &DirectoryChange,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let n = match change {
        DirectoryChange::PutOrg(o) => tx.execute(
            "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            params![o.id, o.name, ts(o.created_at)],
        )?,
        DirectoryChange::PutTeam(t) => tx.execute(
            "INSERT INTO teams (id, org_id, name, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name",
            params![t.id, t.org_id, t.name, ts(t.created_at)],
        )?,
        DirectoryChange::PutTier(t) => {
            let p = tier_parts(t);
            tx.execute(
                "INSERT INTO tiers (id, name, all_models, allowed_models, on_disallowed, downgrade_model, requests_per_minute, tokens_per_minute, routing) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, all_models = excluded.all_models, \
                 allowed_models = excluded.allowed_models, on_disallowed = excluded.on_disallowed, downgrade_model = excluded.downgrade_model, \
                 requests_per_minute = excluded.requests_per_minute, tokens_per_minute = excluded.tokens_per_minute, routing = excluded.routing",
                params![t.id, t.name, p.all_models, p.allowed, p.policy, p.downgrade, p.rpm, p.tpm, p.routing],
            )?
        }
        DirectoryChange::PutMember(m) => tx.execute(
            "INSERT INTO members (id, display_name, team_id, tier_id, state, created_at, removed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, team_id = excluded.team_id, \
             tier_id = excluded.tier_id, state = excluded.state, removed_at = excluded.removed_at",
            params![m.id, m.display_name, m.team_id, m.tier_id, m.state.as_str(), ts(m.created_at), m.removed_at.map(ts)],
        )?,
        DirectoryChange::SetBudget(b) => tx.execute(
            "INSERT INTO budgets (scope, scope_id, win, limit_amount) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(scope, scope_id, win) DO UPDATE SET limit_amount = excluded.limit_amount",
            params![b.scope.as_str(), b.scope_id, b.window.as_str(), b.limit.to_canonical_string()],
        )?,
        DirectoryChange::ClearBudget { scope, scope_id, window } => tx.execute(
            "DELETE FROM budgets WHERE scope = ?1 AND scope_id = ?2 AND win = ?3",
            params![scope.as_str(), scope_id, window.as_str()],
        )?,
        DirectoryChange::AddRaise(r) => tx.execute(
            "INSERT INTO budget_raises (id, scope, scope_id, win, amount, until, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.id,
                r.scope.as_str(),
                r.scope_id,
                r.window.as_str(),
                r.amount.to_canonical_string(),
                ts(r.until),
                r.reason,
                ts(r.created_at)
            ],
        )?,
        DirectoryChange::RemoveRaise(id) => tx.execute("DELETE FROM budget_raises WHERE id = ?1", params![id])?,
        DirectoryChange::InsertVirtualKey(k) => tx.execute(
            "INSERT INTO virtual_keys (id, member_id, name, key_hash, created_at, expires_at, disabled, revoked_at, replaces) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                k.id,
                k.member_id,
                k.name,
                k.key_hash,
                ts(k.created_at),
                k.expires_at.map(ts),
                k.disabled,
                k.revoked_at.map(ts),
                k.replaces
            ],
        )?,
        DirectoryChange::UpdateVirtualKey {
            id,
            disabled,
            revoked_at,
            expires_at,
        } => tx.execute(
            "UPDATE virtual_keys SET disabled = ?2, revoked_at = ?3, expires_at = ?4 WHERE id = ?1",
            params![id, disabled, revoked_at.map(ts), expires_at.map(ts)],
        )?,
        DirectoryChange::PutUpstreamKey { key, secret_enc } => tx.execute(
            "INSERT INTO upstream_keys (id, member_id, label, key_hash, secret_enc, created_at, disabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET member_id = excluded.member_id, label = excluded.label, key_hash = excluded.key_hash, \
             secret_enc = excluded.secret_enc, disabled = excluded.disabled",
            params![key.id, key.member_id, key.label, key.key_hash, secret_enc, ts(key.created_at), key.disabled],
        )?,
        DirectoryChange::RemoveUpstreamKey(id) => tx.execute("DELETE FROM upstream_keys WHERE id = ?1", params![id])?,
        DirectoryChange::PutGatewayKey(k) => tx.execute(
            "INSERT INTO gateway_keys (key_hash, label, registered_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(key_hash) DO UPDATE SET label = excluded.label",
            params![k.key_hash, k.label, ts(k.registered_at)],
        )?,
    };
    let (kind, entity) = change.describe();
    tx.execute(
        "INSERT INTO change_log (at, kind, entity) VALUES (?1, ?2, ?3)",
        params![ts(now), kind, entity],
    )?;
    tx.commit()?;
    Ok(n)
}

impl DirectoryStore for SqliteStore {
    async fn load_directory(&self) -> Result<DirectoryData, LedgerError> {
        self.run(load_directory_sync).await
    }

    async fn change_seq(&self) -> Result<i64, LedgerError> {
        self.run(|c| {
            c.query_row(SEQ_SQL, [], |r| r.get(0))
                .map_err(db("reading the change log"))
        })
        .await
    }

    async fn apply(&self, change: DirectoryChange, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.run(move |c| {
            let n = apply_sync(c, &change, now).map_err(db("changing the directory"))?;
            match change {
                DirectoryChange::UpdateVirtualKey { id, .. } if n == 0 => {
                    Err(LedgerError::NotFound {
                        kind: "virtual key",
                        id,
                    })
                }
                _ => Ok(()),
            }
        })
        .await
    }
}
