//! OpenRouter as a second line of defence: what `[org.openrouter]` and `[teams.*].workspace`
//! ask OpenRouter itself to enforce, so that even a defect in orteam, or a member who goes
//! around the gateway, meets OpenRouter's own refusal.
//!
//! - **Workspaces**: a team's OpenRouter keys live in its workspace (adopted by slug or name,
//!   else created with an orteam marker in its description). Keys already there move in; when
//!   the mapping goes, they move back to the `default` workspace and a workspace orteam created
//!   is deleted once empty.
//! - **Guardrails**: each tier's allowlist becomes the guardrail `orteam:<org>:tier:<tier>`
//!   (allowed models), assigned to the OpenRouter keys of the tier's members. The name is the
//!   ownership record: a repeated apply after a crash finds it instead of creating a second
//!   one, and one whose tier is gone (or `guardrails = false`) is deleted. Tiers allowing every
//!   model, or a wildcard, get none (a guardrail cannot say "meta-llama/*").
//! - **Backstop**: the named shared key's limit is the org budget's longest window (monthly,
//!   else weekly, else daily), with that window as `limit_reset`; without `backstop`, no limit.

use std::collections::BTreeSet;

use orteam_core::{Money, Window};
use orteam_openrouter::Patch;
use orteam_openrouter::types::keys::{Key, UpdateKeyRequest};

use super::model::{Action, Change, FieldChange, Op, Resource};
use super::planner::member_keys;
use crate::file::{ModelsSpec, ResolvedTeam};
use crate::plan::Observed;

/// The description marking a workspace orteam created for `org` (so it may delete it).
pub(crate) fn workspace_marker(org: &str) -> String {
    format!("managed by orteam (org {org})")
}

/// The guardrail carrying `tier`'s allowlist.
pub(crate) fn guardrail_name(org: &str, tier: &str) -> String {
    format!("orteam:{org}:tier:{tier}")
}

/// The description of a tier guardrail: also how a change of the allowlist is noticed (the
/// stored model list may be canonicalised by OpenRouter).
fn guardrail_description(models: &[String]) -> String {
    format!("orteam tier allowlist: {}", models.join(", "))
}

fn change(
    action: Action,
    resource: Resource,
    id: impl Into<String>,
    fields: Vec<FieldChange>,
    reason: &str,
    ops: Vec<Op>,
) -> Change {
    Change {
        action,
        resource,
        id: id.into(),
        fields,
        reason: Some(reason.to_owned()),
        ops,
    }
}

fn fc(field: &str, old: Option<String>, new: Option<String>) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new,
    }
}

/// The workspace a team file slug names, if it exists (by slug, else by name).
fn find_workspace<'a>(
    obs: &'a Observed,
    slug: &str,
) -> Option<&'a orteam_openrouter::types::workspaces::Workspace> {
    obs.workspaces
        .iter()
        .find(|w| w.slug == slug)
        .or_else(|| obs.workspaces.iter().find(|w| w.name == slug))
}

/// Every OpenRouter key of `team`'s members that the ledger records (and OpenRouter still has),
/// with the member's team and tier.
fn member_upstream_keys<'a>(
    team: &'a ResolvedTeam,
    obs: &'a Observed,
) -> Vec<(&'a str, &'a str, &'a Key)> {
    let org = team.org.name.as_str();
    let mut out = Vec::new();
    for m in &team.members {
        let mk = member_keys(org, &m.id, &obs.dir, &obs.keys);
        for (_, _, at) in mk.upstream {
            if let Some(k) = at {
                out.push((m.team.as_str(), m.tier.as_str(), k));
            }
        }
    }
    out
}

/// Whether the member has an OpenRouter key of their own (direct, or gateway with
/// `upstream = "own"`).
fn wants_upstream_key(m: &crate::file::MemberSpec) -> bool {
    use crate::file::{KeyMode, UpstreamMode};
    m.key.mode == KeyMode::Direct || m.key.upstream == UpstreamMode::Own
}

/// The member whose ledger record holds `k`.
fn owner_of<'a>(_team: &ResolvedTeam, obs: &'a Observed, k: &Key) -> Option<&'a str> {
    obs.dir
        .upstream_keys
        .iter()
        .find(|r| r.key_hash == k.hash)
        .map(|r| r.member_id.as_str())
}

/// Workspaces to create: run before member keys, so new keys can be created in them.
pub(crate) fn create_workspaces(team: &ResolvedTeam, obs: &Observed, out: &mut Vec<Change>) {
    let wanted: BTreeSet<&str> = team
        .teams
        .values()
        .filter_map(|t| t.workspace.as_deref())
        .collect();
    for slug in wanted {
        if find_workspace(obs, slug).is_none() {
            out.push(change(
                Action::Create,
                Resource::Workspace,
                slug,
                vec![],
                "holds the OpenRouter keys of the teams mapped to it",
                vec![Op::CreateWorkspace {
                    slug: slug.to_owned(),
                    name: slug.to_owned(),
                    description: workspace_marker(&team.org.name),
                }],
            ));
        }
    }
}

