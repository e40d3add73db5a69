//! Command-line definitions (clap derive). Every flag that has an environment variable names it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use orteam_core::env;

/// The help heading of the options every command takes (`-v`, `--log-format`).
pub const COMMON: &str = "Common options";

#[derive(Debug, Parser)]
#[command(
    name = "orteam",
    version,
    about = "Share OpenRouter safely as a team: per-member keys, budgets that hold, model tiers, reports."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug). ORTEAM_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = COMMON)]
    pub verbose: u8,
    /// Log format on stderr: pretty (coloured on a terminal only) or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, help_heading = COMMON)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// See the whole product work in one command: a local OpenRouter simulator, a sample team,
    /// the gateway and its dashboard, and 20 seconds of realistic traffic. No account, no network.
    Demo(DemoArgs),
    /// Run a local, stateful OpenRouter simulator (no network needed).
    Sim(SimArgs),
    /// Run the gateway: an OpenAI-compatible proxy that enforces tiers and budgets before
    /// spending and records the exact cost of every request.
    Serve(ServeArgs),
    /// Run the MCP server: the 26 OpenRouter management tools (read-only unless
    /// OPENROUTER_ADMIN_ALLOW_WRITE=1 or --allow-write), over stdio or streamable HTTP.
    Mcp(McpArgs),
    /// Team as code: `plan` shows what `apply` would change to match team.toml.
    Team(crate::args_team::TeamArgs),
    /// Members' keys: `rotate`, `list`.
    Keys(crate::args_team::KeysArgs),
    /// Members: `revoke` removes a member and kills their keys at once.
    Member(crate::args_team::MemberArgs),
    /// Budgets: `raise` adds a temporary raise that expires by itself.
    Budget(crate::args_team::BudgetArgs),
    /// A live terminal dashboard of a running gateway: spend against budgets, today's burn by
    /// model, recent requests, alerts and anomalies, keys due for rotation. `q` quits.
    Top(TopArgs),
    /// Your own budgets and spend, with your own `ot-…` key (no admin token): every budget that
    /// applies to you (limit, raise, spent, held, remaining, reset), your tier, and this month
    /// by day and by model.
    Me(MeArgs),
    /// Named admin tokens: `create` (role admin, team_lead of named teams, viewer; expiring),
    /// `list`, `revoke`.
    Token(crate::args_access::TokenArgs),
    /// The tamper-evident audit log of every admin action: `list`, `verify`.
    Audit(crate::args_access::AuditArgs),
    /// Spend report from the ledger and OpenRouter (`report weekly`: the Monday summary).
    Report(crate::args_insight::ReportArgs),
    /// Compare the ledger with OpenRouter's /generation and /activity; exit 1 if money differs.
    Reconcile(crate::args_insight::ReconcileArgs),
    /// Budget and anomaly webhooks: `send` one round now, `list` the outbox.
    Alerts(crate::args_insight::AlertsArgs),
    /// Write a consistent copy of a SQLite ledger to a new file, even while `orteam serve`
    /// runs (every event it acknowledged before the backup began is in the copy).
    Backup(crate::args_ops::BackupArgs),
    /// Replace a SQLite ledger with a backup; refused while `orteam serve` serves it.
    Restore(crate::args_ops::RestoreArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds of traffic to play.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Exit after the summary instead of serving until Ctrl-C.
    #[arg(long)]
    pub no_wait: bool,
    /// Keep the demo's files (ledger, team file) here instead of a temp directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where the gateway listens (a free port is used if this one is busy).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Settings file (TOML); environment variables override it, flags override both.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Ledger database: sqlite://PATH (default sqlite://orteam.db) or postgres://…
    /// (also ORTEAM_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Rotate keys whose `rotate_every` is due while serving, appending each new secret as a
    /// JSON line to this file (created with mode 0600). Without it, serve rotates nothing.
    #[arg(long, value_name = "FILE", env = env::ORTEAM_ROTATION_SECRETS_OUT)]
    pub rotation_secrets_out: Option<PathBuf>,
    /// How often to look for keys due for rotation.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub rotation_interval: std::time::Duration,
    /// Send budget-threshold and anomaly alerts to the webhooks of this team file's `[alerts]`
    /// section (durable outbox: each alert once per threshold per window).
    #[arg(long, value_name = "TEAM_FILE")]
    pub alerts_from: Option<PathBuf>,
    /// How often to check budgets and anomalies for alerts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub alerts_interval: std::time::Duration,
    /// How often to reconcile the ledger with OpenRouter (/generation, /activity) and turn
    /// provisional charges into exact ones; `0s` turns it off.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub reconcile_interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Enable the write tools (key and guardrail create/update/delete/assign); same as
    /// OPENROUTER_ADMIN_ALLOW_WRITE=1.
    #[arg(long)]
    pub allow_write: bool,
    /// Serve the streamable HTTP transport on this address instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Bearer token HTTP clients must send (required with --http).
    #[arg(long, env = env::ORTEAM_MCP_TOKEN, hide_env_values = true)]
    pub http_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// The simulator's management (provisioning) key. Defaults to a fixed local key printed
    /// in the docs (never use it for anything real).
    #[arg(long, env = env::ORTEAM_SIM_PROVISIONING_KEY, hide_env_values = true)]
    pub provisioning_key: Option<String>,
    /// Starting credit balance in USD.
    #[arg(long, default_value = "100")]
    pub credits: String,
    /// Persist state to this JSON file across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Inject a fault, e.g. `status:429:retry_after=1:times=2`, `status:503`, `latency:50`,
    /// `stream_cut:3`, `stream_error:3`. Repeatable. Also settable at run time via
    /// `POST /__sim/faults`.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Shift the simulator's clock by this many seconds (negative allowed).
    #[arg(long, allow_hyphen_values = true, default_value_t = 0)]
    pub clock_offset_seconds: i64,
    /// HTTP status for a spent key limit: 403 (what OpenRouter sends today) or 402 (its docs).
    #[arg(long, default_value_t = 403)]
    pub key_limit_status: u16,
    /// Also serve the old openrouter-admin-mcp guardrail paths.
    #[arg(long)]
    pub legacy_mcp_paths: bool,
    /// Create a shared inference key (named `orteam-shared`) and write a file to source (0600)
    /// before the first request is answered: `export` lines for OPENROUTER_BASE_URL,
    /// OPENROUTER_PROVISIONING_KEY and OPENROUTER_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The gateway's root URL; `orteam top` reads its admin API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The gateway's admin token. Prefer the environment variable: command-line arguments are
    /// visible to other local users.
    #[arg(long, env = env::ORTEAM_ADMIN_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Time between refreshes, e.g. `2s`, `500ms`.
    #[arg(long, default_value = "2s")]
    pub interval: String,
}

