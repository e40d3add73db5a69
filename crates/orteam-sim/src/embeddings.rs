//! `POST /embeddings` and `GET /embeddings/models`.
//!
//! Vectors are deterministic: component `j` of an input's vector comes from the FNV-1a hash of
//! the input (its UTF-8 text, or its token ids as little-endian u64s) and `j`, mapped to
//! [-1, 1), and the vector is L2-normalized. The default size is [`DEFAULT_DIMENSIONS`];
//! `dimensions` may ask for 1..=the model's native size. Prompt tokens: `ceil(utf8_bytes / 4)`
//! per string (the chat rule without the per-message framing), one per token id. Cost =
//! prompt tokens × `pricing.prompt` + `pricing.request`. No streaming (`stream: true` → 400).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use orteam_core::Money;
use orteam_core::money::json_number;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::json_with_id;
use crate::completions::count_prompt;
use crate::envelope::Envelope;
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    FNV_OFFSET, Plan, PromptCounter, Tokens, admit, bad, fnv1a, resolve_models,
};
use crate::models::{ModelKind, ModelView, json_response};
use crate::shared::Shared;
use crate::state::ApiType;

/// Vector size when the request gives no `dimensions`.
pub(crate) const DEFAULT_DIMENSIONS: u32 = 16;

#[derive(Deserialize)]
struct EmbeddingsRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
}

/// One input to embed, as the bytes its vector is hashed from.
fn input_hashes(input: &Value) -> Vec<u64> {
    let text = |s: &str| fnv1a(FNV_OFFSET, s.as_bytes());
    let ids = |a: &[Value]| {
        a.iter()
            .filter_map(Value::as_u64)
            .fold(FNV_OFFSET, |h, id| fnv1a(h, &id.to_le_bytes()))
    };
    match input {
        Value::String(s) => vec![text(s)],
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(text).collect()
        }
        Value::Array(items) if items.iter().all(Value::is_u64) => vec![ids(items)],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_array().map_or(FNV_OFFSET, |a| ids(a)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The deterministic unit vector of an input.
pub(crate) fn vector(hash: u64, dims: u32) -> Vec<f32> {
    let raw: Vec<f64> = (0..dims)
        .map(|j| {
            let x = fnv1a(hash, &j.to_le_bytes());
            (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|v| (v / norm) as f32).collect()
}

/// Standard base64 with padding (of the little-endian f32s, as OpenAI encodes embeddings).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= c.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Parsed {
    plan: Plan,
    hashes: Vec<u64>,
    dims: Option<u64>,
    base64: bool,
}

fn parse(shared: &Shared, body: &[u8]) -> Result<Parsed, ApiError> {
    let req: EmbeddingsRequest = parse_json(body)?;
    if req.stream == Some(true) {
        return Err(bad(
            "Invalid request parameters: streaming is not supported for embeddings",
        ));
    }
    let input = req
        .input
        .as_ref()
        .ok_or_else(|| bad("Invalid request parameters: input is required"))?;
    let mut counter = PromptCounter::default();
    count_prompt(&mut counter, input, "input")?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(bad(format!(
                "Invalid request parameters: encoding_format must be float or base64; got {other:?}"
            )));
        }
    };
    let dims = match &req.dimensions {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|d| *d >= 1).ok_or_else(|| {
            bad("Invalid request parameters: dimensions must be a positive integer")
        })?),
    };
    let model = req
        .model
        .as_deref()
        .ok_or_else(|| bad("Invalid request parameters: model is required"))?;
    let mut plan = Plan::new(
        resolve_models(shared, [model], ModelKind::Embedding)?,
        counter.finish(),
    );
    plan.user = req.user;
    Ok(Parsed {
        plan,
        hashes: input_hashes(input),
        dims,
        base64,
    })
}

#[derive(Serialize)]
struct CostDetails {
    upstream_inference_cost: Option<()>,
    #[serde(with = "json_number")]
    upstream_inference_prompt_cost: Money,
    upstream_inference_completions_cost: u8,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
    #[serde(with = "json_number")]
    cost: Money,
    is_byok: bool,
    cost_details: CostDetails,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Item {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
struct EmbeddingsOut<'a> {
    id: &'a str,
    object: &'static str,
    model: &'a str,
    data: Vec<Item>,
    usage: UsageOut,
}

/// `POST /embeddings` (inference key).
pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let parsed = parse(&shared, &body);
    let (plan, rest) = match parsed {
        Ok(p) => (Ok(p.plan), Some((p.hashes, p.dims, p.base64))),
        Err(e) => (Err(e), None),
    };
    let adm = admit(&shared, &headers, plan)?;
    let Some((hashes, dims, base64_out)) = rest else {
        return Err(ApiError::internal("Internal Server Error"));
    };
    let model = adm.model(&shared);
    let dims = match dims {
        None => DEFAULT_DIMENSIONS.min(model.embedding_dims),
        Some(d) if d <= u64::from(model.embedding_dims) => d as u32,
        Some(d) => {
            return Err(bad(format!(
                "Invalid request parameters: dimensions must be at most {} for {}; got {d}",
                model.embedding_dims, model.id
            )));
        }
    };
    let tokens = Tokens {
        prompt: adm.plan.prompt.prompt_tokens,
        cached: 0,
        completion: 0,
        reasoning: 0,
        finish_reason: "stop",
    };
    let billed = adm.bill_now(&shared, &headers, tokens, ApiType::Embeddings, started)?;
    let data = hashes
        .iter()
        .enumerate()
        .map(|(index, h)| {
            let v = vector(*h, dims);
            let embedding = if base64_out {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                Embedding::Base64(base64(&bytes))
            } else {
                Embedding::Float(v)
            };
            Item {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let out = EmbeddingsOut {
        id: &billed.id,
        object: "list",
        model: &model.id,
        data,
        usage: UsageOut {
            prompt_tokens: billed.tokens.prompt,
            total_tokens: billed.tokens.prompt,
            cost: billed.cost.total,
            is_byok: false,
            cost_details: CostDetails {
                upstream_inference_cost: None,
                upstream_inference_prompt_cost: billed.cost.prompt,
                upstream_inference_completions_cost: 0,
            },
        },
    };
    let body = serde_json::to_vec(&out).map_err(|_| ApiError::internal("Internal Server Error"))?;
    Ok(json_with_id(body, &billed.id))
}

/// `GET /embeddings/models` (no auth, like `/models`): the embedding models, in `/models`' shape.
pub(crate) async fn list_embedding_models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<ModelView<'_>> = shared
        .catalog
        .models
        .iter()
        .filter(|m| m.kind == ModelKind::Embedding)
        .map(ModelView::from)
        .collect();
    json_response(serde_json::to_vec(&Envelope::data(data)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn vectors_are_unit_and_deterministic() {
        let a = vector(42, 16);
        assert_eq!(a, vector(42, 16));
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert_ne!(a, vector(43, 16));
    }
}
