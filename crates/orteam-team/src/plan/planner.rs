//! The planner: a pure function of the resolved team file, the observed state and the time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{Money, Window};
use orteam_ledger::{
    BudgetScope, Directory, MemberState, ModelAccess, NewMember,
    OnDisallowed as LedgerOnDisallowed, RoutingPolicy, Tier, UpstreamKey, VirtualKey,
};
use orteam_openrouter::types::keys::Key;

use crate::file::{
    BudgetSpec, KeyMode, MemberSpec, ModelsSpec, OnDisallowed, ResolvedTeam, TierSpec, UpstreamMode,
};
use crate::naming::KeyLabel;

use super::model::{
    Action, Change, FieldChange, Op, Plan, PlanOptions, RaiseInfo, Resource, RotationInfo,
    UpstreamSettings,
};
use super::observe::Observed;
use super::strays::{strays, unused};

/// A virtual key created by apply first gets this expiry, replaced by its real one once its
/// secret has been delivered. A key still carrying it was never delivered (the process stopped
/// in between): plan replaces it, and it dies by itself meanwhile.
pub const PENDING_DELIVERY_TTL: Duration = Duration::from_secs(10 * 60);

/// Computes the plan. Pure: the same inputs give the same plan.
pub fn plan(team: &ResolvedTeam, obs: &Observed, opts: &PlanOptions) -> Plan {
    let mut p = Planner {
        team,
        dir: &obs.dir,
        keys: &obs.keys,
        now: opts.now,
        out: Vec::new(),
        rotations: Vec::new(),
    };
    p.org();
    p.tiers();
    p.teams();
    p.members();
    p.budgets();
    super::defence::create_workspaces(team, obs, &mut p.out);
    p.member_keys();
    p.removed_members();
    super::tokens::plan_tokens(team, obs, opts.now, &mut p.out);
    p.orphans();
    super::defence::plan_defence(team, obs, &mut p.out);
    let strays = strays(team, obs);
    if opts.prune {
        for s in &strays {
            p.out.push(Change {
                action: Action::Delete,
                resource: Resource::StrayKey,
                id: display_key(&s.name, &s.hash),
                fields: vec![],
                reason: Some("no member owns it (--prune)".into()),
                ops: vec![Op::DeleteUpstreamKey {
                    hash: s.hash.clone(),
                    record: None,
                }],
            });
        }
    }
    let unused = unused(team, obs, &strays, opts);
    let raises = obs
        .dir
        .raises
        .iter()
        .filter(|r| r.until > opts.now)
        .map(|r| RaiseInfo {
            scope: r.scope,
            scope_id: r.scope_id.clone(),
            window: r.window,
            amount: r.amount,
            until: r.until,
            reason: r.reason.clone(),
        })
        .collect();
    let rotations = p.rotations;
    Plan {
        org: team.org.name.clone(),
        changes: p.out,
        strays,
        unused,
        raises,
        rotations,
    }
}

pub(super) fn display_key(name: &str, hash: &str) -> String {
    let short = hash.get(..12).unwrap_or(hash);
    if name.is_empty() {
        short.to_owned()
    } else {
        format!("{name} ({short}…)")
    }
}

fn fc(field: &str, old: Option<String>, new: Option<String>) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new,
    }
}

pub(crate) fn ledger_tier(spec: &TierSpec) -> Tier {
    Tier {
        id: spec.name.clone(),
        name: spec.name.clone(),
        models: match &spec.models {
            ModelsSpec::All => ModelAccess::All,
            ModelsSpec::List(l) => ModelAccess::Allow(l.clone()),
        },
        on_disallowed: match (&spec.on_disallowed, &spec.downgrade_to) {
            (OnDisallowed::Downgrade, Some(m)) => LedgerOnDisallowed::Downgrade(m.clone()),
            _ => LedgerOnDisallowed::Deny,
        },
        requests_per_minute: spec.rate_limit.requests_per_minute,
        tokens_per_minute: spec.rate_limit.tokens_per_minute,
        routing: spec.routing,
    }
}

/// `fallbacks=check provider=check plugins=refuse server_tools=strip`.
fn show_routing(r: &RoutingPolicy) -> String {
    format!(
        "fallbacks={} provider={} plugins={} server_tools={}",
        r.fallbacks.as_str(),
        r.provider.as_str(),
        r.plugins.as_str(),
        r.server_tools.as_str()
    )
}

