//! Credits and API keys: or_credits, or_current_key, or_keys_list, or_key_get (read) and
//! or_key_create, or_key_update, or_key_delete (write).

use orteam_core::Window;
use orteam_openrouter::Patch;
use orteam_openrouter::types::keys::{CreateKeyRequest, Key, ListKeysParams, UpdateKeyRequest};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{Args, NoArgs, Reset, ToolResult, Usd, nullable, parse_timestamp, required};
use crate::OrteamMcp;
use crate::format::{day, json_inline, m2, m2_opt, m4, raw, ts, ts_opt};

/// Keys per `GET /keys` page.
const KEYS_PAGE: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysListArgs {
    /// Include disabled keys (default true). With false, disabled keys are left out.
    #[serde(default)]
    include_disabled: Option<bool>,
    /// Keys to skip (pages hold 100 keys, newest first). Default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyHashArgs {
    /// The key's hash (its 64-hex-char id, as shown by or_keys_list), not the secret.
    hash: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyCreateArgs {
    /// Name of the new key (shown in dashboards and or_keys_list).
    name: String,
    /// Spending limit in USD (>= 0). Omit for no limit.
    #[serde(default)]
    limit: Option<Usd>,
    /// When the limit resets (00:00 UTC; weekly resets on Monday). Omit for a cumulative limit.
    #[serde(default)]
    limit_reset: Option<Reset>,
    /// Expiry as an ISO-8601 UTC timestamp, e.g. 2026-05-25T00:00:00Z (a bare date means 00:00
    /// UTC). Omit for a key that never expires.
    #[serde(default)]
    expires_at: Option<String>,
    /// Count BYOK (bring-your-own-key) spend against the limit too.
    #[serde(default)]
    include_byok_in_limit: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyUpdateArgs {
    /// The key's hash (64 hex chars).
    hash: String,
    /// New name.
    #[serde(default)]
    name: Option<String>,
    /// true disables the key (requests with it fail), false re-enables it.
    #[serde(default)]
    disabled: Option<bool>,
    /// New spending limit in USD (>= 0); null removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Usd>")]
    limit: Option<Option<Usd>>,
    /// New reset period; null makes the limit cumulative.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Reset>")]
    limit_reset: Option<Option<Reset>>,
    /// New expiry (ISO-8601 UTC, e.g. 2026-05-25T00:00:00Z); null removes the expiry.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    expires_at: Option<Option<String>>,
    /// Count BYOK spend against the limit.
    #[serde(default)]
    include_byok_in_limit: Option<bool>,
}

fn reset_suffix(r: Option<Window>) -> String {
    r.map(|w| format!(" {}", w.as_str())).unwrap_or_default()
}

fn key_line(k: &Key) -> String {
    let mut s = format!("- **{}**", k.name);
    if k.disabled {
        s.push_str(" (disabled)");
    }
    s.push_str(&format!(" | usage {}", m2(k.usage)));
    match k.limit {
        Some(limit) => s.push_str(&format!(
            " | limit {}{}, remaining {}",
            m2(limit),
            reset_suffix(k.limit_reset),
            m2_opt(k.limit_remaining)
        )),
        None => s.push_str(" | no limit"),
    }
    if let Some(e) = &k.expires_at {
        s.push_str(&format!(" | expires {}", day(e)));
    }
    s.push_str(&format!(" | hash: `{}` | label: {}", k.hash, k.label));
    s
}

fn key_details(k: &Key) -> String {
    let mut lines = vec![
        format!("Name: {}", k.name),
        format!("Label: {}", k.label),
        format!("Hash: {}", k.hash),
        format!("Disabled: {}", k.disabled),
    ];
    match k.limit {
        Some(limit) => lines.push(format!(
            "Limit: {}{} (remaining: {})",
            m2(limit),
            k.limit_reset
                .map(|w| format!(" (resets {})", w.as_str()))
                .unwrap_or_default(),
            m2_opt(k.limit_remaining)
        )),
        None => lines.push("Limit: none".to_owned()),
    }
    lines.push(format!(
        "Usage: total={}, day={}, week={}, month={}",
        m2(k.usage),
        m2(k.usage_daily),
        m2(k.usage_weekly),
        m2(k.usage_monthly)
    ));
    if !(k.byok_usage.is_zero()
        && k.byok_usage_daily.is_zero()
        && k.byok_usage_weekly.is_zero()
        && k.byok_usage_monthly.is_zero())
    {
        lines.push(format!(
            "BYOK usage: total={}, day={}, week={}, month={}",
            m2(k.byok_usage),
            m2(k.byok_usage_daily),
            m2(k.byok_usage_weekly),
            m2(k.byok_usage_monthly)
        ));
    }
    if k.include_byok_in_limit {
        lines.push("Include BYOK in limit: true".to_owned());
    }
    if let Some(e) = &k.expires_at {
        lines.push(format!("Expires: {}", ts(e)));
    }
    lines.push(format!("Created: {}", ts(&k.created_at)));
    lines.push(format!("Updated: {}", ts_opt(k.updated_at.as_ref())));
    if let Some(c) = &k.creator_user_id {
        lines.push(format!("Creator user id: {c}"));
    }
    if let Some(w) = &k.workspace_id {
        lines.push(format!("Workspace id: {w}"));
    }
    for (name, value) in &k.extra {
        lines.push(format!("{name}: {}", json_inline(value)));
    }
    lines.join("\n")
}

#[tool_router(router = keys_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_credits",
        description = "Account balance: total credits purchased, total used and remaining, in USD \
                       (1 credit = $1). Use it to answer \"how much money is left?\".",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_credits(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let c = self
            .client()
            .credits()
            .await
            .map_err(|e| self.upstream_error("or_credits", &e))?;
        Ok(format!(
            "Credits:\n- Purchased: {}\n- Used: {}\n- Remaining: {}",
            m4(c.total_credits),
            m4(c.total_usage),
            m4(c.balance())
        ))
    }

    #[tool(
        name = "or_current_key",
        description = "Metadata of the key this server itself uses (GET /key): label, type \
                       (management/provisioning or inference), limit, usage (total, day, week, \
                       month) and expiry. Use it to check which key is configured.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_current_key(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let k = self
            .client()
            .current_key()
            .await
            .map_err(|e| self.upstream_error("or_current_key", &e))?;
        let mut flags = Vec::new();
        if k.is_management_key {
            flags.push("management");
        }
        if k.is_provisioning_key {
            flags.push("provisioning");
        }
        let kind = if flags.is_empty() {
            "inference".to_owned()
        } else {
            flags.join(", ")
        };
        let mut lines = vec![
            format!("Label: {}", k.label),
            format!("Type: {kind}"),
            format!("Limit: {}", k.limit.map_or_else(|| "none".to_owned(), raw)),
            format!(
                "Usage: total={}, day={}, week={}, month={}",
                raw(k.usage),
                raw(k.usage_daily),
                raw(k.usage_weekly),
                raw(k.usage_monthly)
            ),
        ];
        if let Some(e) = &k.expires_at {
            lines.push(format!("Expires: {}", ts(e)));
        }
        Ok(lines.join("\n"))
    }

    #[tool(
        name = "or_keys_list",
        description = "List the account's API (inference) keys, newest first, 100 per page: name, \
                       disabled flag, total usage, limit with reset period and remaining amount, \
                       expiry, hash (the id other key tools take) and masked label. Secrets are \
                       never shown. Use offset=100, 200… for more pages.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_keys_list(
        &self,
        Parameters(Args(args)): Parameters<Args<KeysListArgs>>,
    ) -> ToolResult {
        let include_disabled = args.include_disabled.unwrap_or(true);
        let offset = args.offset.unwrap_or(0);
        let keys = self
            .client()
            .list_keys(&ListKeysParams {
                offset: Some(offset),
                include_disabled: Some(include_disabled),
                workspace_id: None,
            })
            .await
            .map_err(|e| self.upstream_error("or_keys_list", &e))?;
        let full_page = keys.len() >= KEYS_PAGE;
        let keys: Vec<&Key> = keys
            .iter()
            .filter(|k| include_disabled || !k.disabled)
            .collect();
        if keys.is_empty() {
            return Ok("No keys.".to_owned());
        }
        let mut out = format!("Keys ({}):\n\n", keys.len());
        out.push_str(
            &keys
                .iter()
                .map(|k| key_line(k))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        if full_page {
            out.push_str(&format!(
                "\n\n…this page is full; call or_keys_list with offset={} for more.",
                u64::from(offset) + KEYS_PAGE as u64
            ));
        }
        Ok(out)
    }

    #[tool(
        name = "or_key_get",
        description = "Full details of one API key by its hash: name, label, disabled, limit \
                       (reset period, remaining), usage per total/day/week/month, BYOK usage, \
                       expiry, created/updated times and any other raw fields.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_key_get(
        &self,
        Parameters(Args(args)): Parameters<Args<KeyHashArgs>>,
    ) -> ToolResult {
        let hash = required("or_key_get", "hash", &args.hash)?;
        let k = self.client().get_key(hash).await.map_err(|e| {
            if crate::upstream::is_not_found(&e) {
                format!(
                    "or_key_get: no key with hash `{hash}` (404). Use or_keys_list to find key \
                     hashes."
                )
            } else {
                self.upstream_error("or_key_get", &e)
            }
        })?;
        Ok(key_details(&k))
    }
}

