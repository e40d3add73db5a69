//! `orteam report`: spend and requests over a period, grouped by any combination of member,
//! team, model, day, provider, key and API route, from two sources:
//!
//! - **gateway**: every request the gateway recorded in the ledger (exact costs, any period);
//! - **openrouter**: direct-mode keys (members who call OpenRouter with their own key, which the
//!   ledger knows by hash but never sees traffic for), from OpenRouter's `/activity` filtered by
//!   each key's hash, one call per key, merged under that key. `/activity` covers the 30
//!   completed UTC days before today, so direct spend of today (or older days) is missing; the
//!   report says so in `notes`.
//!
//! The `key` column is the virtual key id (`ot-<id>…` without the decoration) for gateway rows
//! and the OpenRouter key hash for openrouter rows. The `route` column is the gateway API route
//! (chat, messages, responses, embeddings, completions); openrouter rows have none (`/activity`
//! does not say which API a request used), and a route filter leaves them out. Rows of the two sources are never summed into
//! one row; `totals` adds them up. Every amount is exact (`Money`), written as a decimal string
//! in JSON and CSV.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use orteam_core::{ApiRoute, Money};
use orteam_ledger::{Directory, GroupBy, Ledger, RefusalFilter, RefusalSummary, UsageQuery};
use orteam_openrouter::types::activity::ActivityParams;
use serde::{Deserialize, Serialize};

use crate::anomaly::{self, Anomaly, AnomalyConfig, SubjectKind};
use crate::error::InsightError;
use crate::period::Range;
use crate::progress::Progress;
use crate::upstream::Upstream;

/// Where a row's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The ledger: traffic through the orteam gateway.
    Gateway,
    /// OpenRouter's `/activity`: direct-mode keys.
    Openrouter,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Gateway => "gateway",
            Source::Openrouter => "openrouter",
        }
    }
}

/// One group. Dimensions not grouped by are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    pub source: Source,
    pub member: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub day: Option<NaiveDate>,
    pub provider: Option<String>,
    pub key: Option<String>,
    /// The gateway API route; `None` on openrouter rows (and when not grouped by).
    #[serde(default)]
    pub route: Option<ApiRoute>,
    pub requests: u64,
    pub cost: Money,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    /// The row's member, key or model is flagged as an anomaly on the anomaly day (and the row
    /// covers that day).
    pub anomaly: bool,
}

/// Sums over rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub cost: Money,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Totals {
    fn add(&mut self, r: &ReportRow) {
        self.requests += r.requests;
        self.cost = self.cost.checked_add(r.cost).unwrap_or(self.cost);
        self.prompt_tokens += r.prompt_tokens;
        self.completion_tokens += r.completion_tokens;
        self.reasoning_tokens += r.reasoning_tokens;
    }
}

/// What to report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub range: Range,
    pub group_by: Vec<GroupBy>,
    /// Only requests of this gateway API route (direct-mode keys are then left out: their
    /// route is unknown).
    pub route: Option<ApiRoute>,
    /// Include direct-mode keys from `/activity` (needs the management key).
    pub direct: bool,
    /// Flag anomalies of this day (normally today), with this rule; `None` skips detection.
    pub anomalies: Option<(NaiveDate, AnomalyConfig)>,
}

/// A finished report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: Vec<GroupBy>,
    /// The route filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<ApiRoute>,
    pub rows: Vec<ReportRow>,
    pub totals: Totals,
    pub totals_by_source: BTreeMap<Source, Totals>,
    /// Flagged anomalies of the anomaly day.
    pub anomalies: Vec<Anomaly>,
    /// Requests the gateway refused in the period, per member × reason × what refused them,
    /// most refused first (`orteam report --outcome refused`).
    #[serde(default)]
    pub refusals: Vec<RefusalSummary>,
    /// Caveats (missing coverage, skipped sources).
    pub notes: Vec<String>,
}

/// A direct-mode key: an upstream key the ledger knows by hash only (its secret is with the
/// member), so its traffic never passes the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectKey {
    pub member: String,
    pub team: String,
    pub key_hash: String,
    pub label: String,
}

/// Every direct-mode key in the directory (disabled ones too: their history still counts).
pub fn direct_keys(dir: &Directory) -> Vec<DirectKey> {
    let mut seen = HashSet::new();
    dir.upstream_keys
        .iter()
        .filter(|k| !k.has_secret)
        .filter(|k| seen.insert(k.key_hash.clone()))
        .map(|k| DirectKey {
            member: k.member_id.clone(),
            team: dir
                .members
                .get(&k.member_id)
                .map(|m| m.team_id.clone())
                .unwrap_or_default(),
            key_hash: k.key_hash.clone(),
            label: k.label.clone(),
        })
        .collect()
}

/// The days `/activity` can answer for at `now`: the 30 completed days before today.
pub fn activity_days(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let today = now.date_naive();
    (today - Days::new(30), today - Days::new(1))
}

type Key = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
    Option<String>,
);

