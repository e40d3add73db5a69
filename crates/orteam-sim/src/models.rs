//! The model catalog (built once per simulator, immutable) and the `/models*` and
//! `/endpoints/zdr` handlers.
//!
//! Prices are per-token decimal strings as OpenRouter publishes them; the parsed [`Money`] values
//! are what completions bill, so `cost = tokens × price` holds exactly.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use orteam_core::Money;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::Envelope;
use crate::error::{ApiError, SimError};
use crate::extract::{ApiPath, ApiQuery};
use crate::shared::Shared;

/// Per-token (or per-request) prices of one model.
#[derive(Debug, Clone)]
pub(crate) struct Prices {
    pub prompt: Money,
    pub completion: Money,
    pub request: Money,
    /// Cached prompt tokens; falls back to the prompt price when the model has none.
    pub input_cache_read: Option<Money>,
    /// Reasoning tokens; falls back to the completion price.
    pub internal_reasoning: Option<Money>,
}

/// The published price strings (kept verbatim so `/models` shows exactly what bills).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PricingStrings {
    pub prompt: &'static str,
    pub completion: &'static str,
    pub request: &'static str,
    pub image: &'static str,
    pub web_search: &'static str,
    pub internal_reasoning: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct EndpointDef {
    pub provider_name: Arc<str>,
    pub tag: String,
    pub endpoint_id: Arc<str>,
    pub quantization: Option<&'static str>,
    pub status: i32,
    pub uptime: [f64; 3],
    pub latency_ms: [u32; 4],
    pub throughput: [u32; 4],
    pub zdr: bool,
}

/// What a model does: generate text (chat, Messages, Responses, completions) or embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModelKind {
    #[default]
    Text,
    Embedding,
}

#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub id: Arc<str>,
    pub kind: ModelKind,
    /// The native vector size of an embedding model (0 for text models).
    pub embedding_dims: u32,
    pub canonical_slug: Arc<str>,
    pub name: &'static str,
    pub created: i64,
    pub description: &'static str,
    pub context_length: u64,
    pub max_completion_tokens: u64,
    pub input_modalities: &'static [String],
    pub output_modalities: &'static [&'static str],
    pub tokenizer: &'static str,
    pub instruct_type: Option<&'static str>,
    pub pricing: PricingStrings,
    pub prices: Prices,
    pub supported_parameters: &'static [String],
    pub categories: &'static [String],
    pub hugging_face_id: Option<&'static str>,
    pub knowledge_cutoff: Option<&'static str>,
    pub is_moderated: bool,
    pub endpoints: Vec<EndpointDef>,
}

impl Model {
    pub fn is_free(&self) -> bool {
        self.id.ends_with(":free")
    }
}

/// All models, indexed by id and canonical slug.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub models: Vec<Model>,
    index: FxHashMap<Arc<str>, usize>,
    /// `GET /models` without filters, serialized once.
    all_models_json: bytes::Bytes,
}

impl Catalog {
    pub fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn model(&self, idx: usize) -> &Model {
        &self.models[idx]
    }
}

const TEXT: &[&str] = &["text"];
const EMBEDDINGS: &[&str] = &["embeddings"];

/// The model catalog as data (`catalog.json`), parsed once per process by [`defs`]. Fields an
/// entry leaves out take the defaults below. Embedding models (`"kind": "embedding"`) are served
/// by `/embeddings` and listed at `/embeddings/models`; `/models` shows them only when asked for
/// (`output_modalities=embeddings` or `all`), since its `output_modalities` filter defaults to
/// `text` in OpenRouter's spec.
const CATALOG_JSON: &str = include_str!("catalog.json");

/// Raw description of one model, turned into a [`Model`] by [`build_catalog`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Def {
    id: String,
    slug: String,
    name: String,
    created: i64,
    description: String,
    #[serde(default = "default_context")]
    context: u64,
    #[serde(default = "default_max_out")]
    max_out: u64,
    #[serde(default = "default_input")]
    input: Vec<String>,
    tokenizer: String,
    #[serde(default)]
    instruct: Option<String>,
    #[serde(default = "zero")]
    prompt: String,
    #[serde(default = "zero")]
    completion: String,
    #[serde(default = "zero")]
    request: String,
    #[serde(default)]
    cache_read: Option<String>,
    #[serde(default)]
    cache_write: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default = "zero")]
    image: String,
    #[serde(default = "zero")]
    web_search: String,
    params: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    hf: Option<String>,
    #[serde(default)]
    cutoff: Option<String>,
    #[serde(default)]
    moderated: bool,
    #[serde(default)]
    kind: ModelKind,
    #[serde(default)]
    embedding_dims: u32,
    providers: Vec<ProviderDef>,
}

