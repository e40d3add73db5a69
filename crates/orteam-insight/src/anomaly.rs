//! Anomaly flags: is a member's, key's or model's spend on a day unusual *for it*?
//!
//! # The rule
//! For a subject (member, virtual key or model) and a day D (normally today, so far):
//! - `x` = the subject's spend on D;
//! - the baseline is its spend on each of the `baseline_days` (14) days before D, zero-filled
//!   (a day without requests counts as 0);
//! - `m` = the median of the baseline, `MAD` = the median of `|b − m|`, `σ = 1.4826 × MAD` (the
//!   MAD scaled to a standard deviation for normal data);
//! - `s = max(σ, relative_floor × m)` with `relative_floor` 0.5, so a perfectly steady subject
//!   (MAD 0) is not flagged for a cent more than usual;
//! - `threshold = m + k × s` with `k` = 3;
//! - the floor: `min_spend` ($1.00), or `new_subject_min_spend` ($5.00) for a subject with
//!   spend on fewer than `min_active_days` (3) baseline days (new members, keys and models have
//!   no history: their baseline is all zeros, so only the floor applies).
//!
//! D is **flagged** when `x > threshold` and `x ≥ floor`. Median and MAD ignore a few outliers
//! in the baseline (an earlier spike does not raise the bar much), and zeros are ordinary
//! values. Everything is exact decimal arithmetic on `Money`.
//!
//! Direct-mode keys are not evaluated: OpenRouter's `/activity` has no data for today.

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};
use orteam_core::Money;
use orteam_core::rust_decimal::Decimal;
use orteam_core::window::midnight;
use orteam_ledger::{EventFilter, Ledger, UsageEvent};
use serde::{Deserialize, Serialize};

use crate::error::InsightError;

/// What an anomaly is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Member,
    /// A virtual key id.
    Key,
    Model,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Member => "member",
            SubjectKind::Key => "key",
            SubjectKind::Model => "model",
        }
    }
}

/// The rule's parameters (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyConfig {
    pub baseline_days: u32,
    /// Multiplier of the robust spread.
    #[serde(with = "dec_str")]
    pub k: Decimal,
    /// Minimum spread as a fraction of the median.
    #[serde(with = "dec_str")]
    pub relative_floor: Decimal,
    /// No flag below this day spend.
    pub min_spend: Money,
    /// The floor for subjects with little history.
    pub new_subject_min_spend: Money,
    /// Baseline days with spend below which a subject counts as new.
    pub min_active_days: u32,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            baseline_days: 14,
            k: Decimal::from(3),
            relative_floor: Decimal::new(5, 1),
            min_spend: Money::from_cents(100),
            new_subject_min_spend: Money::from_cents(500),
            min_active_days: 3,
        }
    }
}

impl AnomalyConfig {
    /// The same rule with other floors (both floors scaled: `new_subject_min_spend` stays 5×).
    pub fn with_min_spend(mut self, min: Money) -> Self {
        self.min_spend = min;
        self.new_subject_min_spend = min.checked_mul_u64(5).unwrap_or(min);
        self
    }
}

/// One evaluated subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: SubjectKind,
    pub subject: String,
    pub day: NaiveDate,
    /// Spend on the day.
    pub spend: Money,
    pub requests: u64,
    pub baseline_median: Money,
    pub baseline_mad: Money,
    /// Baseline days with any spend.
    pub active_days: u32,
    /// The spend above which the day is flagged (before the floor).
    pub threshold: Money,
    /// The absolute floor that applied.
    pub floor: Money,
    pub flagged: bool,
}

impl Anomaly {
    /// A sentence for people.
    pub fn describe(&self) -> String {
        format!(
            "{} {} spent {} on {} ({} requests); usual is {} a day, flagged above {}",
            self.kind.as_str(),
            self.subject,
            self.spend.usd(),
            self.day,
            self.requests,
            self.baseline_median.usd(),
            self.threshold.max(self.floor).usd()
        )
    }
}

/// A decimal as a JSON string (never a float).
mod dec_str {
    use orteam_core::rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.normalize())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        text.trim()
            .parse::<Decimal>()
            .map_err(serde::de::Error::custom)
    }
}

