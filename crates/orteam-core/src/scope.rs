//! Which level a budget applies to ([`BudgetScope`]) and how a request ended ([`Outcome`]): plain
//! values that the ledger stores and the dashboards show, so a client that only reads snapshots
//! needs no storage crate for them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which level a budget applies to. A member's spend counts against its own, its team's and its
/// org's budgets (member ⊂ team ⊂ org).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    Member,
    Team,
    Org,
}

impl BudgetScope {
    pub const ALL: [BudgetScope; 3] = [BudgetScope::Member, BudgetScope::Team, BudgetScope::Org];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Member => "member",
            BudgetScope::Team => "team",
            BudgetScope::Org => "org",
        }
    }
}

impl fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BudgetScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(BudgetScope::Member),
            "team" => Ok(BudgetScope::Team),
            "org" => Ok(BudgetScope::Org),
            other => Err(format!("unknown budget scope {other:?}")),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Streaming stopped early; the cost covers what was delivered.
    Partial,
    Failed,
    /// The cost is an estimate awaiting a correction from the upstream's own record.
    Provisional,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Provisional => "provisional",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "partial" => Ok(Outcome::Partial),
            "failed" => Ok(Outcome::Failed),
            "provisional" => Ok(Outcome::Provisional),
            other => Err(format!("unknown outcome {other:?}")),
        }
    }
}
