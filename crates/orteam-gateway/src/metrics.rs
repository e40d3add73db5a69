//! `/metrics`: requests, errors, latency histograms, tokens, cost, budget remaining and upstream
//! retries, in the Prometheus/OpenMetrics text format.
//!
//! One registry per gateway (no process-global recorder), so tests can run several gateways
//! in one process. Money is exported in integer nano-dollars (`*_nanodollars`), truncated: the
//! ledger holds the exact figures, metrics are for graphs and alerts.

use std::sync::atomic::AtomicU64;

use orteam_core::Money;
use orteam_core::rust_decimal::Decimal;
use orteam_core::rust_decimal::prelude::ToPrimitive;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::MemberLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub status: u16,
    pub stream: bool,
    /// The API: `chat`, `messages`, `responses`, `embeddings`, `completions`.
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub member: String,
    pub model: String,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub member: String,
    pub model: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub member: String,
    /// The model upstream served.
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    pub scope: String,
    pub id: String,
    pub window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnomalyLabels {
    pub kind: String,
    pub subject: String,
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub request_duration: Family<RequestLabels, Histogram>,
    pub upstream_first_byte: Histogram,
    pub tokens: Family<TokenLabels, Counter>,
    pub cost_nanodollars: Family<UsageLabels, Counter>,
    pub budget_remaining_nanodollars: Family<BudgetLabels, Gauge>,
    pub upstream_retries: Counter<u64, AtomicU64>,
    pub streams_open: Gauge,
    pub anomalies: Family<AnomalyLabels, Gauge>,
    pub policy_violations: Family<ViolationLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~105 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orteam");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by status, stream and route",
            requests.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Requests refused or failed, by error code",
            errors.clone(),
        );
        let request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response",
            request_duration.clone(),
        );
        let upstream_first_byte = latency_histogram();
        registry.register(
            "upstream_first_byte_seconds",
            "Time until upstream's response head arrived",
            upstream_first_byte.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens billed, by member, model and kind",
            tokens.clone(),
        );
        let cost_nanodollars = Family::<UsageLabels, Counter>::default();
        registry.register(
            "cost_nanodollars",
            "Exact cost billed, in 1e-9 USD (truncated), by member and model",
            cost_nanodollars.clone(),
        );
        let budget_remaining_nanodollars = Family::<BudgetLabels, Gauge>::default();
        registry.register(
            "budget_remaining_nanodollars",
            "Remaining amount of each budget window, in 1e-9 USD",
            budget_remaining_nanodollars.clone(),
        );
        let upstream_retries = Counter::<u64, AtomicU64>::default();
        registry.register(
            "upstream_retries",
            "Upstream calls retried after 429/5xx",
            upstream_retries.clone(),
        );
        let streams_open = Gauge::default();
        registry.register(
            "streams_open",
            "Streaming responses in progress",
            streams_open.clone(),
        );
        let anomalies = Family::<AnomalyLabels, Gauge>::default();
        registry.register(
            "anomalies",
            "Current spend anomalies (1 = flagged)",
            anomalies.clone(),
        );
        let policy_violations = Family::<ViolationLabels, Counter>::default();
        registry.register(
            "policy_violations",
            "Answers upstream served with a model outside the member's tier, by member and served model",
            policy_violations.clone(),
        );
        Metrics {
            policy_violations,
            registry,
            requests,
            errors,
            request_duration,
            upstream_first_byte,
            tokens,
            cost_nanodollars,
            budget_remaining_nanodollars,
            upstream_retries,
            streams_open,
            anomalies,
        }
    }

    /// Replaces the `orteam_anomalies` gauges with the flagged `(kind, subject)` pairs, each 1
    /// (subjects no longer flagged disappear).
    pub fn set_anomalies<'a>(&self, flagged: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.anomalies.clear();
        for (kind, subject) in flagged {
            self.anomalies
                .get_or_create(&AnomalyLabels {
                    kind: kind.to_owned(),
                    subject: subject.to_owned(),
                })
                .set(1);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The `member` label of a request's per-member metrics, as `[metrics] member_labels` says.
pub fn member_label(which: MemberLabels, auth: &orteam_ledger::AuthContext) -> String {
    match which {
        MemberLabels::Member => auth.member_id.clone(),
        MemberLabels::Team => auth.team_id.clone(),
        MemberLabels::None => String::new(),
    }
}

/// Money in whole nano-dollars (truncated toward zero; negative amounts give 0).
pub fn nanodollars(m: Money) -> u64 {
    (m.as_decimal() * Decimal::from(1_000_000_000u64))
        .trunc()
        .to_u64()
        .unwrap_or(0)
}

/// Signed nano-dollars for gauges.
pub fn nanodollars_signed(m: Money) -> i64 {
    (m.as_decimal() * Decimal::from(1_000_000_000u64))
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                status: 200,
                stream: false,
                route: "chat",
            })
            .inc();
        m.cost_nanodollars
            .get_or_create(&UsageLabels {
                member: "alice".into(),
                model: "a/b".into(),
                route: "messages",
            })
            .inc_by(nanodollars(Money::parse("0.0000123456789").unwrap()));
        let text = m.render();
        assert!(
            text.contains(
                "orteam_requests_total{status=\"200\",stream=\"false\",route=\"chat\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("orteam_cost_nanodollars_total{member=\"alice\",model=\"a/b\",route=\"messages\"} 12345"),
            "{text}"
        );
    }
}