fn median(sorted: &[Decimal]) -> Decimal {
    let n = sorted.len();
    if n == 0 {
        return Decimal::ZERO;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / Decimal::from(2)
    }
}

/// Evaluates the rule for one series: `baseline` (one amount per day) and the day's spend.
pub fn evaluate(
    baseline: &[Money],
    spend: Money,
    cfg: &AnomalyConfig,
) -> (Money, Money, u32, Money, Money, bool) {
    let mut b: Vec<Decimal> = baseline.iter().map(|m| m.as_decimal()).collect();
    b.sort();
    let m = median(&b);
    let mut dev: Vec<Decimal> = b.iter().map(|x| (*x - m).abs()).collect();
    dev.sort();
    let mad = median(&dev);
    let sigma = mad * Decimal::new(14826, 4);
    let s = sigma.max(cfg.relative_floor * m);
    let threshold = m + cfg.k * s;
    let active =
        u32::try_from(baseline.iter().filter(|x| !x.is_zero()).count()).unwrap_or(u32::MAX);
    let floor = if active < cfg.min_active_days {
        cfg.new_subject_min_spend
    } else {
        cfg.min_spend
    };
    let x = spend.as_decimal();
    let flagged = x > threshold && spend >= floor;
    (
        Money::from_decimal(m.normalize()),
        Money::from_decimal(mad.normalize()),
        active,
        Money::from_decimal(threshold.round_dp(10).normalize()),
        floor,
        flagged,
    )
}

/// Evaluates every subject with spend on `day`, from `events` (which must cover the baseline
/// days and `day`). Flagged subjects first, then by spend, descending.
pub fn detect_in(events: &[UsageEvent], day: NaiveDate, cfg: &AnomalyConfig) -> Vec<Anomaly> {
    let first = day - Days::new(u64::from(cfg.baseline_days));
    // (kind, subject) -> day -> (cost, requests)
    let mut series: HashMap<(SubjectKind, String), BTreeMap<NaiveDate, (Money, u64)>> =
        HashMap::new();
    for e in events {
        let d = e.time.date_naive();
        if d < first || d > day {
            continue;
        }
        let mut subjects = vec![
            (SubjectKind::Member, e.member_id.clone()),
            (SubjectKind::Model, e.model().to_owned()),
        ];
        if let Some(k) = &e.usage.virtual_key_id {
            subjects.push((SubjectKind::Key, k.clone()));
        }
        for s in subjects {
            let slot = series
                .entry(s)
                .or_default()
                .entry(d)
                .or_insert((Money::ZERO, 0));
            slot.0 = slot.0.checked_add(e.usage.cost).unwrap_or(slot.0);
            slot.1 += 1;
        }
    }
    let mut out = Vec::new();
    for ((kind, subject), by_day) in series {
        let Some(&(spend, requests)) = by_day.get(&day) else {
            continue;
        };
        if spend.is_zero() {
            continue;
        }
        let baseline: Vec<Money> = (0..cfg.baseline_days)
            .map(|i| {
                let d = first + Days::new(u64::from(i));
                by_day.get(&d).map(|x| x.0).unwrap_or(Money::ZERO)
            })
            .collect();
        let (median, mad, active_days, threshold, floor, flagged) = evaluate(&baseline, spend, cfg);
        out.push(Anomaly {
            kind,
            subject,
            day,
            spend,
            requests,
            baseline_median: median,
            baseline_mad: mad,
            active_days,
            threshold,
            floor,
            flagged,
        });
    }
    out.sort_by(|a, b| {
        b.flagged
            .cmp(&a.flagged)
            .then(b.spend.cmp(&a.spend))
            .then(a.kind.cmp(&b.kind))
            .then(a.subject.cmp(&b.subject))
    });
    out
}