/// One provider serving a model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderDef {
    name: String,
    #[serde(default)]
    quantization: Option<String>,
    zdr: bool,
}

fn default_context() -> u64 {
    128_000
}

fn default_max_out() -> u64 {
    16_384
}

fn default_input() -> Vec<String> {
    vec!["text".to_owned()]
}

fn zero() -> String {
    "0".to_owned()
}

/// The parsed catalog file; parsed on first use, shared by every simulator in the process.
static DEFS: LazyLock<Result<Vec<Def>, String>> =
    LazyLock::new(|| serde_json::from_str(CATALOG_JSON).map_err(|e| e.to_string()));

fn defs() -> Result<&'static [Def], SimError> {
    DEFS.as_deref()
        .map_err(|e| SimError::Config(format!("the model catalog (catalog.json) is invalid: {e}")))
}

fn endpoint_uuid(model: &str, tag: &str) -> String {
    let digest = Sha256::digest(format!("{model}|{tag}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn price(s: &str) -> Money {
    // The catalog literals are checked by a unit test; a typo would show up there.
    Money::parse(s).unwrap_or(Money::ZERO)
}

/// Builds the catalog and its pre-serialized `/models` body.
pub(crate) fn build_catalog() -> Result<Catalog, SimError> {
    let mut models = Vec::new();
    for (i, d) in defs()?.iter().enumerate() {
        let endpoints = d
            .providers
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let (provider, quant) = (p.name.as_str(), p.quantization.as_deref());
                let tag = match quant {
                    Some(q) => format!("{}/{q}", provider.to_lowercase().replace(' ', "-")),
                    None => provider.to_lowercase().replace(' ', "-"),
                };
                // Deterministic but varied health figures; the first endpoint is the healthiest.
                let k = (i * 7 + j * 13) as f64;
                EndpointDef {
                    endpoint_id: endpoint_uuid(&d.id, &tag).into(),
                    provider_name: provider.into(),
                    tag,
                    quantization: quant,
                    status: 0,
                    uptime: [
                        100.0 - (k % 3.0) * 0.25,
                        99.9 - (k % 5.0) * 0.1,
                        99.5 - (k % 7.0) * 0.05,
                    ],
                    latency_ms: [
                        300 + (k as u32 % 11) * 40,
                        450 + (k as u32 % 11) * 50,
                        700 + (k as u32 % 11) * 60,
                        1500 + (k as u32 % 11) * 90,
                    ],
                    throughput: [
                        40 + (k as u32 % 9) * 15,
                        32 + (k as u32 % 9) * 12,
                        25 + (k as u32 % 9) * 9,
                        12 + (k as u32 % 9) * 4,
                    ],
                    zdr: p.zdr,
                }
            })
            .collect();
        models.push(Model {
            id: d.id.as_str().into(),
            kind: d.kind,
            embedding_dims: d.embedding_dims,
            canonical_slug: d.slug.as_str().into(),
            name: &d.name,
            created: d.created,
            description: &d.description,
            context_length: d.context,
            max_completion_tokens: d.max_out,
            input_modalities: &d.input,
            output_modalities: match d.kind {
                ModelKind::Text => TEXT,
                ModelKind::Embedding => EMBEDDINGS,
            },
            tokenizer: &d.tokenizer,
            instruct_type: d.instruct.as_deref(),
            pricing: PricingStrings {
                prompt: &d.prompt,
                completion: &d.completion,
                request: &d.request,
                image: &d.image,
                web_search: &d.web_search,
                // Reasoning tokens bill at the completion price unless the model prices them apart;
                // publish the rate that actually bills.
                internal_reasoning: d.reasoning.as_deref().unwrap_or(&d.completion),
                input_cache_read: d.cache_read.as_deref(),
                input_cache_write: d.cache_write.as_deref(),
            },
            prices: Prices {
                prompt: price(&d.prompt),
                completion: price(&d.completion),
                request: price(&d.request),
                input_cache_read: d.cache_read.as_deref().map(price),
                internal_reasoning: d.reasoning.as_deref().map(price),
            },
            supported_parameters: &d.params,
            categories: &d.categories,
            hugging_face_id: d.hf.as_deref(),
            knowledge_cutoff: d.cutoff.as_deref(),
            is_moderated: d.moderated,
            endpoints,
        });
    }
    let mut index = FxHashMap::default();
    for (i, m) in models.iter().enumerate() {
        index.entry(m.canonical_slug.clone()).or_insert(i);
    }
    // Ids win over canonical slugs where they coincide.
    for (i, m) in models.iter().enumerate() {
        index.insert(m.id.clone(), i);
    }
    let views: Vec<ModelView<'_>> = models
        .iter()
        .filter(|m| m.kind == ModelKind::Text)
        .map(ModelView::from)
        .collect();
    let total = views.len();
    let all_models_json = serde_json::to_vec(&ModelList::new(views, total, None))
        .unwrap_or_default()
        .into();
    Ok(Catalog {
        models,
        index,
        all_models_json,
    })
}

