//! `orteam team apply`: runs a [`Plan`]'s operations, in order, stopping at the first failure.
//!
//! # Crash safety
//! Every step leaves a state the next plan reads correctly, so running apply again finishes
//! the job with no orphaned or duplicate key:
//! - Ledger writes are idempotent puts; a repeated apply re-plans from what is there.
//! - **Upstream keys** are named `orteam:<org>:<member>:<generation>` *in the `POST /keys`
//!   body*, before they exist. Then: create → deliver the secret (direct keys) or encrypt it
//!   into the ledger (`upstream = "own"`) → record the hash in the ledger. If anything fails
//!   after OpenRouter created the key (a 5xx whose creation went through, a lost response, a
//!   crash), the key is at OpenRouter under an orteam name but not in the ledger: the next plan
//!   shows it as an orphan, deletes it, and creates the member's key anew with a higher
//!   generation. A secret is only ever recorded after it was delivered, so a recorded direct
//!   key always reached its owner; a key whose secret may have been lost is never adopted.
//! - **Virtual keys** are created with a short pending expiry ([`PENDING_DELIVERY_TTL`]), their
//!   secret is delivered, then the real expiry is set. A key still pending was never delivered:
//!   it dies by itself within minutes and the next plan replaces it.
//! - **Rotation** issues the successor first, then sets the old key's expiry to now + grace.
//!   Old upstream keys are deleted by a later run once their successor is older than the grace.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_ledger::{AdminTokenUpdate, Ledger, NewAdminToken};
use orteam_openrouter::Client;
use orteam_openrouter::types::guardrails::{
    CreateGuardrailRequest, Guardrail, ListGuardrailsParams, UpdateGuardrailRequest,
};
use orteam_openrouter::types::keys::{CreateKeyRequest, UpdateKeyRequest};
use orteam_openrouter::types::workspaces::CreateWorkspaceRequest;
use orteam_openrouter::{Pagination, Patch};
use secrecy::SecretString;
use serde::Serialize;

use crate::error::TeamError;
use crate::naming::KeyLabel;
use crate::plan::{Op, PENDING_DELIVERY_TTL, Plan, UpstreamSettings};

/// What kind of secret is being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// An `ot-…` key for the orteam gateway.
    Virtual,
    /// The member's own OpenRouter key (direct mode).
    Direct,
    /// An `ota-…` admin token the team file declares (`[access.tokens.*]`); `member` holds the
    /// token's name.
    AdminToken,
}

/// A new secret, to show once.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// The member the key is for (for [`SecretKind::AdminToken`]: the token's name).
    pub member: String,
    pub kind: SecretKind,
    /// The key's public reference: `ot-<id>…` or the OpenRouter name.
    pub reference: String,
    pub secret: SecretString,
}

/// Where new secrets go. `deliver` must have made the secret durable (written and flushed)
/// when it returns `Ok`: only then is the key recorded.
pub trait SecretSink: Send {
    fn deliver(&mut self, secret: &NewSecret) -> std::io::Result<()>;
}

/// A sink that keeps secrets in memory (for `orteam serve`'s rotation and for tests).
#[derive(Debug, Default)]
pub struct CollectSecrets(pub Vec<NewSecret>);

impl SecretSink for CollectSecrets {
    fn deliver(&mut self, secret: &NewSecret) -> std::io::Result<()> {
        self.0.push(secret.clone());
        Ok(())
    }
}

/// What apply needs.
pub struct ApplyContext<'a> {
    pub ledger: &'a Ledger,
    pub client: &'a Client,
    pub now: DateTime<Utc>,
    pub sink: &'a mut dyn SecretSink,
    /// Who runs the apply, as the audit log records it (the creator of declared admin tokens).
    pub actor: String,
    /// Called with a one-line description after each change is made (progress on stderr).
    pub progress: &'a mut dyn FnMut(&str),
}

/// What apply did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ApplyReport {
    pub changes_applied: usize,
    pub warnings: Vec<String>,
    /// Stopped on request before the plan's end (between two changes, never inside one).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// Checks what apply will need before changing anything: an encryption key when an
/// `upstream = "own"` key is to be created.
pub fn preflight(plan: &Plan, have_secret_key: bool) -> Result<(), TeamError> {
    for ch in &plan.changes {
        for op in &ch.ops {
            if let Op::CreateUpstreamKey {
                member,
                hold_secret: true,
                ..
            } = op
                && !have_secret_key
            {
                return Err(TeamError::SecretKeyMissing(member.clone()));
            }
        }
    }
    Ok(())
}

