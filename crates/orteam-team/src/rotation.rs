//! Key rotation: `orteam keys rotate MEMBER`, and [`rotate_due`] for keys whose `rotate_every`
//! has passed (called by `team apply` through its plan, and by a running `orteam serve`).
//!
//! A rotation issues the successor first and delivers its secret; the old key keeps working for
//! the grace period, then it is disabled and deleted:
//! - a virtual key gets `expires_at = now + grace` at once (every gateway refuses it after that)
//!   and is revoked by the next run after it expired;
//! - an old upstream key gets `expires_at = now + grace` at OpenRouter too (best effort), and is
//!   deleted at OpenRouter by the first run after its successor is older than the grace. That
//!   deadline is derived from the successor's ledger record and label, so no extra state is
//!   needed and a later run always completes it.
//!
//! The rotation policy (`rotate_every`, `grace`) travels in each key's label (see
//! [`crate::naming`]), so [`rotate_due`] needs no team file.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_ledger::{Ledger, MemberState};
use orteam_openrouter::Client;
use orteam_openrouter::types::keys::UpdateKeyRequest;
use secrecy::SecretString;
use serde::Serialize;

use crate::apply::{
    ApplyContext, CollectSecrets, SecretKind, SecretSink, create_upstream_key, delete_upstream_key,
    issue_virtual_key,
};
use crate::error::TeamError;
use crate::naming::KeyLabel;
use crate::plan::{UpstreamSettings, member_keys, retire_at};

/// One rotation that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    pub member: String,
    pub kind: SecretKind,
    /// The old key's reference (`ot-<id>…` or OpenRouter name).
    pub old: String,
    /// The new key's reference.
    pub new: String,
    /// When the old key stops working.
    pub old_valid_until: DateTime<Utc>,
    /// The new key's secret, to deliver (never serialized).
    #[serde(skip)]
    pub secret: Option<SecretString>,
}

fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Rotates a member's key now: the virtual key in gateway mode, the OpenRouter key in direct
/// mode. `grace` overrides the key's own grace period. The new secret goes to `sink`.
pub async fn rotate_member(
    ledger: &Ledger,
    client: Option<&Client>,
    member: &str,
    grace: Option<Duration>,
    now: DateTime<Utc>,
    sink: &mut dyn SecretSink,
) -> Result<Rotated, TeamError> {
    ledger
        .refresh_if_changed()
        .await
        .map_err(TeamError::ledger("reading the directory"))?;
    let dir = ledger.directory();
    let m = dir
        .members
        .get(member)
        .filter(|m| m.state == MemberState::Active)
        .ok_or_else(|| TeamError::UnknownMember(member.to_owned()))?;
    let org = dir.org_of_team(&m.team_id).unwrap_or_default().to_owned();
    let keys = match client {
        Some(c) if dir.upstream_keys.iter().any(|k| k.member_id == member) => c
            .list_all_keys(Some(true))
            .await
            .map_err(TeamError::upstream("listing keys (GET /keys)"))?,
        _ => Vec::new(),
    };
    let mk = member_keys(&org, member, &dir, &keys);
    let mut progress = |_: &str| {};
    let mut cx = ApplyContext {
        ledger,
        client: match client {
            Some(c) => c,
            None => return rotate_virtual_only(ledger, &mk, member, grace, now, sink).await,
        },
        now,
        sink,
        actor: String::new(),
        progress: &mut progress,
    };
    let live_vk = mk
        .virtual_keys
        .iter()
        .rfind(|(_, k)| k.expires_at.is_none_or(|e| e > now));
    if let Some((label, old)) = live_vk {
        let grace = grace.unwrap_or(label.grace);
        let new_label = KeyLabel {
            generation: mk.max_generation + 1,
            ..label.clone()
        };
        let expires_in = old
            .expires_at
            .map(|e| (e - old.created_at).to_std().unwrap_or_default());
        let new_id = issue_virtual_key(&mut cx, member, &new_label, expires_in).await?;
        let until = expire_old_virtual(ledger, &old.id, old.expires_at, now, grace).await?;
        let new = ledger
            .directory()
            .virtual_keys
            .get(&new_id)
            .map(|k| k.display_prefix())
            .unwrap_or_default();
        return Ok(Rotated {
            member: member.to_owned(),
            kind: SecretKind::Virtual,
            old: old.display_prefix(),
            new,
            old_valid_until: until,
            secret: None,
        });
    }
    let current = mk
        .upstream
        .iter()
        .rfind(|(_, rec, at)| !rec.has_secret && at.is_some());
    let Some((label, _rec, Some(old_key))) = current else {
        return Err(TeamError::NothingToRotate(member.to_owned()));
    };
    let grace = grace.unwrap_or(label.grace);
    let new_label = KeyLabel {
        generation: mk.max_generation + 1,
        grace,
        ..label.clone()
    };
    let settings = UpstreamSettings {
        limit: old_key.limit,
        limit_reset: old_key.limit_reset,
        include_byok_in_limit: old_key.include_byok_in_limit,
        expires_in: old_key
            .expires_at
            .map(|e| (e - old_key.created_at).to_std().unwrap_or_default()),
        // The successor lives where its predecessor did.
        workspace: old_key.workspace_id.clone(),
    };
    create_upstream_key(&mut cx, member, &new_label, &settings, false).await?;
    let until = now + td(grace);
    if old_key.expires_at.is_none_or(|e| e > until) {
        let req = UpdateKeyRequest {
            expires_at: orteam_openrouter::Patch::Set(until),
            ..UpdateKeyRequest::default()
        };
        if let Err(e) = cx.client.update_key(&old_key.hash, &req).await {
            tracing::warn!(error = %e, "could not set the old key's expiry at OpenRouter; it is deleted after the grace by the next run");
        }
    }
    Ok(Rotated {
        member: member.to_owned(),
        kind: SecretKind::Direct,
        old: label.name(),
        new: new_label.name(),
        old_valid_until: until,
        secret: None,
    })
}

