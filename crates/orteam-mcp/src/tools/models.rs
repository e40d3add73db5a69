//! The model catalog: or_models, or_model_get, or_model_endpoints, or_models_user,
//! or_zdr_endpoints.

use std::collections::BTreeMap;

use orteam_openrouter::types::models::{Endpoint, Model, ModelsParams};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Args, NoArgs, ToolResult, required};
use crate::OrteamMcp;
use crate::format::{NONE, ctx_k, json_inline, pricing};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelsArgs {
    /// Case-insensitive text matched against model id, name and canonical slug (filtered
    /// locally), e.g. "claude" or "gpt-4o".
    #[serde(default)]
    search: Option<String>,
    /// Comma-separated parameters every returned model must support, e.g. "tools,reasoning".
    #[serde(default)]
    supported_parameters: Option<String>,
    /// Comma-separated output modalities, e.g. "image" or "text,image"; "all" for every
    /// modality. Default (upstream): text.
    #[serde(default)]
    output_modalities: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelIdArgs {
    /// The model id (e.g. "openai/gpt-4o") or its canonical slug.
    id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelEndpointsArgs {
    /// The model's author, the part of the id before "/" (e.g. "openai").
    author: String,
    /// The model's slug, the part of the id after "/" (e.g. "gpt-4o").
    slug: String,
}

fn comma_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn matches(m: &Model, needle: &str) -> bool {
    let n = needle.to_lowercase();
    m.id.to_lowercase().contains(&n)
        || m.name.to_lowercase().contains(&n)
        || m.canonical_slug
            .as_deref()
            .is_some_and(|s| s.to_lowercase().contains(&n))
}

fn ctx_part(ctx: Option<u64>) -> String {
    ctx.map(|c| format!(" | {} ctx", ctx_k(c)))
        .unwrap_or_default()
}

fn model_line(m: &Model, with_modalities: bool) -> String {
    let mut s = format!(
        "- **{}** | {}{}",
        m.id,
        pricing(&m.pricing),
        ctx_part(m.context_length)
    );
    if with_modalities {
        let out = m
            .architecture
            .as_ref()
            .map(|a| a.output_modalities.join("/"))
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "text".to_owned());
        s.push_str(&format!(" | {out}"));
    }
    s
}

fn endpoint_line(e: &Endpoint) -> String {
    let who = e
        .provider_name
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(&e.name);
    let mut s = format!(
        "- **{who}** | tag: {} | quant: {}",
        e.tag.as_deref().unwrap_or(NONE),
        e.quantization.as_deref().unwrap_or(NONE)
    );
    if let Some(c) = e.context_length {
        s.push_str(&format!(" | {} ctx", ctx_k(c)));
    }
    s.push_str(&format!(" | {}", pricing(&e.pricing)));
    // Already a percentage (0–100); the seed multiplied it by 100 again.
    match e.uptime_last_30m {
        Some(u) => s.push_str(&format!(" | uptime {u:.1}%")),
        None => s.push_str(&format!(" | uptime {NONE}")),
    }
    match e.status {
        Some(st) => s.push_str(&format!(" | status {st}")),
        None => s.push_str(&format!(" | status {NONE}")),
    }
    s
}

#[tool_router(router = models_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_models",
        description = "Search the OpenRouter model catalog: id, price per million input/output \
                       tokens (plus per-request, image and web-search prices when set), context \
                       length and output modalities. Filter by search text, supported parameters \
                       and output modalities. Use it to find a model id or compare prices.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_models(&self, Parameters(Args(args)): Parameters<Args<ModelsArgs>>) -> ToolResult {
        let params = ModelsParams {
            supported_parameters: comma_list(args.supported_parameters.as_deref()),
            output_modalities: comma_list(args.output_modalities.as_deref()),
            ..ModelsParams::default()
        };
        let list = self
            .client()
            .models(&params)
            .await
            .map_err(|e| self.upstream_error("or_models", &e))?;
        let search = args
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let models: Vec<&Model> = list
            .data
            .iter()
            .filter(|m| search.is_none_or(|s| matches(m, s)))
            .collect();
        if models.is_empty() {
            return Ok("No models match.".to_owned());
        }
        let lines: Vec<String> = models.iter().map(|m| model_line(m, true)).collect();
        Ok(format!(
            "Models ({}):\n\n{}",
            models.len(),
            lines.join("\n")
        ))
    }

    #[tool(
        name = "or_model_get",
        description = "Full details of one model by id (e.g. \"openai/gpt-4o\") or canonical slug: \
                       name, description, context length, max completion tokens, input/output \
                       modalities, tokenizer, pricing per million tokens and supported \
                       parameters.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_model_get(
        &self,
        Parameters(Args(args)): Parameters<Args<ModelIdArgs>>,
    ) -> ToolResult {
        let id = required("or_model_get", "id", &args.id)?;
        let params = ModelsParams {
            output_modalities: vec!["all".to_owned()],
            ..ModelsParams::default()
        };
        let list = self
            .client()
            .models(&params)
            .await
            .map_err(|e| self.upstream_error("or_model_get", &e))?;
        let exact = |m: &&Model| m.id == id || m.canonical_slug.as_deref() == Some(id);
        let loose = |m: &&Model| {
            m.id.eq_ignore_ascii_case(id)
                || m.canonical_slug
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(id))
        };
        let Some(m) = list
            .data
            .iter()
            .find(exact)
            .or_else(|| list.data.iter().find(loose))
        else {
            return Err(format!(
                "Model not found: {id}. Ids look like author/slug (e.g. openai/gpt-4o); use \
                 or_models with search= to find one."
            ));
        };
        let mut lines = vec![if m.name.is_empty() {
            format!("**{}**", m.id)
        } else {
            format!("**{}** ({})", m.id, m.name)
        }];
        if let Some(d) = m.description.as_deref().filter(|d| !d.is_empty()) {
            lines.push(d.to_owned());
        }
        if let Some(s) = m.canonical_slug.as_deref().filter(|s| *s != m.id) {
            lines.push(format!("Canonical slug: {s}"));
        }
        if let Some(c) = m.context_length {
            lines.push(format!("Context: {c} tokens"));
        }
        if let Some(tp) = &m.top_provider {
            if let Some(mc) = tp.max_completion_tokens {
                lines.push(format!("Max completion: {mc} tokens"));
            }
            if let Some(md) = tp.is_moderated {
                lines.push(format!("Moderated: {md}"));
            }
        }
        if let Some(a) = &m.architecture {
            if !a.input_modalities.is_empty() {
                lines.push(format!("Input: {}", a.input_modalities.join(", ")));
            }
            if !a.output_modalities.is_empty() {
                lines.push(format!("Output: {}", a.output_modalities.join(", ")));
            }
            if let Some(t) = &a.tokenizer {
                lines.push(format!("Tokenizer: {t}"));
            }
        }
        lines.push(format!("Pricing: {}", pricing(&m.pricing)));
        if !m.supported_parameters.is_empty() {
            lines.push(format!(
                "Supported params: {}",
                m.supported_parameters.join(", ")
            ));
        }
        if let Some(k) = &m.knowledge_cutoff {
            lines.push(format!("Knowledge cutoff: {k}"));
        }
        if let Some(x) = &m.expiration_date {
            lines.push(format!("Expiration date: {x}"));
        }
        if let Some(h) = m.hugging_face_id.as_deref().filter(|h| !h.is_empty()) {
            lines.push(format!("Hugging Face: {h}"));
        }
        if let Some(l) = &m.per_request_limits {
            lines.push(format!("Per-request limits: {}", json_inline(l)));
        }
        Ok(lines.join("\n"))
    }

    #[tool(
        name = "or_model_endpoints",
        description = "The provider endpoints serving one model (author + slug): provider, tag, \
                       quantization, context length, pricing per million tokens, uptime over the \
                       last 30 minutes (percent) and status (0 = ok, negative = degraded). Use it \
                       to compare providers or check whether a model is healthy.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_model_endpoints(
        &self,
        Parameters(Args(args)): Parameters<Args<ModelEndpointsArgs>>,
    ) -> ToolResult {
        let author = required("or_model_endpoints", "author", &args.author)?;
        let slug = required("or_model_endpoints", "slug", &args.slug)?;
        let me = self
            .client()
            .model_endpoints(author, slug)
            .await
            .map_err(|e| {
                if crate::upstream::is_not_found(&e) {
                    format!(
                        "or_model_endpoints: no model {author}/{slug} (404). Use or_models to \
                         find the id; author is the part before \"/\" and slug the part after."
                    )
                } else {
                    self.upstream_error("or_model_endpoints", &e)
                }
            })?;
        if me.endpoints.is_empty() {
            return Ok(format!("No endpoints for {author}/{slug}."));
        }
        let lines: Vec<String> = me.endpoints.iter().map(endpoint_line).collect();
        Ok(format!(
            "Endpoints for **{}** ({}):\n\n{}",
            me.id,
            me.endpoints.len(),
            lines.join("\n")
        ))
    }

    #[tool(
        name = "or_models_user",
        description = "The models this account may use under its provider, privacy and guardrail \
                       settings (GET /models/user), with pricing per million tokens and context \
                       length.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_models_user(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let list = self
            .client()
            .user_models()
            .await
            .map_err(|e| self.upstream_error("or_models_user", &e))?;
        if list.data.is_empty() {
            return Ok("No models available under current account settings.".to_owned());
        }
        let lines: Vec<String> = list.data.iter().map(|m| model_line(m, false)).collect();
        Ok(format!(
            "Models available to this account ({}):\n\n{}",
            list.data.len(),
            lines.join("\n")
        ))
    }

    #[tool(
        name = "or_zdr_endpoints",
        description = "Endpoints with zero data retention (ZDR), grouped by model: for each model, \
                       how many ZDR endpoints serve it and from which providers. Use it for \
                       privacy-constrained workloads.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_zdr_endpoints(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let endpoints = self
            .client()
            .zdr_endpoints()
            .await
            .map_err(|e| self.upstream_error("or_zdr_endpoints", &e))?;
        if endpoints.is_empty() {
            return Ok("No ZDR-compliant endpoints.".to_owned());
        }
        // The API returns a flat list of endpoints; group them by model.
        let mut by_model: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &endpoints {
            let model = e
                .model_id
                .clone()
                .or_else(|| e.model_name.clone())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| e.name.clone());
            let provider = e
                .provider_name
                .clone()
                .or_else(|| e.tag.clone())
                .unwrap_or_else(|| e.name.clone());
            by_model.entry(model).or_default().push(provider);
        }
        let lines: Vec<String> = by_model
            .iter()
            .map(|(model, providers)| {
                format!(
                    "- **{model}** — {} endpoint(s): {}",
                    providers.len(),
                    providers.join(", ")
                )
            })
            .collect();
        Ok(format!(
            "ZDR endpoints ({} models):\n\n{}",
            by_model.len(),
            lines.join("\n")
        ))
    }
}
