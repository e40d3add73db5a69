//! The model catalog (built once per simulator, immutable) and the `/models*` and
//! `/endpoints/zdr` handlers.
//!
//! Prices are per-token decimal strings as OpenRouter publishes them; the parsed [`Money`] values
//! are what completions bill, so `cost = tokens × price` holds exactly.

use crate::fasthash::FastMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use orteam_core::Money;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::server::Shared;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelKind {
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
    pub input_modalities: &'static [&'static str],
    pub output_modalities: &'static [&'static str],
    pub tokenizer: &'static str,
    pub instruct_type: Option<&'static str>,
    pub pricing: PricingStrings,
    pub prices: Prices,
    pub supported_parameters: &'static [&'static str],
    pub categories: &'static [&'static str],
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
    index: FastMap<Arc<str>, usize>,
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

const OPENAI_PARAMS: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "presence_penalty",
    "response_format",
    "seed",
    "stop",
    "structured_outputs",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
];
const REASONING_PARAMS: &[&str] = &[
    "include_reasoning",
    "max_tokens",
    "reasoning",
    "response_format",
    "seed",
    "stop",
    "structured_outputs",
    "tool_choice",
    "tools",
];
const ANTHROPIC_PARAMS: &[&str] = &[
    "include_reasoning",
    "max_tokens",
    "reasoning",
    "stop",
    "temperature",
    "tool_choice",
    "tools",
    "top_k",
    "top_p",
];
const OPEN_PARAMS: &[&str] = &[
    "frequency_penalty",
    "max_tokens",
    "min_p",
    "presence_penalty",
    "repetition_penalty",
    "response_format",
    "seed",
    "stop",
    "temperature",
    "top_k",
    "top_p",
];
const EMBEDDING_PARAMS: &[&str] = &["dimensions", "encoding_format", "input_type"];
const FREE_PARAMS: &[&str] = &["max_tokens", "stop", "temperature", "top_p"];
const TEXT: &[&str] = &["text"];
const EMBEDDINGS: &[&str] = &["embeddings"];
const TEXT_IMAGE: &[&str] = &["text", "image"];
const TEXT_IMAGE_FILE: &[&str] = &["text", "image", "file"];

/// Raw description of one model, turned into a [`Model`] by [`build_catalog`].
struct Def {
    id: &'static str,
    slug: &'static str,
    name: &'static str,
    created: i64,
    description: &'static str,
    context: u64,
    max_out: u64,
    input: &'static [&'static str],
    tokenizer: &'static str,
    instruct: Option<&'static str>,
    prompt: &'static str,
    completion: &'static str,
    request: &'static str,
    cache_read: Option<&'static str>,
    cache_write: Option<&'static str>,
    reasoning: Option<&'static str>,
    image: &'static str,
    web_search: &'static str,
    params: &'static [&'static str],
    categories: &'static [&'static str],
    hf: Option<&'static str>,
    cutoff: Option<&'static str>,
    moderated: bool,
    kind: ModelKind,
    embedding_dims: u32,
    /// (provider, quantization, zdr)
    providers: &'static [(&'static str, Option<&'static str>, bool)],
}

const fn def(id: &'static str, slug: &'static str, name: &'static str) -> Def {
    Def {
        id,
        slug,
        name,
        created: 1_720_000_000,
        description: "",
        context: 128_000,
        max_out: 16_384,
        input: TEXT,
        tokenizer: "Other",
        instruct: None,
        prompt: "0",
        completion: "0",
        request: "0",
        cache_read: None,
        cache_write: None,
        reasoning: None,
        image: "0",
        web_search: "0",
        params: OPEN_PARAMS,
        categories: &[],
        hf: None,
        cutoff: None,
        moderated: false,
        kind: ModelKind::Text,
        embedding_dims: 0,
        providers: &[],
    }
}

