//! Named admin tokens and the audit log on PostgreSQL.

use chrono::{DateTime, Utc};

use super::{PgStore, all, db, dec};
use crate::audit;
use crate::error::LedgerError;
use crate::model::{AdminToken, AdminTokenUpdate, AuditEntry, NewAuditEntry};
use crate::rows::{self, ADMIN_TOKEN_COLUMNS, AUDIT_COLUMNS};
use crate::store::AccessStore;

impl AccessStore for PgStore {
    async fn token_insert(&self, t: AdminToken) -> Result<(), LedgerError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO admin_tokens (id, name, role, teams, max_raise, token_hash, \
                 created_at, expires_at, revoked_at, created_by, file_org) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10) \
                 ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING",
                &[
                    &t.id,
                    &t.name,
                    &t.role.as_str(),
                    &t.teams.join(","),
                    &t.max_raise.map(dec),
                    &t.token_hash,
                    &t.created_at,
                    &t.expires_at,
                    &t.created_by,
                    &t.file_org,
                ],
            )
            .await
            .map_err(db("creating an admin token"))?;
        if n == 0 {
            return Err(LedgerError::Invalid(format!(
                "an admin token named {:?} already exists",
                t.name
            )));
        }
        Ok(())
    }

    async fn tokens(&self) -> Result<Vec<AdminToken>, LedgerError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {ADMIN_TOKEN_COLUMNS} FROM admin_tokens ORDER BY created_at, name"
                ),
                &[],
            )
            .await
            .map_err(db("listing admin tokens"))?;
        all(&rows, rows::admin_token)
    }

    async fn token(&self, id: String) -> Result<Option<AdminToken>, LedgerError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {ADMIN_TOKEN_COLUMNS} FROM admin_tokens WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db("reading an admin token"))?;
        row.as_ref().map(rows::admin_token).transpose()
    }

    async fn token_update(&self, id: String, u: AdminTokenUpdate) -> Result<bool, LedgerError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE admin_tokens SET role = $1, teams = $2, max_raise = $3, expires_at = $4 \
                 WHERE id = $5 AND revoked_at IS NULL",
                &[
                    &u.role.as_str(),
                    &u.teams.join(","),
                    &u.max_raise.map(dec),
                    &u.expires_at,
                    &id,
                ],
            )
            .await
            .map_err(db("updating an admin token"))?;
        Ok(n > 0)
    }

    async fn token_revoke(&self, name: String, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                &[&now, &name],
            )
            .await
            .map_err(db("revoking an admin token"))?;
        Ok(n > 0)
    }

    async fn audit_append(
        &self,
        entry: NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<AuditEntry, LedgerError> {
        let err = db("appending to the audit log");
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(&err)?;
        // Every instance appends under this lock (it conflicts with itself, not with readers),
        // so the last entry cannot change between reading it and linking to it: one chain.
        tx.batch_execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(&err)?;
        let last = tx
            .query_opt(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(&err)?;
        let last: Option<(i64, String)> = last.map(|r| (r.get(0), r.get(1)));
        let e = audit::next_entry(last.as_ref().map(|(s, h)| (*s, h.as_str())), now, entry);
        tx.execute(
            &format!(
                "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &e.seq, &e.at, &e.actor, &e.action, &e.target, &e.before, &e.after, &e.source,
                &e.prev_hash, &e.hash,
            ],
        )
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(e)
    }

    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, LedgerError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"),
                &[],
            )
            .await
            .map_err(db("reading the audit log"))?;
        all(&rows, rows::audit_entry)
    }
}