/// Applies the plan's changes in order.
pub async fn apply(plan: &Plan, cx: &mut ApplyContext<'_>) -> Result<ApplyReport, TeamError> {
    apply_until(plan, cx, &|| false).await
}

/// Applies the plan's changes in order, stopping before the next change once `stop` says so
/// (Ctrl-C): a change begun is always finished, so what was applied is whole and a later
/// apply, planning afresh, does the rest.
pub async fn apply_until(
    plan: &Plan,
    cx: &mut ApplyContext<'_>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ApplyReport, TeamError> {
    let mut report = ApplyReport::default();
    for change in &plan.changes {
        if stop() {
            report.interrupted = true;
            break;
        }
        for op in &change.ops {
            if let Some(w) = run_op(op, cx).await? {
                report.warnings.push(w);
            }
        }
        report.changes_applied += 1;
        let line = format!(
            "{} {} {}",
            change.action.symbol(),
            change.resource.as_str(),
            change.id
        );
        (cx.progress)(&line);
    }
    Ok(report)
}

fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

async fn run_op(op: &Op, cx: &mut ApplyContext<'_>) -> Result<Option<String>, TeamError> {
    let ledger = cx.ledger;
    match op {
        Op::PutOrg { id, name } => {
            ledger
                .put_org(id, name)
                .await
                .map_err(TeamError::ledger(format!("creating org {id:?}")))?;
        }
        Op::PutTier(tier) => {
            let id = tier.id.clone();
            ledger
                .put_tier(tier.clone())
                .await
                .map_err(TeamError::ledger(format!("writing tier {id:?}")))?;
        }
        Op::PutTeam { id, org, name } => {
            ledger
                .put_team(id, org, name)
                .await
                .map_err(TeamError::ledger(format!("writing team {id:?}")))?;
        }
        Op::PutMember(m) => {
            ledger
                .put_member(m.clone())
                .await
                .map_err(TeamError::ledger(format!("writing member {:?}", m.id)))?;
        }
        Op::RemoveMember(id) => {
            ledger
                .remove_member(id)
                .await
                .map_err(TeamError::ledger(format!("removing member {id:?}")))?;
        }
        Op::SetBudget {
            scope,
            id,
            window,
            limit,
        } => {
            ledger
                .set_budget(*scope, id, *window, *limit)
                .await
                .map_err(TeamError::ledger(format!(
                    "setting the {scope} {id} budget"
                )))?;
        }
        Op::ClearBudget { scope, id, window } => {
            ledger
                .clear_budget(*scope, id, *window)
                .await
                .map_err(TeamError::ledger(format!(
                    "clearing the {scope} {id} budget"
                )))?;
        }
        Op::IssueVirtualKey {
            member,
            label,
            expires_in,
        } => {
            issue_virtual_key(cx, member, label, *expires_in).await?;
        }
        Op::RevokeVirtualKey(id) => {
            ledger
                .revoke_virtual_key(id)
                .await
                .map_err(TeamError::ledger(format!("revoking virtual key ot-{id}…")))?;
        }
        Op::ExpireVirtualKey { id, grace } => {
            let until = cx.now + td(*grace);
            let current = ledger
                .directory()
                .virtual_keys
                .get(id)
                .and_then(|k| k.expires_at);
            let at = current.map_or(until, |c| c.min(until));
            ledger
                .set_virtual_key_expiry(id, Some(at))
                .await
                .map_err(TeamError::ledger(format!("setting the grace of ot-{id}…")))?;
        }
        Op::CreateUpstreamKey {
            member,
            label,
            settings,
            hold_secret,
        } => {
            create_upstream_key(cx, member, label, settings, *hold_secret).await?;
        }
        Op::UpdateUpstreamKey {
            hash,
            req,
            best_effort,
        } => {
            let r = cx.client.update_key(hash, req).await;
            if let Err(e) = r {
                let short = hash.get(..12).unwrap_or(hash);
                if *best_effort {
                    let msg = format!("could not update key {short}… at OpenRouter: {e}");
                    tracing::warn!("{msg}");
                    return Ok(Some(msg));
                }
                return Err(TeamError::upstream(format!("updating key {short}…"))(e));
            }
        }
        Op::DeleteUpstreamKey { hash, record } => {
            delete_upstream_key(cx.ledger, cx.client, hash, record.as_deref()).await?;
        }
        Op::RemoveUpstreamRecord(id) => {
            ledger
                .remove_upstream_key(id)
                .await
                .map_err(TeamError::ledger("forgetting an upstream key record"))?;
        }
        Op::CreateWorkspace {
            slug,
            name,
            description,
        } => {
            // A repeated apply after a crash finds the workspace instead of creating another.
            if find_workspace(cx.client, slug).await?.is_none() {
                cx.client
                    .create_workspace(&CreateWorkspaceRequest {
                        name: name.clone(),
                        slug: slug.clone(),
                        description: Some(description.clone()),
                    })
                    .await
                    .map_err(TeamError::upstream(format!("creating workspace {slug:?}")))?;
            }
        }
        Op::DeleteWorkspace { id } => match cx.client.delete_workspace(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(TeamError::upstream("deleting a workspace")(e)),
        },
        Op::MoveKeyToWorkspace { hash, slug } => {
            let id = find_workspace(cx.client, slug).await?.ok_or_else(|| {
                TeamError::MissingUpstream {
                    context: format!("moving a key to workspace {slug:?}"),
                    message: "no such workspace".to_owned(),
                }
            })?;
            let req = UpdateKeyRequest {
                workspace_id: Some(id),
                ..UpdateKeyRequest::default()
            };
            let short = hash.get(..12).unwrap_or(hash);
            cx.client
                .update_key(hash, &req)
                .await
                .map_err(TeamError::upstream(format!(
                    "moving key {short}… to {slug:?}"
                )))?;
        }
        Op::PutGuardrail {
            name,
            allowed_models,
            description,
        } => {
            let ctx = format!("writing guardrail {name:?}");
            match find_guardrail(cx.client, name).await? {
                None => {
                    let req = CreateGuardrailRequest {
                        description: Some(description.clone()),
                        allowed_models: Some(allowed_models.clone()),
                        ..CreateGuardrailRequest::new(name.clone())
                    };
                    cx.client
                        .create_guardrail(&req)
                        .await
                        .map_err(TeamError::upstream(ctx))?;
                }
                Some(g) => {
                    let req = UpdateGuardrailRequest {
                        description: Patch::Set(description.clone()),
                        allowed_models: Patch::Set(allowed_models.clone()),
                        ..UpdateGuardrailRequest::default()
                    };
                    cx.client
                        .update_guardrail(&g.id, &req)
                        .await
                        .map_err(TeamError::upstream(ctx))?;
                }
            }
        }
        Op::DeleteGuardrail { id } => match cx.client.delete_guardrail(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(TeamError::upstream("deleting a guardrail")(e)),
        },
        Op::AssignGuardrailKeys { guardrail, members } => {
            let ctx = format!("assigning guardrail {guardrail:?}");
            let g = find_guardrail(cx.client, guardrail).await?.ok_or_else(|| {
                TeamError::MissingUpstream {
                    context: ctx.clone(),
                    message: "no such guardrail".to_owned(),
                }
            })?;
            ledger
                .refresh_if_changed()
                .await
                .map_err(TeamError::ledger("reading the directory"))?;
            let assigned: Vec<String> = cx
                .client
                .guardrail_key_assignments(
                    &g.id,
                    &Pagination {
                        offset: None,
                        limit: Some(100),
                    },
                )
                .await
                .map_err(TeamError::upstream(ctx.clone()))?
                .data
                .into_iter()
                .map(|a| a.key_hash)
                .collect();
            let hashes: Vec<String> = ledger
                .directory()
                .upstream_keys
                .iter()
                .filter(|k| members.contains(&k.member_id) && !assigned.contains(&k.key_hash))
                .map(|k| k.key_hash.clone())
                .collect();
            if !hashes.is_empty() {
                cx.client
                    .assign_keys(&g.id, &hashes)
                    .await
                    .map_err(TeamError::upstream(ctx))?;
            }
        }
        Op::CreateAdminToken {
            org,
            name,
            role,
            teams,
            max_raise,
            expires_in,
        } => {
            let token = NewAdminToken {
                name: name.clone(),
                role: *role,
                teams: teams.clone(),
                max_raise: *max_raise,
                expires_at: None,
                created_by: cx.actor.clone(),
            };
            issue_admin_token(cx, org, token, *expires_in).await?;
        }
        Op::UpdateAdminToken { name, update } => {
            ledger
                .update_admin_token(name, update.clone(), &cx.actor, Some("apply".into()))
                .await
                .map_err(TeamError::ledger(format!("updating admin token {name:?}")))?;
        }
        Op::RevokeAdminToken { name } => {
            match ledger
                .revoke_admin_token(name, &cx.actor, Some("apply".into()))
                .await
            {
                // Revoked meanwhile (by hand): done.
                Ok(()) | Err(orteam_ledger::LedgerError::NotFound { .. }) => {}
                Err(e) => {
                    return Err(TeamError::ledger(format!("revoking admin token {name:?}"))(
                        e,
                    ));
                }
            }
        }
        Op::UnassignGuardrailKeys { id, hashes } => {
            cx.client
                .unassign_keys(id, hashes)
                .await
                .map_err(TeamError::upstream("unassigning a guardrail"))?;
        }
    }
    Ok(None)
}

