//! Named admin tokens and the audit log (the rule deciding what a token may do is
//! `orteam_core::access::authorize`; the chain is `crate::audit`).

use orteam_core::access::Role;
use secrecy::{ExposeSecret, SecretString};

use super::Ledger;
use crate::audit::{self, ChainReport};
use crate::error::LedgerError;
use crate::keys;
use crate::model::{
    AdminToken, AdminTokenUpdate, AuditEntry, IssuedAdminToken, NewAdminToken, NewAuditEntry,
};
use crate::store::AccessStore;

/// Why a presented admin token was refused (the caller answers 401 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefused {
    #[error("not an orteam admin token (they look like `ota-…`)")]
    Malformed,
    #[error("unknown admin token")]
    Unknown,
    #[error("admin token {0:?} has been revoked")]
    Revoked(String),
    #[error("admin token {0:?} has expired")]
    Expired(String),
}

impl Ledger {
    /// Creates a named token and records it in the audit log; the secret is returned once.
    pub async fn create_admin_token(
        &self,
        t: NewAdminToken,
    ) -> Result<IssuedAdminToken, LedgerError> {
        self.create_token(t, None).await
    }

    /// Creates a token the team file of `org` declares (`[access.tokens.*]`, by `team apply`):
    /// marked with the org (`file_org`), so that org's later applies update or revoke it and
    /// leave every other token alone.
    pub async fn create_file_admin_token(
        &self,
        t: NewAdminToken,
        org: &str,
    ) -> Result<IssuedAdminToken, LedgerError> {
        self.create_token(t, Some(org.to_owned())).await
    }

    /// Whether a token of `role` may have these teams and max_raise, the teams known.
    fn check_token_scope(
        &self,
        role: Role,
        teams: &[String],
        max_raise: Option<orteam_core::Money>,
    ) -> Result<(), LedgerError> {
        match role {
            Role::TeamLead if teams.is_empty() => Err(LedgerError::Invalid(
                "a team_lead token needs at least one team (--team)".into(),
            )),
            Role::TeamLead => {
                let dir = self.directory();
                match teams.iter().find(|id| !dir.teams.contains_key(*id)) {
                    Some(unknown) => Err(LedgerError::Invalid(format!("unknown team {unknown:?}"))),
                    None => Ok(()),
                }
            }
            Role::Member => Err(LedgerError::Invalid(
                "members need no admin token: they use their own `ot-…` key".into(),
            )),
            Role::Admin | Role::Viewer if !teams.is_empty() || max_raise.is_some() => {
                Err(LedgerError::Invalid(format!(
                    "--team and --max-raise are for team_lead tokens; a {role} token covers every team"
                )))
            }
            Role::Admin | Role::Viewer => Ok(()),
        }
    }

