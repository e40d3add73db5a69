//! Reconciliation: do orteam's figures match what OpenRouter billed?
//!
//! 1. **Per request.** Every ledger event of the range with a generation id is looked up with
//!    `GET /generation` (with the key that made it, see [`crate::upstream`]) and its cost is
//!    compared with `total_cost`. A **provisional** event (the gateway did not learn the exact
//!    cost, e.g. the stream broke before the usage chunk) whose generation is found gets its
//!    exact cost: the correction is queued in the ledger (`cost_corrections`) and applied by a
//!    serving process with `correct_cost`, which also moves every budget window the event counted
//!    against by the difference. If this process serves the ledger it applies them at once;
//!    otherwise (a gateway owns the SQLite file, or runs on PostgreSQL) the running gateway
//!    applies them on its next background tick ([`run_reconcile_loop`]).
//! 2. **Per day, model and key.** For each OpenRouter key the gateway forwarded with (the shared
//!    key and members' own keys), `/activity?api_key_hash=…` is compared with the ledger's
//!    events of that key, per (day, model), for every completed day of the range that
//!    `/activity` covers (the 30 days before today). Exact provisional corrections found in
//!    step 1 are taken into account.
//!
//! **Repairs.** Reconciliation corrects the ledger, not only reports (every change goes through
//! the queued-correction path above, so every budget window the money belongs to moves, and each
//! changed event is marked reconciled with its evidence):
//!
//! - an exact event whose cost differs from `/generation`'s `total_cost` is corrected to it;
//! - a (key, completed day, model) total `/activity` billed **above** the ledger (a generation the
//!   ledger never recorded: the key used outside the gateway, an event lost) becomes a new
//!   **reconciliation event** for the difference: booked to the member when the key is that
//!   member's own upstream key (member, team and org budgets), else at **org level**
//!   ([`orteam_ledger::ORG_LEVEL`], org budgets only, shown as "unattributed (org)");
//! - what is *not* repaired, only reported: a charged exact event without a generation
//!   ([`CheckStatus::Missing`]) and a total `/activity` billed **below** the ledger (see
//!   [`reconcile`] for why refunding either blindly would be wrong).
//!
//! Each change is listed in [`ReconcileReport::changes`]; running again changes nothing (the
//! corrected figures then match, and an inserted event's id is derived from the cell and the
//! billed amount, so a re-queued insertion replaces itself).
//!
//! Money differs (outstanding) when a difference remains that this run did not repair.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use orteam_core::Money;
use orteam_ledger::{EventFilter, Ledger, NewCorrection, ORG_LEVEL, Outcome, UsageEvent};
use orteam_openrouter::types::activity::ActivityParams;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::InsightError;
use crate::period::Range;
use crate::progress::Progress;
use crate::report::activity_days;
use crate::upstream::Upstream;

/// Which events step 1 looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationScope {
    /// Every event with a generation id.
    All,
    /// Only provisional events (the periodic background job).
    Provisional,
    /// None.
    Skip,
}

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub range: Range,
    pub generations: GenerationScope,
    /// Compare day/model/key totals with `/activity` (needs the management key).
    pub activity: bool,
    /// What to do with the exact costs of provisional events.
    pub corrections: Corrections,
    /// Concurrent `/generation` look-ups (default 8).
    pub concurrency: usize,
}

impl ReconcileOptions {
    pub fn new(range: Range) -> Self {
        ReconcileOptions {
            range,
            generations: GenerationScope::All,
            activity: true,
            corrections: Corrections::Queue,
            concurrency: 8,
        }
    }
}

/// What reconciliation does with the exact cost of a provisional event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Corrections {
    /// Only report it.
    Report,
    /// Queue it in the ledger for the serving gateway to apply.
    Queue,
    /// Queue it and apply every queued correction now (the ledger must have the serving role).
    Apply,
}

/// The result of one event's look-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The costs are equal.
    Match,
    /// An exact event's cost differs from `total_cost`.
    Differs,
    /// A charged exact event has no generation at OpenRouter.
    Missing,
    /// A provisional event's exact cost was found and queued (or applied).
    Corrected,
    /// A provisional event whose generation is not available yet.
    Pending,
    /// The look-up failed (network, auth); nothing can be said.
    Error,
}

/// One event compared with its generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationCheck {
    pub request_id: String,
    pub generation_id: String,
    pub time: DateTime<Utc>,
    pub member: String,
    pub model: String,
    pub ledger: Money,
    pub openrouter: Option<Money>,
    pub provisional: bool,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The difference was repaired (a correction applied or queued).
    #[serde(default)]
    pub repaired: bool,
}

/// One (key, day, model) total compared with `/activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalCheck {
    /// The OpenRouter key hash.
    pub key_hash: String,
    /// `shared` or the member whose own key it is.
    pub key: String,
    pub day: NaiveDate,
    pub model: String,
    pub ledger: Money,
    pub openrouter: Money,
    pub ledger_requests: u64,
    pub openrouter_requests: u64,
    pub matches: bool,
    /// The difference was repaired: a reconciliation event for it was inserted (or queued).
    #[serde(default)]
    pub repaired: bool,
}

/// Counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileSummary {
    pub events: usize,
    /// Events without a generation id and without cost (failed requests): nothing to check.
    pub skipped: usize,
    /// Charged events without a generation id: cannot be checked one by one.
    pub unverifiable: usize,
    pub checked: usize,
    pub matched: usize,
    pub differed: usize,
    pub missing: usize,
    pub corrected: usize,
    pub pending: usize,
    pub errors: usize,
    /// Queued corrections applied by this run.
    pub applied: usize,
    pub totals_checked: usize,
    pub totals_matched: usize,
    pub totals_differed: usize,
    /// Requests a dead gateway had in flight without a known generation, charged at their
    /// worst case and now repaired to what `/activity` says their member was billed.
    #[serde(default)]
    pub repaired: usize,
    /// Existing events whose cost this run changed (or queued a change for).
    #[serde(default)]
    pub changed: usize,
    /// Reconciliation events inserted (or queued) for charges the ledger never recorded.
    #[serde(default)]
    pub inserted: usize,
    /// The part of `inserted` booked at org level (not attributable to a member).
    #[serde(default)]
    pub org_level: Money,
    /// Differences left as they are (reported, not repaired).
    #[serde(default)]
    pub outstanding: usize,
}

impl ReconcileSummary {
    /// `changed 2 events, inserted 1, booked $0.0042 at org level`.
    pub fn changes_line(&self) -> String {
        format!(
            "changed {} events, inserted {}, booked {} at org level",
            self.changed,
            self.inserted,
            self.org_level.usd()
        )
    }
}

/// A provisional charge of a request left in flight (no generation id: the gateway died before
/// upstream's headers arrived) repaired from `/activity`: the key's billed total for the day and
/// model minus everything else the ledger holds for them is what those requests cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightRepair {
    pub request_id: String,
    pub member: String,
    #[serde(default)]
    pub model: String,
    pub day: NaiveDate,
    /// The provisional charge (the request's worst case).
    pub provisional: Money,
    /// What it is corrected to.
    pub exact: Money,
    /// The figures the repair rests on.
    pub evidence: String,
}

/// What kind of change reconciliation made to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// An event's cost was corrected (provisional → exact, exact → `/generation`'s, or a request
    /// left in flight → what `/activity` billed).
    Corrected,
    /// A charge upstream billed that the ledger never recorded was inserted.
    Inserted,
}

/// One change to the ledger (applied by this run, or queued for the serving gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileChange {
    pub kind: ChangeKind,
    pub request_id: String,
    /// The member the money counts against, or [`orteam_ledger::ORG_LEVEL`].
    pub member: String,
    pub model: String,
    pub day: NaiveDate,
    pub before: Money,
    pub after: Money,
    pub evidence: String,
    /// Applied now (`true`) or queued for the serving gateway (`false`).
    pub applied: bool,
}

impl ReconcileChange {
    /// `member` for people: `unattributed (org)` for an org-level booking.
    pub fn who(&self) -> &str {
        if self.member == orteam_ledger::ORG_LEVEL {
            "unattributed (org)"
        } else {
            &self.member
        }
    }

    /// One line: `corrected alice openai/gpt-4o-mini 2026-05-04: $0.10 → $0.12 (evidence)`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} {}: {} → {} ({}){}",
            match self.kind {
                ChangeKind::Corrected => "corrected",
                ChangeKind::Inserted => "inserted",
            },
            self.who(),
            self.model,
            self.day,
            self.before.to_canonical_string(),
            self.after.to_canonical_string(),
            self.evidence,
            if self.applied { "" } else { " [queued]" }
        )
    }
}

/// What reconciliation found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub summary: ReconcileSummary,
    /// Every event looked up.
    pub generations: Vec<GenerationCheck>,
    /// Every (key, day, model) compared.
    pub totals: Vec<TotalCheck>,
    /// Provisional charges of requests left in flight, repaired from `/activity`.
    #[serde(default)]
    pub repairs: Vec<InFlightRepair>,
    /// Every change made to the ledger (or queued), one per event.
    #[serde(default)]
    pub changes: Vec<ReconcileChange>,
    pub notes: Vec<String>,
}

impl ReconcileReport {
    /// Whether money differs and was not repaired (the CLI then exits non-zero).
    pub fn money_differs(&self) -> bool {
        self.summary.outstanding > 0
    }

