//! The simulator's mutable state (one struct behind one lock) and its JSON snapshot for
//! `--state FILE`.
//!
//! Usage is kept in per-UTC-day buckets rather than running daily/weekly/monthly counters: the
//! period figures are sums over the buckets since the window start, so moving the clock across a
//! midnight, a Monday or the 1st resets them without any timer.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::guardrails::{Guardrail, KeyAssignment, MemberAssignment};
use crate::org::{Member, seed_members};
use crate::workspaces::{Workspace, WorkspaceMember, default_workspace};

/// Adds `amount` in place; amounts are bounded by token counts, so overflow means a bug and is
/// ignored rather than panicking.
pub(crate) fn add_money(total: &mut Money, amount: Money) {
    if let Some(sum) = total.checked_add(amount) {
        *total = sum;
    } else {
        tracing::warn!("money overflow ignored");
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DayUsage {
    pub usage: Money,
    pub byok: Money,
}

/// One API key as stored (the secret is kept so a restarted simulator still authenticates it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub hash: Arc<str>,
    pub secret: String,
    pub name: String,
    pub disabled: bool,
    pub limit: Option<Money>,
    pub limit_reset: Option<Window>,
    pub include_byok_in_limit: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub creator_user_id: Option<String>,
    pub workspace_id: String,
    /// Partner end-user id given at creation (`external.user`), shown as `external_user`.
    #[serde(default)]
    pub external_user: Option<String>,
    /// The last completion billed to this key.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub seq: u64,
    pub usage: Money,
    pub byok_usage: Money,
    pub days: BTreeMap<NaiveDate, DayUsage>,
}

impl KeyRecord {
    /// (credits usage, BYOK usage) in the window containing `today`, or in total for `None`.
    pub fn period_usage(&self, window: Option<Window>, today: NaiveDate) -> (Money, Money) {
        match window {
            None => (self.usage, self.byok_usage),
            Some(w) => {
                let mut usage = Money::ZERO;
                let mut byok = Money::ZERO;
                for d in self.days.range(w.start_date(today)..=today).map(|(_, d)| d) {
                    add_money(&mut usage, d.usage);
                    add_money(&mut byok, d.byok);
                }
                (usage, byok)
            }
        }
    }

    /// `limit − usage of the reset period` (plus BYOK when included), clamped at zero.
    pub fn limit_remaining(&self, today: NaiveDate) -> Option<Money> {
        let limit = self.limit?;
        let (usage, byok) = self.period_usage(self.limit_reset, today);
        let mut spent = usage;
        if self.include_byok_in_limit {
            add_money(&mut spent, byok);
        }
        Some(limit.saturating_sub_floor_zero(spent))
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Credits {
    pub total_credits: Money,
    pub total_usage: Money,
    /// Whether credits were ever bought (drives `/key`'s `is_free_tier`).
    pub purchased: bool,
}

/// One activity bucket: (UTC date, model, endpoint, key); `/activity` folds the key away.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ActivityAgg {
    pub date: NaiveDate,
    pub model: Arc<str>,
    pub model_permaslug: Arc<str>,
    pub endpoint_id: Arc<str>,
    pub provider_name: Arc<str>,
    pub key_hash: Arc<str>,
    pub user_id: Option<String>,
    pub usage: Money,
    pub byok_usage_inference: Money,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    /// The key's workspace when the spend happened.
    #[serde(default)]
    pub workspace_id: Option<String>,
}

pub(crate) type ActivityKey = (NaiveDate, Arc<str>, Arc<str>, Arc<str>);

/// A stored generation, as `/generation` reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Generation {
    pub id: Arc<str>,
    pub key_hash: Arc<str>,
    pub created_at: DateTime<Utc>,
    pub model: Arc<str>,
    pub provider_name: Arc<str>,
    pub http_referer: Option<String>,
    pub app_title: Option<String>,
    pub user_agent: Option<String>,
    pub external_user: Option<String>,
    pub session_id: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub latency_ms: u64,
    pub generation_time_ms: u64,
    pub finish_reason: Option<String>,
    pub tokens_prompt: u64,
    pub tokens_completion: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    pub total_cost: Money,
    pub cache_discount: Option<Money>,
    /// `/generation`'s `api_type` (snapshots from before the field read as `completions`).
    #[serde(default)]
    pub api_type: ApiType,
}

/// Which API family a generation came from, as `/generation` reports it: `completions` for
/// chat, Messages, Responses and legacy completions; `embeddings` for embeddings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiType {
    #[default]
    Completions,
    Embeddings,
}

