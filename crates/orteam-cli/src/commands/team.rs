//! `orteam team plan` and `orteam team apply`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use orteam_ledger::{Ledger, SecretKey};
use orteam_openrouter::Client;
use orteam_team::apply::{self, ApplyContext};
use orteam_team::file;
use orteam_team::plan::{self, Plan, PlanOptions};

use crate::args_team::{
    ConnectArgs, OutputFormat, TeamApplyArgs, TeamArgs, TeamCommand, TeamPlanArgs,
};
use crate::context::Context;

/// Exit code of `team plan` when there are changes.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code of `team apply` stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

pub async fn run(cx: &Context, args: TeamArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TeamCommand::Plan(a) => plan_cmd(cx, a).await,
        TeamCommand::Apply(a) => apply_cmd(cx, a).await,
    }
}

/// Whether `ORTEAM_SECRET_KEY` holds a usable encryption key.
fn have_secret_key() -> anyhow::Result<bool> {
    Ok(SecretKey::from_env()?.is_some())
}

// ------------------------------------------------------------------------------- plan

struct Planned {
    plan: Plan,
    ledger: Ledger,
    client: Client,
    now: DateTime<Utc>,
}

async fn make_plan(
    cx: &Context,
    path: &Path,
    connect: &ConnectArgs,
    prune: bool,
    unused_days: u32,
    register_gateway_key: bool,
) -> anyhow::Result<Planned> {
    let team = file::load(path)?;
    let client = cx.client(connect)?;
    plan::check_models(&team, &client).await?;
    let ledger = cx.open_or_create_ledger(connect).await?;
    let mut obs = plan::observe(&ledger, &client).await?;
    gateway_key_is_no_stray(&ledger, &mut obs, register_gateway_key).await?;
    let now = cx.now();
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

/// The shared key in `OPENROUTER_API_KEY` (the gateway's, when this runs beside it) is never a
/// stray: `apply` registers it in the ledger (as `serve` does at start), `plan` leaves it out
/// of the strays without writing anything.
async fn gateway_key_is_no_stray(
    ledger: &Ledger,
    obs: &mut plan::Observed,
    register: bool,
) -> anyhow::Result<()> {
    let Some(secret) = std::env::var(orteam_core::env::OPENROUTER_API_KEY)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(secrecy::SecretString::from)
    else {
        return Ok(());
    };
    if register {
        ledger.register_gateway_key(&secret).await?;
        obs.dir = ledger.directory();
    } else {
        let (key_hash, label) = orteam_ledger::keys::openrouter_key_identity(&secret);
        let mut dir = (*obs.dir).clone();
        dir.gateway_keys.push(orteam_ledger::GatewayKey {
            key_hash,
            label,
            registered_at: chrono::Utc::now(),
        });
        obs.dir = std::sync::Arc::new(dir);
    }
    Ok(())
}

async fn plan_cmd(cx: &Context, args: TeamPlanArgs) -> anyhow::Result<ExitCode> {
    let p = make_plan(
        cx,
        &args.file,
        &args.connect,
        args.prune,
        args.unused_days,
        false,
    )
    .await?;
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
                format!("+{}", r.amount.usd()),
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
                s.usage.usd(),
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

async fn apply_cmd(cx: &Context, args: TeamApplyArgs) -> anyhow::Result<ExitCode> {
    let p = make_plan(
        cx,
        &args.file,
        &args.connect,
        args.prune,
        args.unused_days,
        true,
    )
    .await?;
    print_plan(&p.plan, args.format, args.unused_days)?;
    if p.plan.is_empty() {
        let _ = p.ledger.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    apply::preflight(&p.plan, have_secret_key()?)?;
    let question = format!("\nApply these {} changes?", p.plan.changes.len());
    if !crate::confirm::confirm(&question, args.yes, "apply")? {
        let _ = p.ledger.shutdown().await;
        return Ok(ExitCode::FAILURE);
    }
    let who =
        crate::commands::access::acting_as(cx, &p.ledger, &orteam_core::access::Action::Apply)
            .await?;
    let mut sink = cx.sink(args.secrets_out.as_deref())?;
    let mut applied: Vec<String> = Vec::new();
    let mut progress = |line: &str| {
        let _ = writeln!(std::io::stderr(), "applied: {line}");
        applied.push(line.to_owned());
    };
    let mut cx = ApplyContext {
        ledger: &p.ledger,
        client: &p.client,
        now: p.now,
        sink: &mut sink,
        actor: who.name.clone(),
        progress: &mut progress,
    };
    // From here Ctrl-C stops between two changes, never inside one.
    let interrupt = crate::shutdown::on_signal();
    let result = apply::apply_until(&p.plan, &mut cx, &|| interrupt.is_cancelled()).await;
    sink.report();
    // Each change made is audited, whether or not the whole apply finished.
    for line in &applied {
        crate::commands::access::record(
            &p.ledger,
            &who,
            "apply.change",
            format!("org:{}", p.plan.org),
            None,
            Some(serde_json::json!({ "change": line })),
        )
        .await?;
    }
    crate::commands::access::record(
        &p.ledger,
        &who,
        "apply",
        format!("org:{}", p.plan.org),
        None,
        Some(serde_json::json!({
            "changes_applied": applied.len(),
            "complete": result.as_ref().is_ok_and(|r| !r.interrupted),
        })),
    )
    .await?;
    let report = result?;
    for w in &report.warnings {
        writeln!(std::io::stderr(), "warning: {w}")?;
    }
    if report.interrupted {
        writeln!(
            std::io::stderr(),
            "interrupted after {} of {} changes; nothing half-done; run `orteam team apply` again to finish",
            report.changes_applied,
            p.plan.changes.len()
        )?;
        let _ = p.ledger.shutdown().await;
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
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
