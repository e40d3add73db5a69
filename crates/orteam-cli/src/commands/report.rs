//! `orteam report`: spend over a period from the ledger (gateway) and OpenRouter's `/activity`
//! (direct-mode keys), grouped as asked, as a table, JSON or CSV; `orteam report weekly`: the
//! Monday summary. Also the helpers the other insight commands share (progress bar, clients).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use comfy_table::{Cell, CellAlignment, Table, presets};
use orteam_core::Money;
use orteam_insight::anomaly::AnomalyConfig;
use orteam_insight::report::{Report, ReportOptions, group_name};
use orteam_insight::weekly::WeeklyReport;
use orteam_insight::{Period, Progress, Range, Upstream};
use orteam_ledger::{GroupBy, RefusalSummary};
use secrecy::SecretString;

use crate::args_insight::{
    ByArg, InsightFormat, OutcomeArg, PeriodArg, ReportArgs, ReportCommand, ReportFormat,
    SpendReportArgs, WeeklyArgs,
};
use crate::args_team::ConnectArgs;
use crate::context::Context;

/// A progress bar on stderr when it is a terminal; nothing otherwise (piped, CI, tests).
pub(crate) struct Bar {
    bar: parking_lot::Mutex<Option<indicatif::ProgressBar>>,
    enabled: bool,
}

