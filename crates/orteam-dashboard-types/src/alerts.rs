//! An alert or anomaly as the dashboards show it ([`Alert`], [`Severity`]); the rules that derive
//! alerts from a snapshot's rows are in [`crate::rules`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One alert or anomaly, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    /// `budget`, `rotation`, `expiry`, `failures`, or the detector's own kind (`spike`…).
    pub kind: String,
    /// Member, team, org or key the alert is about.
    pub subject: String,
    pub message: String,
    /// A command or step that addresses it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}