    async fn create_token(
        &self,
        t: NewAdminToken,
        file_org: Option<String>,
    ) -> Result<IssuedAdminToken, LedgerError> {
        let name = t.name.trim();
        if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
            return Err(LedgerError::Invalid(
                "a token name is 1-64 characters without spaces".into(),
            ));
        }
        self.check_token_scope(t.role, &t.teams, t.max_raise)?;
        let now = self.now();
        if t.expires_at.is_some_and(|e| e <= now) {
            return Err(LedgerError::Invalid("the expiry is in the past".into()));
        }
        let (id, secret) = keys::generate_admin_token();
        let token = AdminToken {
            id,
            name: name.to_owned(),
            role: t.role,
            teams: t.teams,
            max_raise: t.max_raise,
            token_hash: keys::hash_key(secret.expose_secret()),
            created_at: audit::stored_instant(now),
            expires_at: t.expires_at.map(audit::stored_instant),
            revoked_at: None,
            created_by: t.created_by.clone(),
            file_org,
        };
        self.inner.store.token_insert(token.clone()).await?;
        self.audit(NewAuditEntry {
            actor: t.created_by,
            action: "token_create".into(),
            target: format!("token:{}", token.name),
            before: None,
            after: Some(serde_json::to_string(&token).unwrap_or_default()),
            source: None,
        })
        .await?;
        Ok(IssuedAdminToken { token, secret })
    }

    /// Changes the role, teams, max_raise and expiry of the live token named `name` in place
    /// (its secret stays the same) and records before → after.
    pub async fn update_admin_token(
        &self,
        name: &str,
        update: AdminTokenUpdate,
        actor: &str,
        source: Option<String>,
    ) -> Result<AdminToken, LedgerError> {
        self.check_token_scope(update.role, &update.teams, update.max_raise)?;
        let not_found = || LedgerError::NotFound {
            kind: "live admin token",
            id: name.to_owned(),
        };
        let before = self
            .admin_tokens()
            .await?
            .into_iter()
            .find(|t| t.name == name && t.revoked_at.is_none())
            .ok_or_else(not_found)?;
        let update = AdminTokenUpdate {
            expires_at: update.expires_at.map(audit::stored_instant),
            ..update
        };
        if !self
            .inner
            .store
            .token_update(before.id.clone(), update.clone())
            .await?
        {
            return Err(not_found());
        }
        let after = AdminToken {
            role: update.role,
            teams: update.teams,
            max_raise: update.max_raise,
            expires_at: update.expires_at,
            ..before.clone()
        };
        self.audit(NewAuditEntry {
            actor: actor.to_owned(),
            action: "token_update".into(),
            target: format!("token:{name}"),
            before: Some(serde_json::to_string(&before).unwrap_or_default()),
            after: Some(serde_json::to_string(&after).unwrap_or_default()),
            source,
        })
        .await?;
        Ok(after)
    }

    /// Every admin token (hashes are never serialized).
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>, LedgerError> {
        self.inner.store.tokens().await
    }

    /// Revokes the live token named `name` at once (every process reads tokens from the
    /// database on each admin request) and records it.
    pub async fn revoke_admin_token(
        &self,
        name: &str,
        actor: &str,
        source: Option<String>,
    ) -> Result<(), LedgerError> {
        if !self
            .inner
            .store
            .token_revoke(name.to_owned(), self.now())
            .await?
        {
            return Err(LedgerError::NotFound {
                kind: "live admin token",
                id: name.to_owned(),
            });
        }
        self.audit(NewAuditEntry {
            actor: actor.to_owned(),
            action: "token_revoke".into(),
            target: format!("token:{name}"),
            before: None,
            after: None,
            source,
        })
        .await?;
        Ok(())
    }

    /// The live token `presented` is, compared by hash in constant time.
    pub async fn authenticate_admin_token(
        &self,
        presented: &SecretString,
    ) -> Result<Result<AdminToken, TokenRefused>, LedgerError> {
        let text = presented.expose_secret();
        let Some(id) = keys::parse_admin_token_id(text) else {
            return Ok(Err(TokenRefused::Malformed));
        };
        let Some(token) = self.inner.store.token(id.to_owned()).await? else {
            return Ok(Err(TokenRefused::Unknown));
        };
        if !keys::hashes_match(&keys::hash_key(text), &token.token_hash) {
            return Ok(Err(TokenRefused::Unknown));
        }
        if token.revoked_at.is_some() {
            return Ok(Err(TokenRefused::Revoked(token.name)));
        }
        if !token.is_live(self.now()) {
            return Ok(Err(TokenRefused::Expired(token.name)));
        }
        Ok(Ok(token))
    }

    /// Appends one admin action to the hash-chained audit log.
    pub async fn audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, LedgerError> {
        self.inner.store.audit_append(entry, self.now()).await
    }

    /// The whole audit log, in chain order.
    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>, LedgerError> {
        self.inner.store.audit_entries().await
    }

    /// Re-checks the whole chain.
    pub async fn verify_audit(&self) -> Result<ChainReport, LedgerError> {
        Ok(audit::verify(&self.audit_entries().await?))
    }
}