impl ApiType {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiType::Completions => "completions",
            ApiType::Embeddings => "embeddings",
        }
    }
}

/// Everything that changes while the simulator runs.
#[derive(Debug)]
pub(crate) struct State {
    pub credits: Credits,
    pub keys: FxHashMap<Arc<str>, KeyRecord>,
    pub by_secret: FxHashMap<String, Arc<str>>,
    pub key_seq: u64,
    pub member_usage: FxHashMap<String, BTreeMap<NaiveDate, Money>>,
    pub activity: FxHashMap<ActivityKey, ActivityAgg>,
    pub generations: FxHashMap<Arc<str>, Generation>,
    pub gen_order: VecDeque<Arc<str>>,
    pub max_generations: usize,
    pub guardrails: FxHashMap<String, Guardrail>,
    pub guardrail_seq: u64,
    pub key_assign: FxHashMap<Arc<str>, KeyAssignment>,
    pub member_assign: FxHashMap<String, MemberAssignment>,
    pub assign_seq: u64,
    pub members: Vec<Member>,
    pub workspaces: Vec<Workspace>,
    pub workspace_seq: u64,
    pub workspace_members: Vec<WorkspaceMember>,
    /// `:free` model rate limiting: key hash → (minute since epoch, requests in it).
    pub free_rl: FxHashMap<Arc<str>, (i64, u32)>,
}

impl State {
    pub fn new(initial_credits: Money, max_generations: usize, now: DateTime<Utc>) -> Self {
        State {
            credits: Credits {
                total_credits: initial_credits,
                total_usage: Money::ZERO,
                purchased: !initial_credits.is_zero(),
            },
            keys: FxHashMap::default(),
            by_secret: FxHashMap::default(),
            key_seq: 0,
            member_usage: FxHashMap::default(),
            activity: FxHashMap::default(),
            generations: FxHashMap::default(),
            gen_order: VecDeque::new(),
            max_generations: max_generations.max(1),
            guardrails: FxHashMap::default(),
            guardrail_seq: 0,
            key_assign: FxHashMap::default(),
            member_assign: FxHashMap::default(),
            assign_seq: 0,
            members: seed_members(now),
            workspaces: vec![default_workspace(now)],
            workspace_seq: 0,
            workspace_members: Vec::new(),
            free_rl: FxHashMap::default(),
        }
    }

    pub fn balance(&self) -> Money {
        self.credits
            .total_credits
            .checked_sub(self.credits.total_usage)
            .unwrap_or(Money::ZERO)
    }

    pub fn add_credits(&mut self, amount: Money) {
        add_money(&mut self.credits.total_credits, amount);
        if amount > Money::ZERO {
            self.credits.purchased = true;
        }
    }

    /// A member's spend in `window` (or in total) across all their keys.
    pub fn member_period_usage(
        &self,
        user_id: &str,
        window: Option<Window>,
        today: NaiveDate,
    ) -> Money {
        let Some(days) = self.member_usage.get(user_id) else {
            return Money::ZERO;
        };
        let start = match window {
            Some(w) => w.start_date(today),
            None => NaiveDate::MIN,
        };
        days.range(start..=today).map(|(_, m)| *m).sum()
    }