/// The id of the workspace with this slug (or id), looked up now.
async fn find_workspace(client: &Client, slug: &str) -> Result<Option<String>, TeamError> {
    let mut offset = 0u32;
    loop {
        let page = client
            .list_workspaces(&Pagination {
                offset: Some(offset),
                limit: Some(100),
            })
            .await
            .map_err(TeamError::upstream("listing workspaces"))?;
        if let Some(w) = page.data.iter().find(|w| w.slug == slug || w.id == slug) {
            return Ok(Some(w.id.clone()));
        }
        let n = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
        if n == 0 || page.total_count.is_none_or(|t| u64::from(offset + n) >= t) {
            return Ok(None);
        }
        offset += n;
    }
}

/// The guardrail named `name`, looked up now.
async fn find_guardrail(client: &Client, name: &str) -> Result<Option<Guardrail>, TeamError> {
    let mut offset = 0u32;
    loop {
        let page = client
            .list_guardrails(&ListGuardrailsParams {
                offset: Some(offset),
                limit: Some(100),
                workspace_id: None,
            })
            .await
            .map_err(TeamError::upstream("listing guardrails"))?;
        let n = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
        if let Some(g) = page.data.into_iter().find(|g| g.name == name) {
            return Ok(Some(g));
        }
        if n == 0 || page.total_count.is_none_or(|t| u64::from(offset + n) >= t) {
            return Ok(None);
        }
        offset += n;
    }
}