fn show_models(m: &ModelAccess) -> String {
    match m {
        ModelAccess::All => "*".into(),
        ModelAccess::Allow(l) => l.join(", "),
    }
}

fn show_policy(p: &LedgerOnDisallowed) -> String {
    match p {
        LedgerOnDisallowed::Deny => "deny".into(),
        LedgerOnDisallowed::Downgrade(m) => format!("downgrade to {m}"),
    }
}

fn tier_fields(old: Option<&Tier>, new: &Tier) -> Vec<FieldChange> {
    let mut f = Vec::new();
    let om = old.map(|t| show_models(&t.models));
    let nm = show_models(&new.models);
    if om.as_deref() != Some(nm.as_str()) {
        f.push(fc("models", om, Some(nm)));
    }
    let op = old.map(|t| show_policy(&t.on_disallowed));
    let np = show_policy(&new.on_disallowed);
    if op.as_deref() != Some(np.as_str()) {
        f.push(fc("on_disallowed", op, Some(np)));
    }
    let show = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
    for (field, o, n) in [
        (
            "requests_per_minute",
            old.map(|t| show(t.requests_per_minute.map(|v| v.to_string()))),
            show(new.requests_per_minute.map(|v| v.to_string())),
        ),
        (
            "tokens_per_minute",
            old.map(|t| show(t.tokens_per_minute.map(|v| v.to_string()))),
            show(new.tokens_per_minute.map(|v| v.to_string())),
        ),
    ] {
        let unchanged = o.as_deref() == Some(n.as_str());
        let trivial_create = o.is_none() && n == "unlimited";
        if !unchanged && !trivial_create {
            f.push(fc(field, o, Some(n)));
        }
    }
    let or = old.map(|t| show_routing(&t.routing));
    let nr = show_routing(&new.routing);
    let trivial_create = old.is_none() && new.routing == RoutingPolicy::default();
    if or.as_deref() != Some(nr.as_str()) && !trivial_create {
        f.push(fc("routing", or, Some(nr)));
    }
    if let Some(o) = old
        && o.name != new.name
    {
        f.push(fc("name", Some(o.name.clone()), Some(new.name.clone())));
    }
    f
}

fn dur(d: Duration) -> String {
    crate::naming::short_duration(d)
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn money(m: Option<Money>) -> Option<String> {
    m.map(|m| m.to_string())
}

pub(super) fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Whether a virtual key still carries the pending-delivery expiry.
pub fn is_pending_delivery(k: &VirtualKey) -> bool {
    k.expires_at.is_some_and(|e| {
        let ttl = td(PENDING_DELIVERY_TTL);
        ((e - k.created_at) - ttl).num_milliseconds().abs() < 2000
    })
}

/// A member's keys, as orteam sees them.
pub(crate) struct MemberKeys<'a> {
    /// Managed virtual keys not revoked, by generation.
    pub virtual_keys: Vec<(KeyLabel, &'a VirtualKey)>,
    /// Upstream records with their key at OpenRouter (None: gone there), by generation.
    pub upstream: Vec<(KeyLabel, &'a UpstreamKey, Option<&'a Key>)>,
    /// Highest generation seen anywhere (ledger or OpenRouter).
    pub max_generation: u64,
}

pub(crate) fn member_keys<'a>(
    org: &str,
    member: &str,
    dir: &'a Directory,
    keys: &'a [Key],
) -> MemberKeys<'a> {
    let mut max_generation = 0;
    let mut vks: Vec<(KeyLabel, &VirtualKey)> = dir
        .virtual_keys
        .values()
        .filter(|k| k.member_id == member)
        .filter_map(|k| {
            let l = KeyLabel::parse(&k.name)?;
            (l.org == org && l.member == member).then_some((l, k))
        })
        .inspect(|(l, _)| max_generation = max_generation.max(l.generation))
        .filter(|(_, k)| k.revoked_at.is_none())
        .collect();
    vks.sort_by_key(|(l, _)| l.generation);
    let mut ups: Vec<(KeyLabel, &UpstreamKey, Option<&Key>)> = dir
        .upstream_keys
        .iter()
        .filter(|k| k.member_id == member)
        .map(|k| {
            let l = KeyLabel::parse(&k.label)
                .unwrap_or_else(|| KeyLabel::new(org, member, 0))
                .clone();
            let at = keys.iter().find(|x| x.hash == k.key_hash);
            (l, k, at)
        })
        .collect();
    ups.sort_by_key(|(l, _, _)| l.generation);
    for (l, _, _) in &ups {
        max_generation = max_generation.max(l.generation);
    }
    for k in keys {
        if let Some(l) = KeyLabel::parse(&k.name)
            && l.org == org
            && l.member == member
        {
            max_generation = max_generation.max(l.generation);
        }
    }
    MemberKeys {
        virtual_keys: vks,
        upstream: ups,
        max_generation,
    }
}