    /// Whether this run changed (or queued a change to) the ledger's money.
    pub fn changed_money(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether some look-ups failed, so the result is incomplete.
    pub fn incomplete(&self) -> bool {
        self.summary.errors > 0
    }

    /// The checks that are not matches and were not repaired.
    pub fn differences(&self) -> (Vec<&GenerationCheck>, Vec<&TotalCheck>) {
        (
            self.generations
                .iter()
                .filter(|g| {
                    !g.repaired
                        && matches!(
                            g.status,
                            CheckStatus::Differs | CheckStatus::Missing | CheckStatus::Error
                        )
                })
                .collect(),
            self.totals
                .iter()
                .filter(|t| !t.matches && !t.repaired)
                .collect(),
        )
    }

    /// One line per outstanding difference (for the dashboard and alerts).
    pub fn outstanding_lines(&self) -> Vec<String> {
        let (gens, totals) = self.differences();
        let mut out: Vec<String> = gens
            .iter()
            .filter(|g| g.status != CheckStatus::Error)
            .map(|g| {
                format!(
                    "{} {} {}: ledger {}, /generation {} ({})",
                    g.member,
                    g.model,
                    g.request_id,
                    g.ledger.to_canonical_string(),
                    g.openrouter
                        .map(|m| m.to_canonical_string())
                        .unwrap_or_else(|| "none".into()),
                    match g.status {
                        CheckStatus::Missing => "no generation at OpenRouter; not refunded",
                        _ => "not corrected",
                    }
                )
            })
            .collect();
        out.extend(totals.iter().map(|t| {
            format!(
                "{} {} {}: ledger {}, /activity {} ({})",
                t.key,
                t.day,
                t.model,
                t.ledger.to_canonical_string(),
                t.openrouter.to_canonical_string(),
                if t.openrouter < t.ledger {
                    "OpenRouter billed less; not refunded"
                } else {
                    "not repaired"
                }
            )
        }));
        out
    }
}

async fn check_one(
    upstream: &Upstream,
    dir: &orteam_ledger::Directory,
    e: &UsageEvent,
    gen_id: &str,
) -> GenerationCheck {
    let provisional = e.usage.outcome == Outcome::Provisional;
    let mut check = GenerationCheck {
        request_id: e.usage.request_id.clone(),
        generation_id: gen_id.to_owned(),
        time: e.time,
        member: e.member_id.clone(),
        model: e.model().to_owned(),
        ledger: e.usage.cost,
        openrouter: None,
        provisional,
        status: CheckStatus::Error,
        message: None,
        repaired: false,
    };
    let Some(client) = upstream.generation_client(e, dir) else {
        check.message = Some("no key to look the generation up with (set OPENROUTER_API_KEY or OPENROUTER_PROVISIONING_KEY)".into());
        return check;
    };
    match client.generation(gen_id).await {
        Ok(g) => {
            let cost = g.total_cost.or(g.usage).unwrap_or(Money::ZERO);
            check.openrouter = Some(cost);
            check.status = if provisional {
                CheckStatus::Corrected
            } else if cost == e.usage.cost {
                CheckStatus::Match
            } else {
                CheckStatus::Differs
            };
        }
        Err(err) if err.status() == Some(404) => {
            check.status = if provisional {
                CheckStatus::Pending
            } else if e.usage.cost.is_zero() {
                CheckStatus::Match
            } else {
                CheckStatus::Missing
            };
            check.message = Some("no such generation at OpenRouter".into());
        }
        Err(err) => {
            check.message = Some(format!("{err:#}"));
        }
    }
    check
}

/// Reconciles the ledger with OpenRouter over `opts.range`.
pub async fn reconcile(
    ledger: &Ledger,
    upstream: &Upstream,
    opts: &ReconcileOptions,
    progress: &dyn Progress,
) -> Result<ReconcileReport, InsightError> {
    // Corrections an earlier run queued are applied first, so the events read below hold them.
    let applied_before = if opts.corrections == Corrections::Apply {
        ledger
            .apply_pending_corrections()
            .await
            .map_err(InsightError::ledger("applying queued cost corrections"))?
            .len()
    } else {
        0
    };
    let dir = ledger.directory();
    let events = ledger
        .events(EventFilter {
            from: Some(opts.range.from),
            to: Some(opts.range.to),
            ..EventFilter::default()
        })
        .await
        .map_err(InsightError::ledger("reading events"))?;
    let mut summary = ReconcileSummary {
        events: events.len(),
        applied: applied_before,
        ..ReconcileSummary::default()
    };
    let mut notes = Vec::new();

    // ---- step 1: /generation
    let mut to_check: Vec<(&UsageEvent, &str)> = Vec::new();
    for e in &events {
        match e.usage.generation_id.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => {
                let wanted = match opts.generations {
                    GenerationScope::All => true,
                    GenerationScope::Provisional => e.usage.outcome == Outcome::Provisional,
                    GenerationScope::Skip => false,
                };
                if wanted {
                    to_check.push((e, g));
                }
            }
            // Inserted or repaired by reconciliation: checked in the day totals.
            None if e.usage.cost.is_zero() || e.reconciled.is_some() => summary.skipped += 1,
            None => summary.unverifiable += 1,
        }
    }
    if summary.unverifiable > 0 {
        notes.push(format!(
            "{} charged event(s) have no generation id and can only be checked in the day totals",
            summary.unverifiable
        ));
    }
    progress.begin("checking generations", to_check.len() as u64);
    let mut checks: Vec<GenerationCheck> = futures::stream::iter(to_check)
        .map(|(e, g)| {
            let dir = &dir;
            async move {
                let c = check_one(upstream, dir, e, g).await;
                progress.advance(1);
                c
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    progress.end();
    checks.sort_by(|a, b| a.time.cmp(&b.time).then(a.request_id.cmp(&b.request_id)));
    let apply_now = opts.corrections == Corrections::Apply;
    let already_queued: HashMap<String, Money> = ledger
        .pending_cost_corrections()
        .await
        .map_err(InsightError::ledger("reading queued corrections"))?
        .into_iter()
        .map(|p| (p.request_id, p.exact))
        .collect();
    // Exact costs found by this run (request id -> cost): what the day totals compare.
    let mut exact: HashMap<String, Money> = HashMap::new();
    let mut changes: Vec<ReconcileChange> = Vec::new();
    for c in &mut checks {
        summary.checked += 1;
        match c.status {
            CheckStatus::Match => summary.matched += 1,
            CheckStatus::Differs => summary.differed += 1,
            CheckStatus::Missing => summary.missing += 1,
            CheckStatus::Corrected => summary.corrected += 1,
            CheckStatus::Pending => summary.pending += 1,
            CheckStatus::Error => summary.errors += 1,
        }
        // A provisional charge gets its exact cost; an exact one that differs from what
        // OpenRouter billed is corrected to it (the generation is the bill: `total_cost`).
        //
        // `Missing` (a charged exact event whose generation OpenRouter does not know) is only
        // reported, never refunded: a 404 from `/generation` is not proof that nothing was
        // billed (generations appear with a delay, a look-up made with another key than the
        // one that made the request is refused as unknown, ids of some routes are not
        // generation ids), and a wrong refund would let budgets grant money upstream did
        // bill. The day totals below are the check that money was billed at all.
        let Some(cost) = c.openrouter else { continue };
        let evidence = match c.status {
            CheckStatus::Corrected => format!(
                "/generation {}: total_cost {} (provisional charge {})",
                c.generation_id,
                cost.to_canonical_string(),
                c.ledger.to_canonical_string()
            ),
            CheckStatus::Differs => format!(
                "/generation {}: total_cost {}; the ledger had {}",
                c.generation_id,
                cost.to_canonical_string(),
                c.ledger.to_canonical_string()
            ),
            _ => continue,
        };
        exact.insert(c.request_id.clone(), cost);
        if opts.corrections == Corrections::Report {
            continue;
        }
        if already_queued.get(c.request_id.as_str()) == Some(&cost) {
            // Queued by an earlier run, waiting for the serving gateway: nothing new.
            c.repaired = true;
            continue;
        }
        ledger
            .request_correction(NewCorrection {
                request_id: c.request_id.clone(),
                exact: cost,
                generation_id: Some(c.generation_id.clone()),
                evidence: Some(evidence.clone()),
                new_event: None,
            })
            .await
            .map_err(InsightError::ledger("queueing a cost correction"))?;
        c.repaired = true;
        changes.push(ReconcileChange {
            kind: ChangeKind::Corrected,
            request_id: c.request_id.clone(),
            member: c.member.clone(),
            model: c.model.clone(),
            day: c.time.date_naive(),
            before: c.ledger,
            after: cost,
            evidence,
            applied: apply_now,
        });
    }
    if apply_now {
        summary.applied += ledger
            .apply_pending_corrections()
            .await
            .map_err(InsightError::ledger("applying cost corrections"))?
            .len();
    } else if !changes.is_empty() && opts.corrections == Corrections::Queue {
        notes.push(format!(
            "{} exact cost(s) queued; the serving gateway applies them on its next reconcile tick",
            changes.len()
        ));
    }

    // ---- step 2a: requests left in flight without a generation id, from /activity
    let repairs = repair_in_flight(
        ledger, upstream, opts, &events, &checks, &mut exact, &mut notes,
    )
    .await?;
    summary.repaired = repairs.len();
    if opts.corrections != Corrections::Report {
        changes.extend(repairs.iter().map(|r| ReconcileChange {
            kind: ChangeKind::Corrected,
            request_id: r.request_id.clone(),
            member: r.member.clone(),
            model: r.model.clone(),
            day: r.day,
            before: r.provisional,
            after: r.exact,
            evidence: r.evidence.clone(),
            applied: apply_now,
        }));
    }
    if opts.corrections == Corrections::Apply && !repairs.is_empty() {
        summary.applied += ledger
            .apply_pending_corrections()
            .await
            .map_err(InsightError::ledger("applying cost corrections"))?
            .len();
    }

    // ---- step 2: /activity per key, day and model
    let mut totals = Vec::new();
    if opts.activity {
        match upstream.management() {
            None => notes.push(
                "day totals not compared: set OPENROUTER_PROVISIONING_KEY to read OpenRouter's /activity".into(),
            ),
            Some(client) => {
                let (first, last) = activity_days(ledger.now());
                let days: HashSet<NaiveDate> = opts
                    .range
                    .days()
                    .into_iter()
                    .filter(|d| *d >= first && *d <= last && opts.range.covers_day(*d))
                    .collect();
                let shared_hash = upstream.shared_key_hash().await?;
                // key hash -> (label, events)
                let mut keys: BTreeMap<String, (String, Vec<&UsageEvent>)> = BTreeMap::new();
                if let Some(h) = &shared_hash {
                    keys.entry(h.clone()).or_insert_with(|| ("shared".into(), Vec::new()));
                }
                let mut unattributed = 0usize;
                for e in &events {
                    if !days.contains(&e.time.date_naive()) {
                        continue;
                    }
                    let hash = match (&e.usage.upstream_key_hash, &shared_hash) {
                        (Some(h), _) => h.clone(),
                        (None, Some(h)) => h.clone(),
                        (None, None) => {
                            unattributed += 1;
                            continue;
                        }
                    };
                    let label = if Some(&hash) == shared_hash.as_ref() {
                        "shared".to_owned()
                    } else {
                        e.member_id.clone()
                    };
                    keys.entry(hash).or_insert_with(|| (label, Vec::new())).1.push(e);
                }
                // Members' own keys the gateway forwards with (their secret is held), even on
                // days the ledger has none of their events: what was billed on them outside the
                // gateway is theirs. Direct-mode keys (no secret held) are the members' own
                // traffic, reported as such (`orteam report`'s `openrouter` source), not booked.
                for k in dir.upstream_keys.iter().filter(|k| k.has_secret && !k.disabled) {
                    keys.entry(k.key_hash.clone())
                        .or_insert_with(|| (k.member_id.clone(), Vec::new()));
                }
                if unattributed > 0 {
                    notes.push(format!(
                        "{unattributed} event(s) used the shared key, whose hash is unknown without OPENROUTER_API_KEY: not compared with /activity"
                    ));
                }
                // Insertions queued by an earlier run and not applied yet count as recorded, so
                // a second run before the gateway's tick does not book the same money twice.
                let queued: Vec<UsageEvent> = ledger
                    .pending_cost_corrections()
                    .await
                    .map_err(InsightError::ledger("reading queued corrections"))?
                    .into_iter()
                    .filter_map(|p| {
                        p.new_event.map(|mut e| {
                            e.usage.cost = p.exact;
                            e
                        })
                    })
                    .collect();
                progress.begin("comparing day totals", keys.len() as u64);
                for (hash, (label, evs)) in &keys {
                    let rows = client
                        .activity(&ActivityParams {
                            api_key_hash: Some(hash.clone()),
                            ..ActivityParams::default()
                        })
                        .await
                        .map_err(InsightError::upstream("reading /activity"))?;
                    progress.advance(1);
                    let mut cells: BTreeMap<(NaiveDate, String), Cell> = BTreeMap::new();
                    let queued_here = queued.iter().filter(|e| {
                        e.usage.upstream_key_hash.as_deref() == Some(hash.as_str())
                            && days.contains(&e.time.date_naive())
                    });
                    for e in evs.iter().copied().chain(queued_here) {
                        let cost = exact
                            .get(e.usage.request_id.as_str())
                            .copied()
                            .unwrap_or(e.usage.cost);
                        let c = cells
                            .entry((e.time.date_naive(), e.model().to_owned()))
                            .or_default();
                        c.ledger = c.ledger.checked_add(cost).unwrap_or(c.ledger);
                        if e.usage.outcome != Outcome::Failed {
                            c.ledger_requests += 1;
                        }
                        if e.usage.outcome == Outcome::Provisional
                            && !exact.contains_key(e.usage.request_id.as_str())
                        {
                            c.waiting = true;
                        }
                    }
                    for a in rows {
                        let Some(day) = a.day() else { continue };
                        if !days.contains(&day) {
                            continue;
                        }
                        let c = cells.entry((day, a.model.clone())).or_default();
                        c.openrouter = c.openrouter.checked_add(a.usage).unwrap_or(c.openrouter);
                        c.openrouter_requests += a.requests;
                    }
                    for ((day, model), c) in cells {
                        if c.ledger.is_zero()
                            && c.openrouter.is_zero()
                            && c.ledger_requests == 0
                            && c.openrouter_requests == 0
                        {
                            continue;
                        }
                        let mut check = TotalCheck {
                            key_hash: hash.clone(),
                            key: label.clone(),
                            day,
                            model,
                            ledger: c.ledger,
                            openrouter: c.openrouter,
                            ledger_requests: c.ledger_requests,
                            openrouter_requests: c.openrouter_requests,
                            matches: c.ledger == c.openrouter,
                            repaired: false,
                        };
                        if !check.matches
                            && opts.corrections != Corrections::Report
                            && let Some(change) = book_difference(
                                ledger, &dir, &check, c.waiting, apply_now, &mut notes,
                            )
                            .await?
                        {
                                check.repaired = true;
                                summary.inserted += 1;
                                if change.member == ORG_LEVEL {
                                    summary.org_level = summary
                                        .org_level
                                        .checked_add(change.after)
                                        .unwrap_or(summary.org_level);
                                }
                                changes.push(change);
                        }
                        totals.push(check);
                    }
                }
                progress.end();
                if days.is_empty() {
                    notes.push(format!(
                        "no completed day of the range lies in /activity's window ({first} to {last}): day totals not compared"
                    ));
                }
            }
        }
    }
    if apply_now && summary.inserted > 0 {
        summary.applied += ledger
            .apply_pending_corrections()
            .await
            .map_err(InsightError::ledger("applying reconciliation events"))?
            .len();
    }
    summary.totals_checked = totals.len();
    summary.totals_matched = totals.iter().filter(|t| t.matches).count();
    summary.totals_differed = summary.totals_checked - summary.totals_matched;
    summary.changed = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Corrected)
        .count();
    let mut report = ReconcileReport {
        from: opts.range.from,
        to: opts.range.to,
        summary,
        generations: checks,
        totals,
        repairs,
        changes,
        notes,
    };
    let (g, t) = report.differences();
    report.summary.outstanding =
        g.iter().filter(|c| c.status != CheckStatus::Error).count() + t.len();
    Ok(report)
}

/// One (day, model) cell of a key: the ledger's figures and `/activity`'s.
#[derive(Debug, Default)]
struct Cell {
    ledger: Money,
    ledger_requests: u64,
    openrouter: Money,
    openrouter_requests: u64,
    /// A provisional charge of the cell still waits for its exact cost.
    waiting: bool,
}

/// A (key, completed day, model) total `/activity` billed above the ledger: queues a
/// reconciliation event for the difference (see the module docs for where it is booked).
/// Returns the change, or `None` (with a note) when the difference is not repaired:
///
/// - `/activity` billed **less** than the ledger: which event is too high cannot be told from
///   a day total (the generation look-ups would have corrected one that differs), and a refund
///   laid on the wrong member would let their budget grant money that was billed; reported only.
/// - a provisional charge of the cell still waits for its exact cost: the difference is not
///   known yet; the next run books it.
async fn book_difference(
    ledger: &Ledger,
    dir: &orteam_ledger::Directory,
    t: &TotalCheck,
    waiting: bool,
    apply_now: bool,
    notes: &mut Vec<String>,
) -> Result<Option<ReconcileChange>, InsightError> {
    let Some(missing) = t
        .openrouter
        .checked_sub(t.ledger)
        .filter(|m| !m.is_negative() && !m.is_zero())
    else {
        notes.push(format!(
            "{} {} {}: /activity billed {} but the ledger holds {}; not refunded (a day total cannot say which charge is wrong)",
            t.key,
            t.day,
            t.model,
            t.openrouter.to_canonical_string(),
            t.ledger.to_canonical_string()
        ));
        return Ok(None);
    };
    if waiting {
        notes.push(format!(
            "{} {} {}: a provisional charge still waits for its exact cost; the difference is booked once it has it",
            t.key, t.day, t.model
        ));
        return Ok(None);
    }
    let member = (t.key != "shared")
        .then(|| dir.members.get(&t.key))
        .flatten();
    let (member_id, team_id, org_id) = match member {
        Some(m) => (
            m.id.clone(),
            m.team_id.clone(),
            dir.org_of_team(&m.team_id).map(str::to_owned),
        ),
        None => (
            ORG_LEVEL.to_owned(),
            ORG_LEVEL.to_owned(),
            dir.orgs.keys().next().cloned(),
        ),
    };
    let Some(org_id) = org_id else {
        notes.push(format!(
            "{} {} {}: no org to book {} to",
            t.key,
            t.day,
            t.model,
            missing.to_canonical_string()
        ));
        return Ok(None);
    };
    // Derived from the cell and the billed total: a re-run (before or after the insertion is
    // applied) finds the same id, so the same money is never booked twice.
    let digest = Sha256::digest(
        format!(
            "{}|{}|{}|{}",
            t.key_hash,
            t.day,
            t.model,
            t.openrouter.to_canonical_string()
        )
        .as_bytes(),
    );
    let request_id = format!("reconcile-{}", &hex::encode(digest)[..20]);
    let evidence = format!(
        "/activity {} {} key {}: billed {} ({} request(s)); the ledger held {} ({} request(s)); {} booked to {}",
        t.day,
        t.model,
        t.key,
        t.openrouter.to_canonical_string(),
        t.openrouter_requests,
        t.ledger.to_canonical_string(),
        t.ledger_requests,
        missing.to_canonical_string(),
        if member_id == ORG_LEVEL {
            "the org (unattributed)"
        } else {
            member_id.as_str()
        }
    );
    let mut usage = orteam_ledger::Usage::new(request_id.clone(), t.model.clone(), Money::ZERO);
    usage.upstream_key_hash = Some(t.key_hash.clone());
    usage.served_model = Some(t.model.clone());
    usage.title = Some("reconciliation".into());
    let event = UsageEvent {
        time: orteam_core::window::midnight(t.day),
        member_id: member_id.clone(),
        team_id,
        org_id,
        usage,
        reconciled: None,
    };
    let queued = ledger
        .request_correction(NewCorrection {
            request_id: request_id.clone(),
            exact: missing,
            generation_id: None,
            evidence: Some(evidence.clone()),
            new_event: Some(event),
        })
        .await
        .map_err(InsightError::ledger("queueing a reconciliation event"))?;
    if !queued {
        notes.push(format!(
            "{} {} {}: {request_id} was booked already; the difference left is not booked twice",
            t.key, t.day, t.model
        ));
        return Ok(None);
    }
    Ok(Some(ReconcileChange {
        kind: ChangeKind::Inserted,
        request_id,
        member: member_id,
        model: t.model.clone(),
        day: t.day,
        before: Money::ZERO,
        after: missing,
        evidence,
        applied: apply_now,
    }))
}

/// Whether `e` is a request a dead gateway left in flight before upstream revealed its
/// generation: charged provisionally at its worst case, checkable only through `/activity`.
fn in_flight_without_generation(e: &UsageEvent) -> bool {
    e.usage.outcome == Outcome::Provisional
        && e.usage.generation_id.as_deref().is_none_or(str::is_empty)
}

/// Step 2a: per (key, completed day, model) holding such requests, asks `/activity` what the
/// key was billed for that model that day, and corrects those requests so that the ledger's
/// total for the key, day and model equals it. `/activity` does not say which member a charge
/// belongs to, so the amount is laid on the requests oldest first, each at most its own worst
/// case (what its member's budget held for it): the total is exact, and no member is charged
/// more than its own hold; the evidence names every member involved. Skipped while any other
/// provisional event of that key, day and model still waits for its exact cost.
async fn repair_in_flight(
    ledger: &Ledger,
    upstream: &Upstream,
    opts: &ReconcileOptions,
    events: &[UsageEvent],
    checks: &[GenerationCheck],
    exact: &mut HashMap<String, Money>,
    notes: &mut Vec<String>,
) -> Result<Vec<InFlightRepair>, InsightError> {
    let mut repairs = Vec::new();
    if !events.iter().any(in_flight_without_generation) {
        return Ok(repairs);
    }
    let Some(client) = upstream.management() else {
        notes.push("requests left in flight without a generation id stay at their worst case: set OPENROUTER_PROVISIONING_KEY to repair them from /activity".into());
        return Ok(repairs);
    };
    let (first, last) = activity_days(ledger.now());
    let shared_hash = upstream.shared_key_hash().await?;
    let pending: HashSet<&str> = checks
        .iter()
        .filter(|c| c.provisional && c.status != CheckStatus::Corrected)
        .map(|c| c.request_id.as_str())
        .collect();
    // (key hash, day, model) -> events
    let mut groups: BTreeMap<(String, NaiveDate, String), Vec<&UsageEvent>> = BTreeMap::new();
    for e in events {
        let Some(hash) = e.usage.upstream_key_hash.clone().or(shared_hash.clone()) else {
            continue;
        };
        groups
            .entry((hash, e.time.date_naive(), e.model().to_owned()))
            .or_default()
            .push(e);
    }
    let mut activity_of_key: HashMap<String, Vec<orteam_openrouter::types::activity::ActivityRow>> =
        HashMap::new();
    for ((hash, day, model), evs) in groups {
        let mut unknown: Vec<&UsageEvent> = evs
            .iter()
            .copied()
            .filter(|e| in_flight_without_generation(e))
            .collect();
        if unknown.is_empty() {
            continue;
        }
        if day < first || day > last || !opts.range.covers_day(day) {
            notes.push(format!(
                "{} request(s) left in flight on {day} ({model}) wait for that day's /activity (completed days only)",
                unknown.len()
            ));
            continue;
        }
        if evs.iter().any(|e| {
            e.usage.outcome == Outcome::Provisional
                && !in_flight_without_generation(e)
                && (pending.contains(e.usage.request_id.as_str())
                    || !exact.contains_key(e.usage.request_id.as_str()))
        }) {
            notes.push(format!(
                "{day} {model}: other provisional charges still wait for their exact cost; requests left in flight are repaired once they have it"
            ));
            continue;
        }
        if !activity_of_key.contains_key(&hash) {
            let rows = client
                .activity(&ActivityParams {
                    api_key_hash: Some(hash.clone()),
                    ..ActivityParams::default()
                })
                .await
                .map_err(InsightError::upstream("reading /activity"))?;
            activity_of_key.insert(hash.clone(), rows);
        }
        let billed: Money = activity_of_key
            .get(&hash)
            .into_iter()
            .flatten()
            .filter(|a| a.day() == Some(day) && a.model == model)
            .map(|a| a.usage)
            .sum();
        let cost_of = |e: &UsageEvent| {
            exact
                .get(e.usage.request_id.as_str())
                .copied()
                .unwrap_or(e.usage.cost)
        };
        let known: Money = evs
            .iter()
            .filter(|e| !in_flight_without_generation(e))
            .map(|e| cost_of(e))
            .sum();
        let held: Money = unknown.iter().map(|e| e.usage.cost).sum();
        let Some(mut left) = billed.checked_sub(known).filter(|m| !m.is_negative()) else {
            notes.push(format!(
                "{day} {model}: the ledger's exact charges ({known}) exceed what /activity billed ({billed}); requests left in flight not repaired"
            ));
            continue;
        };
        if left > held {
            notes.push(format!(
                "{day} {model}: /activity billed {left} beyond the ledger's exact charges, more than the {held} held by requests left in flight; not repaired"
            ));
            continue;
        }
        let mut members: Vec<&str> = unknown.iter().map(|e| e.member_id.as_str()).collect();
        members.sort_unstable();
        members.dedup();
        let evidence = format!(
            "/activity {day} {model}: billed {billed}; the ledger's exact charges {known}; {} request(s) of {} held {held} in flight",
            unknown.len(),
            members.join(", ")
        );
        unknown.sort_by(|a, b| {
            a.time
                .cmp(&b.time)
                .then(a.usage.request_id.cmp(&b.usage.request_id))
        });
        for e in unknown {
            let share = left.min(e.usage.cost);
            left = left.checked_sub(share).unwrap_or(Money::ZERO);
            if opts.corrections != Corrections::Report {
                ledger
                    .request_correction(NewCorrection {
                        request_id: e.usage.request_id.clone(),
                        exact: share,
                        generation_id: None,
                        evidence: Some(evidence.clone()),
                        new_event: None,
                    })
                    .await
                    .map_err(InsightError::ledger("queueing a cost correction"))?;
            }
            exact.insert(e.usage.request_id.clone(), share);
            repairs.push(InFlightRepair {
                request_id: e.usage.request_id.clone(),
                member: e.member_id.clone(),
                model: model.clone(),
                day,
                provisional: e.usage.cost,
                exact: share,
                evidence: evidence.clone(),
            });
        }
    }
    Ok(repairs)
}

/// Most changes and outstanding lines a recorded run keeps (the CLI's output has them all).
const RECORDED_LINES: usize = 100;

/// A reconciliation run as recorded in the ledger (`reconcile_runs`) for the dashboard's
/// *Reconciliation* panel and the `reconcile_difference` alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRun {
    pub finished_at: DateTime<Utc>,
    /// `gateway` (its periodic loop) or `cli` (`orteam reconcile`).
    pub source: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub summary: ReconcileSummary,
    /// The first [`RECORDED_LINES`] changes.
    pub changes: Vec<ReconcileChange>,
    /// The first [`RECORDED_LINES`] differences left outstanding, one line each.
    pub outstanding: Vec<String>,
    /// Some look-ups failed.
    pub incomplete: bool,
}

impl RecordedRun {
    /// Whether the run changed money or left differences (what the alert reports).
    pub fn needs_attention(&self) -> bool {
        !self.changes.is_empty() || self.summary.outstanding > 0
    }
}

/// Records a run's result in the ledger (the dashboard and the alerts read the newest).
pub async fn record_run(
    ledger: &Ledger,
    source: &str,
    report: &ReconcileReport,
) -> Result<(), InsightError> {
    let mut outstanding = report.outstanding_lines();
    outstanding.truncate(RECORDED_LINES);
    let run = RecordedRun {
        finished_at: ledger.now(),
        source: source.to_owned(),
        from: report.from,
        to: report.to,
        summary: report.summary.clone(),
        changes: report
            .changes
            .iter()
            .take(RECORDED_LINES)
            .cloned()
            .collect(),
        outstanding,
        incomplete: report.incomplete(),
    };
    ledger
        .record_reconcile_run(source, serde_json::to_string(&run)?)
        .await
        .map_err(InsightError::ledger("recording the reconciliation run"))
}

/// The newest recorded run, if any (a row this build cannot read is skipped with a warning).
pub async fn last_run(ledger: &Ledger) -> Result<Option<RecordedRun>, InsightError> {
    let Some(row) = ledger
        .last_reconcile_run()
        .await
        .map_err(InsightError::ledger("reading the last reconciliation run"))?
    else {
        return Ok(None);
    };
    match serde_json::from_str(&row.result) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::warn!(run = row.id, error = %e, "unreadable reconciliation run");
            Ok(None)
        }
    }
}