/// Issues a virtual key: created with the pending expiry, delivered, then given its real
/// expiry. Returns the key's id.
pub(crate) async fn issue_virtual_key(
    cx: &mut ApplyContext<'_>,
    member: &str,
    label: &KeyLabel,
    expires_in: Option<Duration>,
) -> Result<String, TeamError> {
    let ledger = cx.ledger;
    let now = cx.now;
    let issued = ledger
        .create_virtual_key(member, &label.label(), Some(now + td(PENDING_DELIVERY_TTL)))
        .await
        .map_err(TeamError::ledger(format!(
            "issuing a virtual key for {member:?}"
        )))?;
    let secret = NewSecret {
        member: member.to_owned(),
        kind: SecretKind::Virtual,
        reference: issued.key.display_prefix(),
        secret: issued.secret,
    };
    if let Err(source) = cx.sink.deliver(&secret) {
        // Never delivered: revoke it now (the next plan would replace it anyway).
        let _ = ledger.revoke_virtual_key(&issued.key.id).await;
        return Err(TeamError::Delivery {
            member: member.to_owned(),
            source,
        });
    }
    let expiry = expires_in.map(|d| issued.key.created_at + td(d));
    ledger
        .set_virtual_key_expiry(&issued.key.id, expiry)
        .await
        .map_err(TeamError::ledger(format!(
            "setting the expiry of {}",
            issued.key.display_prefix()
        )))?;
    Ok(issued.key.id)
}

