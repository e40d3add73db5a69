//! The anomalies panel's default source: orteam-insight's rule (median + MAD over the previous
//! 14 days, with absolute floors), evaluated for today. See `orteam_insight::anomaly`.

use chrono::{DateTime, Utc};
use orteam_insight::anomaly::{AnomalyConfig, anomaly_report};
use orteam_ledger::Ledger;

use crate::alerts::{Alert, AnomalySource, BoxFuture, Severity};

/// Flags members, keys and models whose spend today is unusual for them.
#[derive(Debug, Clone, Default)]
pub struct InsightAnomalies {
    pub rule: AnomalyConfig,
}

impl AnomalySource for InsightAnomalies {
    fn name(&self) -> &str {
        "orteam-insight"
    }

    fn anomalies<'a>(
        &'a self,
        ledger: &'a Ledger,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Alert>, String>> {
        Box::pin(async move {
            let report = anomaly_report(ledger, now.date_naive(), &self.rule, false)
                .await
                .map_err(|e| e.to_string())?;
            Ok(report
                .flagged
                .iter()
                .map(|a| Alert {
                    severity: Severity::Warning,
                    kind: format!("{} spike", a.kind.as_str()),
                    subject: a.subject.clone(),
                    message: a.describe(),
                    action: None,
                    time: None,
                })
                .collect())
        })
    }
}
