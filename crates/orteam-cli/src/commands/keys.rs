//! `orteam keys rotate MEMBER` and `orteam keys list`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use comfy_table::{Cell, CellAlignment, Table, presets};
use orteam_core::{Money, Window};
use orteam_ledger::EventFilter;
use orteam_team::{file, rotate_member};
use orteam_web::keys::{KeyMode, KeyRow, KeyTotals, KeyUsage, direct_key_hashes, key_rows};
use orteam_web::snapshot::usd;

use crate::args_team::{KeysArgs, KeysCommand, KeysListArgs, KeysRotateArgs, ListFormat};
use crate::context::Context;

pub async fn run(cx: &Context, args: KeysArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Rotate(a) => rotate(cx, a).await,
        KeysCommand::List(a) => list(cx, a).await,
    }
}

async fn rotate(cx: &Context, args: KeysRotateArgs) -> anyhow::Result<ExitCode> {
    let grace = args
        .grace
        .as_deref()
        .map(file::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let ledger = cx.open_ledger(&args.connect).await?;
    // The provisioning key is only needed when the member has an OpenRouter key.
    let needs_client = ledger
        .directory()
        .upstream_keys
        .iter()
        .any(|k| k.member_id == args.member);
    let client = if needs_client {
        Some(cx.client(&args.connect)?)
    } else {
        args.connect
            .provisioning_key
            .as_ref()
            .map(|_| cx.client(&args.connect))
            .transpose()?
    };
    let team = ledger
        .directory()
        .members
        .get(&args.member)
        .map(|m| m.team_id.clone())
        .unwrap_or_default();
    let who = crate::commands::access::acting_as(
        cx,
        &ledger,
        &orteam_core::access::Action::Rotate { team: &team },
    )
    .await?;
    let mut sink = cx.sink(args.secrets_out.as_deref())?;
    let now = cx.now();
    let result = rotate_member(
        &ledger,
        client.as_ref(),
        &args.member,
        grace,
        now,
        &mut sink,
    )
    .await;
    sink.report();
    let r = result?;
    crate::commands::access::record(
        &ledger,
        &who,
        "rotate_key",
        format!("member:{}", r.member),
        Some(serde_json::json!({ "key": r.old })),
        Some(serde_json::json!({ "key": r.new, "old_valid_until": r.old_valid_until })),
    )
    .await?;
    writeln!(
        std::io::stderr(),
        "rotated {}'s key: {} → {}; the old key works until {}",
        r.member,
        r.old,
        r.new,
        r.old_valid_until.format("%Y-%m-%d %H:%M:%S UTC")
    )?;
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `orteam keys list`: every key with usage today and this month, limit and reset, expiry,
/// rotation due date and state, plus totals. Gateway keys' usage comes from the ledger; direct
/// keys' usage and limit from OpenRouter when a provisioning key is available.
async fn list(cx: &Context, args: KeysListArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    let now = cx.now();
    let dir = ledger.directory();
    let events = ledger
        .events(EventFilter {
            from: Some(Window::Monthly.start(now)),
            ..EventFilter::default()
        })
        .await
        .context("reading usage events")?;
    let budgets = ledger
        .all_budget_status()
        .await
        .context("reading budgets")?;
    let usage = KeyUsage::from_events(&events, now);
    let mut rows = key_rows(&dir, &budgets, &usage, now, args.all);
    let direct = direct_key_hashes(&dir);
    if !direct.is_empty() && args.connect.provisioning_key.is_some() {
        match cx.client(&args.connect)?.list_all_keys(Some(true)).await {
            Ok(keys) => {
                for r in rows.iter_mut().filter(|r| r.mode == KeyMode::Direct) {
                    let hash = direct.get(&r.key);
                    if let Some(k) = keys.iter().find(|k| Some(&k.hash) == hash) {
                        r.apply_openrouter(
                            k.usage_daily,
                            k.usage_monthly,
                            k.limit,
                            k.limit_reset,
                            now,
                        );
                    }
                }
            }
            Err(e) => {
                writeln!(
                    std::io::stderr(),
                    "warning: direct keys' usage unavailable (OpenRouter GET /keys: {e})"
                )?;
            }
        }
    } else if !direct.is_empty() {
        writeln!(
            std::io::stderr(),
            "note: set {} to show direct keys' usage and limits from OpenRouter",
            orteam_core::env::OPENROUTER_PROVISIONING_KEY
        )?;
    }
    let totals = KeyTotals::of(&rows);
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).context("encoding the key list")?
        )?,
        ListFormat::Csv => write_csv(&mut out, &rows)?,
        ListFormat::Table => {
            if rows.is_empty() {
                writeln!(
                    std::io::stderr(),
                    "No keys yet: add members to team.toml and run `orteam team apply`."
                )?;
            } else {
                writeln!(out, "{}", key_table(&rows, &totals))?;
            }
        }
    }
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn stamp(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

fn limit_text(r: &KeyRow) -> String {
    match (r.limit, r.limit_window) {
        (Some(l), Some(w)) => format!("{}/{}", usd(l), short_window(w)),
        (Some(l), None) => usd(l),
        (None, _) if r.mode == KeyMode::Direct && r.usage_month.is_none() => "at OpenRouter".into(),
        (None, _) => "none".into(),
    }
}

fn short_window(w: Window) -> &'static str {
    match w {
        Window::Daily => "day",
        Window::Weekly => "week",
        Window::Monthly => "month",
    }
}

