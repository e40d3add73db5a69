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
//! Money differs when an exact (non-provisional) event's cost is not `total_cost`, a charged
//! exact event has no generation at OpenRouter, or a day/model/key total differs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use orteam_core::Money;
use orteam_ledger::{EventFilter, Ledger, Outcome, UsageEvent};
use orteam_openrouter::types::activity::ActivityParams;
use serde::{Deserialize, Serialize};
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
}

/// A provisional charge of a request left in flight (no generation id: the gateway died before
/// upstream's headers arrived) repaired from `/activity`: the key's billed total for the day and
/// model minus everything else the ledger holds for them is what those requests cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightRepair {
    pub request_id: String,
    pub member: String,
    pub day: NaiveDate,
    /// The provisional charge (the request's worst case).
    pub provisional: Money,
    /// What it is corrected to.
    pub exact: Money,
    /// The figures the repair rests on.
    pub evidence: String,
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
    pub notes: Vec<String>,
}

impl ReconcileReport {
    /// Whether any money differs (the CLI then exits non-zero).
    pub fn money_differs(&self) -> bool {
        self.summary.differed > 0 || self.summary.missing > 0 || self.summary.totals_differed > 0
    }

    /// Whether some look-ups failed, so the result is incomplete.
    pub fn incomplete(&self) -> bool {
        self.summary.errors > 0
    }

    /// The checks that are not matches.
    pub fn differences(&self) -> (Vec<&GenerationCheck>, Vec<&TotalCheck>) {
        (
            self.generations
                .iter()
                .filter(|g| {
                    matches!(
                        g.status,
                        CheckStatus::Differs | CheckStatus::Missing | CheckStatus::Error
                    )
                })
                .collect(),
            self.totals.iter().filter(|t| !t.matches).collect(),
        )
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
            None if e.usage.cost.is_zero() => summary.skipped += 1,
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
    let mut exact: HashMap<&str, Money> = HashMap::new();
    for c in &checks {
        summary.checked += 1;
        match c.status {
            CheckStatus::Match => summary.matched += 1,
            CheckStatus::Differs => summary.differed += 1,
            CheckStatus::Missing => summary.missing += 1,
            CheckStatus::Corrected => summary.corrected += 1,
            CheckStatus::Pending => summary.pending += 1,
            CheckStatus::Error => summary.errors += 1,
        }
        if c.status == CheckStatus::Corrected
            && let Some(cost) = c.openrouter
        {
            exact.insert(c.request_id.as_str(), cost);
            if opts.corrections == Corrections::Report {
                continue;
            }
            ledger
                .request_cost_correction(&c.request_id, cost, Some(&c.generation_id))
                .await
                .map_err(InsightError::ledger("queueing a cost correction"))?;
        }
    }
    if opts.corrections == Corrections::Apply {
        summary.applied = ledger
            .apply_pending_corrections()
            .await
            .map_err(InsightError::ledger("applying cost corrections"))?
            .len();
    } else if summary.corrected > 0 && opts.corrections == Corrections::Queue {
        notes.push(format!(
            "{} exact cost(s) queued; the serving gateway applies them on its next reconcile tick",
            summary.corrected
        ));
    }

    // ---- step 2a: requests left in flight without a generation id, from /activity
    let repairs = repair_in_flight(
        ledger, upstream, opts, &events, &checks, &mut exact, &mut notes,
    )
    .await?;
    summary.repaired = repairs.len();
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
                if unattributed > 0 {
                    notes.push(format!(
                        "{unattributed} event(s) used the shared key, whose hash is unknown without OPENROUTER_API_KEY: not compared with /activity"
                    ));
                }
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
                    // (day, model) -> (ledger, ledger requests, openrouter, openrouter requests)
                    let mut cells: BTreeMap<(NaiveDate, String), (Money, u64, Money, u64)> =
                        BTreeMap::new();
                    for e in evs {
                        let cost = exact
                            .get(e.usage.request_id.as_str())
                            .copied()
                            .unwrap_or(e.usage.cost);
                        let c = cells
                            .entry((e.time.date_naive(), e.model().to_owned()))
                            .or_default();
                        c.0 = c.0.checked_add(cost).unwrap_or(c.0);
                        if e.usage.outcome != Outcome::Failed {
                            c.1 += 1;
                        }
                    }
                    for a in rows {
                        let Some(day) = a.day() else { continue };
                        if !days.contains(&day) {
                            continue;
                        }
                        let c = cells.entry((day, a.model.clone())).or_default();
                        c.2 = c.2.checked_add(a.usage).unwrap_or(c.2);
                        c.3 += a.requests;
                    }
                    for ((day, model), (l, lr, o, or)) in cells {
                        if l.is_zero() && o.is_zero() && lr == 0 && or == 0 {
                            continue;
                        }
                        totals.push(TotalCheck {
                            key_hash: hash.clone(),
                            key: label.clone(),
                            day,
                            model,
                            ledger: l,
                            openrouter: o,
                            ledger_requests: lr,
                            openrouter_requests: or,
                            matches: l == o,
                        });
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
    summary.totals_checked = totals.len();
    summary.totals_matched = totals.iter().filter(|t| t.matches).count();
    summary.totals_differed = summary.totals_checked - summary.totals_matched;
    Ok(ReconcileReport {
        from: opts.range.from,
        to: opts.range.to,
        summary,
        generations: checks,
        totals,
        repairs,
        notes,
    })
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
async fn repair_in_flight<'e>(
    ledger: &Ledger,
    upstream: &Upstream,
    opts: &ReconcileOptions,
    events: &'e [UsageEvent],
    checks: &[GenerationCheck],
    exact: &mut HashMap<&'e str, Money>,
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
                    .request_cost_correction(&e.usage.request_id, share, None)
                    .await
                    .map_err(InsightError::ledger("queueing a cost correction"))?;
            }
            exact.insert(e.usage.request_id.as_str(), share);
            repairs.push(InFlightRepair {
                request_id: e.usage.request_id.clone(),
                member: e.member_id.clone(),
                day,
                provisional: e.usage.cost,
                exact: share,
                evidence: evidence.clone(),
            });
        }
    }
    Ok(repairs)
}

/// The gateway's periodic job, every `interval` until `shutdown`: applies corrections queued by
/// `orteam reconcile`, then looks up the provisional events of the last `lookback` and applies
/// their exact costs, and compares yesterday's totals with `/activity` (logging differences).
/// `ledger` must be the gateway's serving ledger.
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
                if r.money_differs() {
                    let (g, t) = r.differences();
                    tracing::warn!(
                        generation_differences = g.len(),
                        total_differences = t.len(),
                        "reconciliation: money differs from OpenRouter (run `orteam reconcile` for details)"
                    );
                } else if r.summary.applied > 0 {
                    tracing::info!(
                        applied = r.summary.applied,
                        "reconciliation: exact costs applied"
                    );
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