impl Bar {
    pub(crate) fn new() -> Self {
        Bar {
            bar: parking_lot::Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Bar {
    fn begin(&self, what: &str, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        if let Some(old) = self.bar.lock().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().as_ref() {
            b.inc(n);
        }
    }

    fn end(&self) {
        if let Some(b) = self.bar.lock().take() {
            b.finish_and_clear();
        }
    }
}

/// Clients for the management key (from `connect`) and the shared inference key.
pub(crate) fn upstream(
    connect: &ConnectArgs,
    shared: Option<&str>,
    shared_hash: Option<&str>,
) -> anyhow::Result<Upstream> {
    let key = |k: Option<&str>| {
        k.map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| SecretString::from(k.to_owned()))
    };
    let mut up = Upstream::from_keys(None, key(connect.provisioning_key.as_deref()), key(shared))
        .context("building the OpenRouter client")?;
    if let Some(h) = shared_hash.map(str::trim).filter(|h| !h.is_empty()) {
        up = up.with_shared_key_hash(h);
    }
    Ok(up)
}

pub(crate) fn anomaly_rule(min_spend: &str) -> anyhow::Result<AnomalyConfig> {
    let m = Money::parse_non_negative(min_spend.trim()).map_err(|_| {
        anyhow::anyhow!("--anomaly-min-spend {min_spend:?} is not a decimal amount (e.g. 1.00)")
    })?;
    Ok(AnomalyConfig::default().with_min_spend(m))
}

pub async fn run(cx: &Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(ReportCommand::Weekly(a)) => weekly(cx, a).await,
        None => spend(cx, args.spend).await,
    }
}

fn range(args: &SpendReportArgs, now: DateTime<Utc>) -> anyhow::Result<Range> {
    if args.since.is_some() || args.until.is_some() {
        return Ok(Range::from_bounds(
            args.since.as_deref(),
            args.until.as_deref(),
            now,
        )?);
    }
    let p = match args.period.unwrap_or(PeriodArg::Month) {
        PeriodArg::Today => Period::Today,
        PeriodArg::Week => Period::Week,
        PeriodArg::Month => Period::Month,
        PeriodArg::Last7d => Period::Last7d,
        PeriodArg::Last30d => Period::Last30d,
    };
    Ok(p.range(now))
}

fn group_by(by: &[ByArg]) -> Vec<GroupBy> {
    let mut out = Vec::new();
    for b in by {
        let g = match b {
            ByArg::Member => GroupBy::Member,
            ByArg::Team => GroupBy::Team,
            ByArg::Model => GroupBy::Model,
            ByArg::Day => GroupBy::Day,
            ByArg::Provider => GroupBy::Provider,
            ByArg::Key => GroupBy::Key,
            ByArg::Route => GroupBy::Route,
        };
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

async fn spend(cx: &Context, args: SpendReportArgs) -> anyhow::Result<ExitCode> {
    let range = range(&args, cx.now())?;
    let rule = anomaly_rule(&args.anomaly_min_spend)?;
    let ledger = cx.open_ledger(&args.connect).await?;
    let up = upstream(&args.connect, None, None)?;
    let today = ledger.now().date_naive();
    let opts = ReportOptions {
        range,
        group_by: group_by(&args.by),
        route: args.route,
        direct: !args.no_direct,
        anomalies: Some((today, rule)),
    };
    let report = orteam_insight::build_report(&ledger, &up, &opts, &Bar::new()).await;
    let _ = ledger.shutdown().await;
    let report = report?;
    let mut out = std::io::stdout().lock();
    match (args.outcome, args.format) {
        (OutcomeArg::Served, ReportFormat::Json) => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        (OutcomeArg::Served, ReportFormat::Csv) => out.write_all(report.to_csv().as_bytes())?,
        (OutcomeArg::Served, ReportFormat::Table) => write_table(&mut out, &report)?,
        (OutcomeArg::Refused, ReportFormat::Json) => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "from": report.from,
                    "to": report.to,
                    "route": report.route,
                    "refusals": report.refusals,
                    "total": report.refusals.iter().map(|r| r.count).sum::<u64>(),
                }),
            )?;
            writeln!(out)?;
        }
        (OutcomeArg::Refused, ReportFormat::Csv) => {
            out.write_all(orteam_insight::report::refusals_csv(&report.refusals).as_bytes())?
        }
        (OutcomeArg::Refused, ReportFormat::Table) => write_refusals(&mut out, &report)?,
    }
    out.flush()?;
    for n in &report.notes {
        let _ = writeln!(std::io::stderr(), "note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

fn num(n: u64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

fn money(m: Money) -> Cell {
    Cell::new(m.usd()).set_alignment(CellAlignment::Right)
}

fn write_table(out: &mut impl Write, r: &Report) -> anyhow::Result<()> {
    write!(
        out,
        "Spend from {} to {} (UTC)",
        r.from.format("%Y-%m-%d %H:%M"),
        r.to.format("%Y-%m-%d %H:%M")
    )?;
    match r.route {
        Some(route) => writeln!(out, ", route {route}")?,
        None => writeln!(out)?,
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut header: Vec<&str> = vec!["source"];
    header.extend(r.group_by.iter().map(|g| group_name(*g)));
    header.extend(["requests", "cost", "prompt tok", "completion tok", ""]);
    t.set_header(header);
    for row in &r.rows {
        let mut cells = vec![Cell::new(row.source.as_str())];
        cells.extend(r.group_by.iter().map(|g| Cell::new(row.dimension(*g))));
        cells.extend([
            num(row.requests),
            money(row.cost),
            num(row.prompt_tokens),
            num(row.completion_tokens),
            Cell::new(if row.anomaly { "anomaly" } else { "" }),
        ]);
        t.add_row(cells);
    }
    let mut total = vec![Cell::new("total")];
    total.extend(r.group_by.iter().map(|_| Cell::new("")));
    total.extend([
        num(r.totals.requests),
        money(r.totals.cost),
        num(r.totals.prompt_tokens),
        num(r.totals.completion_tokens),
        Cell::new(""),
    ]);
    t.add_row(total);
    writeln!(out, "{t}")?;
    if !r.anomalies.is_empty() {
        writeln!(out, "\nAnomalies:")?;
        for a in &r.anomalies {
            writeln!(out, "  - {}", a.describe())?;
        }
    }
    write_refusal_lines(out, &r.refusals, "--outcome refused")?;
    Ok(())
}

/// "Refused:" and one sentence per member × reason × cause (nothing when none were refused).
pub(crate) fn write_refusal_lines(
    out: &mut impl Write,
    refusals: &[RefusalSummary],
    more: &str,
) -> anyhow::Result<()> {
    if refusals.is_empty() {
        return Ok(());
    }
    let total: u64 = refusals.iter().map(|r| r.count).sum();
    writeln!(out, "\nRefused: {total} request(s) ({more} for the table)")?;
    for r in refusals {
        writeln!(
            out,
            "  - {}",
            orteam_core::refusal::describe(&r.member_id, &r.reason, &r.detail, r.count)
        )?;
    }
    Ok(())
}

/// `orteam report --outcome refused` as a table.
fn write_refusals(out: &mut impl Write, r: &Report) -> anyhow::Result<()> {
    write!(
        out,
        "Refused requests from {} to {} (UTC)",
        r.from.format("%Y-%m-%d %H:%M"),
        r.to.format("%Y-%m-%d %H:%M")
    )?;
    match r.route {
        Some(route) => writeln!(out, ", route {route}")?,
        None => writeln!(out)?,
    }
    if r.refusals.is_empty() {
        writeln!(out, "No request was refused.")?;
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "member",
        "reason",
        "refused by",
        "requests",
        "last (UTC)",
    ]);
    for row in &r.refusals {
        t.add_row(vec![
            Cell::new(if row.member_id.is_empty() {
                "(unknown key)"
            } else {
                row.member_id.as_str()
            }),
            Cell::new(row.reason.replace('_', " ")),
            Cell::new(&row.detail),
            num(row.count),
            Cell::new(row.last.format("%Y-%m-%d %H:%M")),
        ]);
    }
    let total: u64 = r.refusals.iter().map(|x| x.count).sum();
    t.add_row(vec![
        Cell::new("total"),
        Cell::new(""),
        Cell::new(""),
        num(total),
        Cell::new(""),
    ]);
    writeln!(out, "{t}")?;
    Ok(())
}

async fn weekly(cx: &Context, args: WeeklyArgs) -> anyhow::Result<ExitCode> {
    let rule = anomaly_rule(&args.anomaly_min_spend)?;
    let ledger = cx.open_ledger(&args.connect).await?;
    let up = upstream(&args.connect, None, None)?;
    let report = orteam_insight::weekly_report(&ledger, &up, &rule, &Bar::new()).await;
    let _ = ledger.shutdown().await;
    let report = report?;
    let mut out = std::io::stdout().lock();
    match args.format {
        InsightFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        InsightFormat::Table => write_weekly(&mut out, &report)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn change(c: &Option<String>) -> String {
    c.as_ref()
        .map(|c| format!("{c}%"))
        .unwrap_or_else(|| "new".into())
}

pub(crate) fn write_weekly(out: &mut impl Write, r: &WeeklyReport) -> anyhow::Result<()> {
    let last = r.week_end.pred_opt().unwrap_or(r.week_end);
    writeln!(
        out,
        "Week {} to {}: {} in {} requests ({} vs the week before: {})",
        r.week_start,
        last,
        r.spend.usd(),
        r.requests,
        change(&r.change),
        r.previous.usd(),
    )?;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "member",
        "team",
        "spend",
        "requests",
        "gateway",
        "direct",
        "prev week",
        "change",
        "budgets now",
    ]);
    for m in &r.members {
        let budgets: Vec<String> = m
            .budgets
            .iter()
            .map(|b| {
                format!(
                    "{} {} / {} ({}%)",
                    b.window,
                    b.spent.usd(),
                    b.limit.usd(),
                    b.percent
                )
            })
            .collect();
        t.add_row(vec![
            Cell::new(&m.member),
            Cell::new(&m.team),
            money(m.spend),
            num(m.requests),
            money(m.gateway),
            money(m.openrouter),
            money(m.previous),
            Cell::new(change(&m.change)).set_alignment(CellAlignment::Right),
            Cell::new(budgets.join("\n")),
        ]);
    }
    writeln!(out, "{t}")?;
    if !r.budgets.is_empty() {
        writeln!(out, "\nTeam and org budgets now:")?;
        for b in &r.budgets {
            writeln!(
                out,
                "  - {} {} {}: {} of {} ({}%)",
                b.scope,
                b.scope_id,
                b.window,
                b.spent.usd(),
                b.limit.usd(),
                b.percent
            )?;
        }
    }
    writeln!(out, "\nTop models:")?;
    for m in &r.top_models {
        writeln!(
            out,
            "  - {:<45} {:>12} {:>6} req  ({})",
            m.model,
            m.spend.usd(),
            m.requests,
            change(&m.change)
        )?;
    }
    if !r.routes.is_empty() {
        writeln!(out, "\nSpend by API route (gateway):")?;
        for rt in &r.routes {
            writeln!(
                out,
                "  - {:<45} {:>12} {:>6} req  ({})",
                rt.route,
                rt.spend.usd(),
                rt.requests,
                change(&rt.change)
            )?;
        }
    }
    writeln!(out, "\nAnomalies:")?;
    if r.anomalies.is_empty() {
        writeln!(out, "  none")?;
    }
    for a in &r.anomalies {
        writeln!(out, "  - {}", a.describe())?;
    }
    write_refusal_lines(
        out,
        &r.refusals,
        "orteam report --outcome refused --period last-7d",
    )?;
    writeln!(out, "\nKeys expiring or due for rotation:")?;
    if r.keys.is_empty() {
        writeln!(out, "  none")?;
    }
    for k in &r.keys {
        writeln!(
            out,
            "  - {} {}: {} {}",
            k.member,
            k.key,
            k.kind.replace('_', " "),
            k.at.format("%Y-%m-%d %H:%M UTC")
        )?;
    }
    for n in &r.notes {
        writeln!(out, "\nnote: {n}")?;
    }
    Ok(())
}
