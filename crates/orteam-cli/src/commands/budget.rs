//! `orteam budget raise TARGET AMOUNT --window W --until TIME`: a temporary raise that expires
//! by itself.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_team::{TeamError, file};

use crate::args_team::{BudgetArgs, BudgetCommand, BudgetRaiseArgs, ScopeArg, WindowArg};
use crate::context::Context;

pub async fn run(cx: &Context, args: BudgetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BudgetCommand::Raise(a) => raise(cx, a).await,
    }
}

/// `--until`: RFC 3339, or a duration from now.
pub(crate) fn parse_until(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = file::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "--until {text:?} is neither an RFC 3339 time (2026-05-01T18:00:00Z) nor a duration (8h, 3d)"
        )
    })?;
    Ok(now + TimeDelta::from_std(d).context("--until is too far away")?)
}

async fn raise(cx: &Context, args: BudgetRaiseArgs) -> anyhow::Result<ExitCode> {
    let amount = Money::parse(args.amount.trim()).map_err(|_| {
        anyhow::anyhow!(
            "{:?} is not a decimal amount (write e.g. 10.00)",
            args.amount
        )
    })?;
    if amount.is_negative() || amount.is_zero() {
        bail!("a raise must be a positive amount, not {}", args.amount);
    }
    let now = cx.now();
    let until = parse_until(&args.until, now)?;
    if until <= now {
        bail!("--until {} is in the past", until.to_rfc3339());
    }
    let window = match args.window {
        WindowArg::Daily => Window::Daily,
        WindowArg::Weekly => Window::Weekly,
        WindowArg::Monthly => Window::Monthly,
    };
    let ledger = cx.open_ledger(&args.connect).await?;
    let dir = ledger.directory();
    let id = args.target.as_str();
    let is_member = dir.members.contains_key(id);
    let is_team = dir.teams.contains_key(id);
    let is_org = dir.orgs.contains_key(id);
    let scope = match args.scope {
        Some(ScopeArg::Member) if is_member => BudgetScope::Member,
        Some(ScopeArg::Team) if is_team => BudgetScope::Team,
        Some(ScopeArg::Org) if is_org => BudgetScope::Org,
        Some(s) => {
            return Err(TeamError::Target(format!("unknown {s:?} {id:?}").to_lowercase()).into());
        }
        None => match (is_member, is_team) {
            (true, true) => {
                return Err(TeamError::Target(format!(
                    "{id:?} is both a member and a team: pass --scope member or --scope team"
                ))
                .into());
            }
            (true, false) => BudgetScope::Member,
            (false, true) => BudgetScope::Team,
            (false, false) if is_org => BudgetScope::Org,
            (false, false) => {
                return Err(TeamError::Target(format!("unknown member or team {id:?}")).into());
            }
        },
    };
    // A raise adds to a budget: a window without one has nothing to raise.
    let windows: Vec<&str> = dir
        .budgets
        .iter()
        .filter(|b| b.scope == scope && b.scope_id == id)
        .map(|b| b.window.as_str())
        .collect();
    if !windows.contains(&window.as_str()) {
        let _ = ledger.shutdown().await;
        let has = if windows.is_empty() {
            "it has no budget at all (set one in the team file and run `orteam team apply`)"
                .to_owned()
        } else {
            format!("its budgets are: {}", windows.join(", "))
        };
        return Err(TeamError::Target(format!(
            "{scope} {id:?} has no {} budget to raise; {has}",
            window.as_str()
        ))
        .into());
    }
    let team = match scope {
        BudgetScope::Member => dir.members.get(id).map(|m| m.team_id.clone()),
        BudgetScope::Team => Some(id.to_owned()),
        BudgetScope::Org => None,
    };
    let who = crate::commands::access::acting_as(
        cx,
        &ledger,
        &orteam_core::access::Action::Raise {
            team: team.as_deref(),
            amount,
        },
    )
    .await?;
    let r = ledger
        .add_raise(scope, id, window, amount, until, &args.reason)
        .await
        .context("adding the raise")?;
    crate::commands::access::record(
        &ledger,
        &who,
        "raise",
        format!("{}:{}:{}", r.scope, r.scope_id, r.window),
        None,
        Some(serde_json::json!({ "raise": r.amount, "until": r.until, "reason": r.reason })),
    )
    .await?;
    writeln!(
        std::io::stdout(),
        "raised the {} {} {} budget by {} until {} (raise {})",
        r.scope,
        r.scope_id,
        r.window.as_str(),
        r.amount.usd(),
        r.until.format("%Y-%m-%d %H:%M:%S UTC"),
        r.id
    )?;
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
