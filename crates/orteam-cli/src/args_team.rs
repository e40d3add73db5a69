//! Arguments of the team-as-code commands: `team plan|apply`, `keys rotate|list`,
//! `member revoke`, `budget raise`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use orteam_core::env::{OPENROUTER_PROVISIONING_KEY, ORTEAM_DATABASE_URL};

/// Where the ledger and OpenRouter are.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Ledger database: sqlite://PATH or postgres://…
    #[arg(long, env = ORTEAM_DATABASE_URL, default_value = "sqlite://orteam.db")]
    pub database_url: String,
    /// OpenRouter management (provisioning) key — not an inference key. Prefer the
    /// environment variable: command-line arguments are visible to other local users.
    #[arg(long, env = OPENROUTER_PROVISIONING_KEY, hide_env_values = true)]
    pub provisioning_key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// `orteam team …`
#[derive(Debug, Args)]
pub struct TeamArgs {
    #[command(subcommand)]
    pub command: TeamCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Show what `apply` would change. Exit code 0: no changes, 2: changes, 1: error.
    Plan(TeamPlanArgs),
    /// Make the ledger and OpenRouter match the team file.
    Apply(TeamApplyArgs),
}

#[derive(Debug, Args)]
pub struct TeamPlanArgs {
    /// The team file.
    #[arg(short = 'f', long = "file", default_value = "team.toml")]
    pub file: PathBuf,
    /// Output format: a table for people or JSON for programs.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Also plan the deletion of stray OpenRouter keys (keys no member owns).
    #[arg(long)]
    pub prune: bool,
    /// Report keys unused for at least this many days.
    #[arg(long, default_value_t = 30)]
    pub unused_days: u32,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct TeamApplyArgs {
    /// The team file.
    #[arg(short = 'f', long = "file", default_value = "team.toml")]
    pub file: PathBuf,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Write new secrets to this file (created with mode 0600, appended to) instead of stdout.
    #[arg(long)]
    pub secrets_out: Option<PathBuf>,
    /// Delete stray OpenRouter keys (keys no member owns).
    #[arg(long)]
    pub prune: bool,
    /// Report keys unused for at least this many days.
    #[arg(long, default_value_t = 30)]
    pub unused_days: u32,
    /// Format of the plan shown before applying.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam keys …`
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a new key for a member now; the old one keeps working for the grace period.
    Rotate(KeysRotateArgs),
    /// List members' keys with their state and rotation due dates.
    List(KeysListArgs),
}

#[derive(Debug, Args)]
pub struct KeysRotateArgs {
    /// Member id.
    pub member: String,
    /// How long the old key keeps working, e.g. `1h` (default: the key's own grace, 24h unless
    /// the team file says otherwise). `0s` is not allowed; use `orteam member revoke` to cut
    /// access at once.
    #[arg(long)]
    pub grace: Option<String>,
    /// Write the new secret to this file (mode 0600) instead of stdout.
    #[arg(long)]
    pub secrets_out: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Output of list commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct KeysListArgs {
    /// Output format: a table for people, JSON or CSV for programs.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Include revoked keys.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam member …`
#[derive(Debug, Args)]
pub struct MemberArgs {
    #[command(subcommand)]
    pub command: MemberCommand,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Remove a member and kill every key they have, at once (gateway keys within a second,
    /// OpenRouter keys deleted in the same command).
    Revoke(MemberRevokeArgs),
}

#[derive(Debug, Args)]
pub struct MemberRevokeArgs {
    /// Member id.
    pub member: String,
    /// Revoke without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam budget …`
#[derive(Debug, Args)]
pub struct BudgetArgs {
    #[command(subcommand)]
    pub command: BudgetCommand,
}

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Raise a member's or team's budget temporarily; the raise expires by itself.
    Raise(BudgetRaiseArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WindowArg {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Member,
    Team,
    Org,
}

#[derive(Debug, Args)]
pub struct BudgetRaiseArgs {
    /// Member or team id.
    pub target: String,
    /// Dollars to add, e.g. `10.00`.
    #[arg(allow_hyphen_values = true)]
    pub amount: String,
    /// The budget window to raise; it must have a budget.
    #[arg(long, value_enum)]
    pub window: WindowArg,
    /// When the raise ends: RFC 3339 (`2026-05-01T18:00:00Z`) or a duration from now (`8h`).
    #[arg(long)]
    pub until: String,
    /// Whether TARGET is a member, a team or the org (needed only when ambiguous).
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    /// Why (kept with the raise, shown in reports).
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}