fn defs() -> Vec<Def> {
    vec![
        Def {
            created: 1_719_792_000,
            description: "Gemma 2 9B by Google is an open model built from the same research and technology used to create the Gemini models. Free variant: rate limited to 20 requests per minute.",
            context: 8_192,
            max_out: 8_192,
            tokenizer: "Gemini",
            instruct: Some("gemma"),
            params: FREE_PARAMS,
            categories: &["roleplay", "translation"],
            hf: Some("google/gemma-2-9b-it"),
            providers: &[("Chutes", Some("bf16"), false)],
            ..def(
                "google/gemma-2-9b-it:free",
                "google/gemma-2-9b-it",
                "Google: Gemma 2 9B (free)",
            )
        },
        Def {
            created: 1_721_260_800,
            description: "GPT-4o mini is OpenAI's most cost-efficient small model, multimodal (text and image input, text output) and smarter than GPT-3.5 Turbo.",
            input: TEXT_IMAGE_FILE,
            tokenizer: "GPT",
            prompt: "0.00000015",
            completion: "0.0000006",
            cache_read: Some("0.000000075"),
            image: "0.000217",
            params: OPENAI_PARAMS,
            categories: &["programming", "technology", "marketing"],
            cutoff: Some("2023-10-01"),
            moderated: true,
            providers: &[("OpenAI", None, true), ("Azure", None, true)],
            ..def(
                "openai/gpt-4o-mini",
                "openai/gpt-4o-mini-2024-07-18",
                "OpenAI: GPT-4o-mini",
            )
        },
        Def {
            created: 1_721_692_800,
            description: "Meta's Llama 3.1 8B instruct-tuned model: fast and efficient, strong in human evaluations for its size.",
            context: 131_072,
            max_out: 16_384,
            tokenizer: "Llama3",
            instruct: Some("llama3"),
            prompt: "0.00000002",
            completion: "0.00000003",
            categories: &["roleplay", "translation"],
            hf: Some("meta-llama/Meta-Llama-3.1-8B-Instruct"),
            cutoff: Some("2023-12-01"),
            providers: &[
                ("DeepInfra", Some("bf16"), true),
                ("Novita", Some("fp8"), false),
                ("Groq", None, true),
            ],
            ..def(
                "meta-llama/llama-3.1-8b-instruct",
                "meta-llama/llama-3.1-8b-instruct",
                "Meta: Llama 3.1 8B Instruct",
            )
        },
        Def {
            created: 1_715_558_400,
            description: "GPT-4o (\"o\" for \"omni\") is OpenAI's flagship multimodal model: text and image input, text output, GPT-4 Turbo intelligence at higher speed.",
            input: TEXT_IMAGE_FILE,
            tokenizer: "GPT",
            prompt: "0.0000025",
            completion: "0.00001",
            cache_read: Some("0.00000125"),
            image: "0.003613",
            web_search: "0.01",
            params: OPENAI_PARAMS,
            categories: &["programming", "technology", "science"],
            cutoff: Some("2023-10-01"),
            moderated: true,
            providers: &[("OpenAI", None, true), ("Azure", None, true)],
            ..def("openai/gpt-4o", "openai/gpt-4o", "OpenAI: GPT-4o")
        },
        Def {
            created: 1_729_555_200,
            description: "Claude 3.5 Sonnet delivers better-than-Opus capabilities at Sonnet speed and price: coding, data science, visual processing and agentic tasks.",
            context: 200_000,
            max_out: 8_192,
            input: TEXT_IMAGE_FILE,
            tokenizer: "Claude",
            prompt: "0.000003",
            completion: "0.000015",
            cache_read: Some("0.0000003"),
            cache_write: Some("0.00000375"),
            image: "0.0048",
            params: ANTHROPIC_PARAMS,
            categories: &["programming", "technology", "academia"],
            cutoff: Some("2024-04-01"),
            moderated: true,
            providers: &[
                ("Anthropic", None, true),
                ("Amazon Bedrock", None, true),
                ("Google Vertex", None, true),
            ],
            ..def(
                "anthropic/claude-3.5-sonnet",
                "anthropic/claude-3.5-sonnet",
                "Anthropic: Claude 3.5 Sonnet",
            )
        },
        Def {
            created: 1_765_843_200,
            description: "MiMo-V2-Flash is Xiaomi's open mixture-of-experts model (309B total, 15B active) tuned for fast reasoning, coding and agentic use.",
            context: 262_144,
            max_out: 65_536,
            tokenizer: "Other",
            prompt: "0.0000001",
            completion: "0.0000003",
            cache_read: Some("0.00000001"),
            reasoning: Some("0.0000003"),
            params: REASONING_PARAMS,
            categories: &["programming", "technology"],
            hf: Some("XiaomiMiMo/MiMo-V2-Flash"),
            providers: &[("Xiaomi", Some("fp8"), false)],
            ..def(
                "xiaomi/mimo-v2-flash",
                "xiaomi/mimo-v2-flash-20251210",
                "Xiaomi: MiMo-V2-Flash",
            )
        },
        Def {
            created: 1_760_486_400,
            description: "Claude Haiku 4.5 is Anthropic's fastest and most efficient model, with near-frontier coding and extended thinking.",
            context: 200_000,
            max_out: 64_000,
            input: TEXT_IMAGE_FILE,
            tokenizer: "Claude",
            prompt: "0.000001",
            completion: "0.000005",
            cache_read: Some("0.0000001"),
            cache_write: Some("0.00000125"),
            reasoning: Some("0.000005"),
            params: ANTHROPIC_PARAMS,
            categories: &["programming", "technology"],
            cutoff: Some("2025-02-01"),
            moderated: true,
            providers: &[("Anthropic", None, true), ("Amazon Bedrock", None, true)],
            ..def(
                "anthropic/claude-haiku-4.5",
                "anthropic/claude-4.5-haiku-20251001",
                "Anthropic: Claude Haiku 4.5",
            )
        },
        Def {
            created: 1_744_651_200,
            description: "GPT-4.1 is OpenAI's flagship model for advanced instruction following, software engineering and long-context reasoning, with a 1M token context.",
            context: 1_047_576,
            max_out: 32_768,
            input: TEXT_IMAGE_FILE,
            tokenizer: "GPT",
            prompt: "0.000002",
            completion: "0.000008",
            cache_read: Some("0.0000005"),
            web_search: "0.01",
            params: OPENAI_PARAMS,
            categories: &["programming", "technology", "legal"],
            cutoff: Some("2024-06-01"),
            moderated: true,
            providers: &[("OpenAI", None, true)],
            ..def(
                "openai/gpt-4.1",
                "openai/gpt-4.1-2025-04-14",
                "OpenAI: GPT-4.1",
            )
        },
        Def {
            created: 1_744_820_000,
            description: "o4-mini is a compact reasoning model from OpenAI's o-series, optimized for fast, cost-efficient performance with strong math and coding.",
            context: 200_000,
            max_out: 100_000,
            input: TEXT_IMAGE_FILE,
            tokenizer: "GPT",
            prompt: "0.0000011",
            completion: "0.0000044",
            cache_read: Some("0.000000275"),
            reasoning: Some("0.0000044"),
            params: REASONING_PARAMS,
            categories: &["programming", "science"],
            cutoff: Some("2024-06-01"),
            moderated: true,
            providers: &[("OpenAI", None, true)],
            ..def(
                "openai/o4-mini",
                "openai/o4-mini-2025-04-16",
                "OpenAI: o4 Mini",
            )
        },
        Def {
            created: 1_733_506_137,
            description: "Llama 3.3 70B Instruct, Meta's multilingual instruction-tuned model. Free variant: rate limited to 20 requests per minute.",
            context: 65_536,
            max_out: 8_192,
            tokenizer: "Llama3",
            instruct: Some("llama3"),
            params: FREE_PARAMS,
            categories: &["roleplay", "translation"],
            hf: Some("meta-llama/Llama-3.3-70B-Instruct"),
            providers: &[("Venice", Some("fp8"), false)],
            ..def(
                "meta-llama/llama-3.3-70b-instruct:free",
                "meta-llama/llama-3.3-70b-instruct",
                "Meta: Llama 3.3 70B Instruct (free)",
            )
        },
        Def {
            created: 1_737_381_095,
            description: "DeepSeek R1: open-source reasoning model with performance on par with OpenAI o1, fully open reasoning tokens.",
            context: 163_840,
            max_out: 32_768,
            tokenizer: "DeepSeek",
            instruct: Some("deepseek-r1"),
            prompt: "0.0000004",
            completion: "0.000002",
            reasoning: Some("0.000002"),
            params: REASONING_PARAMS,
            categories: &["programming", "science"],
            hf: Some("deepseek-ai/DeepSeek-R1"),
            providers: &[
                ("DeepSeek", Some("fp8"), false),
                ("Together", Some("fp8"), true),
            ],
            ..def(
                "deepseek/deepseek-r1",
                "deepseek/deepseek-r1",
                "DeepSeek: R1",
            )
        },
        Def {
            created: 1_750_443_016,
            description: "Mistral Small 3.2 24B Instruct: improved instruction following, fewer repetition errors and better function calling.",
            context: 131_072,
            max_out: 131_072,
            input: TEXT_IMAGE,
            tokenizer: "Mistral",
            prompt: "0.00000005",
            completion: "0.0000001",
            params: OPEN_PARAMS,
            categories: &["programming", "translation"],
            hf: Some("mistralai/Mistral-Small-3.2-24B-Instruct-2506"),
            providers: &[("Mistral", None, true), ("DeepInfra", Some("fp8"), true)],
            ..def(
                "mistralai/mistral-small-3.2-24b-instruct",
                "mistralai/mistral-small-3.2-24b-instruct-2506",
                "Mistral: Mistral Small 3.2 24B",
            )
        },
        Def {
            created: 1_750_172_488,
            description: "Gemini 2.5 Flash is Google's workhorse thinking model for reasoning, coding, mathematics and science, with a 1M token context.",
            context: 1_048_576,
            max_out: 65_535,
            input: TEXT_IMAGE_FILE,
            tokenizer: "Gemini",
            prompt: "0.0000003",
            completion: "0.0000025",
            cache_read: Some("0.000000075"),
            cache_write: Some("0.0000003833"),
            reasoning: Some("0.0000025"),
            image: "0.001238",
            params: REASONING_PARAMS,
            categories: &["programming", "science", "technology"],
            cutoff: Some("2025-01-31"),
            providers: &[
                ("Google Vertex", None, true),
                ("Google AI Studio", None, false),
            ],
            ..def(
                "google/gemini-2.5-flash",
                "google/gemini-2.5-flash",
                "Google: Gemini 2.5 Flash",
            )
        },
        Def {
            created: 1_753_119_555,
            description: "Qwen3-235B-A22B-Instruct-2507: multilingual mixture-of-experts instruct model, non-thinking mode, 262K context.",
            context: 262_144,
            max_out: 32_768,
            tokenizer: "Qwen3",
            prompt: "0.000000078",
            completion: "0.000000312",
            cache_read: Some("0.0000000375"),
            params: OPEN_PARAMS,
            categories: &["programming", "translation"],
            hf: Some("Qwen/Qwen3-235B-A22B-Instruct-2507"),
            providers: &[
                ("Chutes", Some("fp8"), false),
                ("Together", Some("fp8"), true),
            ],
            ..def(
                "qwen/qwen3-235b-a22b-2507",
                "qwen/qwen3-235b-a22b-07-25",
                "Qwen: Qwen3 235B A22B Instruct 2507",
            )
        },
        Def {
            created: 1_738_000_000,
            description: "Sonar is Perplexity's lightweight search-grounded answer model; every request is billed a per-request search fee on top of tokens.",
            context: 127_072,
            max_out: 8_000,
            tokenizer: "Other",
            prompt: "0.000001",
            completion: "0.000001",
            request: "0.005",
            web_search: "0.005",
            params: &["max_tokens", "temperature", "top_p", "web_search_options"],
            categories: &["academia", "marketing"],
            providers: &[("Perplexity", None, false)],
            ..def("perplexity/sonar", "perplexity/sonar", "Perplexity: Sonar")
        },
        // Embedding models: served by `/embeddings` and listed at `/embeddings/models`; `/models`
        // shows them only when asked for (`output_modalities=embeddings` or `all`), since its
        // `output_modalities` filter defaults to `text` in OpenRouter's spec.
        Def {
            created: 1_706_140_800,
            description: "text-embedding-3-small: OpenAI's small third-generation embedding model, 1536 dimensions (shortenable).",
            context: 8_192,
            max_out: 0,
            tokenizer: "GPT",
            prompt: "0.00000002",
            params: EMBEDDING_PARAMS,
            kind: ModelKind::Embedding,
            embedding_dims: 1_536,
            providers: &[("OpenAI", None, true)],
            ..def(
                "openai/text-embedding-3-small",
                "openai/text-embedding-3-small",
                "OpenAI: Text Embedding 3 Small",
            )
        },
        Def {
            created: 1_706_140_800,
            description: "text-embedding-3-large: OpenAI's most capable embedding model, 3072 dimensions (shortenable).",
            context: 8_192,
            max_out: 0,
            tokenizer: "GPT",
            prompt: "0.00000013",
            params: EMBEDDING_PARAMS,
            kind: ModelKind::Embedding,
            embedding_dims: 3_072,
            providers: &[("OpenAI", None, true)],
            ..def(
                "openai/text-embedding-3-large",
                "openai/text-embedding-3-large",
                "OpenAI: Text Embedding 3 Large",
            )
        },
        Def {
            created: 1_749_513_600,
            description: "Qwen3-Embedding-8B: multilingual embedding model of the Qwen3 family, 4096 dimensions, 32K context.",
            context: 32_768,
            max_out: 0,
            tokenizer: "Qwen3",
            prompt: "0.00000001",
            params: EMBEDDING_PARAMS,
            hf: Some("Qwen/Qwen3-Embedding-8B"),
            kind: ModelKind::Embedding,
            embedding_dims: 4_096,
            providers: &[("DeepInfra", Some("fp8"), false), ("Nebius", None, false)],
            ..def(
                "qwen/qwen3-embedding-8b",
                "qwen/qwen3-embedding-8b",
                "Qwen: Qwen3 Embedding 8B",
            )
        },
    ]
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
pub(crate) fn build_catalog() -> Catalog {
    let mut models = Vec::new();
    for (i, d) in defs().into_iter().enumerate() {
        let endpoints = d
            .providers
            .iter()
            .enumerate()
            .map(|(j, &(provider, quant, zdr))| {
                let tag = match quant {
                    Some(q) => format!("{}/{q}", provider.to_lowercase().replace(' ', "-")),
                    None => provider.to_lowercase().replace(' ', "-"),
                };
                // Deterministic but varied health figures; the first endpoint is the healthiest.
                let k = (i * 7 + j * 13) as f64;
                EndpointDef {
                    endpoint_id: endpoint_uuid(d.id, &tag).into(),
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
                    zdr,
                }
            })
            .collect();
        models.push(Model {
            id: d.id.into(),
            kind: d.kind,
            embedding_dims: d.embedding_dims,
            canonical_slug: d.slug.into(),
            name: d.name,
            created: d.created,
            description: d.description,
            context_length: d.context,
            max_completion_tokens: d.max_out,
            input_modalities: d.input,
            output_modalities: match d.kind {
                ModelKind::Text => TEXT,
                ModelKind::Embedding => EMBEDDINGS,
            },
            tokenizer: d.tokenizer,
            instruct_type: d.instruct,
            pricing: PricingStrings {
                prompt: d.prompt,
                completion: d.completion,
                request: d.request,
                image: d.image,
                web_search: d.web_search,
                // Reasoning tokens bill at the completion price unless the model prices them apart;
                // publish the rate that actually bills.
                internal_reasoning: d.reasoning.unwrap_or(d.completion),
                input_cache_read: d.cache_read,
                input_cache_write: d.cache_write,
            },
            prices: Prices {
                prompt: price(d.prompt),
                completion: price(d.completion),
                request: price(d.request),
                input_cache_read: d.cache_read.map(price),
                internal_reasoning: d.reasoning.map(price),
            },
            supported_parameters: d.params,
            categories: d.categories,
            hugging_face_id: d.hf,
            knowledge_cutoff: d.cutoff,
            is_moderated: d.moderated,
            endpoints,
        });
    }
    let mut index = FastMap::default();
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
    let all_models_json = serde_json::to_vec(&DataList { data: views })
        .unwrap_or_default()
        .into();
    Catalog {
        models,
        index,
        all_models_json,
    }
}

#[derive(Serialize)]
pub(crate) struct DataList<T> {
    pub data: Vec<T>,
}

#[derive(Serialize)]
struct Architecture<'a> {
    modality: String,
    input_modalities: &'a [&'a str],
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
    supported_parameters: &'a [&'a str],
    default_parameters: serde_json::Value,
    knowledge_cutoff: Option<&'a str>,
    expiration_date: Option<()>,
    links: Links,
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
    supported_parameters: &'a [&'a str],
    status: i32,
    uptime_last_5m: f64,
    uptime_last_30m: f64,
    uptime_last_1d: f64,
    latency_last_30m: Percentiles,
    throughput_last_30m: Percentiles,
    supports_implicit_caching: bool,
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
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ModelsQuery {
    category: Option<String>,
    supported_parameters: Option<String>,
    output_modalities: Option<String>,
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
            .all(|p| m.supported_parameters.contains(&p));
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
) -> Response {
    let cat = &shared.catalog;
    if q.category.is_none() && q.supported_parameters.is_none() && q.output_modalities.is_none() {
        return json_response(cat.all_models_json.clone());
    }
    let data: Vec<ModelView<'_>> = cat
        .models
        .iter()
        .filter(|m| matches(m, &q))
        .map(ModelView::from)
        .collect();
    json_response(serde_json::to_vec(&DataList { data }).unwrap_or_default())
}

/// `GET /models/user` (bearer): the catalog filtered by the caller's guardrails.
pub(crate) async fn list_user_models(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = shared.authenticate(&headers)?;
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
    Ok(json_response(
        serde_json::to_vec(&DataList { data }).unwrap_or_default(),
    ))
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
    #[derive(Serialize)]
    struct Data<T> {
        data: T,
    }
    Ok(json_response(
        serde_json::to_vec(&Data { data: view }).unwrap_or_default(),
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
    json_response(serde_json::to_vec(&DataList { data }).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_price_literal_parses() {
        for d in defs() {
            for p in [d.prompt, d.completion, d.request, d.image, d.web_search]
                .into_iter()
                .chain(d.cache_read)
                .chain(d.cache_write)
                .chain(d.reasoning)
            {
                assert!(Money::parse(p).is_ok(), "{}: {p}", d.id);
            }
            assert!(!d.providers.is_empty(), "{} has no provider", d.id);
        }
    }

    #[test]
    fn catalog_has_the_seed_models() {
        let c = build_catalog();
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
