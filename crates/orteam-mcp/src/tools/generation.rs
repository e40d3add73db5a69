//! or_generation: one completion's stored record.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Args, ToolResult, required};
use crate::OrteamMcp;
use crate::format::{NONE, group, json_inline, m6, ms, ts};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerationArgs {
    /// The generation id returned by a completion (`gen-…`, also in the X-Generation-Id header).
    id: String,
}

fn opt_count(n: Option<u64>) -> String {
    n.map_or_else(|| NONE.to_owned(), group)
}

#[tool_router(router = generation_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_generation",
        description = "Stats of one completion by its gen-… id: model and provider, cost (USD), \
                       BYOK upstream cost, cache discount, token counts (prompt, completion, \
                       reasoning, cached), latency and generation time, finish reason, \
                       streamed/cancelled flags, origin and other raw fields. Stats may appear a \
                       few seconds after the completion ends.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_generation(
        &self,
        Parameters(Args(args)): Parameters<Args<GenerationArgs>>,
    ) -> ToolResult {
        let id = required("or_generation", "id", &args.id)?;
        let g = self.client().generation(id).await.map_err(|e| {
            if crate::upstream::is_not_found(&e) {
                format!(
                    "or_generation: no generation with id `{id}` (404). Ids look like gen-…; \
                     stats can lag the completion by a few seconds, so retry shortly if it just \
                     finished."
                )
            } else {
                self.upstream_error("or_generation", &e)
            }
        })?;
        let mut lines = vec![format!("Generation `{}`", g.id)];
        if let Some(m) = &g.model {
            match &g.provider_name {
                Some(p) => lines.push(format!("Model: {m} ({p})")),
                None => lines.push(format!("Model: {m}")),
            }
        }
        if let Some(t) = &g.created_at {
            lines.push(format!("Created: {}", ts(t)));
        }
        if let Some(c) = g.total_cost {
            let byok = if g.is_byok == Some(true) {
                " (BYOK)"
            } else {
                ""
            };
            lines.push(format!("Cost: {}{byok}", m6(c)));
        }
        if let Some(c) = g.upstream_inference_cost {
            lines.push(format!("Upstream inference cost: {}", m6(c)));
        }
        if let Some(c) = g.cache_discount {
            lines.push(format!("Cache discount: {}", m6(c)));
        }
        if g.tokens_prompt.is_some()
            || g.tokens_completion.is_some()
            || g.native_tokens_reasoning.is_some()
            || g.native_tokens_cached.is_some()
        {
            lines.push(format!(
                "Tokens: prompt={}, completion={}, reasoning={}, cached={}",
                opt_count(g.tokens_prompt),
                opt_count(g.tokens_completion),
                opt_count(g.native_tokens_reasoning),
                opt_count(g.native_tokens_cached)
            ));
        }
        if g.native_tokens_prompt.is_some() || g.native_tokens_completion.is_some() {
            lines.push(format!(
                "Native tokens: prompt={}, completion={}",
                opt_count(g.native_tokens_prompt),
                opt_count(g.native_tokens_completion)
            ));
        }
        if g.latency.is_some() || g.generation_time.is_some() || g.moderation_latency.is_some() {
            let f = |v: Option<f64>| v.map_or_else(|| NONE.to_owned(), |v| format!("{}ms", ms(v)));
            lines.push(format!(
                "Timing: latency={}, generation={}, moderation={}",
                f(g.latency),
                f(g.generation_time),
                f(g.moderation_latency)
            ));
        }
        if let Some(f) = &g.finish_reason {
            match g.native_finish_reason.as_deref().filter(|n| *n != f) {
                Some(n) => lines.push(format!("Finish: {f} (native: {n})")),
                None => lines.push(format!("Finish: {f}")),
            }
        }
        if g.streamed == Some(true) {
            lines.push("Streamed: true".to_owned());
        }
        if g.cancelled == Some(true) {
            lines.push("Cancelled: true".to_owned());
        }
        if let Some(o) = g.origin.as_deref().filter(|o| !o.is_empty()) {
            lines.push(format!("Origin: {o}"));
        }
        if let Some(u) = &g.upstream_id {
            lines.push(format!("Upstream id: {u}"));
        }
        let optional = [
            ("User (external_user)", &g.external_user),
            ("API type", &g.api_type),
            ("Router", &g.router),
            ("Request id", &g.request_id),
            ("Session id", &g.session_id),
            ("HTTP referer", &g.http_referer),
            ("Web search engine", &g.web_search_engine),
            ("Data region", &g.data_region),
            ("Service tier", &g.service_tier),
        ];
        for (label, value) in optional {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                lines.push(format!("{label}: {v}"));
            }
        }
        if let Some(n) = g.num_search_results.filter(|n| *n > 0) {
            lines.push(format!("Search results: {n}"));
        }
        for (name, value) in &g.extra {
            lines.push(format!("{name}: {}", json_inline(value)));
        }
        Ok(lines.join("\n"))
    }
}
