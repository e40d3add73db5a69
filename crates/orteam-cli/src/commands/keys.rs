//! `orteam keys rotate MEMBER` and `orteam keys list`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use comfy_table::{Table, presets};
use orteam_core::Clock;
use orteam_team::naming::KeyLabel;
use orteam_team::plan::is_pending_delivery;
use orteam_team::{file, rotate_member};
use serde::Serialize;

use super::team::{Sink, client, clock, open_ledger};
use crate::args_team::{KeysArgs, KeysCommand, KeysListArgs, KeysRotateArgs, OutputFormat};

pub async fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Rotate(a) => rotate(a).await,
        KeysCommand::List(a) => list(a).await,
    }
}

async fn rotate(args: KeysRotateArgs) -> anyhow::Result<ExitCode> {
    let grace = args
        .grace
        .as_deref()
        .map(file::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let clock = clock()?;
    let ledger = open_ledger(&args.connect, &clock).await?;
    // The provisioning key is only needed when the member has an OpenRouter key.
    let needs_client = ledger
        .directory()
        .upstream_keys
        .iter()
        .any(|k| k.member_id == args.member);
    let client = if needs_client {
        Some(client(&args.connect)?)
    } else {
        args.connect
            .provisioning_key
            .as_ref()
            .map(|_| client(&args.connect))
            .transpose()?
    };
    let mut sink = Sink::new(args.secrets_out.as_deref())?;
    let now = clock.now();
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

#[derive(Debug, Serialize)]
struct KeyRow {
    member: String,
    kind: &'static str,
    key: String,
    generation: Option<u64>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    rotation_due: Option<DateTime<Utc>>,
    state: String,
}

async fn list(args: KeysListArgs) -> anyhow::Result<ExitCode> {
    let clock = clock()?;
    let ledger = open_ledger(&args.connect, &clock).await?;
    let now = clock.now();
    let dir = ledger.directory();
    let mut rows = Vec::new();
    for k in dir.virtual_keys.values() {
        let label = KeyLabel::parse(&k.name);
        let state = if k.revoked_at.is_some() {
            "revoked".to_owned()
        } else if k.disabled {
            "disabled".to_owned()
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired".to_owned()
        } else if is_pending_delivery(k) {
            "pending delivery".to_owned()
        } else if dir
            .members
            .get(&k.member_id)
            .is_some_and(|m| m.state != orteam_ledger::MemberState::Active)
        {
            "member removed".to_owned()
        } else {
            "active".to_owned()
        };
        if !args.all && k.revoked_at.is_some() {
            continue;
        }
        let rotation_due = label.as_ref().and_then(|l| {
            l.rotate_every
                .map(|r| k.created_at + TimeDelta::from_std(r).unwrap_or(TimeDelta::MAX))
        });
        rows.push(KeyRow {
            member: k.member_id.clone(),
            kind: "gateway",
            key: k.display_prefix(),
            generation: label.as_ref().map(|l| l.generation),
            created_at: k.created_at,
            expires_at: k.expires_at,
            rotation_due: if state == "active" {
                rotation_due
            } else {
                None
            },
            state,
        });
    }
    for k in &dir.upstream_keys {
        let label = KeyLabel::parse(&k.label);
        let rotation_due = label.as_ref().and_then(|l| {
            l.rotate_every
                .map(|r| k.created_at + TimeDelta::from_std(r).unwrap_or(TimeDelta::MAX))
        });
        rows.push(KeyRow {
            member: k.member_id.clone(),
            kind: if k.has_secret {
                "upstream (gateway-held)"
            } else {
                "direct OpenRouter"
            },
            key: label
                .as_ref()
                .map(KeyLabel::name)
                .unwrap_or_else(|| k.label.clone()),
            generation: label.as_ref().map(|l| l.generation),
            created_at: k.created_at,
            expires_at: None,
            rotation_due,
            state: if k.disabled { "disabled" } else { "active" }.to_owned(),
        });
    }
    rows.sort_by(|a, b| {
        (&a.member, a.kind, a.generation, a.created_at).cmp(&(
            &b.member,
            b.kind,
            b.generation,
            b.created_at,
        ))
    });
    let mut out = std::io::stdout().lock();
    if args.format == OutputFormat::Json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&rows).context("encoding the key list")?
        )?;
    } else {
        let fmt = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into())
        };
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "member",
            "kind",
            "key",
            "gen",
            "created",
            "expires",
            "rotation due",
            "state",
        ]);
        for r in &rows {
            t.add_row(vec![
                r.member.clone(),
                r.kind.to_owned(),
                r.key.clone(),
                r.generation.map(|g| g.to_string()).unwrap_or_default(),
                fmt(Some(r.created_at)),
                fmt(r.expires_at),
                fmt(r.rotation_due),
                r.state.clone(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
