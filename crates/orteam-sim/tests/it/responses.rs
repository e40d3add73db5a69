//! `POST /api/v1/responses`: OpenAI Responses as OpenRouter serves it (stateless).

use orteam_sim::{Fault, FaultRule, Route};
use serde_json::{Value, json};

use crate::{Ctx, generation, m, spent_key};

const MODEL: &str = "openai/gpt-4o-mini";

fn body(input: Value) -> Value {
    json!({"model": MODEL, "input": input, "store": false})
}

#[tokio::test]
async fn non_stream_shape_and_exact_cost() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/responses",
            Some(&key),
            json!({"model": MODEL, "instructions": "be brief", "store": false,
                   "input": [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "hi [[sim:tokens=10]]"}]}],
                   "safety_identifier": "end-user-7"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("gen-"));
    assert_eq!(r.headers["x-generation-id"], id.as_str());
    assert_eq!(r.json["object"], "response");
    assert_eq!(r.json["status"], "completed");
    assert_eq!(r.json["model"], MODEL);
    assert!(r.json["created_at"].is_i64());
    assert_eq!(r.json["incomplete_details"], Value::Null);
    let out = r.json["output"].as_array().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "message");
    assert_eq!(out[0]["role"], "assistant");
    assert_eq!(out[0]["status"], "completed");
    assert!(out[0]["id"].as_str().unwrap().starts_with("msg_"));
    let part = &out[0]["content"][0];
    assert_eq!(part["type"], "output_text");
    assert_eq!(part["annotations"], json!([]));
    assert_eq!(part["text"].as_str().unwrap().split(' ').count(), 10);
    let u = &r.json["usage"];
    assert_eq!(u["input_tokens"], 15);
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["output_tokens"], 10);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(u["total_tokens"], 25);
    assert_eq!(u["is_byok"], false);
    let cost = r.money("/usage/cost");
    assert_eq!(cost, m("0.00000825"));
    assert_eq!(
        r.money("/usage/cost_details/upstream_inference_output_cost"),
        m("0.000006")
    );
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(g.json["data"]["api_type"], "completions");
    assert_eq!(g.json["data"]["external_user"], "end-user-7");
    assert_eq!(c.admin_credits().await.1, cost);
}

