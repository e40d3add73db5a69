//! `POST /completions`: legacy text completions (OpenRouter still serves the route; its last
//! spec is from 2025-11). `n` answers n choices and bills n × the completion tokens; a prompt
//! array is counted as one prompt (its strings' tokens add up). Streams are chat-like
//! `data: {…"object":"text_completion"…}` chunks, a usage chunk with `"choices":[]` and `cost`,
//! then `data: [DONE]`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::{UsageOut, chunk_head, data_frame, json_with_id};
use crate::error::ApiError;
use crate::extract::{RawBody, parse_json};
use crate::inference::{
    Plan, PromptCounter, PromptInfo, admit, bad, content_word, parse_max_tokens, resolve_models,
    session_id, tokens_for, words,
};
use crate::models::ModelKind;
use crate::shared::Shared;
use crate::sse::{Produced, SseFormat, StreamSetup, push_json_str, sse_response};
use crate::state::ApiType;

pub(crate) const COMPLETIONS_PATH: &str = "/api/v1/completions";
/// The largest `n` accepted.
pub(crate) const MAX_N: u64 = 16;

#[derive(Deserialize)]
struct CompletionsRequest<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    n: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

/// A prompt: string, string[], token ids, or arrays of token ids.
pub(crate) fn count_prompt(
    counter: &mut PromptCounter,
    v: &Value,
    what: &str,
) -> Result<(), ApiError> {
    let err = || {
        bad(format!(
            "Invalid request parameters: {what} must be a string, an array of strings, an array of token ids or an array of token-id arrays"
        ))
    };
    let ids = |a: &[Value]| -> Option<Vec<u64>> { a.iter().map(Value::as_u64).collect() };
    match v {
        Value::String(s) => counter.bare_text(s),
        Value::Array(items) if !items.is_empty() => {
            if items.iter().all(Value::is_string) {
                for s in items.iter().filter_map(Value::as_str) {
                    counter.bare_text(s);
                }
            } else if let Some(ids) = ids(items) {
                counter.token_ids(&ids);
            } else {
                for item in items {
                    let ids = item.as_array().and_then(|a| ids(a)).ok_or_else(err)?;
                    counter.token_ids(&ids);
                }
            }
        }
        _ => return Err(err()),
    }
    Ok(())
}

fn analyze(prompt: &Value) -> Result<PromptInfo, ApiError> {
    let mut counter = PromptCounter::default();
    count_prompt(&mut counter, prompt, "prompt")?;
    Ok(counter.finish())
}