#[derive(Debug, Args)]
pub struct MeArgs {
    /// The gateway's URL (its root or its `/v1` base URL).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Your `ot-…` key. Prefer the environment variable: command-line arguments are visible to
    /// other local users.
    #[arg(long, env = env::ORTEAM_KEY, hide_env_values = true)]
    pub key: Option<String>,
    /// Output format: tables for people or JSON for programs.
    #[arg(long, value_enum, default_value_t = crate::args_team::OutputFormat::Table)]
    pub format: crate::args_team::OutputFormat,
}

/// Environment variables a command reads other than through its flags (a flag's own `env = …`
/// is found on the flag). Keyed by the command's path without `orteam`.
const ENV_BEYOND_FLAGS: &[(&str, &[&str])] = &[
    (
        "serve",
        &[
            env::OPENROUTER_BASE_URL,
            env::OPENROUTER_API_KEY,
            env::OPENROUTER_PROVISIONING_KEY,
            env::ORTEAM_DATABASE_URL,
            env::ORTEAM_ADMIN_TOKEN,
            env::ORTEAM_METRICS_TOKEN,
            env::ORTEAM_SECRET_KEY,
            env::ORTEAM_INSTANCE_ID,
            env::OTEL_EXPORTER_OTLP_ENDPOINT,
        ],
    ),
    (
        "mcp",
        &[
            env::OPENROUTER_BASE_URL,
            env::OPENROUTER_PROVISIONING_KEY,
            env::OPENROUTER_ADMIN_ALLOW_WRITE,
            env::ORTEAM_DATABASE_URL,
            env::ORTEAM_SECRET_KEY,
            env::ORTEAM_TOKEN,
        ],
    ),
    ("team plan", LEDGER_AND_OPENROUTER),
    ("team apply", LEDGER_OPENROUTER_AS),
    ("keys rotate", LEDGER_OPENROUTER_AS),
    ("keys list", LEDGER_AND_OPENROUTER),
    ("member revoke", LEDGER_OPENROUTER_AS),
    ("budget raise", LEDGER_OPENROUTER_AS),
    ("token create", LEDGER_OPENROUTER_AS),
    ("token list", LEDGER_OPENROUTER_AS),
    ("token revoke", LEDGER_OPENROUTER_AS),
    ("audit list", LEDGER_OPENROUTER_AS),
    ("audit verify", LEDGER_OPENROUTER_AS),
    ("report", LEDGER_AND_OPENROUTER),
    ("report weekly", LEDGER_AND_OPENROUTER),
    ("reconcile", LEDGER_AND_OPENROUTER),
    ("alerts send", LEDGER_AND_OPENROUTER),
    ("alerts list", LEDGER_AND_OPENROUTER),
    ("backup", &[env::ORTEAM_SECRET_KEY]),
    ("restore", &[env::ORTEAM_SECRET_KEY]),
];