/// Key moves, guardrails, the shared key's limit and workspace removals: run after the keys.
pub(crate) fn plan_defence(team: &ResolvedTeam, obs: &Observed, out: &mut Vec<Change>) {
    let keys = member_upstream_keys(team, obs);
    move_keys(team, obs, &keys, out);
    guardrails(team, obs, &keys, out);
    shared_key(team, obs, out);
    remove_workspaces(team, obs, &keys, out);
}

fn team_workspace<'a>(team: &'a ResolvedTeam, team_id: &str) -> Option<&'a str> {
    team.teams.get(team_id).and_then(|t| t.workspace.as_deref())
}

fn is_orteam_workspace(team: &ResolvedTeam, obs: &Observed, id: Option<&str>) -> bool {
    let marker = workspace_marker(&team.org.name);
    id.is_some_and(|id| {
        obs.workspaces
            .iter()
            .any(|w| w.id == id && w.description.as_deref() == Some(marker.as_str()))
    })
}

fn move_keys(
    team: &ResolvedTeam,
    obs: &Observed,
    keys: &[(&str, &str, &Key)],
    out: &mut Vec<Change>,
) {
    for (team_id, _, k) in keys {
        let target = match team_workspace(team, team_id) {
            Some(slug) => {
                let here = find_workspace(obs, slug)
                    .is_some_and(|w| Some(&w.id) == k.workspace_id.as_ref());
                if here {
                    continue;
                }
                slug
            }
            // No mapping: a key left in a workspace orteam made goes back to the default one.
            None if is_orteam_workspace(team, obs, k.workspace_id.as_deref()) => "default",
            None => continue,
        };
        out.push(change(
            Action::Update,
            Resource::UpstreamKey,
            k.name.clone(),
            vec![fc(
                "workspace",
                k.workspace_id.clone(),
                Some(target.to_owned()),
            )],
            "the key follows its team's workspace",
            vec![Op::MoveKeyToWorkspace {
                hash: k.hash.clone(),
                slug: target.to_owned(),
            }],
        ));
    }
}

/// The allowlist a tier's guardrail carries, if the tier can have one.
fn tier_allowlist(models: &ModelsSpec) -> Option<Vec<String>> {
    match models {
        ModelsSpec::List(list) if !list.iter().any(|m| m.ends_with('*')) => {
            let mut l = list.clone();
            l.sort();
            l.dedup();
            Some(l)
        }
        _ => None,
    }
}

