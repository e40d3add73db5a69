//! Immediate revocation: `orteam member revoke MEMBER`, and members removed from the team file.
//!
//! Order matters: the ledger member is removed and every virtual key revoked first (each a
//! directory change that every serving gateway picks up within a second), then the member's
//! OpenRouter keys are deleted, all in the same command. If OpenRouter fails, the member has
//! already lost gateway access and the next `member revoke` or `team apply` deletes the rest.

use chrono::{DateTime, Utc};
use orteam_ledger::{Ledger, MemberState};
use orteam_openrouter::Client;
use serde::Serialize;

use crate::apply::delete_upstream_key;
use crate::error::TeamError;
use crate::naming::KeyLabel;

/// What a revocation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Revoked {
    pub member: String,
    /// Whether the member was active until now.
    pub member_removed: bool,
    /// Virtual keys revoked (`ot-<id>…`).
    pub virtual_keys: Vec<String>,
    /// OpenRouter keys deleted (names).
    pub upstream_keys: Vec<String>,
}

/// Removes `member` and kills every key they have. `client` is required when the member has
/// an upstream key (checked before anything changes).
pub async fn revoke_member(
    ledger: &Ledger,
    client: Option<&Client>,
    member: &str,
    _now: DateTime<Utc>,
) -> Result<Revoked, TeamError> {
    ledger
        .refresh_if_changed()
        .await
        .map_err(TeamError::ledger("reading the directory"))?;
    let dir = ledger.directory();
    let m = dir
        .members
        .get(member)
        .ok_or_else(|| TeamError::UnknownMember(member.to_owned()))?;
    let records: Vec<_> = dir
        .upstream_keys
        .iter()
        .filter(|k| k.member_id == member)
        .cloned()
        .collect();
    // List OpenRouter keys first: a wrong provisioning key fails before any change.
    let upstream = match client {
        Some(c) => Some((
            c,
            c.list_all_keys(Some(true))
                .await
                .map_err(TeamError::upstream("listing keys (GET /keys)"))?,
        )),
        None if records.is_empty() => None,
        None => return Err(TeamError::MissingProvisioningKey),
    };
    let mut out = Revoked {
        member: member.to_owned(),
        ..Revoked::default()
    };
    if m.state == MemberState::Active {
        ledger
            .remove_member(member)
            .await
            .map_err(TeamError::ledger(format!("removing member {member:?}")))?;
        out.member_removed = true;
    }
    let mut vks: Vec<_> = dir
        .virtual_keys
        .values()
        .filter(|k| k.member_id == member && k.revoked_at.is_none())
        .cloned()
        .collect();
    vks.sort_by_key(|k| k.created_at);
    for k in vks {
        ledger
            .revoke_virtual_key(&k.id)
            .await
            .map_err(TeamError::ledger(format!(
                "revoking {}",
                k.display_prefix()
            )))?;
        out.virtual_keys.push(k.display_prefix());
    }
    if let Some((client, keys)) = upstream {
        for rec in &records {
            delete_upstream_key(ledger, client, &rec.key_hash, Some(&rec.id)).await?;
            out.upstream_keys
                .push(rec.label.split(';').next().unwrap_or_default().to_owned());
        }
        // Keys named for this member but never recorded (an interrupted apply).
        let org = dir.org_of_team(&m.team_id).unwrap_or_default();
        for k in &keys {
            if let Some(l) = KeyLabel::parse(&k.name)
                && l.org == org
                && l.member == member
                && !records.iter().any(|r| r.key_hash == k.hash)
            {
                delete_upstream_key(ledger, client, &k.hash, None).await?;
                out.upstream_keys.push(k.name.clone());
            }
        }
    }
    Ok(out)
}
