//! `orteam reconcile [--since DATE] [--until DATE]`: every ledger event against OpenRouter's
//! `/generation`, every day/model/key total against `/activity`. Repairs what it can (exact
//! costs, costs that differ from the generation, charges upstream billed that the ledger never
//! recorded: see `orteam_insight::reconcile`), prints one line per change and a summary
//! ("changed N events, inserted M, booked $X at org level"), then the differences left (with
//! `--all` every check); exits 1 when money differs and was not repaired.
//!
//! Provisional charges become exact. This process opens the ledger in the serving role when it
//! can and then applies the corrections itself; when a gateway already serves the ledger (a
//! SQLite file is owned by one serving process), it opens it read/admin and **queues** them: the
//! running gateway applies the queue on its next reconcile tick, because it owns the budget
//! counters in memory. On PostgreSQL several serving instances coexist, so this process applies
//! them directly.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment, Table, presets};
use orteam_core::env;
use orteam_insight::Range;
use orteam_insight::reconcile::{CheckStatus, Corrections, ReconcileOptions, ReconcileReport};
use orteam_ledger::{Ledger, LedgerError, LedgerOptions};

use super::report::{Bar, upstream};
use crate::args_insight::{InsightFormat, ReconcileArgs};
use crate::context::Context;

/// Serving when possible (apply corrections now), else admin (queue them).
async fn open_for_corrections(
    cx: &Context,
    args: &ReconcileArgs,
) -> anyhow::Result<(Ledger, Corrections)> {
    if args.dry_run {
        return Ok((cx.open_ledger(&args.connect).await?, Corrections::Report));
    }
    let opts = LedgerOptions::serving()
        .existing()
        .with_clock(cx.shared_clock())
        .with_instance_id(format!("orteam-reconcile-{}", std::process::id()));
    match Ledger::open(&args.connect.database_url, opts).await {
        Ok(l) => Ok((l, Corrections::Apply)),
        Err(LedgerError::AlreadyServing { .. }) => {
            tracing::info!("a gateway serves this ledger: exact costs are queued for it to apply");
            Ok((cx.open_ledger(&args.connect).await?, Corrections::Queue))
        }
        Err(e @ (LedgerError::NoLedger { .. } | LedgerError::MissingDirectory { .. })) => {
            Err(e.into())
        }
        Err(e) => Err(e).context("opening the ledger"),
    }
}