/// Commands that open the ledger and may call OpenRouter's management API.
const LEDGER_AND_OPENROUTER: &[&str] = &[env::OPENROUTER_BASE_URL, env::ORTEAM_SECRET_KEY];
/// The same, acting as a named admin token when one is given (its role is enforced).
const LEDGER_OPENROUTER_AS: &[&str] = &[
    env::OPENROUTER_BASE_URL,
    env::ORTEAM_SECRET_KEY,
    env::ORTEAM_TOKEN,
];
/// Read by every command.
const ENV_EVERYWHERE: &[&str] = &[env::ORTEAM_LOG];

/// The command-line definition with each command's "Environment:" section: every variable the
/// command reads (from its flags' `env = …` and [`ENV_BEYOND_FLAGS`]), described by
/// [`orteam_core::env::DESCRIPTIONS`].
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    with_environment(Cli::command(), "")
}

/// The variables the command at `path` reads.
pub fn env_vars(cmd: &clap::Command, path: &str) -> Vec<&'static str> {
    let mut vars: Vec<&'static str> = Vec::new();
    let mut add = |name: &str| {
        if let Some((n, _)) = env::DESCRIPTIONS.iter().find(|(n, _)| *n == name)
            && !vars.contains(n)
        {
            vars.push(n);
        }
    };
    for arg in cmd.get_arguments() {
        if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
            add(name);
        }
    }
    for (p, names) in ENV_BEYOND_FLAGS {
        if *p == path {
            names.iter().for_each(|n| add(n));
        }
    }
    ENV_EVERYWHERE.iter().for_each(|n| add(n));
    vars.sort_unstable();
    vars
}