/// Builds the report. `upstream` is needed only for direct keys.
pub async fn build_report(
    ledger: &Ledger,
    upstream: &Upstream,
    opts: &ReportOptions,
    progress: &dyn Progress,
) -> Result<Report, InsightError> {
    let dir = ledger.directory();
    let mut notes = Vec::new();
    let direct = if !opts.direct {
        Vec::new()
    } else if let Some(route) = opts.route {
        let n = direct_keys(&dir).len();
        if n > 0 {
            notes.push(format!(
                "{n} direct-mode key(s) not included: OpenRouter's /activity does not say which API a request used, so it cannot be filtered by route {route}"
            ));
        }
        Vec::new()
    } else {
        direct_keys(&dir)
    };
    progress.begin("report", 1 + direct.len() as u64);
    let groups = ledger
        .usage(&UsageQuery {
            from: Some(opts.range.from),
            to: Some(opts.range.to),
            group_by: opts.group_by.clone(),
            member: None,
            team: None,
            route: opts.route,
        })
        .await
        .map_err(InsightError::ledger("reading usage"))?;
    progress.advance(1);
    let mut rows: Vec<ReportRow> = groups
        .into_iter()
        .filter(|g| g.requests > 0)
        .map(|g| ReportRow {
            source: Source::Gateway,
            // Money reconciliation booked at org level (not attributable to a member).
            member: g.member.map(org_level_label),
            team: g.team.map(org_level_label),
            model: g.model,
            day: g.day,
            provider: g.provider,
            key: g.key,
            route: g.route,
            requests: g.requests,
            cost: g.cost,
            prompt_tokens: g.prompt_tokens,
            completion_tokens: g.completion_tokens,
            reasoning_tokens: g.reasoning_tokens,
            anomaly: false,
        })
        .collect();
    if !direct.is_empty() {
        match upstream.management() {
            None => notes.push(format!(
                "{} direct-mode key(s) not included: set OPENROUTER_PROVISIONING_KEY to read OpenRouter's /activity",
                direct.len()
            )),
            Some(client) => {
                let (first, last) = activity_days(ledger.now());
                let wanted: Vec<NaiveDate> = opts.range.days();
                if wanted.iter().any(|d| *d < first || *d > last) {
                    notes.push(format!(
                        "direct-mode keys: OpenRouter's /activity covers {first} to {last} (completed UTC days); spend outside those days is not included"
                    ));
                }
                let partial: Vec<_> = wanted
                    .iter()
                    .filter(|d| !opts.range.covers_day(**d))
                    .collect();
                if !partial.is_empty() {
                    notes.push(
                        "direct-mode keys: /activity has whole days only; partial days at the range's edges are counted in full".into(),
                    );
                }
                let has = |g: GroupBy| opts.group_by.contains(&g);
                let mut merged: BTreeMap<Key, ReportRow> = BTreeMap::new();
                for k in &direct {
                    let activity = client
                        .activity(&ActivityParams {
                            api_key_hash: Some(k.key_hash.clone()),
                            ..ActivityParams::default()
                        })
                        .await
                        .map_err(InsightError::upstream(format!(
                            "reading /activity of direct key {}",
                            k.label
                        )))?;
                    progress.advance(1);
                    for a in activity {
                        let Some(day) = a.day() else { continue };
                        if !wanted.contains(&day) {
                            continue;
                        }
                        let key: Key = (
                            has(GroupBy::Member).then(|| k.member.clone()),
                            has(GroupBy::Team).then(|| k.team.clone()),
                            has(GroupBy::Model).then(|| a.model.clone()),
                            has(GroupBy::Day).then_some(day),
                            has(GroupBy::Provider)
                                .then(|| a.provider_name.clone().unwrap_or_default()),
                            has(GroupBy::Key).then(|| k.key_hash.clone()),
                        );
                        let row = merged.entry(key.clone()).or_insert_with(|| ReportRow {
                            source: Source::Openrouter,
                            member: key.0,
                            team: key.1,
                            model: key.2,
                            day: key.3,
                            provider: key.4,
                            key: key.5,
                            route: None,
                            requests: 0,
                            cost: Money::ZERO,
                            prompt_tokens: 0,
                            completion_tokens: 0,
                            reasoning_tokens: 0,
                            anomaly: false,
                        });
                        row.requests += a.requests;
                        row.cost = row.cost.checked_add(a.usage).unwrap_or(row.cost);
                        row.prompt_tokens += a.prompt_tokens;
                        row.completion_tokens += a.completion_tokens;
                        row.reasoning_tokens += a.reasoning_tokens;
                    }
                }
                rows.extend(merged.into_values());
            }
        }
    }
    progress.end();
    let mut anomalies = Vec::new();
    if let Some((day, cfg)) = &opts.anomalies {
        anomalies = anomaly::detect(ledger, *day, cfg)
            .await?
            .into_iter()
            .filter(|a| a.flagged)
            .collect();
        for r in rows.iter_mut().filter(|r| r.source == Source::Gateway) {
            if r.day.is_some_and(|d| d != *day)
                || !opts.range.contains(orteam_core::window::midnight(*day))
            {
                continue;
            }
            r.anomaly = anomalies.iter().any(|a| match a.kind {
                SubjectKind::Member => r.member.as_deref() == Some(&a.subject),
                SubjectKind::Key => r.key.as_deref() == Some(&a.subject),
                SubjectKind::Model => r.model.as_deref() == Some(&a.subject),
            });
        }
    }
    let mut totals = Totals::default();
    let mut by_source: BTreeMap<Source, Totals> = BTreeMap::new();
    for r in &rows {
        totals.add(r);
        by_source.entry(r.source).or_default().add(r);
    }
    let refusals = refusals_in(ledger, opts.range, opts.route).await?;
    Ok(Report {
        from: opts.range.from,
        to: opts.range.to,
        group_by: opts.group_by.clone(),
        route: opts.route,
        rows,
        totals,
        totals_by_source: by_source,
        anomalies,
        refusals,
        notes,
    })
}

