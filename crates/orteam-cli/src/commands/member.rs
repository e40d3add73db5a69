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
    let team = ledger
        .directory()
        .members
        .get(&args.member)
        .map(|m| m.team_id.clone())
        .unwrap_or_default();
    let who = crate::commands::access::acting_as(
        cx,
        &ledger,
        &orteam_core::access::Action::Revoke { team: &team },
    )
    .await?;
    let question = format!(
        "Revoke {}'s key(s) and remove the member? Access ends at once.",
        args.member
    );
    if !crate::confirm::confirm(&question, args.yes, &format!("revoke {}", args.member))? {
        let _ = ledger.shutdown().await;
        return Ok(ExitCode::FAILURE);
    }
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
    crate::commands::access::record(
        &ledger,
        &who,
        "revoke_member",
        format!("member:{}", r.member),
        Some(serde_json::json!({ "removed": !r.member_removed })),
        Some(serde_json::json!({
            "removed": true,
            "gateway_keys_revoked": r.virtual_keys.len(),
            "openrouter_keys_deleted": r.upstream_keys.len(),
        })),
    )
    .await?;
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
