//! Completions: exact cost for every catalog model, determinism, streaming format and usage.

use orteam_core::Money;
use orteam_sim::SimConfig;
use serde_json::{Value, json};

use crate::{Ctx, m, raw_at, utc};

fn prompt_tokens(messages: &[(&str, &str)]) -> u64 {
    messages
        .iter()
        .map(|(_, c)| 4 + (c.len() as u64).div_ceil(4))
        .sum()
}

fn expected_cost(
    pricing: &Value,
    prompt: u64,
    cached: u64,
    completion: u64,
    reasoning: u64,
) -> Money {
    let p = |k: &str| m(pricing[k].as_str().unwrap());
    let prompt_price = p("prompt");
    let completion_price = p("completion");
    let cache_price = pricing
        .get("input_cache_read")
        .map(|v| m(v.as_str().unwrap()))
        .unwrap_or(prompt_price);
    let reasoning_price = match pricing["internal_reasoning"].as_str().unwrap() {
        "0" => completion_price,
        other => m(other),
    };
    let parts = [
        prompt_price.times(prompt - cached).unwrap(),
        cache_price.times(cached).unwrap(),
        completion_price.times(completion - reasoning).unwrap(),
        reasoning_price.times(reasoning).unwrap(),
        p("request"),
    ];
    parts.iter().sum()
}

struct Case {
    system: &'static str,
    user: String,
    max_tokens: Option<u64>,
    want_completion: Option<u64>,
    reasoning: u64,
    cached: u64,
    finish: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            system: "You are terse.",
            user: "hello world [[sim:tokens=17]]".into(),
            max_tokens: None,
            want_completion: Some(17),
            reasoning: 0,
            cached: 0,
            finish: "stop",
        },
        Case {
            system: "Think first.",
            user: "[[sim:tokens=40]][[sim:reasoning=12]][[sim:cached=5]] explain ünïcödé".into(),
            max_tokens: Some(30),
            want_completion: Some(30),
            reasoning: 12,
            cached: 5,
            finish: "length",
        },
        Case {
            system: "",
            user: "ab".repeat(333),
            max_tokens: None,
            want_completion: None,
            reasoning: 0,
            cached: 0,
            finish: "stop",
        },
    ]
}

/// Property over the whole catalog: `usage.cost` is exactly tokens × the published prices.
#[tokio::test]
async fn cost_is_exact_for_every_catalog_model() {
    let c = Ctx::frozen_at(utc(2026, 4, 14, 9, 0)).await;
    let (key, hash) = c.sim.create_key("cost", None, None);
    let models = c.get("/models", None).await;
    let models = models.json["data"].as_array().unwrap().clone();
    assert!(models.len() >= 12);
    let mut total = Money::ZERO;
    for model in &models {
        let id = model["id"].as_str().unwrap();
        for case in cases() {
            let mut msgs = vec![];
            if !case.system.is_empty() {
                msgs.push(("system", case.system));
            }
            msgs.push(("user", case.user.as_str()));
            let mut body = json!({
                "model": id,
                "messages": msgs.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
                "user": "end-user-42",
            });
            if let Some(mt) = case.max_tokens {
                body["max_tokens"] = json!(mt);
            }
            let r = c.post("/chat/completions", Some(&key), body).await;
            assert_eq!(r.status, 200, "{id}: {}", r.text);
            let u = &r.json["usage"];
            let prompt = u["prompt_tokens"].as_u64().unwrap();
            let completion = u["completion_tokens"].as_u64().unwrap();
            assert_eq!(prompt, prompt_tokens(&msgs), "{id}");
            match case.want_completion {
                Some(n) => assert_eq!(completion, n, "{id}"),
                None => assert!((8..=64).contains(&completion), "{id}: {completion}"),
            }
            assert_eq!(u["total_tokens"].as_u64().unwrap(), prompt + completion);
            assert_eq!(u["prompt_tokens_details"]["cached_tokens"], case.cached);
            assert_eq!(
                u["completion_tokens_details"]["reasoning_tokens"],
                case.reasoning
            );
            assert_eq!(r.json["choices"][0]["finish_reason"], case.finish);
            let cost = r.money("/usage/cost");
            let want = expected_cost(
                &model["pricing"],
                prompt,
                case.cached,
                completion,
                case.reasoning,
            );
            assert_eq!(cost, want, "{id}: {}", r.raw("/usage/cost"));
            let details = r
                .money("/usage/cost_details/upstream_inference_prompt_cost")
                .plus(r.money("/usage/cost_details/upstream_inference_completions_cost"))
                .unwrap()
                .plus(m(model["pricing"]["request"].as_str().unwrap()))
                .unwrap();
            assert_eq!(details, cost, "{id}");
            // One word per content token.
            let content = r.json["choices"][0]["message"]["content"].as_str().unwrap();
            assert_eq!(
                content.split_whitespace().count() as u64,
                completion - case.reasoning
            );
            if case.reasoning > 0 {
                let reasoning = r.json["choices"][0]["message"]["reasoning"]
                    .as_str()
                    .unwrap();
                assert_eq!(reasoning.split_whitespace().count() as u64, case.reasoning);
            }
            // /generation agrees.
            let id_gen = r.json["id"].as_str().unwrap();
            let g = c.get(&format!("/generation?id={id_gen}"), Some(&key)).await;
            assert_eq!(g.status, 200, "{}", g.text);
            assert_eq!(g.money("/data/total_cost"), cost);
            assert_eq!(g.json["data"]["tokens_prompt"], prompt);
            assert_eq!(g.json["data"]["tokens_completion"], completion);
            assert_eq!(g.json["data"]["native_tokens_reasoning"], case.reasoning);
            assert_eq!(g.json["data"]["native_tokens_cached"], case.cached);
            assert_eq!(g.json["data"]["external_user"], "end-user-42");
            assert_eq!(g.json["data"]["model"], id);
            total = total.plus(cost).unwrap();
        }
    }
    assert_eq!(c.key_info(&hash).await.money("/data/usage"), total);
    assert_eq!(c.admin_credits().await.1, total);
}