/// [`orteam_ledger::ORG_LEVEL`] as people read it: `unattributed (org)`.
fn org_level_label(id: String) -> String {
    if id == orteam_ledger::ORG_LEVEL {
        UNATTRIBUTED.to_owned()
    } else {
        id
    }
}

/// How reports show money booked at org level by reconciliation.
pub const UNATTRIBUTED: &str = "unattributed (org)";

/// Refusals recorded in `range` (of one route, if given), summed per member × reason × detail.
pub async fn refusals_in(
    ledger: &Ledger,
    range: Range,
    route: Option<ApiRoute>,
) -> Result<Vec<RefusalSummary>, InsightError> {
    let rows = ledger
        .refusals(RefusalFilter {
            from: Some(range.from),
            to: Some(range.to),
            member: None,
        })
        .await
        .map_err(InsightError::ledger("reading refusals"))?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| route.is_none_or(|rt| r.key.route == rt))
        .collect();
    Ok(orteam_ledger::refusals::summarize(&rows))
}

/// The CSV of [`Report::refusals`].
pub const REFUSALS_CSV_HEADER: &str = "member,reason,refused_by,count,last_minute";

/// [`Report::refusals`] as CSV (an unauthenticated key's member is empty).
pub fn refusals_csv(refusals: &[RefusalSummary]) -> String {
    let mut out = String::from(REFUSALS_CSV_HEADER);
    out.push('\n');
    for r in refusals {
        let cells = [
            csv_field(&r.member_id),
            csv_field(&r.reason),
            csv_field(&r.detail),
            r.count.to_string(),
            r.last.to_rfc3339(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The fixed CSV header: every dimension column is always present (empty when not grouped by).
pub const CSV_HEADER: &str = "source,member,team,model,day,provider,key,route,requests,cost,prompt_tokens,completion_tokens,reasoning_tokens,anomaly";

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl ReportRow {
    /// One CSV line without the newline.
    pub fn to_csv(&self) -> String {
        let f = |s: &Option<String>| csv_field(s.as_deref().unwrap_or(""));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.source.as_str(),
            f(&self.member),
            f(&self.team),
            f(&self.model),
            self.day.map(|d| d.to_string()).unwrap_or_default(),
            f(&self.provider),
            f(&self.key),
            self.route.map(ApiRoute::as_str).unwrap_or_default(),
            self.requests,
            self.cost.to_canonical_string(),
            self.prompt_tokens,
            self.completion_tokens,
            self.reasoning_tokens,
            self.anomaly
        )
    }

    /// The value of one dimension, for tables.
    pub fn dimension(&self, g: GroupBy) -> String {
        match g {
            GroupBy::Member => self.member.clone(),
            GroupBy::Team => self.team.clone(),
            GroupBy::Model => self.model.clone(),
            GroupBy::Day => self.day.map(|d| d.to_string()),
            GroupBy::Provider => self.provider.clone(),
            GroupBy::Key => self.key.clone(),
            GroupBy::Route => self.route.map(|r| r.as_str().to_owned()),
        }
        .unwrap_or_default()
    }
}

impl Report {
    /// The whole report as CSV (header, one line per row; no totals line, so the file sums
    /// cleanly).
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.rows.len() + 1));
        out.push_str(CSV_HEADER);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&r.to_csv());
            out.push('\n');
        }
        out
    }
}

/// The name of a grouping dimension.
pub fn group_name(g: GroupBy) -> &'static str {
    g.as_str()
}

/// Parses `member`, `team`, `model`, `day`, `provider`, `key`, `route` (comma-separated lists
/// allowed), keeping the first occurrence of each.
pub fn parse_group_by<S: AsRef<str>>(items: &[S]) -> Result<Vec<GroupBy>, InsightError> {
    let mut out = Vec::new();
    for item in items {
        for part in item
            .as_ref()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let g: GroupBy = part.parse().map_err(|_| {
                InsightError::Invalid(format!(
                    "cannot group by {part:?} (member, team, model, day, provider, key, route)"
                ))
            })?;
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    Ok(out)
}
