//! Arguments of `orteam token create|list|revoke` and `orteam audit list|verify`.

use clap::{Args, Subcommand, ValueEnum};

use crate::args_team::ConnectArgs;

/// `orteam token …`
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a named admin token (its secret is printed once; orteam keeps only its hash).
    Create(TokenCreateArgs),
    /// List named admin tokens (never their secrets).
    List(TokenListArgs),
    /// Revoke a named token: it stops working at once.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    TeamLead,
    Viewer,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name for the token (what the audit log records as "who").
    pub name: String,
    /// What the token may do: admin (everything), team-lead (its teams), viewer (read-only).
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// A team the team lead runs (repeatable).
    #[arg(long = "team")]
    pub teams: Vec<String>,
    /// The largest budget raise a team lead may grant, in USD (none: no raises).
    #[arg(long)]
    pub max_raise: Option<String>,
    /// Expiry: a duration from now (`90d`, `12h`) or an RFC 3339 time.
    #[arg(long)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Output format: a table for people or JSON for programs.
    #[arg(long, value_enum, default_value_t = crate::args_team::OutputFormat::Table)]
    pub format: crate::args_team::OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The name of the token to revoke.
    pub name: String,
    /// Revoke without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `orteam audit …`
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The audit log: who did what, before → after, when, from where.
    List(AuditListArgs),
    /// Re-check the hash chain; exit 1 naming each edited, deleted or reordered row.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only entries by this actor (token name, `bootstrap`, `cli:<user>`…).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (`raise`, `revoke_member`, `token_create`…).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries since: a duration back from now (`7d`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Output format: a table for people, JSON or CSV for programs.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
}
