//! `orteam audit list|verify`: the hash-chained log of every admin action.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use comfy_table::{Table, presets};
use orteam_core::access::Action;
use orteam_ledger::AuditEntry;

use crate::args_access::{AuditArgs, AuditCommand, AuditFormat, AuditListArgs, AuditVerifyArgs};
use crate::commands::access::acting_as;
use crate::context::Context;

pub async fn run(cx: &Context, args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::List(a) => list(cx, a).await,
        AuditCommand::Verify(a) => verify(cx, a).await,
    }
}

/// `--since`: RFC 3339, or a duration back from now.
fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = orteam_team::file::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "--since {text:?} is neither an RFC 3339 time (2026-05-01T18:00:00Z) nor a duration (7d)"
        )
    })?;
    Ok(now - TimeDelta::from_std(d).context("--since is too far back")?)
}

async fn list(cx: &Context, args: AuditListArgs) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, cx.now()))
        .transpose()?;
    let ledger = cx.open_ledger(&args.connect).await?;
    acting_as(cx, &ledger, &Action::ReadAudit).await?;
    let mut entries = ledger.audit_entries().await?;
    entries.retain(|e| {
        args.actor.as_ref().is_none_or(|a| &e.actor == a)
            && args.action.as_ref().is_none_or(|a| &e.action == a)
            && since.is_none_or(|s| e.at >= s)
    });
    let mut out = std::io::stdout().lock();
    match args.format {
        AuditFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?,
        AuditFormat::Csv => {
            writeln!(
                out,
                "seq,at,actor,action,target,before,after,source,prev_hash,hash"
            )?;
            for e in &entries {
                writeln!(out, "{}", csv_line(e))?;
            }
        }
        AuditFormat::Table => {
            let mut t = Table::new();
            t.load_preset(presets::UTF8_FULL_CONDENSED);
            t.set_header(vec![
                "#",
                "when (UTC)",
                "who",
                "what",
                "on",
                "before → after",
                "from",
            ]);
            for e in &entries {
                let change = match (&e.before, &e.after) {
                    (None, None) => String::new(),
                    (b, a) => format!(
                        "{} → {}",
                        b.as_deref().unwrap_or("-"),
                        a.as_deref().unwrap_or("-")
                    ),
                };
                t.add_row(vec![
                    e.seq.to_string(),
                    e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    change,
                    e.source.clone().unwrap_or_default(),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(e: &AuditEntry) -> String {
    [
        e.seq.to_string(),
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.actor.clone(),
        e.action.clone(),
        e.target.clone(),
        e.before.clone().unwrap_or_default(),
        e.after.clone().unwrap_or_default(),
        e.source.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

async fn verify(cx: &Context, args: AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    acting_as(cx, &ledger, &Action::ReadAudit).await?;
    let report = ledger.verify_audit().await?;
    let _ = ledger.shutdown().await;
    let mut out = std::io::stdout().lock();
    if report.is_valid() {
        writeln!(
            out,
            "audit log intact: {} entries, head {}",
            report.entries,
            report.head.as_deref().unwrap_or("(empty)")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for p in &report.problems {
        writeln!(out, "row {}: {}", p.seq, p.problem)?;
    }
    anyhow::bail!(
        "the audit log was tampered with: {} problem{} in {} entries (first at row {})",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" },
        report.entries,
        report.problems[0].seq
    )
}
