//! `orteam member revoke MEMBER`: the member loses access at once.

use std::io::Write;
use std::process::ExitCode;

use orteam_core::Clock;
use orteam_team::revoke_member;

use super::team::{client, clock, open_ledger};
use crate::args_team::{MemberArgs, MemberCommand, MemberRevokeArgs};

pub async fn run(args: MemberArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MemberCommand::Revoke(a) => revoke(a).await,
    }
}

async fn revoke(args: MemberRevokeArgs) -> anyhow::Result<ExitCode> {
    let clock = clock()?;
    let ledger = open_ledger(&args.connect, &clock).await?;
    let has_upstream = ledger
        .directory()
        .upstream_keys
        .iter()
        .any(|k| k.member_id == args.member);
    let client = if has_upstream || args.connect.provisioning_key.is_some() {
        Some(client(&args.connect)?)
    } else {
        None
    };
    let r = revoke_member(&ledger, client.as_ref(), &args.member, clock.now()).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "revoked {}: member {}; {} gateway key{} revoked; {} OpenRouter key{} deleted",
        r.member,
        if r.member_removed {
            "removed"
        } else {
            "was already removed"
        },
        r.virtual_keys.len(),
        if r.virtual_keys.len() == 1 { "" } else { "s" },
        r.upstream_keys.len(),
        if r.upstream_keys.len() == 1 { "" } else { "s" },
    )?;
    writeln!(
        std::io::stderr(),
        "note: also remove {:?} from the team file, or the next `orteam team apply` adds them back",
        r.member
    )?;
    let _ = ledger.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