/// The gateway's periodic job, every `interval` until `shutdown`: applies corrections queued by
/// `orteam reconcile`, then looks up the provisional events of the last `lookback` and applies
/// their exact costs, compares the completed days' totals with `/activity` and books what
/// upstream billed beyond the ledger (see the module docs), and records the run for the
/// dashboard and alerts. `ledger` must be the gateway's serving ledger.
pub async fn run_reconcile_loop(
    ledger: Ledger,
    upstream: Upstream,
    interval: Duration,
    lookback: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match reconcile_tick(&ledger, &upstream, lookback).await {
            Ok(r) => {
                for c in &r.changes {
                    tracing::info!(change = %c.describe(), "reconciliation changed the ledger");
                }
                if r.changed_money() {
                    tracing::info!(summary = %r.summary.changes_line(), "reconciliation");
                }
                if r.money_differs() {
                    tracing::warn!(
                        outstanding = r.summary.outstanding,
                        "reconciliation: money differs from OpenRouter and was not repaired (run `orteam reconcile` for details)"
                    );
                }
                if let Err(e) = record_run(&ledger, "gateway", &r).await {
                    tracing::warn!(error = %e, "recording the reconciliation run failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation tick failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One tick of [`run_reconcile_loop`].
pub async fn reconcile_tick(
    ledger: &Ledger,
    upstream: &Upstream,
    lookback: Duration,
) -> Result<ReconcileReport, InsightError> {
    ledger
        .apply_pending_corrections()
        .await
        .map_err(InsightError::ledger("applying queued cost corrections"))?;
    let now = ledger.now();
    let from = now - chrono::TimeDelta::from_std(lookback).unwrap_or(chrono::TimeDelta::days(1));
    let range = Range {
        from: orteam_core::window::midnight(from.date_naive()),
        to: now + chrono::TimeDelta::seconds(1),
    };
    let opts = ReconcileOptions {
        range,
        generations: GenerationScope::Provisional,
        activity: upstream.management().is_some(),
        corrections: Corrections::Apply,
        concurrency: 4,
    };
    reconcile(ledger, upstream, &opts, &crate::progress::NoProgress).await
}