/// Events from the first baseline day through `day`.
pub async fn events_for(
    ledger: &Ledger,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Vec<UsageEvent>, InsightError> {
    ledger
        .events(EventFilter {
            from: Some(midnight(first_day)),
            to: Some(midnight(last_day + Days::new(1))),
            ..EventFilter::default()
        })
        .await
        .map_err(InsightError::ledger("reading events"))
}

/// Evaluates every subject with spend on `day` (see [`detect_in`]).
pub async fn detect(
    ledger: &Ledger,
    day: NaiveDate,
    cfg: &AnomalyConfig,
) -> Result<Vec<Anomaly>, InsightError> {
    let first = day - Days::new(u64::from(cfg.baseline_days));
    let events = events_for(ledger, first, day).await?;
    Ok(detect_in(&events, day, cfg))
}

/// Query of the admin endpoint `GET /admin/v1/anomalies`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnomalyQuery {
    /// The day to evaluate (default: today, UTC).
    pub day: Option<NaiveDate>,
    /// Also list subjects that are not flagged.
    #[serde(default)]
    pub all: bool,
    /// Override the rule's `min_spend` (decimal string).
    pub min_spend: Option<Money>,
}

/// Body of `GET /admin/v1/anomalies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyReport {
    pub day: NaiveDate,
    pub rule: AnomalyConfig,
    /// How many subjects had spend on the day.
    pub evaluated: usize,
    pub flagged: Vec<Anomaly>,
    /// Every evaluated subject (only with `all=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Anomaly>>,
}

impl AnomalyReport {
    /// `(kind, subject, value)` for the `orteam_anomalies` gauge family: 1 per flagged subject.
    pub fn gauge_values(&self) -> Vec<(String, String, i64)> {
        self.flagged
            .iter()
            .map(|a| (a.kind.as_str().to_owned(), a.subject.clone(), 1))
            .collect()
    }
}

/// The admin endpoint's handler: mount as `GET /admin/v1/anomalies` with `Query<AnomalyQuery>`
/// and return `Json(report)`.
pub async fn anomalies_endpoint(
    ledger: &Ledger,
    q: AnomalyQuery,
) -> Result<AnomalyReport, InsightError> {
    let mut rule = AnomalyConfig::default();
    if let Some(m) = q.min_spend {
        rule = rule.with_min_spend(m);
    }
    anomaly_report(
        ledger,
        q.day.unwrap_or_else(|| ledger.now().date_naive()),
        &rule,
        q.all,
    )
    .await
}

/// Detects anomalies of `day` with `rule`.
pub async fn anomaly_report(
    ledger: &Ledger,
    day: NaiveDate,
    rule: &AnomalyConfig,
    all: bool,
) -> Result<AnomalyReport, InsightError> {
    let list = detect(ledger, day, rule).await?;
    Ok(AnomalyReport {
        day,
        rule: rule.clone(),
        evaluated: list.len(),
        flagged: list.iter().filter(|a| a.flagged).cloned().collect(),
        all: all.then_some(list),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn steady_subject_small_rise_is_not_flagged() {
        let cfg = AnomalyConfig::default();
        let base = vec![m("2"); 14];
        let (med, mad, active, thr, _, flagged) = evaluate(&base, m("2.5"), &cfg);
        assert_eq!((med, mad, active), (m("2"), m("0"), 14));
        assert_eq!(thr, m("5")); // 2 + 3 × max(0, 0.5 × 2)
        assert!(!flagged);
        assert!(evaluate(&base, m("5.01"), &cfg).5);
    }

    #[test]
    fn new_subject_needs_the_higher_floor() {
        let cfg = AnomalyConfig::default();
        let base = vec![Money::ZERO; 14];
        assert!(!evaluate(&base, m("4.99"), &cfg).5);
        assert!(evaluate(&base, m("5"), &cfg).5);
    }

    #[test]
    fn noisy_subject_with_zero_days() {
        let cfg = AnomalyConfig::default();
        let base: Vec<Money> = [
            "0", "3", "0", "4", "2", "0", "3", "5", "0", "2", "3", "0", "4", "3",
        ]
        .iter()
        .map(|s| m(s))
        .collect();
        let (med, _, _, thr, _, _) = evaluate(&base, m("6"), &cfg);
        assert_eq!(med, m("2.5"));
        assert!(thr > m("6"));
        assert!(evaluate(&base, m("20"), &cfg).5);
    }

    #[test]
    fn below_the_floor_is_never_flagged() {
        let cfg = AnomalyConfig::default();
        let base = vec![m("0.01"); 14];
        assert!(!evaluate(&base, m("0.9"), &cfg).5);
    }
}