fn with_environment(mut cmd: clap::Command, path: &str) -> clap::Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subs {
        let sub_path = format!("{path} {name}").trim().to_owned();
        cmd = cmd.mut_subcommand(&name, |s| with_environment(s, &sub_path));
    }
    // Help never prints a variable's value (a database URL may hold a password), so it reads
    // the same everywhere.
    cmd = cmd.mut_args(|a| a.hide_env_values(true));
    if path.is_empty() {
        return cmd;
    }
    let width = 30;
    let mut text = String::from("Environment:\n");
    for name in env_vars(&cmd, path) {
        let about = env::describe(name).unwrap_or_default();
        text.push_str(&format!("  {name:<width$} {about}\n"));
    }
    cmd.after_help(text.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every argument of every command, with the command path, that has no help text.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                out.push(format!("{path} {} (command)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_flag_of_every_command_is_documented() {
        let mut missing = Vec::new();
        undocumented(&Cli::command(), "orteam", &mut missing);
        assert!(missing.is_empty(), "no help text:\n{}", missing.join("\n"));
    }

    /// Every command (with the path to it) and its rendered `--help`.
    fn every_help(cmd: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .filter(|n| n != "help")
            .collect();
        for name in names {
            let sub_path = format!("{path} {name}").trim().to_owned();
            if let Some(sub) = cmd.find_subcommand_mut(&name) {
                let help = sub.render_long_help().to_string();
                out.push((sub_path.clone(), help));
                every_help(sub, &sub_path, out);
            }
        }
    }

    #[test]
    fn every_command_names_the_environment_variables_it_reads() {
        let mut cmd = command();
        cmd.build();
        let mut helps = Vec::new();
        every_help(&mut cmd, "", &mut helps);
        assert!(helps.len() > 25, "{}", helps.len());
        for (path, help) in &helps {
            let (_, env_section) = help
                .split_once("Environment:")
                .unwrap_or_else(|| panic!("`orteam {path} --help` has no Environment section"));
            // A flag's own variable, the ledger's and the log filter are all listed.
            let mut sub = command();
            sub.build();
            let mut node = &sub;
            for part in path.split(' ') {
                node = node.find_subcommand(part).unwrap();
            }
            for arg in node.get_arguments() {
                if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                    assert!(
                        env_section.contains(name),
                        "orteam {path}: {name} not listed"
                    );
                }
            }
            assert!(env_section.contains(env::ORTEAM_LOG), "orteam {path}");
            let reads_ledger = node
                .get_arguments()
                .any(|a| a.get_id().as_str() == "database_url");
            if reads_ledger {
                assert!(
                    env_section.contains(env::ORTEAM_DATABASE_URL),
                    "orteam {path}"
                );
            }
        }
        let serve = &helps.iter().find(|(p, _)| p == "serve").unwrap().1;
        for name in [
            env::OPENROUTER_API_KEY,
            env::ORTEAM_ADMIN_TOKEN,
            env::ORTEAM_INSTANCE_ID,
        ] {
            assert!(serve.contains(name), "serve: {name}");
        }
        let apply = &helps.iter().find(|(p, _)| p == "team apply").unwrap().1;
        assert!(apply.contains(env::ORTEAM_TOKEN), "{apply}");
        assert!(apply.contains(env::OPENROUTER_PROVISIONING_KEY), "{apply}");
    }

    /// The command reference of docs/cli.md: every command's `--help`, generated.
    fn reference() -> String {
        fn walk(cmd: &mut clap::Command, path: &str, out: &mut String) {
            let help = cmd.render_help().to_string();
            let help: Vec<&str> = help.lines().map(str::trim_end).collect();
            out.push_str(&format!(
                "### `orteam{}{path}`\n\n```text\n{}\n```\n\n",
                if path.is_empty() { "" } else { " " },
                help.join("\n").trim_end()
            ));
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|s| s.get_name().to_owned())
                .filter(|n| n != "help")
                .collect();
            for name in names {
                let sub_path = format!("{path} {name}").trim().to_owned();
                if let Some(sub) = cmd.find_subcommand_mut(&name) {
                    walk(sub, &sub_path, out);
                }
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut out = String::new();
        walk(&mut cmd, "", &mut out);
        out
    }

    const BEGIN: &str = "<!-- BEGIN: generated from `orteam --help`; do not edit by hand -->";
    const END: &str = "<!-- END: generated from `orteam --help` -->";

    /// docs/cli.md's command reference is the binary's `--help`. When a flag or a help text
    /// changes, regenerate it: `ORTEAM_UPDATE_DOCS=1 cargo test -p orteam-cli cli_reference`.
    #[test]
    fn cli_reference_in_docs_is_the_help_of_the_binary() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (head, rest) = doc
            .split_once(BEGIN)
            .expect("the BEGIN marker in docs/cli.md");
        let (current, tail) = rest.split_once(END).expect("the END marker in docs/cli.md");
        let fresh = format!("\n\n{}", reference());
        if std::env::var_os("ORTEAM_UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{head}{BEGIN}{fresh}{END}{tail}")).unwrap();
            return;
        }
        assert!(
            current == fresh,
            "docs/cli.md's command reference is stale: run \
             `ORTEAM_UPDATE_DOCS=1 cargo test -p orteam-cli cli_reference` and commit docs/cli.md"
        );
    }

    #[test]
    fn common_options_have_their_own_heading() {
        let mut cmd = command();
        cmd.build();
        let help = cmd
            .find_subcommand_mut("reconcile")
            .unwrap()
            .render_help()
            .to_string();
        let (before, common) = help.split_once(&format!("{COMMON}:")).unwrap();
        assert!(
            common.contains("--verbose") && common.contains("--log-format"),
            "{help}"
        );
        assert!(!before.contains("--log-format"), "{help}");
    }
}