#[tokio::test]
async fn incomplete_reasoning_and_function_calls() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body(json!("hi [[sim:tokens=40]]"));
    b["max_output_tokens"] = json!(6);
    let r = c.post("/responses", Some(&key), b).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "incomplete");
    assert_eq!(r.json["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r.json["usage"]["output_tokens"], 6);

    let mut b = body(json!("hi [[sim:tokens=8]]"));
    b["reasoning"] = json!({"effort": "medium"});
    let r = c.post("/responses", Some(&key), b).await;
    let out = r.json["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning", "{}", r.text);
    assert_eq!(out[1]["type"], "message");
    assert_eq!(
        r.json["usage"]["output_tokens_details"]["reasoning_tokens"],
        4
    );

    let tools = json!([{"type": "function", "name": "shell", "parameters": {"type": "object"}},
                       {"type": "function", "name": "apply", "parameters": {"type": "object"}}]);
    let mut b = body(json!([
        {"role": "user", "content": "run it"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a b c"}
    ]));
    b["tools"] = tools;
    b["tool_choice"] = json!({"type": "function", "name": "apply"});
    let r = c.post("/responses", Some(&key), b.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let item = &r.json["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "apply");
    assert_eq!(item["arguments"], "{}");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    b["tool_choice"] = json!("required");
    let r = c.post("/responses", Some(&key), b).await;
    assert_eq!(r.json["output"][0]["name"], "shell", "{}", r.text);
}

#[tokio::test]
async fn stateless_and_error_envelope() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body(json!("hi"));
    b["store"] = json!(true);
    let r = c.post("/responses", Some(&key), b).await;
    assert!(r.assert_error(400).contains("store"));
    let mut b = body(json!("hi"));
    b["previous_response_id"] = json!("resp_123");
    let r = c.post("/responses", Some(&key), b).await;
    assert!(r.assert_error(400).contains("previous_response_id"));
    let mut b = body(json!("hi"));
    b["previous_response_id"] = Value::Null;
    assert_eq!(c.post("/responses", Some(&key), b).await.status, 200);
    c.post("/responses", None, body(json!("hi")))
        .await
        .assert_error(401);
    c.post("/responses", Some(&key), json!({"model": MODEL}))
        .await
        .assert_error(400);
    let mut b = body(json!("hi"));
    b["model"] = json!("openai/text-embedding-3-small");
    c.post("/responses", Some(&key), b).await.assert_error(400);
    let spent = spent_key(&c).await;
    let r = c.post("/responses", Some(&spent), body(json!("hi"))).await;
    assert!(r.assert_error(403).starts_with("Key limit exceeded"));
}

#[tokio::test]
async fn stream_events_in_order_with_cost() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let mut b = body(json!("hi [[sim:tokens=3]]"));
    b["stream"] = json!(true);
    let (status, headers, s) = c.stream_at("/responses", &key, b).await;
    assert_eq!(status, 200);
    assert!(!s.cut);
    let names = s.event_names();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ],
        "{}",
        s.text
    );
    let ev = s.events();
    for (i, (name, data)) in ev.iter().enumerate() {
        assert_eq!(&data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i as u64);
    }
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    assert_eq!(ev[0].1["response"]["id"], id.as_str());
    assert_eq!(ev[0].1["response"]["status"], "in_progress");
    assert_eq!(ev[0].1["response"]["usage"], Value::Null);
    let deltas: String = ev[4..7]
        .iter()
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(ev[7].1["text"], deltas.as_str());
    let done = &ev[10].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], deltas.as_str());
    assert_eq!(done["usage"]["output_tokens"], 3);
    // The terminal event's cost, exact: 9 × 0.00000015 + 3 × 0.0000006.
    let data = s.event_data();
    let cost = crate::money_at(data.last().unwrap(), "/response/usage/cost");
    assert_eq!(cost, m("0.00000315"));
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(c.admin_credits().await.1, cost);

    // Hitting max_output_tokens ends with response.incomplete.
    let mut b = body(json!("hi [[sim:tokens=30]]"));
    b["stream"] = json!(true);
    b["max_output_tokens"] = json!(2);
    let (_, _, s) = c.stream_at("/responses", &key, b).await;
    let ev = s.events();
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[tokio::test]
async fn faults_on_the_responses_route() {
    let c = Ctx::new().await;
    let key = c.key("k");
    c.sim.set_faults(vec![
        FaultRule::always(Fault::Status {
            status: 502,
            retry_after: None,
            message: None,
        })
        .on_route(Route::Responses)
        .times(1),
    ]);
    let r = c.post("/responses", Some(&key), body(json!("hi"))).await;
    assert_eq!(r.assert_error(502), "Provider returned error");

    c.sim.set_faults(vec![
        FaultRule::always(Fault::StreamError {
            after_chunks: 1,
            code: 502,
            message: None,
        })
        .on_route(Route::Responses),
    ]);
    let mut b = body(json!("hi [[sim:tokens=5]]"));
    b["stream"] = json!(true);
    let (status, headers, s) = c.stream_at("/responses", &key, b).await;
    assert_eq!(status, 200);
    let ev = s.events();
    let (name, failed) = ev.last().unwrap();
    assert_eq!(name, "response.failed", "{}", s.text);
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    assert_eq!(
        failed["response"]["error"]["message"],
        "Provider returned error"
    );
    assert!(!s.event_names().contains(&"response.completed".to_owned()));
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.json["data"]["tokens_completion"], 1);
    let cost = crate::money_at(s.event_data().last().unwrap(), "/response/usage/cost");
    assert_eq!(g.money("/data/total_cost"), cost);
}