fn key_table(rows: &[KeyRow], totals: &KeyTotals) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "member",
        "mode",
        "key",
        "gen",
        "today",
        "this month",
        "limit",
        "resets",
        "expires",
        "rotation due",
        "state",
    ]);
    let money = |m: Option<Money>| m.map(usd).unwrap_or_else(|| "-".into());
    for r in rows {
        let due = match r.rotation_due {
            Some(d) if r.rotation_overdue => format!("{} (overdue)", stamp(Some(d))),
            d => stamp(d),
        };
        t.add_row(vec![
            Cell::new(&r.member),
            Cell::new(r.mode.as_str()),
            Cell::new(&r.key),
            Cell::new(r.generation.map(|g| g.to_string()).unwrap_or_default()),
            Cell::new(money(r.usage_today)).set_alignment(CellAlignment::Right),
            Cell::new(money(r.usage_month)).set_alignment(CellAlignment::Right),
            Cell::new(limit_text(r)),
            Cell::new(stamp(r.limit_reset)),
            Cell::new(stamp(r.expires_at)),
            Cell::new(due),
            Cell::new(&r.state),
        ]);
    }
    t.add_row(vec![
        Cell::new("total"),
        Cell::new(""),
        Cell::new(format!("{} keys, {} live", totals.keys, totals.live)),
        Cell::new(""),
        Cell::new(usd(totals.usage_today)).set_alignment(CellAlignment::Right),
        Cell::new(usd(totals.usage_month)).set_alignment(CellAlignment::Right),
        Cell::new(""),
        Cell::new(""),
        Cell::new(""),
        Cell::new(if totals.rotation_overdue > 0 {
            format!("{} overdue", totals.rotation_overdue)
        } else {
            String::new()
        }),
        Cell::new(""),
    ]);
    for i in 3..=5 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// RFC 4180 CSV: exact amounts (canonical decimals), RFC 3339 times, empty for unknown.
fn write_csv(out: &mut impl Write, rows: &[KeyRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "member,mode,key,generation,usage_today,usage_month,limit,limit_window,limit_reset,created_at,expires_at,rotation_due,rotation_overdue,state"
    )?;
    let money = |m: Option<Money>| m.map(|m| m.to_canonical_string()).unwrap_or_default();
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    for r in rows {
        let fields = [
            csv_field(&r.member),
            r.mode.as_str().to_owned(),
            csv_field(&r.key),
            r.generation.map(|g| g.to_string()).unwrap_or_default(),
            money(r.usage_today),
            money(r.usage_month),
            money(r.limit),
            r.limit_window
                .map(|w| w.as_str().to_owned())
                .unwrap_or_default(),
            time(r.limit_reset),
            r.created_at.to_rfc3339(),
            time(r.expires_at),
            time(r.rotation_due),
            r.rotation_overdue.to_string(),
            csv_field(&r.state),
        ];
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
