//! Guardrails: or_guardrails_list, or_guardrail_get, or_guardrails_assignments (read) and
//! create / update / delete / (un)assign keys and members (write), on the official paths
//! (`/guardrails/{id}/assignments/keys[/remove]`, `…/members[/remove]`).

use std::collections::{BTreeMap, HashMap};

use orteam_core::Window;
use orteam_openrouter::Patch;
use orteam_openrouter::types::guardrails::{
    CreateGuardrailRequest, Guardrail, ListGuardrailsParams, UpdateGuardrailRequest,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Args, NoArgs, Reset, ToolResult, Usd, all_pages, nullable, required};
use crate::OrteamMcp;
use crate::format::{json_inline, list_or_empty, m2, ts_opt};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardrailIdArgs {
    /// The guardrail's id (a UUID, from or_guardrails_list).
    id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardrailCreateArgs {
    /// Name of the guardrail.
    name: String,
    /// Free-text description.
    #[serde(default)]
    description: Option<String>,
    /// Spending budget in USD (>= 0) per key or member it is assigned to. Omit for no budget.
    #[serde(default)]
    limit_usd: Option<Usd>,
    /// When the budget resets (00:00 UTC). Omit for a cumulative budget.
    #[serde(default)]
    reset_interval: Option<Reset>,
    /// Only these providers may serve requests (e.g. ["OpenAI", "Anthropic"]).
    #[serde(default)]
    allowed_providers: Option<Vec<String>>,
    /// These providers are never used.
    #[serde(default)]
    ignored_providers: Option<Vec<String>>,
    /// Only these models may be used (ids such as "openai/gpt-4o").
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    /// These models are blocked.
    #[serde(default)]
    ignored_models: Option<Vec<String>>,
    /// Only route to zero-data-retention endpoints.
    #[serde(default)]
    enforce_zdr: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardrailUpdateArgs {
    /// The guardrail's id (UUID).
    id: String,
    /// New name.
    #[serde(default)]
    name: Option<String>,
    /// New description; null clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<String>")]
    description: Option<Option<String>>,
    /// New budget in USD (>= 0); null removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Usd>")]
    limit_usd: Option<Option<Usd>>,
    /// New reset interval; null makes the budget cumulative.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Reset>")]
    reset_interval: Option<Option<Reset>>,
    /// Replaces the provider allowlist; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<String>>")]
    allowed_providers: Option<Option<Vec<String>>>,
    /// Replaces the provider blocklist; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<String>>")]
    ignored_providers: Option<Option<Vec<String>>>,
    /// Replaces the model allowlist; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<String>>")]
    allowed_models: Option<Option<Vec<String>>>,
    /// Replaces the model blocklist; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(with = "Option<Vec<String>>")]
    ignored_models: Option<Option<Vec<String>>>,
    /// Only route to zero-data-retention endpoints.
    #[serde(default)]
    enforce_zdr: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignKeysArgs {
    /// The guardrail's id (UUID).
    id: String,
    /// Hashes of the API keys (from or_keys_list); at least one.
    #[schemars(length(min = 1))]
    hashes: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignMembersArgs {
    /// The guardrail's id (UUID).
    id: String,
    /// User ids of organization members (user_…, from or_org_members); at least one.
    #[schemars(length(min = 1))]
    user_ids: Vec<String>,
}

fn non_empty_list(tool: &str, arg: &str, items: &[String]) -> Result<Vec<String>, String> {
    let v: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if v.is_empty() {
        Err(format!(
            "{tool}: `{arg}` must contain at least one non-empty value"
        ))
    } else {
        Ok(v)
    }
}

fn patch<T>(v: Option<Option<T>>) -> Patch<T> {
    match v {
        None => Patch::Keep,
        Some(v) => Patch::from_option(v),
    }
}

fn limit_text(g: &Guardrail) -> String {
    match g.limit_usd {
        Some(l) => format!(
            "limit {} ({})",
            m2(l),
            g.reset_interval.map_or("no reset", Window::as_str)
        ),
        None => "no spend limit".to_owned(),
    }
}

fn guardrail_line(g: &Guardrail) -> String {
    let mut s = format!("- **{}** (id: `{}`) | {}", g.name, g.id, limit_text(g));
    if g.enforce_zdr == Some(true) {
        s.push_str(" | ZDR enforced");
    }
    let lists = [
        ("providers⊆", &g.allowed_providers),
        ("providers∌", &g.ignored_providers),
        ("models⊆", &g.allowed_models),
        ("models∌", &g.ignored_models),
    ];
    for (label, list) in lists {
        if let Some(items) = list.as_ref().filter(|l| !l.is_empty()) {
            s.push_str(&format!(" | {label}[{}]", items.join(",")));
        }
    }
    s
}

fn guardrail_details(g: &Guardrail) -> String {
    let mut lines = vec![format!("**{}**", g.name), format!("Id: `{}`", g.id)];
    if let Some(d) = g.description.as_deref().filter(|d| !d.is_empty()) {
        lines.push(format!("Description: {d}"));
    }
    match g.limit_usd {
        Some(l) => lines.push(format!(
            "Limit: {}{}",
            m2(l),
            g.reset_interval
                .map(|w| format!(" (resets {})", w.as_str()))
                .unwrap_or_default()
        )),
        None => lines.push("Limit: none".to_owned()),
    }
    if g.enforce_zdr == Some(true) {
        lines.push("ZDR: enforced".to_owned());
    }
    let lists = [
        ("Allowed providers", &g.allowed_providers),
        ("Ignored providers", &g.ignored_providers),
        ("Allowed models", &g.allowed_models),
        ("Ignored models", &g.ignored_models),
    ];
    for (label, list) in lists {
        if let Some(items) = list {
            lines.push(format!("{label}: {}", list_or_empty(items)));
        }
    }
    lines.push(format!("Created: {}", ts_opt(g.created_at.as_ref())));
    lines.push(format!("Updated: {}", ts_opt(g.updated_at.as_ref())));
    if let Some(w) = &g.workspace_id {
        lines.push(format!("Workspace id: {w}"));
    }
    for (name, value) in &g.extra {
        lines.push(format!("{name}: {}", json_inline(value)));
    }
    lines.join("\n")
}

impl OrteamMcp {
    /// The error for a guardrail call, naming an unknown id clearly.
    fn guardrail_error(&self, tool: &str, id: &str, e: &orteam_openrouter::ClientError) -> String {
        if crate::upstream::is_not_found(e) {
            format!(
                "{tool}: no guardrail with id `{id}` (404). Use or_guardrails_list to find ids."
            )
        } else {
            self.upstream_error(tool, e)
        }
    }
}

#[tool_router(router = guardrails_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_guardrails_list",
        description = "All guardrails of the account: name, id, USD budget with reset interval, \
                       ZDR enforcement and provider/model allow- and blocklists. A guardrail \
                       only applies to the keys and members it is assigned to (see \
                       or_guardrails_assignments).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_guardrails_list(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let client = self.client();
        let all = all_pages(|p| async move {
            client
                .list_guardrails(&ListGuardrailsParams {
                    offset: p.offset,
                    limit: p.limit,
                    workspace_id: None,
                })
                .await
        })
        .await
        .map_err(|e| self.upstream_error("or_guardrails_list", &e))?;
        if all.is_empty() {
            return Ok("No guardrails configured.".to_owned());
        }
        let lines: Vec<String> = all.iter().map(guardrail_line).collect();
        Ok(format!(
            "Guardrails ({}):\n\n{}",
            all.len(),
            lines.join("\n")
        ))
    }

    #[tool(
        name = "or_guardrail_get",
        description = "Full details of one guardrail by id: description, budget and reset, ZDR, \
                       allowed/ignored providers and models, created/updated times.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_guardrail_get(
        &self,
        Parameters(Args(args)): Parameters<Args<GuardrailIdArgs>>,
    ) -> ToolResult {
        let id = required("or_guardrail_get", "id", &args.id)?;
        let g = self
            .client()
            .get_guardrail(id)
            .await
            .map_err(|e| self.guardrail_error("or_guardrail_get", id, &e))?;
        Ok(guardrail_details(&g))
    }

    #[tool(
        name = "or_guardrails_assignments",
        description = "Which API keys and organization members each guardrail is assigned to, \
                       grouped by guardrail id (keys shown as name and hash, members as user id \
                       and email when known). Each key or member has at most one guardrail.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_guardrails_assignments(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let client = self.client();
        let (keys, members) = tokio::join!(
            all_pages(|p| async move { client.key_assignments(&p).await }),
            all_pages(|p| async move { client.member_assignments(&p).await })
        );
        let keys = keys.map_err(|e| self.upstream_error("or_guardrails_assignments", &e))?;
        let members = members.map_err(|e| self.upstream_error("or_guardrails_assignments", &e))?;
        if keys.is_empty() && members.is_empty() {
            return Ok("No guardrail assignments.".to_owned());
        }
        // Best effort: member emails (accounts without an organization have no member list).
        let emails: HashMap<String, String> = if members.is_empty() {
            HashMap::new()
        } else {
            all_pages(|p| async move { client.organization_members(&p).await })
                .await
                .map(|ms| {
                    ms.into_iter()
                        .filter_map(|m| m.email.map(|e| (m.id, e)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut groups: BTreeMap<&str, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for k in &keys {
            let label = match k.key_name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{name} (hash: {})", k.key_hash),
                None => k.key_hash.clone(),
            };
            groups.entry(&k.guardrail_id).or_default().0.push(label);
        }
        for m in &members {
            let label = match emails.get(&m.user_id) {
                Some(email) => format!("{} ({email})", m.user_id),
                None => m.user_id.clone(),
            };
            groups.entry(&m.guardrail_id).or_default().1.push(label);
        }
        let mut out = format!(
            "Guardrail assignments: {} key(s), {} member(s) across {} guardrail(s)",
            keys.len(),
            members.len(),
            groups.len()
        );
        for (id, (ks, ms)) in &groups {
            out.push_str(&format!("\n\nGuardrail `{id}`:"));
            if !ks.is_empty() {
                out.push_str(&format!("\n  keys ({}): {}", ks.len(), ks.join(", ")));
            }
            if !ms.is_empty() {
                out.push_str(&format!("\n  members ({}): {}", ms.len(), ms.join(", ")));
            }
        }
        Ok(out)
    }
}

#[tool_router(router = guardrails_write_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_guardrail_create",
        description = "Create a guardrail: an optional USD budget with reset interval, \
                       provider/model allow- and blocklists and ZDR enforcement. It has no effect \
                       until assigned to keys (or_guardrail_assign_keys) or members \
                       (or_guardrail_assign_members). Returns the new id.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_create(
        &self,
        Parameters(Args(args)): Parameters<Args<GuardrailCreateArgs>>,
    ) -> ToolResult {
        let name = required("or_guardrail_create", "name", &args.name)?;
        let req = CreateGuardrailRequest {
            name: name.to_owned(),
            description: args.description,
            limit_usd: args.limit_usd.map(|u| u.0),
            reset_interval: args.reset_interval.map(Window::from),
            allowed_providers: args.allowed_providers,
            ignored_providers: args.ignored_providers,
            allowed_models: args.allowed_models,
            ignored_models: args.ignored_models,
            enforce_zdr: args.enforce_zdr,
            include_byok_in_budgets: None,
            workspace_id: None,
        };
        let g = self
            .client()
            .create_guardrail(&req)
            .await
            .map_err(|e| self.upstream_error("or_guardrail_create", &e))?;
        let name = if g.name.is_empty() {
            "unnamed"
        } else {
            &g.name
        };
        Ok(format!("Created guardrail `{}` ({name}).", g.id))
    }

    #[tool(
        name = "or_guardrail_update",
        description = "Change a guardrail by id. Only the fields given change; null clears a \
                       field (description, budget, reset interval, a list); lists are replaced \
                       whole. At least one field is required.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_update(
        &self,
        Parameters(Args(args)): Parameters<Args<GuardrailUpdateArgs>>,
    ) -> ToolResult {
        let id = required("or_guardrail_update", "id", &args.id)?;
        let name = match &args.name {
            Some(n) => Some(required("or_guardrail_update", "name", n)?.to_owned()),
            None => None,
        };
        let req = UpdateGuardrailRequest {
            name,
            description: patch(args.description),
            limit_usd: patch(args.limit_usd.map(|o| o.map(|u| u.0))),
            reset_interval: patch(args.reset_interval.map(|o| o.map(Window::from))),
            allowed_providers: patch(args.allowed_providers),
            ignored_providers: patch(args.ignored_providers),
            allowed_models: patch(args.allowed_models),
            ignored_models: patch(args.ignored_models),
            enforce_zdr: args.enforce_zdr.map_or(Patch::Keep, Patch::Set),
            include_byok_in_budgets: None,
        };
        if req.is_empty() {
            return Err("or_guardrail_update: at least one field must be provided".to_owned());
        }
        let g = self
            .client()
            .update_guardrail(id, &req)
            .await
            .map_err(|e| self.guardrail_error("or_guardrail_update", id, &e))?;
        Ok(format!("Updated guardrail `{}` ({}).", g.id, g.name))
    }

    #[tool(
        name = "or_guardrail_delete",
        description = "Delete a guardrail by id; its key and member assignments go with it. \
                       Cannot be undone.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_delete(
        &self,
        Parameters(Args(args)): Parameters<Args<GuardrailIdArgs>>,
    ) -> ToolResult {
        let id = required("or_guardrail_delete", "id", &args.id)?;
        self.client()
            .delete_guardrail(id)
            .await
            .map_err(|e| self.guardrail_error("or_guardrail_delete", id, &e))?;
        Ok(format!("Deleted guardrail `{id}`."))
    }

    #[tool(
        name = "or_guardrail_assign_keys",
        description = "Assign a guardrail to API keys (by hash). A key has at most one guardrail; \
                       returns how many keys were newly assigned.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_assign_keys(
        &self,
        Parameters(Args(args)): Parameters<Args<AssignKeysArgs>>,
    ) -> ToolResult {
        let tool = "or_guardrail_assign_keys";
        let id = required(tool, "id", &args.id)?;
        let hashes = non_empty_list(tool, "hashes", &args.hashes)?;
        let r = self
            .client()
            .assign_keys(id, &hashes)
            .await
            .map_err(|e| self.guardrail_error(tool, id, &e))?;
        Ok(format!(
            "Assigned guardrail `{id}` to {} key(s).",
            r.assigned_count
        ))
    }

    #[tool(
        name = "or_guardrail_unassign_keys",
        description = "Remove a guardrail from API keys (by hash); returns how many keys were \
                       unassigned.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_unassign_keys(
        &self,
        Parameters(Args(args)): Parameters<Args<AssignKeysArgs>>,
    ) -> ToolResult {
        let tool = "or_guardrail_unassign_keys";
        let id = required(tool, "id", &args.id)?;
        let hashes = non_empty_list(tool, "hashes", &args.hashes)?;
        let r = self
            .client()
            .unassign_keys(id, &hashes)
            .await
            .map_err(|e| self.guardrail_error(tool, id, &e))?;
        Ok(format!(
            "Unassigned guardrail `{id}` from {} key(s).",
            r.unassigned_count
        ))
    }

    #[tool(
        name = "or_guardrail_assign_members",
        description = "Assign a guardrail to organization members (by user id); it then also \
                       covers the keys those members created. Returns how many members were \
                       newly assigned.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_assign_members(
        &self,
        Parameters(Args(args)): Parameters<Args<AssignMembersArgs>>,
    ) -> ToolResult {
        let tool = "or_guardrail_assign_members";
        let id = required(tool, "id", &args.id)?;
        let users = non_empty_list(tool, "user_ids", &args.user_ids)?;
        let r = self
            .client()
            .assign_members(id, &users)
            .await
            .map_err(|e| self.guardrail_error(tool, id, &e))?;
        Ok(format!(
            "Assigned guardrail `{id}` to {} member(s).",
            r.assigned_count
        ))
    }

    #[tool(
        name = "or_guardrail_unassign_members",
        description = "Remove a guardrail from organization members (by user id); returns how \
                       many members were unassigned.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn or_guardrail_unassign_members(
        &self,
        Parameters(Args(args)): Parameters<Args<AssignMembersArgs>>,
    ) -> ToolResult {
        let tool = "or_guardrail_unassign_members";
        let id = required(tool, "id", &args.id)?;
        let users = non_empty_list(tool, "user_ids", &args.user_ids)?;
        let r = self
            .client()
            .unassign_members(id, &users)
            .await
            .map_err(|e| self.guardrail_error(tool, id, &e))?;
        Ok(format!(
            "Unassigned guardrail `{id}` from {} member(s).",
            r.unassigned_count
        ))
    }
}
