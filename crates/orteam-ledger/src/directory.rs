//! The in-memory directory snapshot. Every process keeps the whole directory (it is small: a
//! team's members, tiers, budgets and keys) and rebuilds it whenever the change log moves, so
//! authentication and policy lookups cost no database round trip. Rebuilding *is* the auth
//! cache invalidation: a process that changes the directory rebuilds before returning, and
//! every other process within one poll / notification.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::budget::engine::{Id, MemberInfo, ScopeLimits};
use crate::error::AuthError;
use crate::keys::{self, SecretKey};
use crate::model::*;

/// Everything a store returns when the directory is loaded.
#[derive(Debug, Default, Clone)]
pub struct DirectoryData {
    pub seq: i64,
    pub orgs: Vec<Org>,
    pub teams: Vec<Team>,
    pub tiers: Vec<Tier>,
    pub members: Vec<Member>,
    pub budgets: Vec<Budget>,
    pub raises: Vec<BudgetRaise>,
    pub virtual_keys: Vec<VirtualKey>,
    /// Upstream keys with their encrypted secret, if held.
    pub upstream_keys: Vec<(UpstreamKey, Option<String>)>,
    /// Shared keys gateways use.
    pub gateway_keys: Vec<GatewayKey>,
}

/// One mutation of the directory. Each backend applies it in one transaction together with a
/// `change_log` row (and, on PostgreSQL, a NOTIFY).
#[derive(Debug, Clone)]
pub enum DirectoryChange {
    PutOrg(Org),
    PutTeam(Team),
    PutTier(Tier),
    PutMember(Member),
    SetBudget(Budget),
    ClearBudget {
        scope: BudgetScope,
        scope_id: String,
        window: orteam_core::Window,
    },
    AddRaise(BudgetRaise),
    RemoveRaise(String),
    InsertVirtualKey(VirtualKey),
    UpdateVirtualKey {
        id: String,
        disabled: bool,
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    },
    PutUpstreamKey {
        key: UpstreamKey,
        secret_enc: Option<String>,
    },
    RemoveUpstreamKey(String),
    /// Registers (or re-labels) a gateway's shared key.
    PutGatewayKey(GatewayKey),
}

impl DirectoryChange {
    /// (kind, entity id) for the change log.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            DirectoryChange::PutOrg(o) => ("org", o.id.clone()),
            DirectoryChange::PutTeam(t) => ("team", t.id.clone()),
            DirectoryChange::PutTier(t) => ("tier", t.id.clone()),
            DirectoryChange::PutMember(m) => ("member", m.id.clone()),
            DirectoryChange::SetBudget(b) => {
                ("budget", format!("{}:{}:{}", b.scope, b.scope_id, b.window))
            }
            DirectoryChange::ClearBudget {
                scope,
                scope_id,
                window,
            } => ("budget", format!("{scope}:{scope_id}:{window}")),
            DirectoryChange::AddRaise(r) => ("raise", r.id.clone()),
            DirectoryChange::RemoveRaise(id) => ("raise", id.clone()),
            DirectoryChange::InsertVirtualKey(k) => ("virtual_key", k.id.clone()),
            DirectoryChange::UpdateVirtualKey { id, .. } => ("virtual_key", id.clone()),
            DirectoryChange::PutUpstreamKey { key, .. } => ("upstream_key", key.id.clone()),
            DirectoryChange::RemoveUpstreamKey(id) => ("upstream_key", id.clone()),
            DirectoryChange::PutGatewayKey(k) => ("gateway_key", k.key_hash.clone()),
        }
    }
}

/// The indexed snapshot.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    pub seq: i64,
    pub orgs: BTreeMap<String, Org>,
    pub teams: BTreeMap<String, Team>,
    pub tiers: BTreeMap<String, Arc<Tier>>,
    pub members: BTreeMap<String, Member>,
    pub budgets: Vec<Budget>,
    pub raises: Vec<BudgetRaise>,
    pub virtual_keys: HashMap<String, VirtualKey>,
    pub upstream_keys: Vec<UpstreamKey>,
    /// Shared keys gateways use (never strays).
    pub gateway_keys: Vec<GatewayKey>,
    /// First enabled upstream key per member, with its decrypted secret when available.
    upstream_by_member: HashMap<String, Arc<UpstreamCredential>>,
}

