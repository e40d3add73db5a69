//! `orteam me`: a member's own budgets and spend, read from the gateway's `GET /v1/key` with
//! the member's own `ot-…` key (no admin credentials).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::{Cell, CellAlignment, Table, presets};
use orteam_gateway::current_key::{AllowedModels, CurrentKey, KeyInfo};
use orteam_web::snapshot::usd;

use crate::args::MeArgs;
use crate::args_team::OutputFormat;

pub async fn run(args: MeArgs) -> anyhow::Result<ExitCode> {
    let key = args.key.filter(|k| !k.is_empty()).with_context(|| {
        format!(
            "no member key: set {} to your `ot-…` key (or pass --key)",
            orteam_core::env::ORTEAM_KEY
        )
    })?;
    let url = key_url(&args.gateway);
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("the gateway refused ({status}): {message}");
    }
    let current: CurrentKey = serde_json::from_str(&text)
        .with_context(|| format!("{url} did not answer with orteam's current-key shape"))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&current.data)?)?,
        OutputFormat::Table => print_tables(&mut out, &current.data)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `…/v1/key` below the gateway's root, whether the URL given ends in `/v1` or not.
fn key_url(gateway: &str) -> String {
    let root = gateway.trim_end_matches('/');
    let root = root.strip_suffix("/v1").unwrap_or(root);
    format!("{root}/v1/key")
}

fn print_tables(out: &mut impl Write, d: &KeyInfo) -> anyhow::Result<()> {
    let o = &d.orteam;
    writeln!(
        out,
        "{} ({}) · team {} · org {} · key {} ({})",
        o.member_name, o.member, o.team, o.org, d.label, o.key.name
    )?;
    let models = match &o.tier.models {
        AllowedModels::All => "all models".to_owned(),
        AllowedModels::Only(list) => list.join(", "),
    };
    let mut tier = format!("tier {}: {models}", o.tier.id);
    if let Some(to) = &o.tier.downgrade_to {
        tier.push_str(&format!(" (others downgraded to {to})"));
    }
    if let Some(rpm) = o.tier.requests_per_minute {
        tier.push_str(&format!(" · {rpm} requests/min"));
    }
    if let Some(tpm) = o.tier.tokens_per_minute {
        tier.push_str(&format!(" · {tpm} tokens/min"));
    }
    writeln!(out, "{tier}")?;
    if let Some(expires) = o.key.expires_at {
        writeln!(out, "key expires {}", expires.format("%Y-%m-%d %H:%M UTC"))?;
    }
    writeln!(out)?;
    let money = |m| Cell::new(usd(m)).set_alignment(CellAlignment::Right);
    if o.budgets.is_empty() {
        writeln!(out, "No budget applies to you.")?;
    } else {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "budget",
            "window",
            "limit",
            "raise",
            "spent",
            "held",
            "remaining",
            "resets",
        ]);
        for b in &o.budgets {
            t.add_row(vec![
                Cell::new(format!("{} {}", b.scope.as_str(), b.scope_id)),
                Cell::new(b.window.as_str()),
                money(b.limit),
                money(b.raised),
                money(b.spent),
                money(b.held),
                money(b.remaining),
                Cell::new(b.reset_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    writeln!(
        out,
        "\nSpent: today {} · this week {} · this month {} · all time {}",
        usd(o.usage.daily),
        usd(o.usage.weekly),
        usd(o.usage.monthly),
        usd(o.usage.total)
    )?;
    if o.month_by_day.is_empty() {
        writeln!(out, "No spend this month.")?;
        return Ok(());
    }
    let mut days = Table::new();
    days.load_preset(presets::UTF8_FULL_CONDENSED);
    days.set_header(vec!["day", "requests", "spent"]);
    for d in &o.month_by_day {
        days.add_row(vec![
            Cell::new(d.day.to_string()),
            Cell::new(d.requests).set_alignment(CellAlignment::Right),
            money(d.cost),
        ]);
    }
    writeln!(out, "\nThis month by day:\n{days}")?;
    let mut models = Table::new();
    models.load_preset(presets::UTF8_FULL_CONDENSED);
    models.set_header(vec!["model", "requests", "spent"]);
    for m in &o.month_by_model {
        models.add_row(vec![
            Cell::new(&m.model),
            Cell::new(m.requests).set_alignment(CellAlignment::Right),
            money(m.cost),
        ]);
    }
    writeln!(out, "\nThis month by model:\n{models}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_url_is_below_the_root() {
        for g in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/v1",
            "http://h:1/v1/",
        ] {
            assert_eq!(super::key_url(g), "http://h:1/v1/key", "{g}");
        }
    }
}