#[derive(Serialize)]
struct Architecture<'a> {
    modality: String,
    input_modalities: &'a [String],
    output_modalities: &'a [&'a str],
    tokenizer: &'a str,
    instruct_type: Option<&'a str>,
}

impl<'a> Architecture<'a> {
    fn of(m: &'a Model) -> Self {
        Architecture {
            modality: format!(
                "{}->{}",
                m.input_modalities.join("+"),
                m.output_modalities.join("+")
            ),
            input_modalities: m.input_modalities,
            output_modalities: m.output_modalities,
            tokenizer: m.tokenizer,
            instruct_type: m.instruct_type,
        }
    }
}

#[derive(Serialize)]
struct TopProvider {
    context_length: u64,
    max_completion_tokens: u64,
    is_moderated: bool,
}

#[derive(Serialize)]
struct Links {
    details: String,
}

#[derive(Serialize)]
pub(crate) struct ModelView<'a> {
    id: &'a str,
    canonical_slug: &'a str,
    hugging_face_id: Option<&'a str>,
    name: &'a str,
    created: i64,
    description: &'a str,
    context_length: u64,
    architecture: Architecture<'a>,
    pricing: &'a PricingStrings,
    top_provider: TopProvider,
    per_request_limits: Option<()>,
    supported_parameters: &'a [String],
    default_parameters: serde_json::Value,
    knowledge_cutoff: Option<&'a str>,
    expiration_date: Option<()>,
    links: Links,
    supported_voices: Option<()>,
}

/// `{data, total_count, links:{next}}`: the model list envelope (`next` is the URL of the next
/// page when `limit` cut the list).
#[derive(Serialize)]
struct ModelList<'a> {
    data: Vec<ModelView<'a>>,
    total_count: usize,
    links: ListLinks,
}

#[derive(Serialize)]
struct ListLinks {
    next: Option<String>,
}

impl<'a> ModelList<'a> {
    fn new(data: Vec<ModelView<'a>>, total_count: usize, next: Option<String>) -> Self {
        ModelList {
            data,
            total_count,
            links: ListLinks { next },
        }
    }
}

impl<'a> From<&'a Model> for ModelView<'a> {
    fn from(m: &'a Model) -> Self {
        ModelView {
            id: &m.id,
            canonical_slug: &m.canonical_slug,
            hugging_face_id: m.hugging_face_id,
            name: m.name,
            created: m.created,
            description: m.description,
            context_length: m.context_length,
            architecture: Architecture::of(m),
            pricing: &m.pricing,
            top_provider: TopProvider {
                context_length: m.context_length,
                max_completion_tokens: m.max_completion_tokens,
                is_moderated: m.is_moderated,
            },
            per_request_limits: None,
            supported_parameters: m.supported_parameters,
            default_parameters: serde_json::json!({"temperature": null, "top_p": null, "frequency_penalty": null}),
            knowledge_cutoff: m.knowledge_cutoff,
            expiration_date: None,
            links: Links {
                details: format!("/api/v1/models/{}/endpoints", m.id),
            },
            supported_voices: None,
        }
    }
}

#[derive(Serialize)]
struct Percentiles {
    p50: u32,
    p75: u32,
    p90: u32,
    p99: u32,
}

impl Percentiles {
    fn of(v: [u32; 4]) -> Self {
        Percentiles {
            p50: v[0],
            p75: v[1],
            p90: v[2],
            p99: v[3],
        }
    }
}

#[derive(Serialize)]
struct EndpointView<'a> {
    name: String,
    model_id: &'a str,
    model_name: &'a str,
    context_length: u64,
    pricing: &'a PricingStrings,
    provider_name: &'a str,
    tag: &'a str,
    quantization: Option<&'a str>,
    max_completion_tokens: u64,
    max_prompt_tokens: Option<u64>,
    supported_parameters: &'a [String],
    status: i32,
    uptime_last_5m: f64,
    uptime_last_30m: f64,
    uptime_last_1d: f64,
    latency_last_30m: Percentiles,
    throughput_last_30m: Percentiles,
    supports_implicit_caching: bool,
    /// Provider-native server tools; the simulator's endpoints have none.
    native_tools: serde_json::Map<String, serde_json::Value>,
    service_tier: Option<()>,
    supports_diarization: bool,
    supports_tool_choice: ToolChoiceSupport,
}