#[tokio::test]
async fn completions_are_deterministic_and_well_formed() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let a = c.chat(&key, "openai/gpt-4o", "Tell me a story").await;
    let b = c.chat(&key, "openai/gpt-4o", "Tell me a story").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["choices"], b.json["choices"]);
    assert_eq!(a.raw("/usage"), b.raw("/usage"));
    let id = a.json["id"].as_str().unwrap();
    assert_ne!(id, b.json["id"].as_str().unwrap());
    let parts: Vec<&str> = id.splitn(3, '-').collect();
    assert_eq!(parts[0], "gen");
    assert!(parts[1].parse::<i64>().is_ok());
    assert_eq!(parts[2].len(), 20);
    assert!(parts[2].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(a.headers["x-generation-id"].to_str().unwrap(), id);
    assert_eq!(a.json["object"], "chat.completion");
    assert_eq!(a.json["provider"], "OpenAI");
    assert_eq!(a.json["model"], "openai/gpt-4o");
    assert_eq!(a.json["choices"][0]["message"]["role"], "assistant");
    assert_eq!(a.json["choices"][0]["native_finish_reason"], "stop");
    assert_eq!(a.json["usage"]["is_byok"], false);
    // Content parts count like strings.
    let parts = c
        .post(
            "/chat/completions",
            Some(&key),
            json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "text": "Tell me a story"}]}]}),
        )
        .await;
    assert_eq!(parts.raw("/usage"), a.raw("/usage"));
    // max_completion_tokens caps too.
    let capped = c
        .post(
            "/chat/completions",
            Some(&key),
            json!({"model": "openai/gpt-4o", "max_completion_tokens": 3, "messages": [{"role": "user", "content": "[[sim:tokens=9]]"}]}),
        )
        .await;
    assert_eq!(capped.json["usage"]["completion_tokens"], 3);
    assert_eq!(capped.json["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn stream_format_and_usage_match_non_stream() {
    let c = Ctx::new().await;
    let key = c.key("s");
    let body = json!({"model": "xiaomi/mimo-v2-flash", "user": "u1", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "stream please [[sim:tokens=9]] [[sim:reasoning=2]] [[sim:cached=3]]"}]});
    let plain = c.post("/chat/completions", Some(&key), body.clone()).await;
    assert_eq!(plain.status, 200);

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let (status, headers, st) = c.stream(&key, sbody).await;
    assert_eq!(status, 200);
    assert!(!st.cut);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        st.text.starts_with(": OPENROUTER PROCESSING\n\n"),
        "{}",
        st.text
    );
    assert!(st.has_done(), "{}", st.text);
    assert_eq!(st.text.matches("data: [DONE]").count(), 1);
    let chunks = st.chunks();
    let gen_id = headers["x-generation-id"].to_str().unwrap().to_owned();
    for ch in &chunks {
        assert_eq!(ch["id"], gen_id.as_str());
        assert_eq!(ch["object"], "chat.completion.chunk");
        assert_eq!(ch["model"], "xiaomi/mimo-v2-flash");
        assert_eq!(ch["provider"], "Xiaomi");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks[1..]
            .iter()
            .all(|c| c["choices"][0]["delta"].get("role").is_none())
    );
    let usage_chunks: Vec<_> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c["choices"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(usage_chunks.len(), 1);
    assert_eq!(
        usage_chunks[0].0,
        chunks.len() - 1,
        "usage chunk is the last data chunk"
    );
    let last_content = &chunks[chunks.len() - 2];
    assert_eq!(last_content["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks[..chunks.len() - 2]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    // 2 reasoning chunks + 7 content chunks, one token each.
    assert_eq!(chunks.len(), 2 + 7 + 1);
    assert_eq!(
        st.content(),
        plain.json["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    // Usage is byte-for-byte the non-streamed usage.
    let data = st.data();
    assert_eq!(raw_at(data.last().unwrap(), "/usage"), plain.raw("/usage"));

    crate::wait_generation(&c.sim, &gen_id).await;
    let g = c.get(&format!("/generation?id={gen_id}"), Some(&key)).await;
    assert_eq!(g.json["data"]["streamed"], true);
    assert_eq!(g.json["data"]["cancelled"], false);
    assert_eq!(g.json["data"]["finish_reason"], "stop");
    assert_eq!(g.money("/data/total_cost"), plain.money("/usage/cost"));
    assert_eq!(g.json["data"]["external_user"], "u1");
}

#[tokio::test]
async fn stream_with_zero_tokens_still_has_finish_and_usage() {
    let c = Ctx::new().await;
    let key = c.key("z");
    let (_, _, st) = c
        .stream(&key, json!({"model": "openai/gpt-4o", "stream": true, "messages": [{"role": "user", "content": "[[sim:tokens=0]]"}]}))
        .await;
    let chunks = st.chunks();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[1]["usage"]["completion_tokens"], 0);
    assert!(st.has_done());
}

#[tokio::test]
async fn free_models_are_rate_limited_and_fallbacks_apply() {
    let c = Ctx::frozen_at(utc(2026, 4, 14, 9, 0)).await;
    let key = c.key("f");
    for _ in 0..20 {
        assert_eq!(
            c.chat(&key, "google/gemma-2-9b-it:free", "hi").await.status,
            200
        );
    }
    let r = c.chat(&key, "google/gemma-2-9b-it:free", "hi").await;
    r.assert_error(429);
    assert_eq!(r.headers["x-ratelimit-limit"], "20");
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("x-ratelimit-reset"));
    assert_eq!(
        r.json["error"]["metadata"]["error_type"],
        "rate_limit_exceeded"
    );
    // Another key has its own budget of requests.
    assert_eq!(
        c.chat(&c.key("g"), "google/gemma-2-9b-it:free", "hi")
            .await
            .status,
        200
    );
    // The fallback list moves on to the next model, which is the one billed.
    let fb = c
        .post(
            "/chat/completions",
            Some(&key),
            json!({"models": ["google/gemma-2-9b-it:free", "openai/gpt-4o-mini"], "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(fb.status, 200, "{}", fb.text);
    assert_eq!(fb.json["model"], "openai/gpt-4o-mini");
    assert!(fb.money("/usage/cost") > Money::ZERO);
    // A minute later the limit is lifted.
    c.sim.clock().advance(chrono::TimeDelta::seconds(60));
    assert_eq!(
        c.chat(&key, "google/gemma-2-9b-it:free", "hi").await.status,
        200
    );

    let off = Ctx::with(SimConfig {
        free_model_rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    let k = off.key("x");
    for _ in 0..25 {
        assert_eq!(
            off.chat(&k, "google/gemma-2-9b-it:free", "hi").await.status,
            200
        );
    }
}

#[tokio::test]
async fn default_model_and_canonical_slug_are_accepted() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/chat/completions",
            Some(&key),
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["model"], "openai/gpt-4o-mini");
    let r = c.chat(&key, "openai/gpt-4.1-2025-04-14", "hi").await;
    assert_eq!(r.json["model"], "openai/gpt-4.1");
}