    /// Records spend everywhere it shows: key usage buckets, member usage, credits, activity.
    pub fn bill(&mut self, charge: &Charge<'_>) {
        let date = charge.at.date_naive();
        let mut creator = None;
        let mut workspace = None;
        if let Some(key) = self.keys.get_mut(charge.key_hash) {
            workspace = Some(key.workspace_id.clone());
            key.last_used_at = Some(charge.at);
            add_money(&mut key.usage, charge.cost);
            add_money(&mut key.days.entry(date).or_default().usage, charge.cost);
            creator = key.creator_user_id.clone();
        }
        if let Some(user) = &creator {
            let days = match self.member_usage.get_mut(user.as_str()) {
                Some(d) => d,
                None => self.member_usage.entry(user.clone()).or_default(),
            };
            add_money(days.entry(date).or_insert(Money::ZERO), charge.cost);
        }
        add_money(&mut self.credits.total_usage, charge.cost);
        let akey: ActivityKey = (
            date,
            charge.model.clone(),
            charge.endpoint_id.clone(),
            charge.key_hash.clone(),
        );
        let row = self.activity.entry(akey).or_insert_with(|| ActivityAgg {
            date,
            model: charge.model.clone(),
            model_permaslug: charge.permaslug.clone(),
            endpoint_id: charge.endpoint_id.clone(),
            provider_name: charge.provider_name.clone(),
            key_hash: charge.key_hash.clone(),
            user_id: creator,
            workspace_id: workspace,
            cached_tokens: 0,
            usage: Money::ZERO,
            byok_usage_inference: Money::ZERO,
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
        });
        add_money(&mut row.usage, charge.cost);
        row.requests += 1;
        row.prompt_tokens += charge.prompt_tokens;
        row.completion_tokens += charge.completion_tokens;
        row.reasoning_tokens += charge.reasoning_tokens;
        row.cached_tokens += charge.cached_tokens;
    }

    /// Stores a generation record, evicting the oldest beyond `max_generations`.
    pub fn insert_generation(&mut self, generation: Generation) {
        let id = generation.id.clone();
        if self.generations.insert(id.clone(), generation).is_none() {
            self.gen_order.push_back(id);
        }
        while self.gen_order.len() > self.max_generations {
            if let Some(old) = self.gen_order.pop_front() {
                self.generations.remove(&old);
            }
        }
    }

    pub fn next_assign_seq(&mut self) -> u64 {
        self.assign_seq += 1;
        self.assign_seq
    }
}

/// What one completion costs and where it is booked.
pub(crate) struct Charge<'a> {
    pub at: DateTime<Utc>,
    pub key_hash: &'a Arc<str>,
    pub model: &'a Arc<str>,
    pub permaslug: &'a Arc<str>,
    pub endpoint_id: &'a Arc<str>,
    pub provider_name: &'a Arc<str>,
    pub cost: Money,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    credits: &'a Credits,
    key_seq: u64,
    keys: Vec<&'a KeyRecord>,
    member_usage: &'a FxHashMap<String, BTreeMap<NaiveDate, Money>>,
    activity: Vec<&'a ActivityAgg>,
    generations: Vec<&'a Generation>,
    guardrail_seq: u64,
    guardrails: Vec<&'a Guardrail>,
    assign_seq: u64,
    key_assignments: Vec<&'a KeyAssignment>,
    member_assignments: Vec<&'a MemberAssignment>,
    members: &'a [Member],
    workspace_seq: u64,
    workspaces: &'a [Workspace],
    workspace_members: &'a [WorkspaceMember],
}

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    credits: Credits,
    key_seq: u64,
    keys: Vec<KeyRecord>,
    member_usage: FxHashMap<String, BTreeMap<NaiveDate, Money>>,
    activity: Vec<ActivityAgg>,
    generations: Vec<Generation>,
    guardrail_seq: u64,
    guardrails: Vec<Guardrail>,
    assign_seq: u64,
    key_assignments: Vec<KeyAssignment>,
    member_assignments: Vec<MemberAssignment>,
    members: Vec<Member>,
    #[serde(default)]
    workspace_seq: u64,
    #[serde(default)]
    workspaces: Vec<Workspace>,
    #[serde(default)]
    workspace_members: Vec<WorkspaceMember>,
}

