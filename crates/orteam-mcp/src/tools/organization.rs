//! or_org_members: members of the OpenRouter organization.

use orteam_openrouter::Pagination;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Args, ToolResult};
use crate::OrteamMcp;
use crate::format::{d10, json_inline};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgMembersArgs {
    /// Members to skip (default 0).
    #[serde(default)]
    #[schemars(range(min = 0))]
    offset: Option<u32>,
    /// Members per page, 1–100 (default 50).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
}

#[tool_router(router = organization_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_org_members",
        description = "Members of the OpenRouter organization: email, name, user id (user_…, what \
                       or_activity's user_id filter and guardrail member assignment take) and \
                       role (org:admin or org:member). Only for organization accounts.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_org_members(
        &self,
        Parameters(Args(args)): Parameters<Args<OrgMembersArgs>>,
    ) -> ToolResult {
        if let Some(l) = args.limit
            && !(1..=100).contains(&l)
        {
            return Err(format!(
                "or_org_members: `limit` must be between 1 and 100, got {l}"
            ));
        }
        let offset = args.offset.unwrap_or(0);
        let page = self
            .client()
            .organization_members(&Pagination {
                offset: Some(offset),
                limit: args.limit,
            })
            .await
            .map_err(|e| {
                if crate::upstream::is_not_found(&e) {
                    format!(
                        "or_org_members: no organization members (404): this account is probably \
                         not an organization, or the key belongs to a personal account. ({})",
                        self.upstream_error("or_org_members", &e)
                    )
                } else {
                    self.upstream_error("or_org_members", &e)
                }
            })?;
        if page.data.is_empty() {
            return Ok("No organization members.".to_owned());
        }
        let lines: Vec<String> = page
            .data
            .iter()
            .map(|m| {
                let name = m.display_name();
                let who = m
                    .email
                    .clone()
                    .filter(|e| !e.is_empty())
                    .or_else(|| name.clone())
                    .unwrap_or_else(|| m.id.clone());
                let mut s = format!(
                    "- {who} | user_id: `{}` | role: {}",
                    m.id,
                    m.role.as_deref().unwrap_or("—")
                );
                if let Some(n) = name.filter(|n| *n != who) {
                    s.push_str(&format!(" | name: {n}"));
                }
                for field in ["joined_at", "created_at"] {
                    if let Some(v) = m.extra.get(field) {
                        s.push_str(&format!(" | joined {}", d10(&json_inline(v))));
                        break;
                    }
                }
                s
            })
            .collect();
        let mut out = format!(
            "Organization members ({}):\n\n{}",
            page.data.len(),
            lines.join("\n")
        );
        if let Some(total) = page.total_count {
            let shown = u64::from(offset) + page.data.len() as u64;
            if shown < total {
                out.push_str(&format!(
                    "\n\n…{} more (total {total}); call again with offset={shown}.",
                    total - shown
                ));
            }
        }
        Ok(out)
    }
}