/// When an upstream key that was succeeded stops being needed: its successor's creation plus
/// the successor's grace.
pub(crate) fn retire_at(
    upstream: &[(KeyLabel, &UpstreamKey, Option<&Key>)],
    generation: u64,
) -> Option<DateTime<Utc>> {
    upstream
        .iter()
        .filter(|(l, _, _)| l.generation > generation)
        .map(|(l, k, _)| k.created_at + td(l.grace))
        .min()
}

struct Planner<'a> {
    team: &'a ResolvedTeam,
    dir: &'a Directory,
    keys: &'a [Key],
    now: DateTime<Utc>,
    out: Vec<Change>,
    rotations: Vec<RotationInfo>,
}

impl Planner<'_> {
    fn push(
        &mut self,
        action: Action,
        resource: Resource,
        id: impl Into<String>,
        fields: Vec<FieldChange>,
        reason: Option<String>,
        ops: Vec<Op>,
    ) {
        self.out.push(Change {
            action,
            resource,
            id: id.into(),
            fields,
            reason,
            ops,
        });
    }

    fn org_id(&self) -> &str {
        &self.team.org.name
    }

    fn org(&mut self) {
        let id = self.org_id().to_owned();
        if !self.dir.orgs.contains_key(&id) {
            let op = Op::PutOrg {
                id: id.clone(),
                name: id.clone(),
            };
            self.push(
                Action::Create,
                Resource::Org,
                id.clone(),
                vec![],
                None,
                vec![op],
            );
        }
    }

    fn tiers(&mut self) {
        for spec in self.team.tiers.values() {
            let new = ledger_tier(spec);
            let old = self.dir.tiers.get(&spec.name).map(|t| t.as_ref());
            if old == Some(&new) {
                continue;
            }
            let fields = tier_fields(old, &new);
            let action = if old.is_some() {
                Action::Update
            } else {
                Action::Create
            };
            self.push(
                action,
                Resource::Tier,
                spec.name.clone(),
                fields,
                None,
                vec![Op::PutTier(new)],
            );
        }
    }

    fn teams(&mut self) {
        let org = self.org_id().to_owned();
        for spec in self.team.teams.values() {
            let old = self.dir.teams.get(&spec.id);
            let mut fields = Vec::new();
            match old {
                Some(t) => {
                    if t.name != spec.display_name {
                        fields.push(fc(
                            "name",
                            Some(t.name.clone()),
                            Some(spec.display_name.clone()),
                        ));
                    }
                    if t.org_id != org {
                        fields.push(fc("org", Some(t.org_id.clone()), Some(org.clone())));
                    }
                    if fields.is_empty() {
                        continue;
                    }
                }
                None => fields.push(fc("name", None, Some(spec.display_name.clone()))),
            }
            let op = Op::PutTeam {
                id: spec.id.clone(),
                org: org.clone(),
                name: spec.display_name.clone(),
            };
            let action = if old.is_some() {
                Action::Update
            } else {
                Action::Create
            };
            self.push(
                action,
                Resource::Team,
                spec.id.clone(),
                fields,
                None,
                vec![op],
            );
        }
    }

    fn members(&mut self) {
        for m in &self.team.members {
            let old = self.dir.members.get(&m.id);
            let mut fields = Vec::new();
            let action = match old {
                Some(o) if o.state == MemberState::Active => {
                    for (name, a, b) in [
                        ("name", &o.display_name, &m.display_name),
                        ("team", &o.team_id, &m.team),
                        ("tier", &o.tier_id, &m.tier),
                    ] {
                        if a != b {
                            fields.push(fc(name, Some(a.clone()), Some(b.clone())));
                        }
                    }
                    if fields.is_empty() {
                        continue;
                    }
                    Action::Update
                }
                Some(o) => {
                    fields.push(fc(
                        "state",
                        Some(o.state.as_str().into()),
                        Some("active".into()),
                    ));
                    Action::Create
                }
                None => {
                    fields.push(fc("team", None, Some(m.team.clone())));
                    fields.push(fc("tier", None, Some(m.tier.clone())));
                    Action::Create
                }
            };
            let op = Op::PutMember(NewMember {
                id: m.id.clone(),
                display_name: m.display_name.clone(),
                team_id: m.team.clone(),
                tier_id: m.tier.clone(),
            });
            self.push(
                action,
                Resource::Member,
                m.id.clone(),
                fields,
                None,
                vec![op],
            );
        }
    }

    fn budgets(&mut self) {
        let mut scopes: Vec<(BudgetScope, String, BudgetSpec)> = vec![(
            BudgetScope::Org,
            self.org_id().to_owned(),
            self.team.org.budget,
        )];
        for t in self.team.teams.values() {
            scopes.push((BudgetScope::Team, t.id.clone(), t.budget));
        }
        for m in &self.team.members {
            scopes.push((BudgetScope::Member, m.id.clone(), m.budget));
        }
        for (scope, id, spec) in scopes {
            let want: BTreeMap<Window, Money> = spec.limits().into_iter().collect();
            for window in Window::ALL {
                let have = self
                    .dir
                    .budgets
                    .iter()
                    .find(|b| b.scope == scope && b.scope_id == id && b.window == window)
                    .map(|b| b.limit);
                let want = want.get(&window).copied();
                if have == want {
                    continue;
                }
                let name = format!("{scope} {id} {window}", window = window.as_str());
                let fields = vec![fc("limit", money(have), money(want))];
                let (action, op) = match want {
                    Some(limit) => (
                        if have.is_some() {
                            Action::Update
                        } else {
                            Action::Create
                        },
                        Op::SetBudget {
                            scope,
                            id: id.clone(),
                            window,
                            limit,
                        },
                    ),
                    None => (
                        Action::Delete,
                        Op::ClearBudget {
                            scope,
                            id: id.clone(),
                            window,
                        },
                    ),
                };
                self.push(action, Resource::Budget, name, fields, None, vec![op]);
            }
        }
    }

    fn member_keys(&mut self) {
        for m in &self.team.members {
            self.virtual_keys_of(m);
            self.upstream_keys_of(m);
        }
    }

    fn label_for(&self, m: &MemberSpec, generation: u64) -> KeyLabel {
        KeyLabel::new(self.org_id(), &m.id, generation)
            .with_policy(m.key.rotate_every.map(|d| d.0), m.key.grace.0)
    }

    fn virtual_keys_of(&mut self, m: &MemberSpec) {
        let org = self.org_id().to_owned();
        let mk = member_keys(&org, &m.id, self.dir, self.keys);
        let wants = m.key.mode == KeyMode::Gateway;
        let now = self.now;
        let mut next_gen = mk.max_generation + 1;
        let mut live: Vec<&(KeyLabel, &VirtualKey)> = Vec::new();
        for entry in &mk.virtual_keys {
            let (label, k) = entry;
            let expired = k.expires_at.is_some_and(|e| e <= now);
            if !wants || expired || is_pending_delivery(k) {
                let reason = if !wants {
                    "member uses a direct key".to_owned()
                } else if expired {
                    "expired".to_owned()
                } else {
                    "its secret was never delivered (apply stopped half-way)".to_owned()
                };
                self.push(
                    Action::Delete,
                    Resource::VirtualKey,
                    format!("{} {}", m.id, k.display_prefix()),
                    vec![],
                    Some(format!("{reason} (generation {})", label.generation)),
                    vec![Op::RevokeVirtualKey(k.id.clone())],
                );
            } else {
                live.push(entry);
            }
        }
        if !wants {
            return;
        }
        let expires_in = m.key.expires_in.map(|d| d.0);
        match live.last() {
            None => {
                let label = self.label_for(m, next_gen);
                let mut fields = vec![fc("generation", None, Some(next_gen.to_string()))];
                if let Some(r) = m.key.rotate_every {
                    fields.push(fc("rotate_every", None, Some(dur(r.0))));
                }
                if let Some(e) = expires_in {
                    fields.push(fc("expires_in", None, Some(dur(e))));
                }
                self.push(
                    Action::Create,
                    Resource::VirtualKey,
                    m.id.clone(),
                    fields,
                    None,
                    vec![Op::IssueVirtualKey {
                        member: m.id.clone(),
                        label,
                        expires_in,
                    }],
                );
            }
            Some((label, current)) => {
                // Keys in grace (older live keys) are left to expire; the current one rotates
                // when due under the file's policy.
                if let Some(every) = m.key.rotate_every {
                    let due = current.created_at + td(every.0);
                    if due <= now {
                        let new_label = self.label_for(m, next_gen);
                        next_gen += 1;
                        self.push(
                            Action::Rotate,
                            Resource::VirtualKey,
                            format!("{} {}", m.id, current.display_prefix()),
                            vec![
                                fc(
                                    "generation",
                                    Some(label.generation.to_string()),
                                    Some(new_label.generation.to_string()),
                                ),
                                fc(
                                    "old key works until",
                                    None,
                                    Some(format!("now + {}", dur(m.key.grace.0))),
                                ),
                            ],
                            Some(format!("rotation due since {}", ts(due))),
                            vec![
                                Op::IssueVirtualKey {
                                    member: m.id.clone(),
                                    label: new_label,
                                    expires_in,
                                },
                                Op::ExpireVirtualKey {
                                    id: current.id.clone(),
                                    grace: m.key.grace.0,
                                },
                            ],
                        );
                    } else {
                        self.rotations.push(RotationInfo {
                            member: m.id.clone(),
                            key: current.display_prefix(),
                            due_at: due,
                        });
                    }
                }
            }
        }
        let _ = next_gen;
    }

    fn upstream_keys_of(&mut self, m: &MemberSpec) {
        let org = self.org_id().to_owned();
        let mk = member_keys(&org, &m.id, self.dir, self.keys);
        let wants = m.key.mode == KeyMode::Direct || m.key.upstream == UpstreamMode::Own;
        let hold_secret = m.key.mode == KeyMode::Gateway;
        let now = self.now;
        let mut next_gen = mk.max_generation + 1;
        let mut settings = UpstreamSettings::of(&m.key);
        settings.workspace = self
            .team
            .teams
            .get(&m.team)
            .and_then(|t| t.workspace.clone());

        // Records whose key is gone at OpenRouter.
        let mut present = Vec::new();
        for entry in &mk.upstream {
            let (label, rec, at) = entry;
            match at {
                None => self.push(
                    Action::Delete,
                    Resource::UpstreamKey,
                    format!("{} {}", m.id, label.name()),
                    vec![],
                    Some("gone at OpenRouter: forget the record".into()),
                    vec![Op::RemoveUpstreamRecord(rec.id.clone())],
                ),
                Some(k) => present.push((label, *rec, *k)),
            }
        }
        if !wants {
            for (label, rec, k) in present {
                self.push(
                    Action::Delete,
                    Resource::UpstreamKey,
                    format!("{} {}", m.id, label.name()),
                    vec![],
                    Some("member no longer needs an upstream key".into()),
                    vec![Op::DeleteUpstreamKey {
                        hash: k.hash.clone(),
                        record: Some(rec.id.clone()),
                    }],
                );
            }
            return;
        }
        let Some((cur_label, cur_rec, cur_key)) = present.last().copied() else {
            let label = self.label_for(m, next_gen);
            let mut fields = vec![fc("name", None, Some(label.name()))];
            fields.extend(settings_fields(None, &settings, None));
            self.push(
                Action::Create,
                Resource::UpstreamKey,
                m.id.clone(),
                fields,
                Some(if hold_secret {
                    "held by the gateway (upstream = \"own\")".into()
                } else {
                    "direct key for the member".into()
                }),
                vec![Op::CreateUpstreamKey {
                    member: m.id.clone(),
                    label,
                    settings,
                    hold_secret,
                }],
            );
            return;
        };
        // Older keys: retire after their grace.
        for (label, rec, k) in &present[..present.len().saturating_sub(1)] {
            let retire = retire_at(&mk.upstream, label.generation).unwrap_or(now);
            if retire <= now {
                self.push(
                    Action::Delete,
                    Resource::UpstreamKey,
                    format!("{} {}", m.id, label.name()),
                    vec![],
                    Some(format!("rotated out; grace ended {}", ts(retire))),
                    vec![Op::DeleteUpstreamKey {
                        hash: k.hash.clone(),
                        record: Some(rec.id.clone()),
                    }],
                );
            }
        }
        let id = format!("{} {}", m.id, cur_label.name());
        let expired = cur_key.expires_at.is_some_and(|e| e <= now);
        let want_expiry = settings.expires_in.map(|d| cur_key.created_at + td(d));
        let mode_switch = cur_rec.has_secret != hold_secret;
        if expired || mode_switch || want_expiry.is_some_and(|e| e <= now) {
            let label = self.label_for(m, next_gen);
            let reason = if mode_switch {
                "key mode changed (direct ↔ gateway-held)"
            } else {
                "expired"
            };
            self.push(
                Action::Replace,
                Resource::UpstreamKey,
                id,
                vec![fc("name", Some(cur_label.name()), Some(label.name()))],
                Some(reason.into()),
                vec![
                    Op::CreateUpstreamKey {
                        member: m.id.clone(),
                        label,
                        settings,
                        hold_secret,
                    },
                    Op::DeleteUpstreamKey {
                        hash: cur_key.hash.clone(),
                        record: Some(cur_rec.id.clone()),
                    },
                ],
            );
            return;
        }
        // Drift in the key's settings.
        let fields = settings_fields(Some(cur_key), &settings, want_expiry);
        let mut req = orteam_openrouter::types::keys::UpdateKeyRequest::default();
        let mut drift = fields.clone();
        for f in &fields {
            match f.field.as_str() {
                "limit" => req.limit = orteam_openrouter::Patch::from_option(settings.limit),
                "limit_reset" => {
                    req.limit_reset = orteam_openrouter::Patch::from_option(settings.limit_reset)
                }
                "include_byok_in_limit" => {
                    req.include_byok_in_limit = Some(settings.include_byok_in_limit)
                }
                "expires_at" => req.expires_at = orteam_openrouter::Patch::from_option(want_expiry),
                _ => {}
            }
        }
        if cur_key.name != cur_label.name() {
            req.name = Some(cur_label.name());
            drift.push(fc(
                "name",
                Some(cur_key.name.clone()),
                Some(cur_label.name()),
            ));
        }
        if cur_key.disabled {
            req.disabled = Some(false);
            drift.push(fc("disabled", Some("true".into()), Some("false".into())));
        }
        if !drift.is_empty() {
            self.push(
                Action::Update,
                Resource::UpstreamKey,
                id.clone(),
                drift,
                None,
                vec![Op::UpdateUpstreamKey {
                    hash: cur_key.hash.clone(),
                    req,
                    best_effort: false,
                }],
            );
        }
        // Rotation (the member-facing key of a direct member).
        if m.key.mode == KeyMode::Direct
            && let Some(every) = m.key.rotate_every
        {
            let due = cur_rec.created_at + td(every.0);
            if due <= now {
                let label = self.label_for(m, next_gen);
                next_gen += 1;
                let grace_end = now + td(m.key.grace.0);
                let mut ops = vec![Op::CreateUpstreamKey {
                    member: m.id.clone(),
                    label: label.clone(),
                    settings: settings.clone(),
                    hold_secret,
                }];
                if cur_key.expires_at.is_none_or(|e| e > grace_end) {
                    ops.push(Op::UpdateUpstreamKey {
                        hash: cur_key.hash.clone(),
                        req: orteam_openrouter::types::keys::UpdateKeyRequest {
                            expires_at: orteam_openrouter::Patch::Set(grace_end),
                            ..Default::default()
                        },
                        best_effort: true,
                    });
                }
                self.push(
                    Action::Rotate,
                    Resource::UpstreamKey,
                    id,
                    vec![
                        fc("name", Some(cur_label.name()), Some(label.name())),
                        fc(
                            "old key works until",
                            None,
                            Some(format!("now + {}", dur(m.key.grace.0))),
                        ),
                    ],
                    Some(format!("rotation due since {}", ts(due))),
                    ops,
                );
            } else {
                self.rotations.push(RotationInfo {
                    member: m.id.clone(),
                    key: cur_label.name(),
                    due_at: due,
                });
            }
        }
        let _ = next_gen;
    }

    /// Active members in the ledger that the file no longer lists lose access at once; removed
    /// members keep no live keys.
    fn removed_members(&mut self) {
        let org = self.org_id().to_owned();
        let in_file: BTreeSet<&str> = self.team.members.iter().map(|m| m.id.as_str()).collect();
        let dir = self.dir;
        for member in dir.members.values() {
            if in_file.contains(member.id.as_str()) {
                continue;
            }
            if dir.org_of_team(&member.team_id) != Some(org.as_str()) {
                continue;
            }
            let mut ops = Vec::new();
            let mut fields = Vec::new();
            if member.state == MemberState::Active {
                ops.push(Op::RemoveMember(member.id.clone()));
                fields.push(fc("state", Some("active".into()), Some("removed".into())));
            }
            let mut vk: Vec<&VirtualKey> = dir
                .virtual_keys
                .values()
                .filter(|k| k.member_id == member.id && k.revoked_at.is_none())
                .collect();
            vk.sort_by_key(|k| k.created_at);
            for k in vk {
                ops.push(Op::RevokeVirtualKey(k.id.clone()));
                fields.push(fc(
                    "virtual key",
                    Some(k.display_prefix()),
                    Some("revoked".into()),
                ));
            }
            for rec in dir
                .upstream_keys
                .iter()
                .filter(|k| k.member_id == member.id)
            {
                if self.keys.iter().any(|k| k.hash == rec.key_hash) {
                    ops.push(Op::DeleteUpstreamKey {
                        hash: rec.key_hash.clone(),
                        record: Some(rec.id.clone()),
                    });
                    fields.push(fc(
                        "upstream key",
                        Some(rec.label.split(';').next().unwrap_or_default().to_owned()),
                        Some("deleted".into()),
                    ));
                } else {
                    ops.push(Op::RemoveUpstreamRecord(rec.id.clone()));
                }
            }
            if ops.is_empty() {
                continue;
            }
            let only_records = ops.iter().all(|o| matches!(o, Op::RemoveUpstreamRecord(_)));
            self.push(
                Action::Delete,
                Resource::Member,
                member.id.clone(),
                fields,
                Some(if only_records {
                    "forget records of keys already gone".into()
                } else {
                    "not in the team file: access revoked at once".into()
                }),
                ops,
            );
        }
    }

    /// Keys named for this org at OpenRouter that the ledger does not record.
    fn orphans(&mut self) {
        let org = self.org_id().to_owned();
        let recorded: BTreeSet<&str> = self
            .dir
            .upstream_keys
            .iter()
            .map(|k| k.key_hash.as_str())
            .collect();
        for k in self.keys {
            let Some(label) = KeyLabel::parse(&k.name) else {
                continue;
            };
            if label.org != org || recorded.contains(k.hash.as_str()) {
                continue;
            }
            self.push(
                Action::Delete,
                Resource::UpstreamKey,
                display_key(&k.name, &k.hash),
                vec![],
                Some(
                    "orphan: created by an apply that stopped before recording it (its secret was never delivered)"
                        .into(),
                ),
                vec![Op::DeleteUpstreamKey {
                    hash: k.hash.clone(),
                    record: None,
                }],
            );
        }
    }
}

