//! `POST /api/v1/embeddings` and `GET /api/v1/embeddings/models`.

use orteam_sim::{Fault, FaultRule, Route};
use serde_json::{Value, json};

use crate::{Ctx, generation, m, spent_key};

const SMALL: &str = "openai/text-embedding-3-small";

fn norm(v: &Value) -> f64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt()
}

#[tokio::test]
async fn floats_by_default_exact_cost_and_generation() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": SMALL, "input": ["hello world", "abcd"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("gen-"));
    assert_eq!(r.headers["x-generation-id"], id.as_str());
    assert_eq!(r.json["object"], "list");
    assert_eq!(r.json["model"], SMALL);
    let data = r.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"].as_array().unwrap().len(), 16);
        assert!((norm(&d["embedding"]) - 1.0).abs() < 1e-3);
    }
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    // ceil(11 / 4) + ceil(4 / 4) = 4 tokens × 0.00000002
    assert_eq!(r.json["usage"]["prompt_tokens"], 4);
    assert_eq!(r.json["usage"]["total_tokens"], 4);
    assert_eq!(r.json["usage"]["is_byok"], false);
    let cost = r.money("/usage/cost");
    assert_eq!(cost, m("0.00000008"));
    let g = generation(&c, &key, &id).await;
    assert_eq!(g.money("/data/total_cost"), cost);
    assert_eq!(g.json["data"]["api_type"], "embeddings");
    assert_eq!(g.json["data"]["tokens_prompt"], 4);
    assert_eq!(g.json["data"]["tokens_completion"], 0);
    assert_eq!(c.admin_credits().await.1, cost);

    // Deterministic: the same text embeds the same.
    let again = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": SMALL, "input": "hello world"}),
        )
        .await;
    assert_eq!(again.json["data"][0]["embedding"], data[0]["embedding"]);
}

#[tokio::test]
async fn dimensions_base64_and_token_ids() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let r = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": "openai/text-embedding-3-large", "input": "x", "dimensions": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["data"][0]["embedding"].as_array().unwrap().len(), 3);
    let r = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": SMALL, "input": "x", "dimensions": 8, "encoding_format": "base64"}),
        )
        .await;
    let b64 = r.json["data"][0]["embedding"].as_str().unwrap();
    // 8 little-endian f32s = 32 bytes = 44 base64 characters.
    assert_eq!(b64.len(), 44, "{b64}");
    // Token ids: one token per id.
    let r = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": "qwen/qwen3-embedding-8b", "input": [[1, 2, 3], [4, 5]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["usage"]["prompt_tokens"], 5);
    assert_eq!(r.money("/usage/cost"), m("0.00000005"));

    let bad = |b: Value| {
        let c = &c;
        let key = key.clone();
        async move { c.post("/embeddings", Some(&key), b).await }
    };
    bad(json!({"model": SMALL, "input": "x", "dimensions": 5000}))
        .await
        .assert_error(400);
    bad(json!({"model": SMALL, "input": "x", "stream": true}))
        .await
        .assert_error(400);
    bad(json!({"model": SMALL, "input": "x", "encoding_format": "hex"}))
        .await
        .assert_error(400);
    bad(json!({"model": SMALL, "input": []}))
        .await
        .assert_error(400);
    bad(json!({"model": "openai/gpt-4o-mini", "input": "x"}))
        .await
        .assert_error(400);
    // And chat on an embedding model is a 400 too.
    c.chat(&key, SMALL, "hi").await.assert_error(400);
}

#[tokio::test]
async fn embedding_models_are_listed_apart() {
    let c = Ctx::new().await;
    let r = c.get("/embeddings/models", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            SMALL,
            "openai/text-embedding-3-large",
            "qwen/qwen3-embedding-8b"
        ]
    );
    assert_eq!(r.json["data"][0]["pricing"]["prompt"], "0.00000002");
    assert_eq!(
        r.json["data"][0]["architecture"]["output_modalities"],
        json!(["embeddings"])
    );
    let all = c.get("/models", None).await;
    assert!(!all.text.contains(SMALL));
    let emb = c.get("/models?output_modalities=embeddings", None).await;
    assert_eq!(emb.json["data"].as_array().unwrap().len(), 3);
    let every = c.get("/models?output_modalities=all", None).await;
    assert!(every.text.contains(SMALL));
}

#[tokio::test]
async fn faults_and_key_limit_on_embeddings() {
    let c = Ctx::new().await;
    let key = c.key("k");
    c.sim.set_faults(vec![
        FaultRule::always(Fault::Status {
            status: 503,
            retry_after: Some("2".into()),
            message: None,
        })
        .on_route(Route::Embeddings)
        .times(1),
    ]);
    // The listing (GET) is not hit by a POST-route rule.
    assert_eq!(c.get("/embeddings/models", None).await.status, 200);
    let r = c
        .post(
            "/embeddings",
            Some(&key),
            json!({"model": SMALL, "input": "x"}),
        )
        .await;
    r.assert_error(503);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(c.admin_credits().await.1, m("0"));
    let spent = spent_key(&c).await;
    let r = c
        .post(
            "/embeddings",
            Some(&spent),
            json!({"model": SMALL, "input": "x"}),
        )
        .await;
    assert!(r.assert_error(403).starts_with("Key limit exceeded"));
}
