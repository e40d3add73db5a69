//! `POST /api/v1/messages`: Anthropic Messages as OpenRouter serves it.

use orteam_sim::{Fault, FaultRule, Route, SimConfig};
use serde_json::{Value, json};

use crate::{Ctx, generation, m, spent_key};

const MODEL: &str = "openai/gpt-4o-mini";

fn body(user: &str) -> Value {
    json!({"model": MODEL, "max_tokens": 1024,
           "messages": [{"role": "user", "content": user}]})
}

#[track_caller]
fn assert_anthropic_error(r: &crate::Resp, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.json["type"], "error", "{}", r.text);
    assert_eq!(r.json["error"]["type"], kind, "{}", r.text);
    assert!(r.json["error"]["message"].is_string(), "{}", r.text);
    assert_eq!(r.json["request_id"], Value::Null, "{}", r.text);
}

#[tokio::test]
async fn non_stream_shape_and_exact_cost() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/messages",
            Some(&key),
            json!({"model": MODEL, "max_tokens": 1024, "system": "be brief",
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi [[sim:tokens=10]]"}]}],
                   "metadata": {"user_id": "u-1"}, "stop_sequences": ["\n\n"],
                   "provider": {"order": ["OpenAI"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("gen-"), "{id}");
    assert_eq!(r.headers["x-generation-id"], id.as_str());
    assert_eq!(r.json["type"], "message");
    assert_eq!(r.json["role"], "assistant");
    assert_eq!(r.json["model"], MODEL);
    assert_eq!(r.json["provider"], "OpenAI");
    assert_eq!(r.json["stop_reason"], "end_turn");
    assert_eq!(r.json["stop_sequence"], Value::Null);
    let content = r.json["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    assert_eq!(content[0]["text"].as_str().unwrap().split(' ').count(), 10);
    // system (4 + 2) + user (4 + 5) = 15 prompt tokens.
    let u = &r.json["usage"];
    assert_eq!(u["input_tokens"], 15);
    assert_eq!(u["output_tokens"], 10);
    assert_eq!(u["cache_creation_input_tokens"], 0);
    assert_eq!(u["cache_read_input_tokens"], 0);
    assert_eq!(u["is_byok"], false);
    // 15 × 0.00000015 + 10 × 0.0000006
    let cost = r.money("/usage/cost");
    assert_eq!(cost, m("0.00000825"));
    assert_eq!(
        r.money("/usage/cost_details/upstream_inference_prompt_cost"),
        m("0.00000225")
    );
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(g.json["data"]["api_type"], "completions");
    assert_eq!(g.json["data"]["external_user"], "u-1");
    assert_eq!(g.json["data"]["streamed"], false);
    assert_eq!(c.admin_credits().await.1, cost);
}

#[tokio::test]
async fn max_tokens_caps_the_answer() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body("hi [[sim:tokens=50]]");
    b["max_tokens"] = json!(7);
    let r = c.post("/messages", Some(&key), b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["stop_reason"], "max_tokens");
    assert_eq!(r.json["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn forced_tool_use_and_thinking() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let tools = json!([{"name": "Read", "input_schema": {"type": "object"}},
                       {"name": "Write", "input_schema": {"type": "object"}}]);
    let mut b = body("read it [[sim:tokens=6]]");
    b["tools"] = tools.clone();
    b["tool_choice"] = json!({"type": "tool", "name": "Write"});
    let r = c.post("/messages", Some(&key), b.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["stop_reason"], "tool_use");
    let block = &r.json["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "Write");
    assert_eq!(block["input"], json!({}));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    b["tool_choice"] = json!({"type": "any"});
    let r = c.post("/messages", Some(&key), b).await;
    assert_eq!(r.json["content"][0]["name"], "Read", "{}", r.text);

    // Thinking: a thinking block first; reasoning tokens bill as output.
    let mut b = body("think [[sim:tokens=10]]");
    b["thinking"] = json!({"type": "enabled", "budget_tokens": 2000});
    let r = c.post("/messages", Some(&key), b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let content = r.json["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(
        content[0]["thinking"].as_str().unwrap().split(' ').count(),
        5
    );
    assert_eq!(content[1]["type"], "text");
    assert_eq!(content[1]["text"].as_str().unwrap().split(' ').count(), 5);
    assert_eq!(r.json["usage"]["output_tokens"], 10);
    let id = r.json["id"].as_str().unwrap();
    let g = generation(&c, &key, id).await;
    assert_eq!(g.json["data"]["native_tokens_reasoning"], 5);
    assert_eq!(g.money("/data/total_cost"), r.money("/usage/cost"));
}

#[tokio::test]
async fn stream_events_and_billing() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body("hi [[sim:tokens=4]] [[sim:reasoning=2]]");
    b["stream"] = json!(true);
    let (status, headers, s) = c.stream_at("/messages", &key, b).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(!s.cut);
    assert!(!s.text.contains("[DONE]"), "{}", s.text);
    let names = s.event_names();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{}",
        s.text
    );
    let ev = s.events();
    for (name, data) in &ev {
        assert_eq!(&data["type"], name.as_str());
    }
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    let start = &ev[0].1["message"];
    assert_eq!(start["id"], id.as_str());
    assert_eq!(start["model"], MODEL);
    assert_eq!(start["provider"], "OpenAI");
    // 4 + ceil(39 / 4) prompt tokens.
    assert_eq!(start["usage"]["input_tokens"], 14);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(ev[2].1["content_block"]["type"], "thinking");
    assert_eq!(ev[3].1["delta"]["type"], "thinking_delta");
    assert_eq!(ev[5].1["delta"]["type"], "signature_delta");
    assert_eq!(ev[7].1["content_block"]["type"], "text");
    assert_eq!(ev[7].1["index"], 1);
    assert_eq!(ev[8].1["delta"]["type"], "text_delta");
    let delta = &ev[11].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
    assert_eq!(delta["usage"]["input_tokens"], 14);
    assert!(
        delta["usage"].get("cost").is_none(),
        "no cost in the stream"
    );
    // 14 × 0.00000015 + 4 × 0.0000006
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), m("0.0000045"));
    assert_eq!(g.json["data"]["streamed"], true);
    assert_eq!(g.json["data"]["native_tokens_reasoning"], 2);
    assert_eq!(c.admin_credits().await.1, m("0.0000045"));
}

