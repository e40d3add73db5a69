//! Which OpenRouter keys insight uses, and for what:
//!
//! - the **management key** (`OPENROUTER_PROVISIONING_KEY`): `/activity` and `/keys`;
//! - the gateway's **shared inference key** (`OPENROUTER_API_KEY`): `/generation` of requests
//!   the gateway forwarded with it;
//! - a member's **own upstream key** held (encrypted) by the ledger: `/generation` of the
//!   requests forwarded with it.
//!
//! `/generation` is looked up with the key that made the request when the process has it, else
//! the shared key, else the management key (which the simulator accepts; whether OpenRouter does
//! is unconfirmed).

use orteam_ledger::{Directory, UsageEvent};
use orteam_openrouter::Client;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::InsightError;

/// The OpenRouter clients insight may use. Either may be missing; functions that need one say
/// so with [`InsightError::MissingKey`].
#[derive(Clone, Default)]
pub struct Upstream {
    management: Option<Client>,
    shared: Option<(Client, SecretString)>,
    /// The shared key's OpenRouter hash, when known without looking it up.
    shared_hash: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("management", &self.management.is_some())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Upstream {
    /// Clients for the given keys against `base_url` (default: `OPENROUTER_BASE_URL`, else
    /// OpenRouter). Responses are never cached.
    pub fn from_keys(
        base_url: Option<&str>,
        management: Option<SecretString>,
        shared: Option<SecretString>,
    ) -> Result<Upstream, InsightError> {
        let build = |key: SecretString| {
            let mut b = Client::builder().api_key(key).cache_ttl(None);
            if let Some(u) = base_url {
                b = b.base_url(u);
            }
            b.build()
                .map_err(InsightError::upstream("building the client"))
        };
        let management = management.map(build).transpose()?;
        let shared = match shared {
            Some(s) => Some((build(s.clone())?, s)),
            None => None,
        };
        Ok(Upstream {
            management,
            shared,
            shared_hash: None,
        })
    }

    /// From existing clients (the gateway's). `shared_secret` is the key inside `shared`.
    pub fn from_clients(
        management: Option<Client>,
        shared: Option<(Client, SecretString)>,
    ) -> Upstream {
        Upstream {
            management,
            shared,
            shared_hash: None,
        }
    }

    /// Sets the shared key's OpenRouter hash (skips looking it up).
    pub fn with_shared_key_hash(mut self, hash: impl Into<String>) -> Self {
        self.shared_hash = Some(hash.into());
        self
    }

    pub fn management(&self) -> Option<&Client> {
        self.management.as_ref()
    }

    pub fn has_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The client to look up an event's `/generation` with.
    pub(crate) fn generation_client(&self, event: &UsageEvent, dir: &Directory) -> Option<Client> {
        if let Some(hash) = &event.usage.upstream_key_hash {
            if let Some(cred) = dir.upstream_credential(&event.member_id)
                && &cred.key_hash == hash
                && let Some(secret) = &cred.secret
            {
                let base = self
                    .shared
                    .as_ref()
                    .map(|(c, _)| c)
                    .or(self.management.as_ref())?;
                return Some(base.with_api_key(secret.clone()));
            }
            // The member's key is not held here: the management key is the last resort.
            return self.management.clone();
        }
        self.shared
            .as_ref()
            .map(|(c, _)| c.clone())
            .or_else(|| self.management.clone())
    }

    /// The OpenRouter hash of the shared key: configured, else found among the account's keys
    /// (by SHA-256 of the secret, which is how OpenRouter and the simulator derive it, else by
    /// the masked label `sk-or-v1-abc...wxyz`). `None` without a shared key.
    pub async fn shared_key_hash(&self) -> Result<Option<String>, InsightError> {
        if let Some(h) = &self.shared_hash {
            return Ok(Some(h.clone()));
        }
        let Some((_, secret)) = &self.shared else {
            return Ok(None);
        };
        let s = secret.expose_secret();
        let digest = hex::encode(Sha256::digest(s.as_bytes()));
        let Some(m) = &self.management else {
            return Ok(Some(digest));
        };
        let keys = m
            .list_all_keys(Some(true))
            .await
            .map_err(InsightError::upstream("listing keys (GET /keys)"))?;
        if keys.iter().any(|k| k.hash == digest) {
            return Ok(Some(digest));
        }
        let body = s.strip_prefix("sk-or-v1-").unwrap_or(s);
        let head: String = body.chars().take(3).collect();
        let tail: String = body
            .chars()
            .skip(body.chars().count().saturating_sub(4))
            .collect();
        let label = format!("sk-or-v1-{head}...{tail}");
        let found: Vec<_> = keys.iter().filter(|k| k.label == label).collect();
        Ok(match found.as_slice() {
            [one] => Some(one.hash.clone()),
            _ => Some(digest),
        })
    }
}
