//! The catalog endpoints.

use crate::{Ctx, m};

#[tokio::test]
async fn catalog_shape_and_filters() {
    let c = Ctx::new().await;
    let r = c.get("/models", None).await;
    let data = r.json["data"].as_array().unwrap();
    assert!(data.len() >= 12);
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
        assert!(data.iter().any(|d| d["id"] == id), "{id}");
    }
    for d in data {
        for f in [
            "id",
            "canonical_slug",
            "name",
            "created",
            "description",
            "context_length",
            "architecture",
            "pricing",
            "top_provider",
            "supported_parameters",
            "per_request_limits",
        ] {
            assert!(d.get(f).is_some(), "{} lacks {f}", d["id"]);
        }
        for p in ["prompt", "completion", "request"] {
            let s = d["pricing"][p].as_str().expect("prices are strings");
            m(s);
        }
        assert!(d["architecture"]["output_modalities"].is_array());
        assert!(d["top_provider"]["max_completion_tokens"].is_u64());
    }
    let free = data
        .iter()
        .filter(|d| d["id"].as_str().unwrap().ends_with(":free"))
        .count();
    assert!(free >= 2);

    let reasoning = c
        .get("/models?supported_parameters=reasoning,tools", None)
        .await;
    let rd = reasoning.json["data"].as_array().unwrap();
    assert!(!rd.is_empty() && rd.len() < data.len());
    assert!(rd.iter().all(|d| {
        d["supported_parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "reasoning")
    }));
    let cat = c.get("/models?category=programming", None).await;
    assert!(!cat.json["data"].as_array().unwrap().is_empty());
    let images = c.get("/models?output_modalities=image", None).await;
    assert_eq!(images.json["data"].as_array().unwrap().len(), 0);
    // `all` adds the embedding models, which the default (`text`) leaves out.
    let all = c.get("/models?output_modalities=all", None).await;
    assert_eq!(all.json["data"].as_array().unwrap().len(), data.len() + 3);
}

#[tokio::test]
async fn endpoints_and_zdr() {
    let c = Ctx::new().await;
    let r = c
        .get("/models/meta-llama/llama-3.1-8b-instruct/endpoints", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["data"]["id"], "meta-llama/llama-3.1-8b-instruct");
    let eps = r.json["data"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    for e in eps {
        for f in [
            "name",
            "model_id",
            "model_name",
            "provider_name",
            "tag",
            "context_length",
            "max_completion_tokens",
            "max_prompt_tokens",
            "pricing",
            "quantization",
            "status",
            "supported_parameters",
            "supports_implicit_caching",
            "uptime_last_5m",
            "uptime_last_30m",
            "uptime_last_1d",
            "latency_last_30m",
            "throughput_last_30m",
        ] {
            assert!(e.get(f).is_some(), "missing {f}");
        }
        let up = e["uptime_last_30m"].as_f64().unwrap();
        assert!(
            (0.0..=100.0).contains(&up) && up > 1.0,
            "percent, not a fraction: {up}"
        );
        assert!(
            e["latency_last_30m"]["p99"].as_u64().unwrap()
                >= e["latency_last_30m"]["p50"].as_u64().unwrap()
        );
    }
    let free = c
        .get("/models/google/gemma-2-9b-it:free/endpoints", None)
        .await;
    assert_eq!(free.status, 200);
    c.get("/models/nobody/nothing/endpoints", None)
        .await
        .assert_error(404);

    let z = c.get("/endpoints/zdr", None).await;
    let list = z.json["data"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(
        list.iter()
            .all(|e| e.get("endpoints").is_none() && e["model_id"].is_string())
    );

    let key = c.key("u");
    let user = c.get("/models/user", Some(&key)).await;
    assert_eq!(
        user.json["data"].as_array().unwrap().len(),
        c.get("/models", None).await.json["data"]
            .as_array()
            .unwrap()
            .len()
    );
}

#[tokio::test]
async fn organization_members() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let r = c.get("/organization/members", Some(&mgmt)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["total_count"], 4);
    let first = &r.json["data"][0];
    assert!(first["id"].as_str().unwrap().starts_with("user_"));
    for f in ["email", "first_name", "last_name", "role"] {
        assert!(first.get(f).is_some());
    }
    assert_eq!(first["role"], "org:admin");
    let page = c
        .get("/organization/members?offset=2&limit=1", Some(&mgmt))
        .await;
    assert_eq!(page.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.json["data"][0]["first_name"], "Alan");
    c.get("/organization/members?limit=0", Some(&mgmt))
        .await
        .assert_error(400);
    let add = c
        .post(
            "/__sim/members",
            None,
            serde_json::json!({"id": "user_new", "email": "new@example.com"}),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.text);
    assert_eq!(
        c.get("/organization/members", Some(&mgmt)).await.json["total_count"],
        5
    );
}
