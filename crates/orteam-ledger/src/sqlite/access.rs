//! Named admin tokens and the audit log on SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, all, db, first, ts};
use crate::audit;
use crate::error::LedgerError;
use crate::model::{AdminToken, AdminTokenUpdate, AuditEntry, NewAuditEntry};
use crate::rows::{self, ADMIN_TOKEN_COLUMNS, AUDIT_COLUMNS};
use crate::store::AccessStore;

impl AccessStore for SqliteStore {
    async fn token_insert(&self, t: AdminToken) -> Result<(), LedgerError> {
        self.run(move |c| {
            let op = "creating an admin token";
            let taken: Option<String> = c
                .query_row(
                    "SELECT id FROM admin_tokens WHERE name = ?1 AND revoked_at IS NULL",
                    params![t.name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db(op))?;
            if taken.is_some() {
                return Err(LedgerError::Invalid(format!(
                    "an admin token named {:?} already exists",
                    t.name
                )));
            }
            c.execute(
                "INSERT INTO admin_tokens (id, name, role, teams, max_raise, token_hash, \
                 created_at, expires_at, revoked_at, created_by, file_org) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?10)",
                params![
                    t.id,
                    t.name,
                    t.role.as_str(),
                    t.teams.join(","),
                    t.max_raise.map(|m| m.to_canonical_string()),
                    t.token_hash,
                    ts(t.created_at),
                    t.expires_at.map(ts),
                    t.created_by,
                    t.file_org,
                ],
            )
            .map_err(db(op))?;
            Ok(())
        })
        .await
    }

    async fn tokens(&self) -> Result<Vec<AdminToken>, LedgerError> {
        self.run(|c| {
            let op = "listing admin tokens";
            let mut st = c
                .prepare(&format!(
                    "SELECT {ADMIN_TOKEN_COLUMNS} FROM admin_tokens ORDER BY created_at, name"
                ))
                .map_err(db(op))?;
            all(&mut st, [], |r| rows::admin_token(r), op)
        })
        .await
    }

    async fn token(&self, id: String) -> Result<Option<AdminToken>, LedgerError> {
        self.run(move |c| {
            let op = "reading an admin token";
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {ADMIN_TOKEN_COLUMNS} FROM admin_tokens WHERE id = ?1"
                ))
                .map_err(db(op))?;
            first(&mut st, params![id], |r| rows::admin_token(r), op)
        })
        .await
    }

    async fn token_update(&self, id: String, u: AdminTokenUpdate) -> Result<bool, LedgerError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE admin_tokens SET role = ?1, teams = ?2, max_raise = ?3, expires_at = ?4 \
                     WHERE id = ?5 AND revoked_at IS NULL",
                    params![
                        u.role.as_str(),
                        u.teams.join(","),
                        u.max_raise.map(|m| m.to_canonical_string()),
                        u.expires_at.map(ts),
                        id,
                    ],
                )
                .map_err(db("updating an admin token"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn token_revoke(&self, name: String, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE admin_tokens SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
                    params![ts(now), name],
                )
                .map_err(db("revoking an admin token"))?;
            Ok(n > 0)
        })
        .await
    }

    async fn audit_append(
        &self,
        entry: NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry, LedgerError> {
        self.run(move |c| {
            let op = "appending to the audit log";
            // IMMEDIATE: the write lock is taken before the last entry is read, so two writers
            // (the gateway and a CLI) can never both extend the same entry.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db(op))?;
            let last: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db(op))?;
            let e = audit::next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), now, entry);
            tx.execute(
                &format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    e.seq, ts(e.at), e.actor, e.action, e.target, e.before, e.after, e.source,
                    e.prev_hash, e.hash
                ],
            )
            .map_err(db(op))?;
            tx.commit().map_err(db(op))?;
            Ok(e)
        })
        .await
    }

    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, LedgerError> {
        self.run(|c| {
            let op = "reading the audit log";
            let mut st = c
                .prepare(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
                ))
                .map_err(db(op))?;
            all(&mut st, [], |r| rows::audit_entry(r), op)
        })
        .await
    }
}