pub async fn run(cx: &Context, args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let now = cx.now();
    let range = Range::from_bounds(args.since.as_deref(), args.until.as_deref(), now)?;
    let up = upstream(
        &args.connect,
        args.api_key.as_deref(),
        args.shared_key_hash.as_deref(),
    )?;
    anyhow::ensure!(
        up.management().is_some() || up.has_shared(),
        "reconcile needs OpenRouter keys: set {} (for /activity) and {} (the gateway's shared key, for /generation)",
        env::OPENROUTER_PROVISIONING_KEY,
        env::OPENROUTER_API_KEY
    );
    let (ledger, corrections) = open_for_corrections(cx, &args).await?;
    let mut opts = ReconcileOptions::new(range);
    opts.corrections = corrections;
    let mut result = orteam_insight::reconcile(&ledger, &up, &opts, &Bar::new()).await;
    if corrections != Corrections::Report
        && let Ok(report) = &result
        && let Err(e) = orteam_insight::reconcile::record_run(&ledger, "cli", report).await
    {
        result = Err(e);
    }
    let closed = ledger.shutdown().await;
    let report = result?;
    closed.context("closing the ledger")?;
    let mut out = std::io::stdout().lock();
    match args.format {
        InsightFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        InsightFormat::Table => write_table(&mut out, &report, args.all)?,
    }
    out.flush()?;
    if report.money_differs() {
        let (g, t) = report.differences();
        let _ = writeln!(
            std::io::stderr(),
            "error: money differs from OpenRouter and was not repaired ({} request(s), {} day total(s))",
            g.iter().filter(|c| c.status != CheckStatus::Error).count(),
            t.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if report.incomplete() {
        let _ = writeln!(
            std::io::stderr(),
            "error: {} generation look-up(s) failed; the result is incomplete",
            report.summary.errors
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn status(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Match => "match",
        CheckStatus::Differs => "DIFFERS",
        CheckStatus::Missing => "MISSING",
        CheckStatus::Corrected => "corrected",
        CheckStatus::Pending => "pending",
        CheckStatus::Error => "error",
    }
}

fn right(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

fn write_table(out: &mut impl Write, r: &ReconcileReport, all: bool) -> anyhow::Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "Reconciled {} to {} (UTC): {} events",
        r.from.format("%Y-%m-%d %H:%M"),
        r.to.format("%Y-%m-%d %H:%M"),
        s.events
    )?;
    writeln!(
        out,
        "Generations: {} checked, {} match, {} differ, {} missing, {} corrected ({} applied), {} pending, {} errors",
        s.checked, s.matched, s.differed, s.missing, s.corrected, s.applied, s.pending, s.errors
    )?;
    for c in &r.changes {
        writeln!(out, "{}", c.describe())?;
    }
    writeln!(
        out,
        "Changes ({}): {}",
        if r.changes.iter().all(|c| c.applied) {
            "applied"
        } else {
            "queued for the serving gateway"
        },
        s.changes_line()
    )?;
    writeln!(
        out,
        "Day totals (/activity): {} checked, {} match, {} differ",
        s.totals_checked, s.totals_matched, s.totals_differed
    )?;
    let gens: Vec<_> = r
        .generations
        .iter()
        .filter(|g| {
            all || (!g.repaired && !matches!(g.status, CheckStatus::Match | CheckStatus::Pending))
        })
        .collect();
    if !gens.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "request",
            "generation",
            "time",
            "member",
            "model",
            "ledger",
            "openrouter",
            "status",
        ]);
        for g in gens {
            t.add_row(vec![
                Cell::new(&g.request_id),
                Cell::new(&g.generation_id),
                Cell::new(g.time.format("%Y-%m-%d %H:%M:%S").to_string()),
                Cell::new(&g.member),
                Cell::new(&g.model),
                right(g.ledger.to_canonical_string()),
                right(
                    g.openrouter
                        .map(|m| m.to_canonical_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(match &g.message {
                    Some(m) if g.status == CheckStatus::Error => format!("error: {m}"),
                    _ if g.repaired && g.status == CheckStatus::Differs => "corrected".to_owned(),
                    _ => status(g.status).to_owned(),
                }),
            ]);
        }
        writeln!(out, "\n{t}")?;
    }
    let totals: Vec<_> = r
        .totals
        .iter()
        .filter(|t| all || (!t.matches && !t.repaired))
        .collect();
    if !totals.is_empty() {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "key",
            "day",
            "model",
            "ledger",
            "openrouter",
            "requests",
            "status",
        ]);
        for x in totals {
            t.add_row(vec![
                Cell::new(&x.key),
                Cell::new(x.day.to_string()),
                Cell::new(&x.model),
                right(x.ledger.to_canonical_string()),
                right(x.openrouter.to_canonical_string()),
                right(format!("{} / {}", x.ledger_requests, x.openrouter_requests)),
                Cell::new(if x.matches {
                    "match"
                } else if x.repaired {
                    "repaired"
                } else {
                    "DIFFERS"
                }),
            ]);
        }
        writeln!(out, "\n{t}")?;
    }
    if !r.repairs.is_empty() {
        writeln!(
            out,
            "\nRepaired {} request(s) a stopped gateway left in flight (provisional at their worst case → what /activity billed):",
            r.repairs.len()
        )?;
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec!["request", "member", "day", "was", "now", "evidence"]);
        for x in &r.repairs {
            t.add_row(vec![
                Cell::new(&x.request_id),
                Cell::new(&x.member),
                Cell::new(x.day.to_string()),
                right(x.provisional.to_canonical_string()),
                right(x.exact.to_canonical_string()),
                Cell::new(&x.evidence),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