#[tokio::test]
async fn stream_tool_use_block() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body("go [[sim:tokens=3]]");
    b["stream"] = json!(true);
    b["tools"] = json!([{"name": "Bash", "input_schema": {"type": "object"}}]);
    b["tool_choice"] = json!({"type": "any"});
    let (_, _, s) = c.stream_at("/messages", &key, b).await;
    let ev = s.events();
    let start = ev.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(start.1["content_block"]["type"], "tool_use");
    assert_eq!(start.1["content_block"]["name"], "Bash");
    let delta = ev.iter().find(|(n, _)| n == "content_block_delta").unwrap();
    assert_eq!(delta.1["delta"]["type"], "input_json_delta");
    let md = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(md.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(md.1["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn errors_use_anthropic_shape() {
    let c = Ctx::with(SimConfig {
        key_limit_status: 402,
        ..SimConfig::default()
    })
    .await;
    let key = c.key("k");
    let r = c.post("/messages", None, body("hi")).await;
    assert_anthropic_error(&r, 401, "authentication_error");
    let r = c.post("/messages", Some("sk-or-v1-nope"), body("hi")).await;
    assert_anthropic_error(&r, 401, "authentication_error");
    let r = c.post("/messages", Some(&c.mgmt()), body("hi")).await;
    assert_anthropic_error(&r, 403, "permission_error");
    let r = c
        .post(
            "/messages",
            Some(&key),
            json!({"model": MODEL, "messages": []}),
        )
        .await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let r = c
        .post(
            "/messages",
            Some(&key),
            json!({"model": MODEL, "messages": [{"role": "system", "content": "x"}]}),
        )
        .await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let mut b = body("hi");
    b["model"] = json!("nope/nope");
    assert_anthropic_error(
        &c.post("/messages", Some(&key), b).await,
        400,
        "invalid_request_error",
    );
    let r = c.post_raw("/messages", Some(&key), "{not json").await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    // Key limit (402 configured) → billing_error.
    let spent = spent_key(&c).await;
    let r = c.post("/messages", Some(&spent), body("hi")).await;
    assert_anthropic_error(&r, 402, "billing_error");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Key limit exceeded")
    );
    // count_tokens is not served by OpenRouter.
    let r = c
        .post("/messages/count_tokens", Some(&key), body("hi"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn key_limit_default_is_403_permission_error() {
    let c = Ctx::new().await;
    let spent = spent_key(&c).await;
    let r = c.post("/messages", Some(&spent), body("hi")).await;
    assert_anthropic_error(&r, 403, "permission_error");
}

#[tokio::test]
async fn faults_on_the_messages_route() {
    let c = Ctx::new().await;
    let key = c.key("k");
    c.sim.set_faults(vec![
        FaultRule::always(Fault::Status {
            status: 529,
            retry_after: None,
            message: None,
        })
        .on_route(Route::Messages)
        .times(1),
    ]);
    // Chat is not affected by a messages rule.
    assert_eq!(c.chat(&key, MODEL, "hi").await.status, 200);
    let r = c.post("/messages", Some(&key), body("hi")).await;
    assert_anthropic_error(&r, 529, "overloaded_error");
    assert_eq!(r.json["error"]["message"], "Provider overloaded");
    assert_eq!(
        c.post("/messages", Some(&key), body("hi")).await.status,
        200
    );

    // Mid-stream error: an SSE `error` event after 2 text chunks, billed for what was sent.
    c.sim.set_faults(vec![
        "stream_error:2:code=529:route=messages".parse().unwrap(),
    ]);
    let mut b = body("hi [[sim:tokens=6]]");
    b["stream"] = json!(true);
    let (status, headers, s) = c.stream_at("/messages", &key, b.clone()).await;
    assert_eq!(status, 200);
    let ev = s.events();
    let (name, err) = ev.last().unwrap();
    assert_eq!(name, "error", "{}", s.text);
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "overloaded_error");
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    assert_eq!(err["request_id"], id.as_str());
    assert!(!s.event_names().contains(&"message_stop".to_owned()));
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.json["data"]["tokens_completion"], 2);
    assert_eq!(g.json["data"]["finish_reason"], "error");

    // Cut: the connection drops after 1 chunk; billed and cancelled.
    c.sim.set_faults(vec![
        FaultRule::always(Fault::StreamCut { after_chunks: 1 }).on_route(Route::Messages),
    ]);
    let (_, headers, s) = c.stream_at("/messages", &key, b).await;
    assert!(s.cut, "{}", s.text);
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.json["data"]["cancelled"], true);
    assert_eq!(g.json["data"]["tokens_completion"], 1);
}

#[tokio::test]
async fn client_hang_up_bills_what_was_streamed() {
    let c = Ctx::new().await;
    let (key, hash) = c.sim.create_key("dc", None, None);
    let mut r = c
        .http
        .post(format!("{}/messages", c.sim.base_url()))
        .bearer_auth(&key)
        .json(&json!({"model": MODEL, "max_tokens": 4096, "stream": true,
            "messages": [{"role": "user", "content": "[[sim:tokens=2000]] [[sim:delay_ms=5]]"}]}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_owned();
    let mut seen = String::new();
    while seen.matches("text_delta").count() < 2 {
        seen.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    drop(r);
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.json["data"]["cancelled"], true);
    let produced = g.json["data"]["tokens_completion"].as_u64().unwrap();
    assert!((2..2000).contains(&produced), "{produced}");
    assert_eq!(
        c.key_info(&hash).await.money("/data/usage"),
        g.money("/data/total_cost")
    );
}

#[tokio::test]
async fn every_route_feeds_activity() {
    let c = Ctx::frozen_at(crate::utc(2026, 6, 10, 12, 0)).await;
    let key = c.key("k");
    let mgmt = c.mgmt();
    let a = c
        .post("/messages", Some(&key), body("hi [[sim:tokens=3]]"))
        .await;
    let b = c
        .post(
            "/responses",
            Some(&key),
            json!({"model": MODEL, "input": "hi [[sim:tokens=3]]"}),
        )
        .await;
    let d = c
        .post(
            "/completions",
            Some(&key),
            json!({"model": MODEL, "prompt": "hi [[sim:tokens=3]]"}),
        )
        .await;
    let e = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": "openai/text-embedding-3-small", "input": "hello"}),
        )
        .await;
    c.sim.clock().advance(chrono::TimeDelta::days(1));
    let act = c.get("/activity", Some(&mgmt)).await;
    assert_eq!(act.status, 200, "{}", act.text);
    let rows = act.json["data"].as_array().unwrap();
    let row = |model: &str| {
        rows.iter()
            .position(|r| r["model"] == model)
            .unwrap_or_else(|| panic!("no {model} row in {}", act.text))
    };
    let text = row(MODEL);
    assert_eq!(rows[text]["requests"], 3);
    assert_eq!(
        act.money(&format!("/data/{text}/usage")),
        a.money("/usage/cost")
            .plus(b.money("/usage/cost"))
            .unwrap()
            .plus(d.money("/usage/cost"))
            .unwrap()
    );
    let emb = row("openai/text-embedding-3-small");
    assert_eq!(
        act.money(&format!("/data/{emb}/usage")),
        e.money("/usage/cost")
    );
    assert_eq!(rows[emb]["prompt_tokens"], 2);
}