#[derive(Serialize)]
struct ToolChoiceSupport {
    auto: bool,
    function: bool,
    none: bool,
    required: bool,
}

impl<'a> EndpointView<'a> {
    fn of(m: &'a Model, e: &'a EndpointDef) -> Self {
        EndpointView {
            name: format!("{} | {}", e.provider_name, m.canonical_slug),
            model_id: &m.id,
            model_name: m.name,
            context_length: m.context_length,
            pricing: &m.pricing,
            provider_name: &e.provider_name,
            tag: &e.tag,
            quantization: e.quantization,
            max_completion_tokens: m.max_completion_tokens,
            max_prompt_tokens: None,
            supported_parameters: m.supported_parameters,
            status: e.status,
            uptime_last_5m: e.uptime[0],
            uptime_last_30m: e.uptime[1],
            uptime_last_1d: e.uptime[2],
            latency_last_30m: Percentiles::of(e.latency_ms),
            throughput_last_30m: Percentiles::of(e.throughput),
            supports_implicit_caching: m.prices.input_cache_read.is_some(),
            native_tools: serde_json::Map::new(),
            service_tier: None,
            supports_diarization: false,
            supports_tool_choice: {
                let tools = m.supported_parameters.iter().any(|p| p == "tool_choice");
                ToolChoiceSupport {
                    auto: tools,
                    function: tools,
                    none: tools,
                    required: tools,
                }
            },
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ModelsQuery {
    category: Option<String>,
    supported_parameters: Option<String>,
    output_modalities: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// `offset`/`limit` of a model list: omitting both means everything.
fn model_page(q: &ModelsQuery) -> Result<Option<(usize, usize)>, ApiError> {
    if q.offset.is_none() && q.limit.is_none() {
        return Ok(None);
    }
    let offset = crate::extract::parse_usize_param("offset", q.offset.as_deref(), 0)?;
    let limit = crate::extract::parse_usize_param("limit", q.limit.as_deref(), usize::MAX)?;
    if limit == 0 {
        return Err(ApiError::bad_request(
            "Invalid request parameters: limit must be at least 1",
        ));
    }
    Ok(Some((offset, limit)))
}

/// One page of `models` in the list envelope; `path` builds `links.next`.
fn model_list_json(
    models: Vec<ModelView<'_>>,
    page: Option<(usize, usize)>,
    path: &str,
) -> Vec<u8> {
    let total = models.len();
    let (data, next) = match page {
        None => (models, None),
        Some((offset, limit)) => {
            let next = (offset.saturating_add(limit) < total)
                .then(|| format!("{path}?offset={}&limit={limit}", offset + limit));
            (models.into_iter().skip(offset).take(limit).collect(), next)
        }
    };
    serde_json::to_vec(&ModelList::new(data, total, next)).unwrap_or_default()
}

pub(crate) fn json_response(body: impl Into<axum::body::Body>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

fn matches(m: &Model, q: &ModelsQuery) -> bool {
    if let Some(cat) = q.category.as_deref().filter(|c| !c.is_empty())
        && !m.categories.iter().any(|c| c.eq_ignore_ascii_case(cat))
    {
        return false;
    }
    if let Some(params) = q.supported_parameters.as_deref() {
        let all = params
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .all(|p| m.supported_parameters.iter().any(|s| s == p));
        if !all {
            return false;
        }
    }
    match q.output_modalities.as_deref().map(str::trim) {
        // OpenRouter's default is `text`.
        None | Some("") => m.output_modalities.contains(&"text"),
        Some("all") => true,
        Some(list) => list
            .split(',')
            .map(str::trim)
            .any(|o| m.output_modalities.contains(&o)),
    }
}

/// `GET /models` (no auth).
pub(crate) async fn list_models(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<ModelsQuery>,
) -> Result<Response, ApiError> {
    let cat = &shared.catalog;
    let page = model_page(&q)?;
    if page.is_none()
        && q.category.is_none()
        && q.supported_parameters.is_none()
        && q.output_modalities.is_none()
    {
        return Ok(json_response(cat.all_models_json.clone()));
    }
    let data: Vec<ModelView<'_>> = cat
        .models
        .iter()
        .filter(|m| matches(m, &q))
        .map(ModelView::from)
        .collect();
    Ok(json_response(model_list_json(data, page, "/api/v1/models")))
}

/// `GET /models/count` (no auth): how many models `/models` would list.
pub(crate) async fn count_models(
    State(shared): State<Arc<Shared>>,
    ApiQuery(q): ApiQuery<ModelsQuery>,
) -> Response {
    let count = shared
        .catalog
        .models
        .iter()
        .filter(|m| matches(m, &q))
        .count();
    json_response(
        serde_json::to_vec(&Envelope::data(serde_json::json!({ "count": count })))
            .unwrap_or_default(),
    )
}

/// `GET /model/{author}/{slug}` (no auth): one model in the list's model shape.
pub(crate) async fn get_model(
    State(shared): State<Arc<Shared>>,
    ApiPath((author, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = format!("{author}/{slug}");
    let idx = shared
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("Model {id} not found")))?;
    let view = ModelView::from(shared.catalog.model(idx));
    Ok(json_response(
        serde_json::to_vec(&Envelope::data(view)).unwrap_or_default(),
    ))
}

/// `GET /models/user` (bearer): the catalog filtered by the caller's guardrails.
pub(crate) async fn list_user_models(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ModelsQuery>,
) -> Result<Response, ApiError> {
    let caller = shared.authenticate(&headers)?;
    let page = model_page(&q)?;
    let allowed: Vec<usize> = {
        let st = shared.state.lock();
        (0..shared.catalog.models.len())
            // Like `/models` without `output_modalities`: text models only.
            .filter(|&i| shared.catalog.model(i).kind == ModelKind::Text)
            .filter(|&i| match &caller {
                crate::auth::Caller::Management => true,
                crate::auth::Caller::Inference(hash) => st
                    .keys
                    .get(hash)
                    .map(|k| crate::guardrails::route(&st, k, shared.catalog.model(i)).is_ok())
                    .unwrap_or(true),
            })
            .collect()
    };
    let data: Vec<ModelView<'_>> = allowed
        .iter()
        .map(|&i| ModelView::from(shared.catalog.model(i)))
        .collect();
    Ok(json_response(model_list_json(
        data,
        page,
        "/api/v1/models/user",
    )))
}

#[derive(Serialize)]
struct ModelEndpoints<'a> {
    id: &'a str,
    name: &'a str,
    created: i64,
    description: &'a str,
    architecture: Architecture<'a>,
    endpoints: Vec<EndpointView<'a>>,
}

/// `GET /models/{author}/{slug}/endpoints` (no auth).
pub(crate) async fn model_endpoints(
    State(shared): State<Arc<Shared>>,
    ApiPath((author, slug)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = format!("{author}/{slug}");
    let idx = shared
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("Model {id} not found")))?;
    let m = shared.catalog.model(idx);
    let view = ModelEndpoints {
        id: &m.id,
        name: m.name,
        created: m.created,
        description: m.description,
        architecture: Architecture::of(m),
        endpoints: m.endpoints.iter().map(|e| EndpointView::of(m, e)).collect(),
    };
    Ok(json_response(
        serde_json::to_vec(&Envelope::data(view)).unwrap_or_default(),
    ))
}

/// `GET /endpoints/zdr` (no auth): a flat list of zero-data-retention endpoints.
pub(crate) async fn zdr_endpoints(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<EndpointView<'_>> = shared
        .catalog
        .models
        .iter()
        .flat_map(|m| {
            m.endpoints
                .iter()
                .filter(|e| e.zdr)
                .map(move |e| EndpointView::of(m, e))
        })
        .collect();
    json_response(serde_json::to_vec(&Envelope::data(data)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_price_literal_parses() {
        for d in defs().unwrap() {
            for p in [
                &d.prompt,
                &d.completion,
                &d.request,
                &d.image,
                &d.web_search,
            ]
            .into_iter()
            .chain(&d.cache_read)
            .chain(&d.cache_write)
            .chain(&d.reasoning)
            {
                assert!(Money::parse(p).is_ok(), "{}: {p}", d.id);
            }
            assert!(!d.providers.is_empty(), "{} has no provider", d.id);
        }
    }

    #[test]
    fn catalog_has_the_seed_models() {
        let c = build_catalog().unwrap();
        for id in [
            "google/gemma-2-9b-it:free",
            "openai/gpt-4o-mini",
            "meta-llama/llama-3.1-8b-instruct",
            "openai/gpt-4o",
            "anthropic/claude-3.5-sonnet",
            "xiaomi/mimo-v2-flash",
            "anthropic/claude-haiku-4.5",
            "openai/gpt-4.1",
        ] {
            assert!(c.get(id).is_some(), "{id}");
        }
        assert!(c.models.len() >= 12);
    }
}