/// Issues a declared admin token: created with the pending expiry (so a secret an interrupted
/// apply never delivered dies by itself and the next plan replaces it), delivered, then given
/// its real expiry, `expires_in` after its creation.
async fn issue_admin_token(
    cx: &mut ApplyContext<'_>,
    org: &str,
    t: NewAdminToken,
    expires_in: Option<Duration>,
) -> Result<(), TeamError> {
    let ledger = cx.ledger;
    let name = t.name.clone();
    // The ledger's clock, as the token's `created_at` is: the plan compares the two.
    let pending = PENDING_DELIVERY_TTL.min(expires_in.unwrap_or(PENDING_DELIVERY_TTL));
    let issued = ledger
        .create_file_admin_token(
            NewAdminToken {
                expires_at: Some(ledger.now() + td(pending)),
                ..t
            },
            org,
        )
        .await
        .map_err(TeamError::ledger(format!("creating admin token {name:?}")))?;
    let secret = NewSecret {
        member: name.clone(),
        kind: SecretKind::AdminToken,
        reference: issued.token.display_prefix(),
        secret: issued.secret,
    };
    if let Err(source) = cx.sink.deliver(&secret) {
        // Never delivered: revoke it now (the next plan would replace it anyway).
        let _ = ledger
            .revoke_admin_token(&name, &cx.actor, Some("apply".into()))
            .await;
        return Err(TeamError::Delivery {
            member: name,
            source,
        });
    }
    let t = &issued.token;
    let expires_at = expires_in.map(|d| t.created_at + td(d));
    if expires_in != Some(pending) {
        let update = AdminTokenUpdate {
            role: t.role,
            teams: t.teams.clone(),
            max_raise: t.max_raise,
            expires_at,
        };
        ledger
            .update_admin_token(&name, update, &cx.actor, Some("apply".into()))
            .await
            .map_err(TeamError::ledger(format!(
                "setting the expiry of admin token {name:?}"
            )))?;
    }
    Ok(())
}

/// Creates an upstream key: name first (in the POST body), then deliver or encrypt its secret,
/// then record its hash. Returns the key's hash.
pub(crate) async fn create_upstream_key(
    cx: &mut ApplyContext<'_>,
    member: &str,
    label: &KeyLabel,
    settings: &UpstreamSettings,
    hold_secret: bool,
) -> Result<String, TeamError> {
    let name = label.name();
    let req = CreateKeyRequest {
        name: name.clone(),
        limit: settings.limit,
        limit_reset: settings.limit_reset,
        include_byok_in_limit: Some(settings.include_byok_in_limit),
        expires_at: settings.expires_in.map(|d| cx.now + td(d)),
        workspace_id: match &settings.workspace {
            Some(slug) => Some(find_workspace(cx.client, slug).await?.ok_or_else(|| {
                TeamError::MissingUpstream {
                    context: format!("creating key {name:?}"),
                    message: format!("no workspace {slug:?}"),
                }
            })?),
            None => None,
        },
        ..CreateKeyRequest::default()
    };
    let created = match cx.client.create_key(&req).await {
        Ok(c) => c,
        Err(e) => {
            let uncertain = e.status().is_none_or(|s| s >= 500);
            if e.is_management_key_required() || e.is_unauthorized() || !uncertain {
                return Err(TeamError::upstream(format!("creating key {name:?}"))(e));
            }
            return Err(TeamError::CreateUncertain { name, source: e });
        }
    };
    let hash = created.data.hash.clone();
    if !hold_secret {
        let secret = NewSecret {
            member: member.to_owned(),
            kind: SecretKind::Direct,
            reference: name.clone(),
            secret: created.key.clone(),
        };
        if let Err(source) = cx.sink.deliver(&secret) {
            // Not delivered: delete it now rather than leave an undeliverable key.
            let _ = cx.client.delete_key(&hash).await;
            return Err(TeamError::Delivery {
                member: member.to_owned(),
                source,
            });
        }
    }
    let secret = hold_secret.then_some(&created.key);
    cx.ledger
        .add_upstream_key(member, &label.label(), &hash, secret)
        .await
        .map_err(TeamError::ledger(format!("recording key {name:?}")))?;
    Ok(hash)
}

/// Deletes a key at OpenRouter (a 404 counts as done), then forgets its ledger record.
pub(crate) async fn delete_upstream_key(
    ledger: &Ledger,
    client: &Client,
    hash: &str,
    record: Option<&str>,
) -> Result<(), TeamError> {
    match client.delete_key(hash).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            let short = hash.get(..12).unwrap_or(hash);
            return Err(TeamError::upstream(format!("deleting key {short}…"))(e));
        }
    }
    if let Some(id) = record {
        ledger
            .remove_upstream_key(id)
            .await
            .map_err(TeamError::ledger("forgetting a deleted upstream key"))?;
    }
    Ok(())
}
