//! `[access.tokens.*]`: admin tokens the team file declares. Like members, a token removed from
//! the file is revoked by the next apply; a changed role, teams, max_raise or expiry is updated
//! in place (same secret). Only tokens marked as this org's file tokens (`file_org`) are ever
//! changed or revoked here: tokens made by `orteam token create`, or declared by another org's
//! team file sharing the ledger, are left alone.
//!
//! Crash safety as for virtual keys: a token is created with the pending-delivery expiry, its
//! secret delivered, then given its real expiry. A declared token still carrying the pending
//! expiry was never delivered: the plan replaces it (and it dies by itself meanwhile).

use chrono::{DateTime, Utc};
use orteam_ledger::{AdminToken, AdminTokenUpdate};

use super::model::{Action, Change, FieldChange, Op, Resource};
use super::observe::Observed;
use super::planner::{PENDING_DELIVERY_TTL, td};
use crate::file::{ResolvedTeam, TokenSpec};

/// Whether a token still carries the pending-delivery expiry (and its file asks for another).
fn never_delivered(t: &AdminToken, spec: &TokenSpec) -> bool {
    let pending = td(PENDING_DELIVERY_TTL);
    let declared_pending = spec.expires_in.is_some_and(|d| td(d.0) == pending);
    !declared_pending
        && t.expires_at
            .is_some_and(|e| ((e - t.created_at) - pending).num_milliseconds().abs() < 2000)
}

fn show_teams(teams: &[String]) -> Option<String> {
    (!teams.is_empty()).then(|| teams.join(", "))
}

fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn fc(field: &str, old: Option<String>, new: Option<String>) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new,
    }
}

fn create_op(org: &str, spec: &TokenSpec) -> Op {
    Op::CreateAdminToken {
        org: org.to_owned(),
        name: spec.name.clone(),
        role: spec.grant.role,
        teams: spec.grant.teams.clone(),
        max_raise: spec.grant.max_raise,
        expires_in: spec.expires_in.map(|d| d.0),
    }
}

fn create_fields(spec: &TokenSpec) -> Vec<FieldChange> {
    let g = &spec.grant;
    let mut f = vec![fc("role", None, Some(g.role.to_string()))];
    if let Some(t) = show_teams(&g.teams) {
        f.push(fc("teams", None, Some(t)));
    }
    if let Some(m) = g.max_raise {
        f.push(fc("max_raise", None, Some(m.to_canonical_string())));
    }
    if let Some(d) = spec.expires_in {
        f.push(fc(
            "expires_at",
            None,
            Some(format!("now + {}", crate::naming::short_duration(d.0))),
        ));
    }
    f
}

/// The token changes: create, update in place, replace (expired or never delivered), revoke.
pub(super) fn plan_tokens(
    team: &ResolvedTeam,
    obs: &Observed,
    now: DateTime<Utc>,
    out: &mut Vec<Change>,
) {
    let org = team.org.name.as_str();
    let live = |name: &str| {
        obs.tokens
            .iter()
            .find(|t| t.name == name && t.revoked_at.is_none())
    };
    for spec in team.access.tokens.values() {
        let change = |action, fields, reason: Option<String>, ops| Change {
            action,
            resource: Resource::AdminToken,
            id: spec.name.clone(),
            fields,
            reason,
            ops,
        };
        let Some(have) = live(&spec.name) else {
            out.push(change(
                Action::Create,
                create_fields(spec),
                None,
                vec![create_op(org, spec)],
            ));
            continue;
        };
        if have.file_org.as_deref() != Some(org) {
            // Apply leaves other tokens alone; creating this one would fail on the name.
            out.push(change(
                Action::Create,
                create_fields(spec),
                Some(match &have.file_org {
                    None => format!(
                        "the name is taken by a token made with `orteam token create`: revoke \
                         it (`orteam token revoke {}`) or rename this one; apply will fail here",
                        spec.name
                    ),
                    Some(other) => format!(
                        "the name is taken by a token of org {other:?}'s team file: rename this \
                         one; apply will fail here"
                    ),
                }),
                vec![create_op(org, spec)],
            ));
            continue;
        }
        let revoke = Op::RevokeAdminToken {
            name: spec.name.clone(),
        };
        if never_delivered(have, spec) {
            out.push(change(
                Action::Replace,
                create_fields(spec),
                Some("never delivered (an apply stopped before its secret was written)".into()),
                vec![revoke, create_op(org, spec)],
            ));
            continue;
        }
        if have.expires_at.is_some_and(|e| e <= now) {
            out.push(change(
                Action::Replace,
                create_fields(spec),
                Some(format!(
                    "expired {}: a new secret is issued",
                    show_time(have.expires_at.unwrap_or(now))
                )),
                vec![revoke, create_op(org, spec)],
            ));
            continue;
        }
        let g = &spec.grant;
        let want_expiry = spec
            .expires_in
            .map(|d| orteam_ledger::audit::stored_instant(have.created_at + td(d.0)));
        let mut fields = Vec::new();
        if have.role != g.role {
            fields.push(fc(
                "role",
                Some(have.role.to_string()),
                Some(g.role.to_string()),
            ));
        }
        if have.teams != g.teams {
            fields.push(fc("teams", show_teams(&have.teams), show_teams(&g.teams)));
        }
        if have.max_raise != g.max_raise {
            fields.push(fc(
                "max_raise",
                have.max_raise.map(|m| m.to_canonical_string()),
                g.max_raise.map(|m| m.to_canonical_string()),
            ));
        }
        let same_expiry = match (have.expires_at, want_expiry) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).num_seconds().abs() <= 1,
            _ => false,
        };
        if !same_expiry {
            fields.push(fc(
                "expires_at",
                have.expires_at.map(show_time),
                want_expiry.map(show_time),
            ));
        }
        if fields.is_empty() {
            continue;
        }
        out.push(change(
            Action::Update,
            fields,
            Some("in place: the secret stays the same".into()),
            vec![Op::UpdateAdminToken {
                name: spec.name.clone(),
                update: AdminTokenUpdate {
                    role: g.role,
                    teams: g.teams.clone(),
                    max_raise: g.max_raise,
                    expires_at: want_expiry,
                },
            }],
        ));
    }
    let mut gone: Vec<&AdminToken> = obs
        .tokens
        .iter()
        .filter(|t| t.file_org.as_deref() == Some(org) && t.revoked_at.is_none())
        .filter(|t| !team.access.tokens.contains_key(&t.name))
        .collect();
    gone.sort_by(|a, b| a.name.cmp(&b.name));
    for t in gone {
        out.push(Change {
            action: Action::Delete,
            resource: Resource::AdminToken,
            id: t.name.clone(),
            fields: vec![fc(
                "token",
                Some(t.display_prefix()),
                Some("revoked".into()),
            )],
            reason: Some("not in the team file: revoked at once".into()),
            ops: vec![Op::RevokeAdminToken {
                name: t.name.clone(),
            }],
        });
    }
}
