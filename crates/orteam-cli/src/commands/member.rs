//! `orteam member revoke MEMBER`: the member loses access at once.

use std::io::Write;
use std::process::ExitCode;

use orteam_team::revoke_member;

use crate::args_team::{MemberArgs, MemberCommand, MemberRevokeArgs};
use crate::context::Context;

pub async fn run(cx: &Context, args: MemberArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MemberCommand::Revoke(a) => revoke(cx, a).await,
    }
}

async fn revoke(cx: &Context, args: MemberRevokeArgs) -> anyhow::Result<ExitCode> {
    let ledger = cx.open_ledger(&args.connect).await?;
    let has_upstream = ledger
        .directory()
        .upstream_keys
        .iter()
        .any(|k| k.member_id == args.member);
    let client = if has_upstream || args.connect.provisioning_key.is_some() {
        Some(cx.client(&args.connect)?)
    } else {
        None
    };
    let r = revoke_member(&ledger, client.as_ref(), &args.member, cx.now()).await?;
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
