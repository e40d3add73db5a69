//! Who the CLI acts as. With `ORTEAM_TOKEN` set to a named `ota-…` token, the CLI acts with that
//! token's role and every command asks the same rule as the admin API
//! (`orteam_core::access::authorize`); without it, whoever holds the database URL is an admin,
//! recorded in the audit log as `cli:<user>`.

use orteam_core::access::{Action, Principal, Role, authorize};
use orteam_ledger::{Ledger, NewAuditEntry};
use secrecy::SecretString;

use crate::context::Context;

/// The CLI's principal, allowed to do `action` (else the rule's reason as the error).
pub async fn acting_as(
    _cx: &Context,
    ledger: &Ledger,
    action: &Action<'_>,
) -> anyhow::Result<Principal> {
    let p = match std::env::var(orteam_core::env::ORTEAM_TOKEN) {
        Ok(token) if !token.is_empty() => {
            match ledger
                .authenticate_admin_token(&SecretString::from(token))
                .await?
            {
                Ok(t) => t.principal(),
                Err(refused) => {
                    anyhow::bail!("{}: {refused}", orteam_core::env::ORTEAM_TOKEN)
                }
            }
        }
        _ => Principal {
            name: format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            ),
            role: Role::Admin,
            teams: Vec::new(),
            member: None,
            max_raise: None,
        },
    };
    authorize(&p, action)?;
    Ok(p)
}

/// Records a CLI action in the audit log.
pub async fn record(
    ledger: &Ledger,
    who: &Principal,
    action: &str,
    target: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    ledger
        .audit(NewAuditEntry {
            actor: who.name.clone(),
            action: action.to_owned(),
            target,
            before: before.map(|v| v.to_string()),
            after: after.map(|v| v.to_string()),
            source: Some("cli".into()),
        })
        .await?;
    Ok(())
}