impl Directory {
    pub fn build(data: DirectoryData, secret_key: Option<&SecretKey>) -> Self {
        let mut upstream_by_member = HashMap::new();
        let mut upstream_keys = Vec::with_capacity(data.upstream_keys.len());
        for (k, enc) in data.upstream_keys {
            if !k.disabled && !upstream_by_member.contains_key(&k.member_id) {
                let secret = match (enc.as_deref(), secret_key) {
                    (Some(enc), Some(sk)) => match sk.decrypt(&k.id, enc) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            tracing::warn!(upstream_key = %k.id, error = %e, "cannot decrypt upstream key secret");
                            None
                        }
                    },
                    _ => None,
                };
                upstream_by_member.insert(
                    k.member_id.clone(),
                    Arc::new(UpstreamCredential {
                        key_id: k.id.clone(),
                        key_hash: k.key_hash.clone(),
                        secret,
                    }),
                );
            }
            upstream_keys.push(k);
        }
        Directory {
            seq: data.seq,
            orgs: data.orgs.into_iter().map(|o| (o.id.clone(), o)).collect(),
            teams: data.teams.into_iter().map(|t| (t.id.clone(), t)).collect(),
            tiers: data
                .tiers
                .into_iter()
                .map(|t| (t.id.clone(), Arc::new(t)))
                .collect(),
            members: data
                .members
                .into_iter()
                .map(|m| (m.id.clone(), m))
                .collect(),
            budgets: data.budgets,
            raises: data.raises,
            virtual_keys: data
                .virtual_keys
                .into_iter()
                .map(|k| (k.id.clone(), k))
                .collect(),
            upstream_keys,
            gateway_keys: data.gateway_keys,
            upstream_by_member,
        }
    }

    /// The upstream key the gateway uses for `member` (first enabled one), with its decrypted
    /// secret when available.
    pub fn upstream_credential(&self, member: &str) -> Option<Arc<UpstreamCredential>> {
        self.upstream_by_member.get(member).cloned()
    }

    /// The org a team belongs to.
    pub fn org_of_team(&self, team: &str) -> Option<&str> {
        self.teams.get(team).map(|t| t.org_id.as_str())
    }

    /// Member and limit tables for the budget engine.
    pub fn engine_tables(&self) -> (HashMap<Id, MemberInfo>, [HashMap<Id, ScopeLimits>; 3]) {
        let mut members = HashMap::new();
        for m in self.members.values() {
            let org = self.org_of_team(&m.team_id).unwrap_or_default();
            let id: Id = Arc::from(m.id.as_str());
            members.insert(
                id.clone(),
                MemberInfo {
                    id,
                    team: Arc::from(m.team_id.as_str()),
                    org: Arc::from(org),
                    state: m.state,
                },
            );
        }
        let mut limits: [HashMap<Id, ScopeLimits>; 3] = Default::default();
        let idx = |s: BudgetScope| match s {
            BudgetScope::Member => 0,
            BudgetScope::Team => 1,
            BudgetScope::Org => 2,
        };
        let widx = |w: orteam_core::Window| match w {
            orteam_core::Window::Daily => 0,
            orteam_core::Window::Weekly => 1,
            orteam_core::Window::Monthly => 2,
        };
        for b in &self.budgets {
            limits[idx(b.scope)]
                .entry(Arc::from(b.scope_id.as_str()))
                .or_default()
                .limits[widx(b.window)] = Some(b.limit);
        }
        for r in &self.raises {
            limits[idx(r.scope)]
                .entry(Arc::from(r.scope_id.as_str()))
                .or_default()
                .raises[widx(r.window)]
            .push((r.amount, r.until));
        }
        (members, limits)
    }

    /// Authenticates a presented key against the snapshot: parse, look up by public id,
    /// constant-time hash compare, then state checks.
    pub fn authenticate(
        &self,
        presented: &secrecy::SecretString,
        now: DateTime<Utc>,
    ) -> Result<AuthContext, AuthError> {
        let text = presented.expose_secret();
        let public_id = keys::parse_public_id(text).ok_or(AuthError::Malformed)?;
        let key = self.virtual_keys.get(public_id).ok_or(AuthError::Invalid)?;
        if !keys::hashes_match(&keys::hash_key(text), &key.key_hash) {
            return Err(AuthError::Invalid);
        }
        if key.revoked_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Revoked);
        }
        if key.disabled {
            return Err(AuthError::Disabled);
        }
        if key.expires_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Expired);
        }
        let member = self.members.get(&key.member_id).ok_or(AuthError::Invalid)?;
        if member.state == MemberState::Removed {
            return Err(AuthError::MemberRemoved);
        }
        let tier = self
            .tiers
            .get(&member.tier_id)
            .cloned()
            .ok_or(AuthError::Invalid)?;
        Ok(AuthContext {
            key_id: key.id.clone(),
            key_name: key.name.clone(),
            key_expires_at: key.expires_at,
            member_id: member.id.clone(),
            member_name: member.display_name.clone(),
            team_id: member.team_id.clone(),
            org_id: self
                .org_of_team(&member.team_id)
                .unwrap_or_default()
                .to_owned(),
            tier,
            upstream: self.upstream_by_member.get(&member.id).cloned(),
        })
    }
}
