//! Arguments of the spend-insight commands: `report`, `report weekly`, `reconcile`,
//! `alerts send|list`.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand, ValueEnum};
use orteam_core::ApiRoute;
use orteam_core::env::{OPENROUTER_API_KEY, ORTEAM_SHARED_KEY_HASH};

use crate::args_team::ConnectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PeriodArg {
    Today,
    Week,
    Month,
    #[value(name = "last-7d")]
    Last7d,
    #[value(name = "last-30d")]
    Last30d,
}

/// Which requests `orteam report` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    /// Requests the gateway served (spend, tokens), with a summary of refusals under the table.
    #[default]
    Served,
    /// Requests the gateway refused: who, why (budget, tier, rate limit, key, bad input), how
    /// often, and the last time.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    Member,
    Team,
    Model,
    Day,
    Provider,
    Key,
    /// The gateway API route (chat, messages, responses, embeddings, completions).
    Route,
}

/// Parses a gateway API route name, listing the names in `--help` and in the error.
pub fn route_parser() -> impl TypedValueParser<Value = ApiRoute> {
    PossibleValuesParser::new(ApiRoute::ALL.map(ApiRoute::as_str))
        .try_map(|s| s.parse::<ApiRoute>())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum InsightFormat {
    #[default]
    Table,
    Json,
}

/// `orteam report …`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    #[command(flatten)]
    pub spend: SpendReportArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The Monday summary: last week's spend per member against budgets, top models, change
    /// from the week before, anomalies, keys expiring or due for rotation.
    Weekly(WeeklyArgs),
}

#[derive(Debug, Args)]
pub struct SpendReportArgs {
    /// The period (default: month). UTC; `last-7d`/`last-30d` are completed days before today.
    #[arg(long, value_enum, conflicts_with_all = ["since", "until"])]
    pub period: Option<PeriodArg>,
    /// Start: a date (2026-05-01, from its start) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// End: a date (inclusive, to the end of that day) or an RFC 3339 time (exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Group by these dimensions (comma-separated or repeated): member, team, model, day,
    /// provider, key, route. None: one total row per source.
    #[arg(long = "by", value_enum, value_delimiter = ',')]
    pub by: Vec<ByArg>,
    /// Only requests of this gateway API route. Direct-mode keys are then left out (OpenRouter
    /// does not say which API their requests used).
    #[arg(long, value_name = "NAME", value_parser = route_parser())]
    pub route: Option<ApiRoute>,
    /// Served requests (spend) or refused ones (who was blocked, how often, by what).
    #[arg(long, value_enum, default_value_t = OutcomeArg::Served)]
    pub outcome: OutcomeArg,
    /// Output format: a table for people, JSON or CSV (exact amounts) for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Leave out direct-mode keys (no OpenRouter /activity calls).
    #[arg(long)]
    pub no_direct: bool,
    /// Anomaly rule: no flag below this day spend in dollars.
    #[arg(long, default_value = "1.00")]
    pub anomaly_min_spend: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct WeeklyArgs {
    /// Output format: a table for people or JSON (exact amounts) for programs.
    #[arg(long, value_enum, default_value_t = InsightFormat::Table)]
    pub format: InsightFormat,
    /// Anomaly rule: no flag below this day spend in dollars.
    #[arg(long, default_value = "1.00")]
    pub anomaly_min_spend: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam reconcile`
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Start: a date (from its start) or an RFC 3339 time (default: 30 days ago).
    #[arg(long)]
    pub since: Option<String>,
    /// End: a date (inclusive) or an RFC 3339 time (default: the end of today).
    #[arg(long)]
    pub until: Option<String>,
    /// Output format: a table for people or JSON (exact amounts) for programs.
    #[arg(long, value_enum, default_value_t = InsightFormat::Table)]
    pub format: InsightFormat,
    /// List every check, not only the differences (table format).
    #[arg(long)]
    pub all: bool,
    /// Only report; do not queue or apply any correction or reconciliation event.
    #[arg(long)]
    pub dry_run: bool,
    /// The gateway's shared inference key, to look up its requests' generations. Prefer the
    /// environment variable.
    #[arg(long, env = OPENROUTER_API_KEY, hide_env_values = true)]
    pub api_key: Option<String>,
    /// The shared key's OpenRouter hash, if it cannot be found from the key itself.
    #[arg(long, env = ORTEAM_SHARED_KEY_HASH)]
    pub shared_key_hash: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam alerts …`
#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Record the budget and anomaly alerts that are due and deliver the outbox once.
    Send(AlertsSendArgs),
    /// Show the alert outbox.
    List(AlertsListArgs),
}

#[derive(Debug, Args)]
pub struct AlertsSendArgs {
    /// The team file (its `[alerts]` section has the webhooks and thresholds).
    #[arg(short = 'f', long = "file", default_value = "team.toml")]
    pub file: PathBuf,
    /// Anomaly rule: no flag below this day spend in dollars.
    #[arg(long, default_value = "1.00")]
    pub anomaly_min_spend: String,
    /// Budget alerts only.
    #[arg(long)]
    pub no_anomalies: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AlertsListArgs {
    /// Only alerts not delivered yet.
    #[arg(long)]
    pub pending: bool,
    /// Output format: a table for people or JSON (exact amounts) for programs.
    #[arg(long, value_enum, default_value_t = InsightFormat::Table)]
    pub format: InsightFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}
