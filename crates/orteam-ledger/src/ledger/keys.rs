//! Virtual keys (issue, rotate, revoke, disable, expire), upstream keys, authentication.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{Ledger, not_found};
use crate::directory::DirectoryChange;
use crate::error::{AuthError, LedgerError};
use crate::model::*;

impl Ledger {
    /// Issues a virtual key. The returned secret is the only copy: only its hash is stored.
    pub async fn create_virtual_key(
        &self,
        member_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedKey, LedgerError> {
        self.issue_key(member_id, name, expires_at, None).await
    }

    pub(super) async fn issue_key(
        &self,
        member_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        replaces: Option<String>,
    ) -> Result<IssuedKey, LedgerError> {
        if !self.directory().members.contains_key(member_id) {
            return Err(not_found("member", member_id));
        }
        let (public_id, secret) = crate::keys::generate_key();
        let key = VirtualKey {
            id: public_id,
            member_id: member_id.to_owned(),
            name: name.to_owned(),
            key_hash: crate::keys::hash_key(secrecy::ExposeSecret::expose_secret(&secret)),
            created_at: self.now(),
            expires_at,
            disabled: false,
            revoked_at: None,
            replaces,
            last_used_at: None,
        };
        self.change(DirectoryChange::InsertVirtualKey(key.clone()))
            .await?;
        Ok(IssuedKey { key, secret })
    }

    /// Issues a replacement for key `id` (same member and name) and revokes the old one.
    pub async fn rotate_virtual_key(&self, id: &str) -> Result<IssuedKey, LedgerError> {
        let old = self.virtual_key(id)?;
        let new = self
            .issue_key(
                &old.member_id,
                &old.name,
                old.expires_at,
                Some(old.id.clone()),
            )
            .await?;
        self.revoke_virtual_key(id).await?;
        Ok(new)
    }

    pub(super) fn virtual_key(&self, id: &str) -> Result<VirtualKey, LedgerError> {
        self.directory()
            .virtual_keys
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("virtual key", id))
    }

    pub async fn revoke_virtual_key(&self, id: &str) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled: k.disabled,
            revoked_at: Some(k.revoked_at.unwrap_or_else(|| self.now())),
            expires_at: k.expires_at,
        })
        .await
    }

    pub async fn set_virtual_key_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
        })
        .await
    }

    pub async fn set_virtual_key_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), LedgerError> {
        let k = self.virtual_key(id)?;
        self.change(DirectoryChange::UpdateVirtualKey {
            id: k.id,
            disabled: k.disabled,
            revoked_at: k.revoked_at,
            expires_at,
        })
        .await
    }

    /// Records a member's upstream OpenRouter key by its hash; its secret only when the gateway
    /// must hold it, encrypted with `ORTEAM_SECRET_KEY` (an error if no key is configured).
    pub async fn add_upstream_key(
        &self,
        member_id: &str,
        label: &str,
        key_hash: &str,
        secret: Option<&SecretString>,
    ) -> Result<UpstreamKey, LedgerError> {
        if !self.directory().members.contains_key(member_id) {
            return Err(not_found("member", member_id));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let secret_enc = match secret {
            Some(s) => Some(
                self.inner
                    .secret_key
                    .as_ref()
                    .ok_or(LedgerError::SecretKeyMissing)?
                    .encrypt(&id, s)?,
            ),
            None => None,
        };
        let key = UpstreamKey {
            id,
            member_id: member_id.to_owned(),
            label: label.to_owned(),
            key_hash: key_hash.to_owned(),
            has_secret: secret_enc.is_some(),
            created_at: self.now(),
            disabled: false,
        };
        self.change(DirectoryChange::PutUpstreamKey {
            key: key.clone(),
            secret_enc,
        })
        .await?;
        Ok(key)
    }

    /// Registers the shared OpenRouter key a gateway uses (by hash and masked label, never the
    /// secret), so team plans never count it as a stray. Returns whether it was new.
    pub async fn register_gateway_key(&self, secret: &SecretString) -> Result<bool, LedgerError> {
        let (key_hash, label) = crate::keys::openrouter_key_identity(secret);
        let known = self
            .directory()
            .gateway_keys
            .iter()
            .any(|k| k.key_hash == key_hash && k.label == label);
        if known {
            return Ok(false);
        }
        self.change(DirectoryChange::PutGatewayKey(GatewayKey {
            key_hash,
            label,
            registered_at: self.now(),
        }))
        .await?;
        Ok(true)
    }

    pub async fn remove_upstream_key(&self, id: &str) -> Result<(), LedgerError> {
        self.change(DirectoryChange::RemoveUpstreamKey(id.to_owned()))
            .await
    }

    /// Authenticates a virtual key from memory: parse, look up by public id, compare SHA-256 in
    /// constant time, check revoked / disabled / expired / member removed.
    pub fn authenticate(&self, presented: &SecretString) -> Result<AuthContext, AuthError> {
        let now = self.now();
        let ctx = self.inner.dir.read().authenticate(presented, now)?;
        self.inner.touched.lock().insert(ctx.key_id.clone(), now);
        Ok(ctx)
    }
}