async fn rotate_virtual_only(
    ledger: &Ledger,
    mk: &crate::plan::MemberKeys<'_>,
    member: &str,
    grace: Option<Duration>,
    now: DateTime<Utc>,
    sink: &mut dyn SecretSink,
) -> Result<Rotated, TeamError> {
    let Some((label, old)) = mk
        .virtual_keys
        .iter()
        .rfind(|(_, k)| k.expires_at.is_none_or(|e| e > now))
    else {
        return Err(TeamError::NothingToRotate(member.to_owned()));
    };
    // A client is only needed for upstream keys; build a context without one.
    let grace = grace.unwrap_or(label.grace);
    let new_label = KeyLabel {
        generation: mk.max_generation + 1,
        ..label.clone()
    };
    let expires_in = old
        .expires_at
        .map(|e| (e - old.created_at).to_std().unwrap_or_default());
    let issued = ledger
        .create_virtual_key(
            member,
            &new_label.label(),
            Some(now + td(crate::plan::PENDING_DELIVERY_TTL)),
        )
        .await
        .map_err(TeamError::ledger(format!(
            "issuing a virtual key for {member:?}"
        )))?;
    let secret = crate::apply::NewSecret {
        member: member.to_owned(),
        kind: SecretKind::Virtual,
        reference: issued.key.display_prefix(),
        secret: issued.secret,
    };
    if let Err(source) = sink.deliver(&secret) {
        let _ = ledger.revoke_virtual_key(&issued.key.id).await;
        return Err(TeamError::Delivery {
            member: member.to_owned(),
            source,
        });
    }
    ledger
        .set_virtual_key_expiry(
            &issued.key.id,
            expires_in.map(|d| issued.key.created_at + td(d)),
        )
        .await
        .map_err(TeamError::ledger("setting the new key's expiry"))?;
    let until = expire_old_virtual(ledger, &old.id, old.expires_at, now, grace).await?;
    Ok(Rotated {
        member: member.to_owned(),
        kind: SecretKind::Virtual,
        old: old.display_prefix(),
        new: issued.key.display_prefix(),
        old_valid_until: until,
        secret: None,
    })
}

async fn expire_old_virtual(
    ledger: &Ledger,
    id: &str,
    current: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<DateTime<Utc>, TeamError> {
    let until = now + td(grace);
    let at = current.map_or(until, |c| c.min(until));
    ledger
        .set_virtual_key_expiry(id, Some(at))
        .await
        .map_err(TeamError::ledger(format!("setting the grace of ot-{id}…")))?;
    Ok(at)
}

/// Rotates every key whose rotation is due under the policy in its label, and completes
/// retirements (revokes expired old virtual keys, deletes old upstream keys past their grace).
/// The new secrets are in [`Rotated::secret`]: the caller must deliver them.
pub async fn rotate_due(
    ledger: &Ledger,
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Vec<Rotated>, TeamError> {
    ledger
        .refresh_if_changed()
        .await
        .map_err(TeamError::ledger("reading the directory"))?;
    let dir = ledger.directory();
    let keys = if dir.upstream_keys.is_empty() {
        Vec::new()
    } else {
        client
            .list_all_keys(Some(true))
            .await
            .map_err(TeamError::upstream("listing keys (GET /keys)"))?
    };
    let mut out = Vec::new();
    for m in dir.members.values() {
        if m.state != MemberState::Active {
            continue;
        }
        let org = dir.org_of_team(&m.team_id).unwrap_or_default().to_owned();
        let mk = member_keys(&org, &m.id, &dir, &keys);
        // Retire old virtual keys past their expiry.
        for (_, k) in &mk.virtual_keys {
            if k.expires_at.is_some_and(|e| e <= now) {
                ledger
                    .revoke_virtual_key(&k.id)
                    .await
                    .map_err(TeamError::ledger("revoking an expired virtual key"))?;
            }
        }
        // Retire old upstream keys past their grace.
        let n = mk.upstream.len();
        for (label, rec, at) in mk.upstream.iter().take(n.saturating_sub(1)) {
            if let Some(t) = retire_at(&mk.upstream, label.generation)
                && t <= now
            {
                match at {
                    Some(k) => delete_upstream_key(ledger, client, &k.hash, Some(&rec.id)).await?,
                    None => ledger
                        .remove_upstream_key(&rec.id)
                        .await
                        .map_err(TeamError::ledger("forgetting an upstream key record"))?,
                }
            }
        }
        let vk_due = mk
            .virtual_keys
            .iter()
            .rfind(|(_, k)| k.expires_at.is_none_or(|e| e > now))
            .and_then(|(l, k)| l.rotate_every.map(|r| k.created_at + td(r)))
            .is_some_and(|due| due <= now);
        let up_due = mk
            .upstream
            .last()
            .filter(|(_, rec, at)| !rec.has_secret && at.is_some())
            .and_then(|(l, rec, _)| l.rotate_every.map(|r| rec.created_at + td(r)))
            .is_some_and(|due| due <= now);
        if vk_due || up_due {
            let mut sink = CollectSecrets::default();
            let mut r = rotate_member(ledger, Some(client), &m.id, None, now, &mut sink).await?;
            r.secret = sink.0.pop().map(|s| s.secret);
            tracing::info!(member = %r.member, old = %r.old, new = %r.new, "rotated a key that was due");
            out.push(r);
        }
    }
    Ok(out)
}
