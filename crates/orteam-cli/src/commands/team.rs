//! `orteam team plan` and `orteam team apply`, plus the plumbing the other team-as-code
//! commands share (clock, ledger, OpenRouter client, secret sinks).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use comfy_table::{Table, presets};
use orteam_core::env::ORTEAM_CLOCK_OFFSET_SECONDS;
use orteam_core::{Clock, ControllableClock};
use orteam_ledger::{Ledger, LedgerOptions, SecretKey};
use orteam_openrouter::Client;
use orteam_team::apply::{self, ApplyContext, NewSecret, SecretKind, SecretSink};
use orteam_team::plan::{self, Plan, PlanOptions};
use orteam_team::{TeamError, file};
use secrecy::{ExposeSecret, SecretString};

use crate::args_team::{
    ConnectArgs, OutputFormat, TeamApplyArgs, TeamArgs, TeamCommand, TeamPlanArgs,
};

/// Exit code of `team plan` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

pub async fn run(args: TeamArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TeamCommand::Plan(a) => plan_cmd(a).await,
        TeamCommand::Apply(a) => apply_cmd(a).await,
    }
}

// ------------------------------------------------------------------------------- plumbing

/// The process clock: the wall clock, shifted by `ORTEAM_CLOCK_OFFSET_SECONDS` (a testing aid).
pub(crate) fn clock() -> anyhow::Result<Arc<ControllableClock>> {
    let clock = ControllableClock::new();
    if let Ok(v) = std::env::var(ORTEAM_CLOCK_OFFSET_SECONDS)
        && !v.trim().is_empty()
    {
        let secs: i64 = v
            .trim()
            .parse()
            .with_context(|| format!("{ORTEAM_CLOCK_OFFSET_SECONDS}={v:?} is not an integer"))?;
        clock.set_offset(TimeDelta::seconds(secs));
    }
    Ok(Arc::new(clock))
}

pub(crate) async fn open_ledger(
    connect: &ConnectArgs,
    clock: &Arc<ControllableClock>,
) -> anyhow::Result<Ledger> {
    let shared: Arc<dyn Clock> = clock.clone();
    Ledger::open(
        &connect.database_url,
        LedgerOptions::admin().with_clock(shared),
    )
    .await
    .with_context(|| format!("opening the ledger {}", redact_url(&connect.database_url)))
}

/// A URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The OpenRouter client with the management key; a clear error when it is missing.
pub(crate) fn client(connect: &ConnectArgs) -> anyhow::Result<Client> {
    let key = connect
        .provisioning_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(TeamError::MissingProvisioningKey)?;
    Client::builder()
        .api_key(SecretString::from(key.to_owned()))
        .cache_ttl(None)
        .build()
        .context("building the OpenRouter client")
}

/// Whether `ORTEAM_SECRET_KEY` holds a usable encryption key.
fn have_secret_key() -> anyhow::Result<bool> {
    Ok(SecretKey::from_env()?.is_some())
}

/// Writes new secrets to stdout, once.
pub(crate) struct StdoutSink {
    pub count: usize,
}

impl SecretSink for StdoutSink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let kind = match s.kind {
            SecretKind::Virtual => "gateway key",
            SecretKind::Direct => "OpenRouter key",
        };
        writeln!(
            out,
            "new {kind} for {} ({}): {}",
            s.member,
            s.reference,
            s.secret.expose_secret()
        )?;
        out.flush()?;
        self.count += 1;
        Ok(())
    }
}

/// Appends new secrets as JSON lines to a file created with mode 0600, synced after each.
pub(crate) struct FileSink {
    file: std::fs::File,
    pub path: PathBuf,
    pub count: usize,
}

impl FileSink {
    pub(crate) fn open(path: &Path) -> anyhow::Result<FileSink> {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .with_context(|| format!("opening --secrets-out {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
        }
        Ok(FileSink {
            file,
            path: path.to_owned(),
            count: 0,
        })
    }
}

impl SecretSink for FileSink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        let line = serde_json::json!({
            "member": s.member,
            "kind": s.kind,
            "key": s.reference,
            "secret": s.secret.expose_secret(),
        });
        writeln!(self.file, "{line}")?;
        self.file.flush()?;
        self.file.sync_all()?;
        self.count += 1;
        Ok(())
    }
}

/// Either sink, chosen by `--secrets-out`.
pub(crate) enum Sink {
    Stdout(StdoutSink),
    File(FileSink),
}

impl Sink {
    pub(crate) fn new(path: Option<&Path>) -> anyhow::Result<Sink> {
        Ok(match path {
            Some(p) => Sink::File(FileSink::open(p)?),
            None => Sink::Stdout(StdoutSink { count: 0 }),
        })
    }

    pub(crate) fn report(&self) {
        if let Sink::File(f) = self
            && f.count > 0
        {
            let _ = writeln!(
                std::io::stderr(),
                "wrote {} new secret{} to {} (shown nowhere else)",
                f.count,
                if f.count == 1 { "" } else { "s" },
                f.path.display()
            );
        }
    }
}

impl SecretSink for Sink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        match self {
            Sink::Stdout(x) => x.deliver(s),
            Sink::File(x) => x.deliver(s),
        }
    }
}

// ------------------------------------------------------------------------------- plan

struct Planned {
    plan: Plan,
    ledger: Ledger,
    client: Client,
    now: DateTime<Utc>,
}