fn settings_fields(
    old: Option<&Key>,
    want: &UpstreamSettings,
    want_expiry: Option<DateTime<Utc>>,
) -> Vec<FieldChange> {
    let mut f = Vec::new();
    let Some(k) = old else {
        if let Some(l) = want.limit {
            f.push(fc("limit", None, Some(l.to_string())));
        }
        if let Some(r) = want.limit_reset {
            f.push(fc("limit_reset", None, Some(r.as_str().into())));
        }
        if want.include_byok_in_limit {
            f.push(fc("include_byok_in_limit", None, Some("true".into())));
        }
        if let Some(e) = want.expires_in {
            f.push(fc("expires_at", None, Some(format!("now + {}", dur(e)))));
        }
        return f;
    };
    if k.limit != want.limit {
        f.push(fc("limit", money(k.limit), money(want.limit)));
    }
    if k.limit_reset != want.limit_reset {
        f.push(fc(
            "limit_reset",
            k.limit_reset.map(|w| w.as_str().to_owned()),
            want.limit_reset.map(|w| w.as_str().to_owned()),
        ));
    }
    if k.include_byok_in_limit != want.include_byok_in_limit {
        f.push(fc(
            "include_byok_in_limit",
            Some(k.include_byok_in_limit.to_string()),
            Some(want.include_byok_in_limit.to_string()),
        ));
    }
    let same_expiry = match (k.expires_at, want_expiry) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).num_seconds().abs() <= 1,
        _ => false,
    };
    if !same_expiry {
        f.push(fc("expires_at", k.expires_at.map(ts), want_expiry.map(ts)));
    }
    f
}