impl State {
    /// Serializes the whole state (called under the lock; the generation store is bounded).
    pub fn to_snapshot_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut keys: Vec<&KeyRecord> = self.keys.values().collect();
        keys.sort_by_key(|k| k.seq);
        let mut guardrails: Vec<&Guardrail> = self.guardrails.values().collect();
        guardrails.sort_by_key(|g| g.seq);
        let mut key_assignments: Vec<&KeyAssignment> = self.key_assign.values().collect();
        key_assignments.sort_by_key(|a| a.seq);
        let mut member_assignments: Vec<&MemberAssignment> = self.member_assign.values().collect();
        member_assignments.sort_by_key(|a| a.seq);
        let snap = SnapshotRef {
            version: SNAPSHOT_VERSION,
            credits: &self.credits,
            key_seq: self.key_seq,
            keys,
            member_usage: &self.member_usage,
            activity: self.activity.values().collect(),
            generations: self
                .gen_order
                .iter()
                .filter_map(|id| self.generations.get(id))
                .collect(),
            guardrail_seq: self.guardrail_seq,
            guardrails,
            assign_seq: self.assign_seq,
            key_assignments,
            member_assignments,
            members: &self.members,
            workspace_seq: self.workspace_seq,
            workspaces: &self.workspaces,
            workspace_members: &self.workspace_members,
        };
        serde_json::to_vec(&snap)
    }

    /// Rebuilds a state from a snapshot written by [`State::to_snapshot_json`].
    pub fn from_snapshot_json(
        bytes: &[u8],
        max_generations: usize,
        path: &Path,
    ) -> Result<Self, SimError> {
        let snap: Snapshot =
            serde_json::from_slice(bytes).map_err(|source| SimError::StateParse {
                path: path.to_owned(),
                source,
            })?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(SimError::Config(format!(
                "state file {} has snapshot version {}, expected {SNAPSHOT_VERSION}",
                path.display(),
                snap.version
            )));
        }
        let mut st = State {
            credits: snap.credits,
            keys: FxHashMap::default(),
            by_secret: FxHashMap::default(),
            key_seq: snap.key_seq,
            member_usage: snap.member_usage,
            activity: FxHashMap::default(),
            generations: FxHashMap::default(),
            gen_order: VecDeque::new(),
            max_generations: max_generations.max(1),
            guardrails: FxHashMap::default(),
            guardrail_seq: snap.guardrail_seq,
            key_assign: FxHashMap::default(),
            member_assign: FxHashMap::default(),
            assign_seq: snap.assign_seq,
            members: snap.members,
            workspaces: snap.workspaces,
            workspace_seq: snap.workspace_seq,
            workspace_members: snap.workspace_members,
            free_rl: FxHashMap::default(),
        };
        if st.workspaces.is_empty() {
            // Snapshots from before workspaces: the default one existed all along.
            let since = st.keys.values().map(|k| k.created_at).min();
            st.workspaces
                .push(default_workspace(since.unwrap_or(DateTime::UNIX_EPOCH)));
        }
        for k in snap.keys {
            st.by_secret.insert(k.secret.clone(), k.hash.clone());
            st.keys.insert(k.hash.clone(), k);
        }
        for a in snap.activity {
            let key = (
                a.date,
                a.model.clone(),
                a.endpoint_id.clone(),
                a.key_hash.clone(),
            );
            st.activity.insert(key, a);
        }
        for g in snap.generations {
            st.insert_generation(g);
        }
        for g in snap.guardrails {
            st.guardrails.insert(g.id.clone(), g);
        }
        for a in snap.key_assignments {
            st.key_assign.insert(a.key_hash.clone(), a);
        }
        for a in snap.member_assignments {
            st.member_assign.insert(a.user_id.clone(), a);
        }
        Ok(st)
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename), so a
/// crash mid-write never leaves a truncated snapshot.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    let err = |source| SimError::StateWrite {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