async fn make_plan(
    path: &Path,
    connect: &ConnectArgs,
    prune: bool,
    unused_days: u32,
) -> anyhow::Result<Planned> {
    let team = file::load(path)?;
    let client = client(connect)?;
    plan::check_models(&team, &client).await?;
    let clock = clock()?;
    let ledger = open_ledger(connect, &clock).await?;
    let obs = plan::observe(&ledger, &client).await?;
    let now = clock.now();
    let plan = plan::plan(
        &team,
        &obs,
        &PlanOptions {
            now,
            prune,
            unused_days,
        },
    );
    Ok(Planned {
        plan,
        ledger,
        client,
        now,
    })
}

async fn plan_cmd(args: TeamPlanArgs) -> anyhow::Result<ExitCode> {
    let p = make_plan(&args.file, &args.connect, args.prune, args.unused_days).await?;
    print_plan(&p.plan, args.format, args.unused_days)?;
    let _ = p.ledger.shutdown().await;
    Ok(if p.plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_CHANGES)
    })
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

fn render_changes(plan: &Plan) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    for c in &plan.changes {
        let mut detail: Vec<String> = c
            .fields
            .iter()
            .map(|f| match (c.action, &f.old) {
                (plan::Action::Create, None) => format!("{}: {}", f.field, opt(&f.new)),
                _ => format!("{}: {} → {}", f.field, opt(&f.old), opt(&f.new)),
            })
            .collect();
        if let Some(r) = &c.reason {
            detail.push(format!("({r})"));
        }
        t.add_row(vec![
            format!("{} {}", c.action.symbol(), c.action.verb()),
            c.resource.as_str().to_owned(),
            c.id.clone(),
            detail.join("\n"),
        ]);
    }
    t.trim_fmt()
}

fn print_plan(plan: &Plan, format: OutputFormat, unused_days: u32) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let (create, update, delete) = plan.counts();
        let v = serde_json::json!({
            "org": plan.org,
            "changes": plan.changes,
            "summary": { "create": create, "update": update, "delete": delete },
            "strays": plan.strays,
            "unused": plan.unused,
            "unused_days": unused_days,
            "raises": plan.raises,
            "rotations": plan.rotations,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if plan.is_empty() {
        writeln!(
            out,
            "No changes: the ledger and OpenRouter match the team file."
        )?;
    } else {
        writeln!(out, "orteam will make these changes to org {}:\n", plan.org)?;
        writeln!(out, "{}\n", render_changes(plan))?;
        let (c, u, d) = plan.counts();
        writeln!(
            out,
            "Plan: {c} to create, {u} to update or rotate, {d} to revoke or replace."
        )?;
    }
    if !plan.raises.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec!["raise", "window", "amount", "until", "reason"]);
        for r in &plan.raises {
            t.add_row(vec![
                format!("{} {}", r.scope, r.scope_id),
                r.window.as_str().to_owned(),
                format!("+{}", r.amount.to_usd(2)),
                r.until.format("%Y-%m-%d %H:%M UTC").to_string(),
                r.reason.clone(),
            ]);
        }
        writeln!(out, "\nActive temporary raises:\n{t}")?;
    }
    if !plan.rotations.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec!["member", "key", "rotation due"]);
        for r in &plan.rotations {
            t.add_row(vec![
                r.member.clone(),
                r.key.clone(),
                r.due_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            ]);
        }
        writeln!(out, "\nUpcoming rotations:\n{t}")?;
    }
    if !plan.strays.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec!["stray key", "hash", "created", "usage", "disabled"]);
        for s in &plan.strays {
            t.add_row(vec![
                s.name.clone(),
                format!("{}…", s.hash.get(..12).unwrap_or(&s.hash)),
                s.created_at.format("%Y-%m-%d").to_string(),
                s.usage.to_usd(2),
                s.disabled.to_string(),
            ]);
        }
        writeln!(
            out,
            "\nStray OpenRouter keys (no member owns them; `team apply --prune` deletes them, \
             `[org].keep_keys` keeps them):\n{t}"
        )?;
    }
    if !plan.unused.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec!["kind", "member", "key", "idle days"]);
        for u in &plan.unused {
            t.add_row(vec![
                u.kind.to_owned(),
                u.member.clone().unwrap_or_default(),
                u.key.clone(),
                u.idle_days.to_string(),
            ]);
        }
        writeln!(out, "\nKeys unused for {unused_days}+ days:\n{t}")?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------- apply

async fn apply_cmd(args: TeamApplyArgs) -> anyhow::Result<ExitCode> {
    let p = make_plan(&args.file, &args.connect, args.prune, args.unused_days).await?;
    print_plan(&p.plan, args.format, args.unused_days)?;
    if p.plan.is_empty() {
        let _ = p.ledger.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    apply::preflight(&p.plan, have_secret_key()?)?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to apply without --yes: stdin is not a terminal, so nobody can confirm the plan"
            );
        }
        let mut err = std::io::stderr();
        write!(
            err,
            "\nApply these {} changes? [y/N] ",
            p.plan.changes.len()
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            writeln!(err, "Nothing changed.")?;
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut sink = Sink::new(args.secrets_out.as_deref())?;
    let mut progress = |line: &str| {
        let _ = writeln!(std::io::stderr(), "applied: {line}");
    };
    let mut cx = ApplyContext {
        ledger: &p.ledger,
        client: &p.client,
        now: p.now,
        sink: &mut sink,
        progress: &mut progress,
    };
    let result = apply::apply(&p.plan, &mut cx).await;
    sink.report();
    let report = result?;
    for w in &report.warnings {
        writeln!(std::io::stderr(), "warning: {w}")?;
    }
    writeln!(
        std::io::stderr(),
        "Apply complete: {} change{} made.",
        report.changes_applied,
        if report.changes_applied == 1 { "" } else { "s" }
    )?;
    let _ = p.ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