fn plan(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Plan, ApiError> {
    let req: CompletionsRequest<'_> = parse_json(body)?;
    let prompt = req
        .prompt
        .as_ref()
        .ok_or_else(|| bad("Invalid request parameters: prompt is required"))?;
    let prompt = analyze(prompt)?;
    let ids = req
        .model
        .as_deref()
        .into_iter()
        .chain(req.models.iter().flatten().map(String::as_str));
    let mut plan = Plan::new(resolve_models(shared, ids, ModelKind::Text)?, prompt);
    plan.max_tokens = parse_max_tokens(req.max_tokens, "max_tokens")?;
    plan.choices = match parse_max_tokens(req.n, "n")? {
        Some(n) if n > MAX_N => {
            return Err(bad(format!(
                "Invalid request parameters: n must be at most {MAX_N}"
            )));
        }
        Some(n) => n,
        None => 1,
    };
    plan.stream = req.stream.unwrap_or(false);
    plan.user = req.user;
    plan.session_id = session_id(headers, req.session_id);
    Ok(plan)
}

/// Choice `k`'s seed (choices differ in wording, not in length).
pub(crate) fn choice_seed(seed: u64, k: u64) -> u64 {
    seed.wrapping_add(k << 8)
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    text: String,
    index: u64,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    provider: &'a str,
    system_fingerprint: Option<()>,
    choices: Vec<ChoiceOut<'a>>,
    usage: UsageOut,
}

/// `POST /completions` (inference key).
pub(crate) async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let plan = plan(&shared, &headers, &body);
    let adm = admit(&shared, &headers, plan)?;
    let model = adm.model(&shared);
    // Text completions have no reasoning channel.
    let mut tokens = tokens_for(&adm.plan, model);
    tokens.reasoning = 0;
    if adm.plan.stream {
        let setup = adm.into_stream(&shared, &headers, tokens, started, COMPLETIONS_PATH);
        let head = chunk_head(&setup, "text_completion");
        return Ok(sse_response(setup, CompletionsFormat { head }));
    }
    let seed = adm.plan.prompt.seed;
    let n = adm.plan.choices;
    let created = adm.now.timestamp();
    let endpoint = adm.sel.endpoint;
    let billed = adm.bill_now(&shared, &headers, tokens, ApiType::Completions, started)?;
    let out = CompletionOut {
        id: &billed.id,
        object: "text_completion",
        created,
        model: &model.id,
        provider: &model.endpoints[endpoint].provider_name,
        system_fingerprint: None,
        choices: (0..n)
            .map(|k| ChoiceOut {
                text: words(tokens.completion, |i| content_word(choice_seed(seed, k), i)),
                index: k,
                logprobs: None,
                finish_reason: tokens.finish_reason,
            })
            .collect(),
        usage: UsageOut::of(&billed.tokens, &billed.cost),
    };
    let body = serde_json::to_vec(&out).map_err(|_| ApiError::internal("Internal Server Error"))?;
    Ok(json_with_id(body, &billed.id))
}

/// Text-completion chunks: each content step carries one token for every choice.
struct CompletionsFormat {
    head: String,
}

impl SseFormat for CompletionsFormat {
    fn open(&mut self, _s: &StreamSetup) -> Option<Bytes> {
        Some(Bytes::from_static(b": OPENROUTER PROCESSING\n\n"))
    }

    fn reasoning(&mut self, _s: &StreamSetup, _i: u64, _text: &str) -> Bytes {
        // Never called: completions have no reasoning tokens.
        Bytes::new()
    }

    fn content(&mut self, s: &StreamSetup, i: u64, text: &str, last: bool) -> Bytes {
        let finish = match last {
            true => format!("\"{}\"", s.tokens.finish_reason),
            false => "null".to_owned(),
        };
        let mut out = String::new();
        for k in 0..s.choices {
            let word = if text.is_empty() {
                String::new()
            } else if k == 0 {
                text.to_owned()
            } else {
                let w = content_word(choice_seed(s.seed, k), i);
                if i == 0 {
                    w.to_owned()
                } else {
                    format!(" {w}")
                }
            };
            let mut body = String::from("\"choices\":[{\"text\":");
            push_json_str(&mut body, &word);
            body.push_str(&format!(
                ",\"index\":{k},\"logprobs\":null,\"finish_reason\":{finish}}}]"
            ));
            out.push_str(&data_frame(&self.head, &body));
        }
        Bytes::from(out)
    }

    fn finish(&mut self, _s: &StreamSetup, p: &Produced) -> Bytes {
        let usage = serde_json::to_string(&UsageOut::of(&p.tokens, &p.cost)).unwrap_or_default();
        let mut out = data_frame(&self.head, &format!("\"choices\":[],\"usage\":{usage}"));
        out.push_str("data: [DONE]\n\n");
        Bytes::from(out)
    }

    fn error(&mut self, _s: &StreamSetup, code: u16, message: &str, _p: &Produced) -> Bytes {
        let mut err = String::from("\"error\":{\"code\":");
        err.push_str(&code.to_string());
        err.push_str(",\"message\":");
        push_json_str(&mut err, message);
        err.push_str("},\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"error\"}]");
        Bytes::from(data_frame(&self.head, &err))
    }
}
