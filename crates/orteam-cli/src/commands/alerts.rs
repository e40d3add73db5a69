//! `orteam alerts send`: records the budget and anomaly alerts that are due and delivers the
//! outbox once (what a running gateway does in the background); `orteam alerts list`: the
//! outbox.

use std::io::Write;
use std::process::ExitCode;

use comfy_table::{Cell, Table, presets};
use orteam_insight::AlertsConfig;
use orteam_team::file;

use super::report::anomaly_rule;
use crate::args_insight::{
    AlertsArgs, AlertsCommand, AlertsListArgs, AlertsSendArgs, InsightFormat,
};
use crate::context::Context;

pub async fn run(cx: &Context, args: AlertsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AlertsCommand::Send(a) => send(cx, a).await,
        AlertsCommand::List(a) => list(cx, a).await,
    }
}

async fn send(cx: &Context, args: AlertsSendArgs) -> anyhow::Result<ExitCode> {
    let team = file::load(&args.file)?;
    let Some(spec) = team.alerts.as_ref().filter(|a| !a.webhooks.is_empty()) else {
        anyhow::bail!(
            "{} has no [alerts] webhooks: nothing to send to",
            args.file.display()
        );
    };
    let mut cfg = AlertsConfig::from_spec(spec);
    cfg.anomalies = if args.no_anomalies {
        None
    } else {
        Some(anomaly_rule(&args.anomaly_min_spend)?)
    };
    let ledger = cx.open_ledger(&args.connect).await?;
    let http = reqwest::Client::new();
    let r = orteam_insight::run_alerts_once(&ledger, &http, &cfg).await;
    let _ = ledger.shutdown().await;
    let r = r?;
    writeln!(
        std::io::stdout(),
        "alerts: {} new, {} delivered, {} failed (will retry), {} given up",
        r.enqueued,
        r.delivered,
        r.failed,
        r.dead
    )?;
    Ok(if r.failed > 0 || r.dead > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn list(cx: &Context, args: AlertsListArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    let rows = ledger.outbox_entries(args.pending).await;
    let _ = ledger.shutdown().await;
    let rows = rows?;
    let mut out = std::io::stdout().lock();
    match args.format {
        InsightFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        InsightFormat::Table => {
            let mut t = Table::new();
            t.load_preset(presets::UTF8_FULL_CONDENSED);
            t.set_header(vec![
                "alert",
                "url",
                "created",
                "attempts",
                "state",
                "last error",
            ]);
            for e in &rows {
                let state = match (e.delivered_at, e.dead) {
                    (Some(at), _) => format!("delivered {}", at.format("%Y-%m-%d %H:%M")),
                    (None, true) => "given up".into(),
                    (None, false) => format!("next {}", e.next_attempt_at.format("%Y-%m-%d %H:%M")),
                };
                t.add_row(vec![
                    Cell::new(&e.alert_id),
                    Cell::new(&e.url),
                    Cell::new(e.created_at.format("%Y-%m-%d %H:%M").to_string()),
                    Cell::new(e.attempts),
                    Cell::new(state),
                    Cell::new(e.last_error.as_deref().unwrap_or("")),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