fn guardrails(
    team: &ResolvedTeam,
    obs: &Observed,
    keys: &[(&str, &str, &Key)],
    out: &mut Vec<Change>,
) {
    let org = team.org.name.as_str();
    let prefix = format!("orteam:{org}:tier:");
    let mut wanted = BTreeSet::new();
    if team.org.openrouter.guardrails {
        for (tier_id, tier) in &team.tiers {
            let Some(models) = tier_allowlist(&tier.models) else {
                continue;
            };
            let name = guardrail_name(org, tier_id);
            wanted.insert(name.clone());
            let description = guardrail_description(&models);
            let existing = obs.guardrails.iter().find(|g| g.name == name);
            let put = Op::PutGuardrail {
                name: name.clone(),
                allowed_models: models.clone(),
                description: description.clone(),
            };
            match existing {
                None => out.push(change(
                    Action::Create,
                    Resource::Guardrail,
                    &name,
                    vec![fc("allowed_models", None, Some(models.join(", ")))],
                    "the tier's allowlist, enforced by OpenRouter too",
                    vec![put],
                )),
                Some(g) if g.description.as_deref() != Some(description.as_str()) => {
                    out.push(change(
                        Action::Update,
                        Resource::Guardrail,
                        &name,
                        vec![fc(
                            "allowed_models",
                            g.allowed_models.as_ref().map(|l| l.join(", ")),
                            Some(models.join(", ")),
                        )],
                        "the tier's allowlist changed",
                        vec![put],
                    ))
                }
                Some(_) => {}
            }
            // Assignments: exactly the tier's members' keys, including keys this apply creates
            // (apply reads their hashes from the ledger once they exist).
            let tier_members: Vec<&crate::file::MemberSpec> = team
                .members
                .iter()
                .filter(|m| m.tier == *tier_id && wants_upstream_key(m))
                .collect();
            let want: BTreeSet<&str> = keys
                .iter()
                .filter(|(_, t, _)| *t == tier_id.as_str())
                .map(|(_, _, k)| k.hash.as_str())
                .collect();
            let have: BTreeSet<&str> = existing
                .map(|g| {
                    obs.key_assignments
                        .iter()
                        .filter(|a| a.guardrail_id == g.id)
                        .map(|a| a.key_hash.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let keyless = tier_members
                .iter()
                .filter(|m| {
                    !keys.iter().any(|(_, t, k)| {
                        *t == m.tier.as_str() && owner_of(team, obs, k) == Some(m.id.as_str())
                    })
                })
                .count();
            let missing = want.difference(&have).count() + keyless;
            if missing > 0 {
                out.push(change(
                    Action::Update,
                    Resource::Guardrail,
                    &name,
                    vec![fc("keys", None, Some(format!("+{missing}")))],
                    "assign the tier's members' OpenRouter keys",
                    vec![Op::AssignGuardrailKeys {
                        guardrail: name.clone(),
                        members: tier_members.iter().map(|m| m.id.clone()).collect(),
                    }],
                ));
            }
            // Keys of members who left the tier (a removed member's key is deleted anyway).
            let member_hashes: BTreeSet<&str> =
                keys.iter().map(|(_, _, k)| k.hash.as_str()).collect();
            let drop: Vec<String> = have
                .difference(&want)
                .filter(|h| member_hashes.contains(**h))
                .map(|h| (*h).to_owned())
                .collect();
            if let (Some(g), false) = (existing, drop.is_empty()) {
                out.push(change(
                    Action::Update,
                    Resource::Guardrail,
                    &name,
                    vec![fc("keys", None, Some(format!("-{}", drop.len())))],
                    "the keys' members left the tier",
                    vec![Op::UnassignGuardrailKeys {
                        id: g.id.clone(),
                        hashes: drop,
                    }],
                ));
            }
        }
    }
    for g in &obs.guardrails {
        if g.name.starts_with(&prefix) && !wanted.contains(&g.name) {
            out.push(change(
                Action::Delete,
                Resource::Guardrail,
                &g.name,
                vec![],
                "no longer in the team file",
                vec![Op::DeleteGuardrail { id: g.id.clone() }],
            ));
        }
    }
}

/// The org budget as a key limit: its longest window.
fn backstop_limit(team: &ResolvedTeam) -> Option<(Money, Window)> {
    team.org
        .budget
        .limits()
        .into_iter()
        .max_by_key(|(w, _)| match w {
            Window::Daily => 0,
            Window::Weekly => 1,
            Window::Monthly => 2,
        })
        .map(|(w, m)| (m, w))
}

fn shared_key(team: &ResolvedTeam, obs: &Observed, out: &mut Vec<Change>) {
    let or = &team.org.openrouter;
    let Some(named) = or.shared_key.as_deref() else {
        return;
    };
    let Some(k) = obs.keys.iter().find(|k| k.name == named || k.hash == named) else {
        return;
    };
    let want = if or.backstop {
        backstop_limit(team)
    } else {
        None
    };
    let have = k.limit.map(|l| (l, k.limit_reset));
    let want_cmp = want.map(|(l, w)| (l, Some(w)));
    if have == want_cmp {
        return;
    }
    let show = |v: Option<(Money, Option<Window>)>| {
        v.map(|(l, w)| format!("{l} {}", w.map_or("total", Window::as_str)))
    };
    let req = UpdateKeyRequest {
        limit: want.map_or(Patch::Clear, |(l, _)| Patch::Set(l)),
        limit_reset: want.map_or(Patch::Clear, |(_, w)| Patch::Set(w)),
        ..UpdateKeyRequest::default()
    };
    out.push(change(
        Action::Update,
        Resource::SharedKey,
        k.name.clone(),
        vec![fc("limit", show(have), show(want_cmp))],
        if want.is_some() {
            "the org budget, enforced by OpenRouter too"
        } else {
            "no backstop in the team file"
        },
        vec![Op::UpdateUpstreamKey {
            hash: k.hash.clone(),
            req,
            best_effort: false,
        }],
    ));
}

fn remove_workspaces(
    team: &ResolvedTeam,
    obs: &Observed,
    keys: &[(&str, &str, &Key)],
    out: &mut Vec<Change>,
) {
    let wanted: BTreeSet<&str> = team
        .teams
        .values()
        .filter_map(|t| t.workspace.as_deref())
        .collect();
    let marker = workspace_marker(&team.org.name);
    for w in &obs.workspaces {
        if w.description.as_deref() != Some(marker.as_str()) || wanted.contains(w.slug.as_str()) {
            continue;
        }
        // Empty once the members' keys planned above have moved out; otherwise left alone.
        let moving: BTreeSet<&str> = keys.iter().map(|(_, _, k)| k.hash.as_str()).collect();
        let stays = obs.keys.iter().any(|k| {
            k.workspace_id.as_deref() == Some(w.id.as_str()) && !moving.contains(k.hash.as_str())
        }) || obs.guardrails.iter().any(|g| {
            g.workspace_id.as_deref() == Some(w.id.as_str())
                && !g
                    .name
                    .starts_with(&format!("orteam:{}:tier:", team.org.name))
        });
        if stays {
            continue;
        }
        out.push(change(
            Action::Delete,
            Resource::Workspace,
            w.slug.clone(),
            vec![],
            "no team maps to it any more",
            vec![Op::DeleteWorkspace { id: w.id.clone() }],
        ));
    }
}