#[tool_router(router = keys_write_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_key_create",
        description = "Create a new API (inference) key, optionally with a USD spending limit \
                       that resets daily/weekly/monthly and an expiry. Returns the key's hash and \
                       its secret (sk-or-v1-…), which is shown ONLY ONCE: give it to the user to \
                       store.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn or_key_create(
        &self,
        Parameters(Args(args)): Parameters<Args<KeyCreateArgs>>,
    ) -> ToolResult {
        let name = required("or_key_create", "name", &args.name)?;
        let expires_at = match &args.expires_at {
            Some(s) => Some(parse_timestamp("or_key_create", "expires_at", s)?),
            None => None,
        };
        let req = CreateKeyRequest {
            name: name.to_owned(),
            limit: args.limit.map(|u| u.0),
            limit_reset: args.limit_reset.map(Window::from),
            include_byok_in_limit: args.include_byok_in_limit,
            expires_at,
            creator_user_id: None,
            workspace_id: None,
        };
        let created = self
            .client()
            .create_key(&req)
            .await
            .map_err(|e| self.upstream_error("or_key_create", &e))?;
        let k = &created.data;
        let mut lines = vec![
            format!("Created key **{}**", k.name),
            format!("Hash: {}", k.hash),
            format!("Label: {}", k.label),
        ];
        if let Some(limit) = k.limit {
            lines.push(format!(
                "Limit: ${}{}",
                raw(limit),
                k.limit_reset
                    .map(|w| format!(" (resets {})", w.as_str()))
                    .unwrap_or_default()
            ));
        }
        if let Some(e) = &k.expires_at {
            lines.push(format!("Expires: {}", ts(e)));
        }
        lines.push(String::new());
        lines.push(format!("Secret: `{}`", created.key.expose_secret()));
        lines.push("⚠️ This secret cannot be retrieved later — store it now.".to_owned());
        Ok(lines.join("\n"))
    }

    #[tool(
        name = "or_key_update",
        description = "Change an API key by hash: name, disabled (true to block it, false to \
                       re-enable), limit in USD (null removes it), limit_reset (null makes the \
                       limit cumulative), expires_at (null removes it), include_byok_in_limit. \
                       Only the fields given are changed; at least one is required.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_key_update(
        &self,
        Parameters(Args(args)): Parameters<Args<KeyUpdateArgs>>,
    ) -> ToolResult {
        let hash = required("or_key_update", "hash", &args.hash)?;
        let name = match &args.name {
            Some(n) => Some(required("or_key_update", "name", n)?.to_owned()),
            None => None,
        };
        let expires_at = match &args.expires_at {
            None => Patch::Keep,
            Some(None) => Patch::Clear,
            Some(Some(s)) => Patch::Set(parse_timestamp("or_key_update", "expires_at", s)?),
        };
        let req = UpdateKeyRequest {
            name,
            disabled: args.disabled,
            limit: match args.limit {
                None => Patch::Keep,
                Some(v) => Patch::from_option(v.map(|u| u.0)),
            },
            limit_reset: match args.limit_reset {
                None => Patch::Keep,
                Some(v) => Patch::from_option(v.map(Window::from)),
            },
            include_byok_in_limit: args.include_byok_in_limit,
            expires_at,
            workspace_id: None,
        };
        if req.is_empty() {
            return Err(
                "or_key_update: at least one field must be provided (name, disabled, \
                        limit, limit_reset, expires_at or include_byok_in_limit)"
                    .to_owned(),
            );
        }
        let k = self.client().update_key(hash, &req).await.map_err(|e| {
            if crate::upstream::is_not_found(&e) {
                format!("or_key_update: no key with hash `{hash}` (404). Use or_keys_list.")
            } else {
                self.upstream_error("or_key_update", &e)
            }
        })?;
        let limit = match k.limit {
            Some(l) => format!(
                "{}{}",
                raw(l),
                k.limit_reset
                    .map(|w| format!(" ({})", w.as_str()))
                    .unwrap_or_default()
            ),
            None => "none".to_owned(),
        };
        Ok(format!(
            "Updated **{}** (hash: {}). Disabled: {}. Limit: {limit}.",
            k.name, k.hash, k.disabled
        ))
    }

    #[tool(
        name = "or_key_delete",
        description = "Permanently delete an API key by hash. Requests made with it fail \
                       afterwards; this cannot be undone (to pause a key, use or_key_update with \
                       disabled=true instead).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_key_delete(
        &self,
        Parameters(Args(args)): Parameters<Args<KeyHashArgs>>,
    ) -> ToolResult {
        let hash = required("or_key_delete", "hash", &args.hash)?;
        self.client().delete_key(hash).await.map_err(|e| {
            if crate::upstream::is_not_found(&e) {
                format!("or_key_delete: no key with hash `{hash}` (404); nothing was deleted.")
            } else {
                self.upstream_error("or_key_delete", &e)
            }
        })?;
        Ok(format!("Deleted key with hash {hash}."))
    }
}
