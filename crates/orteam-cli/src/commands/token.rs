//! `orteam token create|list|revoke`: named, scoped, expiring admin tokens.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use orteam_core::Money;
use orteam_core::access::{Action, Role};
use orteam_ledger::NewAdminToken;
use secrecy::ExposeSecret;

use crate::args_access::{
    RoleArg, TokenArgs, TokenCommand, TokenCreateArgs, TokenListArgs, TokenRevokeArgs,
};
use crate::args_team::OutputFormat;
use crate::commands::access::acting_as;
use crate::context::Context;

pub async fn run(cx: &Context, args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create(a) => create(cx, a).await,
        TokenCommand::List(a) => list(cx, a).await,
        TokenCommand::Revoke(a) => revoke(cx, a).await,
    }
}

async fn create(cx: &Context, args: TokenCreateArgs) -> anyhow::Result<ExitCode> {
    let role = match args.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::TeamLead => Role::TeamLead,
        RoleArg::Viewer => Role::Viewer,
    };
    let max_raise = args
        .max_raise
        .as_deref()
        .map(|m| {
            Money::parse_non_negative(m.trim())
                .map_err(|_| anyhow::anyhow!("--max-raise {m:?} is not a decimal amount (e.g. 50)"))
        })
        .transpose()?;
    let expires_at = args
        .expires
        .as_deref()
        .map(|e| crate::commands::budget::parse_until(e, cx.now()))
        .transpose()
        .context("--expires")?;
    let ledger = cx.open_ledger(&args.connect).await?;
    let who = acting_as(cx, &ledger, &Action::ManageTokens).await?;
    let issued = ledger
        .create_admin_token(NewAdminToken {
            name: args.name,
            role,
            teams: args.teams,
            max_raise,
            expires_at,
            created_by: who.name,
        })
        .await?;
    let t = &issued.token;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created token {} ({}){}{}",
        t.name,
        t.role,
        if t.teams.is_empty() {
            String::new()
        } else {
            format!(" for team {}", t.teams.join(", "))
        },
        t.expires_at
            .map(|e| format!(", expires {}", e.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    )?;
    writeln!(out, "{}", issued.secret.expose_secret())?;
    writeln!(
        std::io::stderr(),
        "note: the token is shown once; orteam keeps only its hash"
    )?;
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn stamp(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

async fn list(cx: &Context, args: TokenListArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    acting_as(cx, &ledger, &Action::ManageTokens).await?;
    let tokens = ledger.admin_tokens().await?;
    let now = cx.now();
    let mut out = std::io::stdout().lock();
    if args.format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tokens)?)?;
    } else {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "name",
            "token",
            "role",
            "teams",
            "max raise",
            "created",
            "by",
            "expires",
            "state",
            "from",
        ]);
        for k in &tokens {
            let state = if k.revoked_at.is_some() {
                "revoked"
            } else if !k.is_live(now) {
                "expired"
            } else {
                "live"
            };
            t.add_row(vec![
                k.name.clone(),
                k.display_prefix(),
                k.role.to_string(),
                k.teams.join(", "),
                k.max_raise
                    .map(|m| m.to_usd(2))
                    .unwrap_or_else(|| "-".into()),
                stamp(Some(k.created_at)),
                k.created_by.clone(),
                stamp(k.expires_at),
                state.into(),
                // Only a team file's tokens are changed or revoked, by that org's `team apply`.
                match &k.file_org {
                    Some(org) => format!("team file ({org})"),
                    None => "token create".to_owned(),
                },
            ]);
        }
        writeln!(out, "{t}")?;
    }
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn revoke(cx: &Context, args: TokenRevokeArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    let who = acting_as(cx, &ledger, &Action::ManageTokens).await?;
    let question = format!(
        "Revoke the admin token {:?}? It stops working at once.",
        args.name
    );
    if !crate::confirm::confirm(&question, args.yes, &format!("revoke token {}", args.name))? {
        let _ = ledger.shutdown().await;
        return Ok(ExitCode::FAILURE);
    }
    ledger
        .revoke_admin_token(&args.name, &who.name, Some("cli".into()))
        .await?;
    writeln!(std::io::stdout(), "revoked token {}", args.name)?;
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
