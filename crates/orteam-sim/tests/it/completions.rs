//! `POST /api/v1/completions`: legacy text completions.

use serde_json::{Value, json};

use crate::{Ctx, generation, m, spent_key};

const MODEL: &str = "openai/gpt-4o-mini";

#[tokio::test]
async fn n_choices_bill_n_times() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/completions",
            Some(&key),
            json!({"model": MODEL, "prompt": "hi [[sim:tokens=10]]", "n": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("gen-"));
    assert_eq!(r.headers["x-generation-id"], id.as_str());
    assert_eq!(r.json["object"], "text_completion");
    assert_eq!(r.json["model"], MODEL);
    assert_eq!(r.json["provider"], "OpenAI");
    assert!(r.json["created"].is_i64());
    let choices = r.json["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, ch) in choices.iter().enumerate() {
        assert_eq!(ch["index"], i);
        assert_eq!(ch["logprobs"], Value::Null);
        assert_eq!(ch["finish_reason"], "stop");
        assert_eq!(ch["text"].as_str().unwrap().split(' ').count(), 10);
    }
    // ceil(20 / 4) = 5 prompt tokens; 3 × 10 completion tokens.
    assert_eq!(r.json["usage"]["prompt_tokens"], 5);
    assert_eq!(r.json["usage"]["completion_tokens"], 30);
    assert_eq!(r.json["usage"]["total_tokens"], 35);
    let cost = r.money("/usage/cost");
    assert_eq!(cost, m("0.00001875"));
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(g.json["data"]["tokens_completion"], 30);
    assert_eq!(g.json["data"]["api_type"], "completions");
    assert_eq!(c.admin_credits().await.1, cost);

    let r = c
        .post(
            "/completions",
            Some(&key),
            json!({"model": MODEL, "prompt": ["ab", "cd [[sim:tokens=9]]"], "max_tokens": 4}),
        )
        .await;
    assert_eq!(
        r.json["choices"][0]["finish_reason"], "length",
        "{}",
        r.text
    );
    assert_eq!(r.json["usage"]["completion_tokens"], 4);
    c.post("/completions", Some(&key), json!({"model": MODEL}))
        .await
        .assert_error(400);
    c.post(
        "/completions",
        Some(&key),
        json!({"model": MODEL, "prompt": "x", "n": 0}),
    )
    .await
    .assert_error(400);
}

#[tokio::test]
async fn stream_chunks_usage_and_done() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let (status, headers, s) = c
        .stream_at(
            "/completions",
            &key,
            json!({"model": MODEL, "prompt": "hi [[sim:tokens=3]]", "stream": true, "n": 2}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(s.has_done(), "{}", s.text);
    let chunks = s.chunks();
    // 3 steps × 2 choices, then the usage chunk.
    assert_eq!(chunks.len(), 7, "{}", s.text);
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    for ch in &chunks {
        assert_eq!(ch["object"], "text_completion");
        assert_eq!(ch["id"], id.as_str());
    }
    assert_eq!(chunks[1]["choices"][0]["index"], 1);
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    let data = s.data();
    let cost = crate::money_at(data.last().unwrap(), "/usage/cost");
    // ceil(19 / 4) = 5 prompt tokens × 0.00000015 + 6 × 0.0000006
    assert_eq!(cost, m("0.00000435"));
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(g.json["data"]["streamed"], true);
}

#[tokio::test]
async fn faults_and_key_limit_on_completions() {
    let c = Ctx::new().await;
    let key = c.key("k");
    c.sim.set_faults(vec![
        "status:429:retry_after=1:route=completions:times=1"
            .parse()
            .unwrap(),
    ]);
    // Chat completions share the word but not the route.
    assert_eq!(c.chat(&key, MODEL, "hi").await.status, 200);
    let body = json!({"model": MODEL, "prompt": "hi [[sim:tokens=4]]"});
    let r = c.post("/completions", Some(&key), body.clone()).await;
    assert_eq!(r.assert_error(429), "Rate limit exceeded");

    c.sim
        .set_faults(vec!["stream_cut:2:route=completions".parse().unwrap()]);
    let mut b = body.clone();
    b["stream"] = json!(true);
    let (_, headers, s) = c.stream_at("/completions", &key, b).await;
    assert!(s.cut);
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.json["data"]["cancelled"], true);
    assert_eq!(g.json["data"]["tokens_completion"], 2);

    let spent = spent_key(&c).await;
    let r = c.post("/completions", Some(&spent), body).await;
    assert!(r.assert_error(403).starts_with("Key limit exceeded"));
}
