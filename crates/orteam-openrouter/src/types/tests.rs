//! Parsing of every response shape from the API reference.

use orteam_core::{Money, Window};
use secrecy::ExposeSecret;
use serde_json::json;

use super::activity::ActivityRow;
use super::chat::*;
use super::credits::Credits;
use super::generation::Generation;
use super::guardrails::*;
use super::keys::*;
use super::models::*;
use super::org::OrgMember;
use super::*;

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

const KEY: &str = r#"{"hash":"f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943",
 "name":"Customer Key","label":"sk-or-v1-0e6...1c96","disabled":false,"limit":100,
 "limit_remaining":74.5,"limit_reset":"monthly","include_byok_in_limit":false,"usage":25.5,
 "usage_daily":25.5,"usage_weekly":25.5,"usage_monthly":25.5,"byok_usage":17.38,
 "byok_usage_daily":17.38,"byok_usage_weekly":17.38,"byok_usage_monthly":17.38,
 "created_at":"2025-08-24T10:30:00Z","updated_at":"2025-08-24T15:45:00Z","expires_at":null,
 "creator_user_id":"user_2dHFtVWx2n56w6HkM0000000000","workspace_id":"6b1bdb5c-0000-4000-8000-000000000000",
 "future_field":{"a":1}}"#;

#[test]
fn key_object() {
    let k: Key = serde_json::from_str(KEY).unwrap();
    assert_eq!(k.name, "Customer Key");
    assert_eq!(k.limit, Some(m("100")));
    assert_eq!(k.limit_remaining, Some(m("74.5")));
    assert_eq!(k.limit_reset, Some(Window::Monthly));
    assert_eq!(k.byok_usage_monthly, m("17.38"));
    assert_eq!(k.created_at.to_rfc3339(), "2025-08-24T10:30:00+00:00");
    assert!(k.updated_at.is_some());
    assert!(k.expires_at.is_none());
    assert_eq!(k.extra.get("future_field"), Some(&json!({"a":1})));
    assert!(!k.extra.contains_key("hash"));
    // Round trip keeps the money exact and the unknown field.
    let back: Key = serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
    assert_eq!(back, k);
}

#[test]
fn key_minimal_and_nulls() {
    let k: Key = serde_json::from_str(
        r#"{"hash":"h","name":"n","label":"l","disabled":true,"limit":null,"limit_remaining":null,
            "limit_reset":null,"include_byok_in_limit":false,"usage":0,"created_at":"2025-01-01T00:00:00.123+00:00",
            "updated_at":null}"#,
    )
    .unwrap();
    assert!(k.disabled);
    assert_eq!(k.limit, None);
    assert_eq!(k.usage_daily, Money::ZERO);
}

#[test]
fn list_envelope_and_created_key() {
    let list: Envelope<Vec<Key>> =
        serde_json::from_str(&format!(r#"{{"data":[{KEY},{KEY}]}}"#)).unwrap();
    assert_eq!(list.data.len(), 2);
    let created: CreatedKey = serde_json::from_str(&format!(
        r#"{{"data":{KEY},"key":"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"}}"#
    ))
    .unwrap();
    assert!(created.key.expose_secret().starts_with("sk-or-v1-0e6f"));
    assert!(!format!("{created:?}").contains("0e6f44a47a05"));
    let d: Deleted = serde_json::from_str(r#"{"deleted":true}"#).unwrap();
    assert!(d.deleted);
}

#[test]
fn key_requests_serialize() {
    let req = CreateKeyRequest::new("alice")
        .limit(m("12.5"))
        .limit_reset(Window::Daily);
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"name":"alice","limit":12.5,"limit_reset":"daily"})
    );
    let upd = UpdateKeyRequest {
        disabled: Some(true),
        limit: Patch::Clear,
        limit_reset: Patch::Clear,
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&upd).unwrap(),
        json!({"disabled":true,"limit":null,"limit_reset":null})
    );
    let upd = UpdateKeyRequest {
        limit: Patch::Set(m("0.000000123")),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&upd).unwrap(),
        r#"{"limit":0.000000123}"#
    );
    assert!(UpdateKeyRequest::default().is_empty());
    let p = ListKeysParams {
        offset: Some(100),
        include_disabled: Some(true),
        workspace_id: None,
    };
    assert_eq!(
        p.query(),
        vec![
            ("offset", "100".to_string()),
            ("include_disabled", "true".to_string())
        ]
    );
}

#[test]
fn current_key() {
    let k: Envelope<KeyInfo> = serde_json::from_str(
        r#"{"data":{"label":"sk-or-v1-au7...890","limit":100,"limit_remaining":74.5,"limit_reset":"monthly",
        "include_byok_in_limit":false,"usage":25.5,"usage_daily":25.5,"usage_weekly":25.5,"usage_monthly":25.5,
        "byok_usage":17.38,"byok_usage_daily":17.38,"byok_usage_weekly":17.38,"byok_usage_monthly":17.38,
        "is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,"creator_user_id":null,
        "expires_at":"2027-12-31T23:59:59Z","rate_limit":{"requests":1000,"interval":"10s","note":"deprecated"}}}"#,
    )
    .unwrap();
    let k = k.data;
    assert_eq!(k.limit_remaining, Some(m("74.5")));
    assert!(!k.is_management());
    assert!(k.expires_at.is_some());
    assert!(k.rate_limit.is_some());
}

#[test]
fn credits_exact() {
    let c: Envelope<Credits> =
        serde_json::from_str(r#"{"data":{"total_credits":100.5,"total_usage":25.75000000000001}}"#)
            .unwrap();
    assert_eq!(c.data.total_usage, m("25.75000000000001"));
    assert_eq!(c.data.balance(), m("74.74999999999999"));
}

#[test]
fn activity_rows() {
    let a: Envelope<Vec<ActivityRow>> = serde_json::from_str(
        r#"{"data":[{"date":"2025-08-24","model":"openai/gpt-4.1","model_permaslug":"openai/gpt-4.1-2025-04-14",
        "endpoint_id":"550e8400-e29b-41d4-a716-446655440000","provider_name":"OpenAI","usage":0.015,
        "byok_usage_inference":0.012,"requests":5,"prompt_tokens":50,"completion_tokens":125,"reasoning_tokens":25}]}"#,
    )
    .unwrap();
    let r = &a.data[0];
    assert_eq!(r.usage, m("0.015"));
    assert_eq!(r.byok_usage_inference, m("0.012"));
    assert_eq!(r.requests, 5);
    assert_eq!(r.day().unwrap().to_string(), "2025-08-24");
}

#[test]
fn generation_record() {
    let g: Envelope<Generation> = serde_json::from_str(
        r#"{"data":{"id":"gen-3bhGkxlo4XFrqiabUM7NDtwDzWwG","upstream_id":"chatcmpl-791bcf62","total_cost":0.0015,
        "cache_discount":0.0002,"upstream_inference_cost":0.0012,"created_at":"2024-07-15T23:33:19.433273+00:00",
        "model":"sao10k/l3-stheno-8b","app_id":12345,"streamed":true,"cancelled":false,"provider_name":"Infermatic",
        "latency":1250,"moderation_latency":50,"generation_time":1200,"finish_reason":"stop","native_finish_reason":"stop",
        "tokens_prompt":10,"tokens_completion":25,"native_tokens_prompt":10,"native_tokens_completion":25,
        "native_tokens_completion_images":0,"native_tokens_reasoning":5,"native_tokens_cached":3,"num_media_prompt":1,
        "num_input_audio_prompt":0,"num_media_completion":0,"num_search_results":5,"origin":"https://openrouter.ai/",
        "usage":0.0015,"is_byok":false,"external_user":"u-1","api_type":"completions","router":null,
        "provider_responses":null,"brand_new":"x"}}"#,
    )
    .unwrap();
    let g = g.data;
    assert_eq!(g.total_cost, Some(m("0.0015")));
    assert_eq!(g.native_tokens_reasoning, Some(5));
    assert_eq!(g.latency, Some(1250.0));
    assert_eq!(g.external_user.as_deref(), Some("u-1"));
    assert_eq!(g.extra.get("brand_new"), Some(&json!("x")));
    assert!(g.created_at.is_some());
}

const MODEL: &str = r#"{"id":"openai/gpt-4o","canonical_slug":"openai/gpt-4o-2024-05-13","hugging_face_id":null,
 "name":"OpenAI: GPT-4o","created":1715558400,"description":"GPT-4o","context_length":128000,
 "architecture":{"modality":"text+image->text","input_modalities":["text","image"],"output_modalities":["text"],
 "tokenizer":"GPT","instruct_type":null},
 "pricing":{"prompt":"0.0000025","completion":"0.00001","request":"0","image":"0.003613","web_search":"0",
 "internal_reasoning":"0","input_cache_read":"0.00000125","input_cache_write_1h":"0.0000000375"},
 "top_provider":{"context_length":128000,"max_completion_tokens":16384,"is_moderated":true},
 "per_request_limits":null,"supported_parameters":["max_tokens","temperature"],"default_parameters":{},
 "knowledge_cutoff":null,"expiration_date":null,"links":{"details":"/api/v1/models/openai/gpt-4o/endpoints"}}"#;

#[test]
fn models_and_prices() {
    let list: ModelList = serde_json::from_str(&format!(r#"{{"data":[{MODEL}]}}"#)).unwrap();
    let md = &list.data[0];
    assert_eq!(md.pricing.prompt, Some(m("0.0000025")));
    assert_eq!(md.pricing.input_cache_write_1h, Some(m("0.0000000375")));
    assert_eq!(md.pricing.cost(10, 4), Some(m("0.000065")));
    assert_eq!(
        md.top_provider.as_ref().unwrap().max_completion_tokens,
        Some(16384)
    );
    assert_eq!(
        md.architecture.as_ref().unwrap().input_modalities,
        vec!["text", "image"]
    );
    let newer: ModelList = serde_json::from_str(&format!(
        r#"{{"data":[{MODEL}],"total_count":1,"links":{{"next":null}}}}"#
    ))
    .unwrap();
    assert_eq!(newer.total_count, Some(1));
    let p = ModelsParams {
        supported_parameters: vec!["tools".into(), "seed".into()],
        output_modalities: vec!["all".into()],
        ..Default::default()
    };
    assert_eq!(
        p.query(),
        vec![
            ("supported_parameters".to_string(), "tools,seed".to_string()),
            ("output_modalities".to_string(), "all".to_string())
        ]
    );
}

const ENDPOINT: &str = r#"{"name":"OpenAI: GPT-4","model_id":"openai/gpt-4","model_name":"GPT-4","context_length":8192,
 "pricing":{"prompt":"0.00003","completion":"0.00006"},"provider_name":"OpenAI","tag":"openai","quantization":null,
 "max_completion_tokens":4096,"max_prompt_tokens":8192,"supported_parameters":["temperature"],"status":0,
 "uptime_last_30m":99.5,"uptime_last_5m":null,"uptime_last_1d":98.1,"supports_implicit_caching":false,
 "latency_last_30m":{"p50":250,"p75":300,"p90":400,"p99":900},"throughput_last_30m":null}"#;

#[test]
fn endpoints_and_zdr() {
    let e: Envelope<ModelEndpoints> = serde_json::from_str(&format!(
        r#"{{"data":{{"id":"openai/gpt-4","name":"OpenAI: GPT-4","created":1692901234,"description":"d",
        "architecture":{{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"],"tokenizer":"GPT"}},
        "endpoints":[{ENDPOINT}]}}}}"#
    ))
    .unwrap();
    let ep = &e.data.endpoints[0];
    assert_eq!(ep.pricing.completion, Some(m("0.00006")));
    assert_eq!(ep.uptime_last_30m, Some(99.5));
    assert_eq!(ep.latency_last_30m.unwrap().p99, Some(900.0));
    let zdr: Envelope<Vec<Endpoint>> =
        serde_json::from_str(&format!(r#"{{"data":[{ENDPOINT}]}}"#)).unwrap();
    assert_eq!(zdr.data[0].status, Some(0));
}

const GUARDRAIL: &str = r#"{"id":"550e8400-e29b-41d4-a716-446655440000","name":"Production Guardrail",
 "description":"Guardrail for production environment","limit_usd":100,"reset_interval":"monthly",
 "allowed_providers":["openai","anthropic"],"ignored_providers":null,"allowed_models":null,"ignored_models":null,
 "enforce_zdr":false,"created_at":"2025-08-24T10:30:00Z","updated_at":null,"workspace_id":null}"#;

#[test]
fn guardrails_and_assignments() {
    let g: Envelope<Guardrail> =
        serde_json::from_str(&format!(r#"{{"data":{GUARDRAIL}}}"#)).unwrap();
    assert_eq!(g.data.limit_usd, Some(m("100")));
    assert_eq!(g.data.reset_interval, Some(Window::Monthly));
    let list: Page<Guardrail> =
        serde_json::from_str(&format!(r#"{{"data":[{GUARDRAIL}],"total_count":1}}"#)).unwrap();
    assert_eq!(list.total_count, Some(1));
    let ka: Page<KeyAssignment> = serde_json::from_str(
        r#"{"data":[{"id":"a1","guardrail_id":"g1","key_hash":"h1","key_name":"k","key_label":"sk-or-v1-abc...def",
        "assigned_by":"user_1","created_at":"2025-08-24T10:30:00Z"}],"total_count":1}"#,
    )
    .unwrap();
    assert_eq!(ka.data[0].key_hash, "h1");
    let ma: Page<MemberAssignment> = serde_json::from_str(
        r#"{"data":[{"id":"a2","guardrail_id":"g1","user_id":"user_2","organization_id":"org_1",
        "assigned_by":"user_1","created_at":"2025-08-24T10:30:00Z"}],"total_count":1}"#,
    )
    .unwrap();
    assert_eq!(ma.data[0].user_id, "user_2");
    let a: AssignedCount = serde_json::from_str(r#"{"assigned_count":2}"#).unwrap();
    let u: UnassignedCount = serde_json::from_str(r#"{"unassigned_count":1}"#).unwrap();
    assert_eq!((a.assigned_count, u.unassigned_count), (2, 1));
    let upd = UpdateGuardrailRequest {
        limit_usd: Patch::Clear,
        allowed_models: Patch::Set(vec!["openai/gpt-4o".into()]),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&upd).unwrap(),
        json!({"limit_usd":null,"allowed_models":["openai/gpt-4o"]})
    );
    let mut c = CreateGuardrailRequest::new("g");
    c.limit_usd = Some(m("5.25"));
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        json!({"name":"g","limit_usd":5.25})
    );
    assert_eq!(
        serde_json::to_value(KeyHashes {
            key_hashes: vec!["h".into()]
        })
        .unwrap(),
        json!({"key_hashes":["h"]})
    );
    assert_eq!(
        serde_json::to_value(MemberUserIds {
            member_user_ids: vec!["u".into()]
        })
        .unwrap(),
        json!({"member_user_ids":["u"]})
    );
}

#[test]
fn org_members() {
    let p: Page<OrgMember> = serde_json::from_str(
        r#"{"data":[{"id":"user_2dHFtVWx2n56w6HkM0000000000","email":"jane@example.com","first_name":"Jane",
        "last_name":"Doe","role":"org:admin"}],"total_count":1}"#,
    )
    .unwrap();
    assert!(p.data[0].is_admin());
    assert_eq!(p.data[0].display_name().as_deref(), Some("Jane Doe"));
}

/// The exact non-stream response of the API reference.
const CHAT: &str = r#"{"id":"gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion",
 "created":1755147565,"system_fingerprint":null,"choices":[{"index":0,"logprobs":null,"finish_reason":"stop",
 "native_finish_reason":"stop","message":{"role":"assistant","content":"Hello!","refusal":null,"reasoning":null}}],
 "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"cost":0.00014,"is_byok":false,
 "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":0,"audio_tokens":0},
 "completion_tokens_details":{"reasoning_tokens":0},"cost_details":{"upstream_inference_cost":null,
 "upstream_inference_prompt_cost":0.0001,"upstream_inference_completions_cost":0.00004}}}"#;

#[test]
fn chat_response_from_the_doc() {
    let r: ChatResponse = serde_json::from_str(CHAT).unwrap();
    assert_eq!(r.id, "gen-1755147565-0ZSd3QOT6JSpDk5OV1Tl");
    assert_eq!(r.provider.as_deref(), Some("OpenAI"));
    assert_eq!(r.text(), "Hello!");
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.choices[0].message.role, Role::Assistant);
    let u = r.usage.as_ref().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (10, 4, 14)
    );
    assert_eq!(u.cost, m("0.00014"));
    assert!(!u.is_byok);
    assert_eq!(u.prompt_tokens_details.as_ref().unwrap().cached_tokens, 0);
    assert_eq!(
        u.completion_tokens_details
            .as_ref()
            .unwrap()
            .reasoning_tokens,
        0
    );
    let cd = u.cost_details.as_ref().unwrap();
    assert_eq!(cd.upstream_inference_cost, None);
    assert_eq!(cd.upstream_inference_prompt_cost, Some(m("0.0001")));
    assert_eq!(cd.upstream_inference_completions_cost, Some(m("0.00004")));
    assert_eq!(r.object.as_deref(), Some("chat.completion"));
    // Unknown fields survive.
    let mut v: serde_json::Value = serde_json::from_str(CHAT).unwrap();
    v["brand_new"] = json!(true);
    let r2: ChatResponse = from_value_text(&v);
    assert_eq!(r2.extra.get("brand_new"), Some(&json!(true)));
}

/// Parse via text, as the client does (money fields need the number's source text).
fn from_value_text<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> T {
    serde_json::from_str(&v.to_string()).unwrap()
}

#[test]
fn chat_request_serializes_with_passthrough() {
    let mut req = ChatRequest::new(
        "openai/gpt-4o",
        vec![
            Message::system("be brief"),
            Message::user(Content::Parts(vec![ContentPart::text("hi")])),
        ],
    )
    .max_tokens(16);
    req.stop = Some(Stop::One("\n".into()));
    req.provider = Some(ProviderPreferences {
        order: Some(vec!["openai".into()]),
        max_price: Some(MaxPrice {
            prompt: Some(m("1.5")),
            ..Default::default()
        }),
        ..Default::default()
    });
    req.usage = Some(UsageOptions { include: true });
    req.extra.insert("session_id".into(), json!("s-1"));
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(
        v,
        json!({"model":"openai/gpt-4o","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":16,"stop":"\n",
            "provider":{"order":["openai"],"max_price":{"prompt":1.5}},"usage":{"include":true},"session_id":"s-1"})
    );
    let back: ChatRequest = serde_json::from_value(v).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.messages[1].text(), "hi");
}

#[test]
fn stream_chunks() {
    let c: ChatChunk = serde_json::from_str(
        r#"{"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,
        "choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null,"native_finish_reason":null}]}"#,
    )
    .unwrap();
    assert_eq!(c.content(), Some("Hel"));
    assert!(c.usage.is_none() && c.error.is_none());
    let u: ChatChunk = serde_json::from_str(
        r#"{"id":"gen-1","object":"chat.completion.chunk","created":1,"choices":[],
        "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"cost":0.00014}}"#,
    )
    .unwrap();
    assert_eq!(u.usage.unwrap().cost, m("0.00014"));
    let e: ChatChunk = serde_json::from_str(
        r#"{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","provider":"p",
        "error":{"code":429,"message":"Rate limit exceeded"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}"#,
    )
    .unwrap();
    let err = e.error.unwrap();
    assert_eq!(err.code.unwrap().as_status(), Some(429));
    assert_eq!(e.choices[0].finish_reason.as_deref(), Some("error"));
}

#[test]
fn lossless_cost_with_many_digits() {
    let u: Usage = serde_json::from_str(r#"{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"cost":0.0000000375000000001}"#).unwrap();
    assert_eq!(u.cost.to_string(), "0.0000000375000000001");
}

#[test]
fn wire_objects_also_parse_from_a_value() {
    let v: serde_json::Value = serde_json::from_str(KEY).unwrap();
    let k: Key = serde_json::from_value(v).unwrap();
    assert_eq!(k.limit_remaining, Some(m("74.5")));
    assert!(k.extra.contains_key("future_field"));
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<crate::Client>();
    check::<crate::ClientError>();
    check::<ChatResponse>();
    check::<Key>();
    fn send<T: Send>() {}
    send::<crate::ChatStream>();
}

/// A newer OpenRouter adds fields and an older one lacks the newest: both parse.
#[test]
fn newer_and_older_shapes_parse() {
    // Newer: budgets with a scope this crate has never seen, unknown fields everywhere.
    let newer: Envelope<KeyInfo> = serde_json::from_str(
        r#"{"data":{"label":"sk-or-v1-abc...1234","limit":null,"limit_remaining":null,"limit_reset":null,
        "include_byok_in_limit":false,"usage":1.5,"usage_daily":0,"usage_weekly":0,"usage_monthly":1.5,
        "byok_usage":0,"byok_usage_daily":0,"byok_usage_weekly":0,"byok_usage_monthly":0,
        "is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,"creator_user_id":null,
        "rate_limit":{"requests":-1,"interval":"10s","note":"x"},"allowed_data_regions":["europe"],
        "budgets":[{"budget_id":"b1","guardrail_id":null,"include_byok":true,"limit_usd":10,
          "remaining_usd":8.5,"reset_interval":"weekly","resets_at":"2026-12-07T00:00:00.000Z",
          "scope":"workspace_team_pool","spend_usd":1.5,"brand_new":1}],
        "effective_budget":null,"free_model_daily_requests":{"limit":1000,"remaining":999,"used":1},
        "organization_id":"org_1","workspace_id":"w1","next_year_field":[1,2]}}"#,
    )
    .unwrap();
    let k = newer.data;
    assert_eq!(k.budgets[0].scope, "workspace_team_pool");
    assert_eq!(k.budgets[0].remaining_usd, m("8.5"));
    assert_eq!(k.budgets[0].reset_interval, Some(Window::Weekly));
    assert!(k.budgets[0].extra.contains_key("brand_new"));
    assert_eq!(k.free_model_daily_requests.unwrap().used, 1);
    assert!(k.extra.contains_key("next_year_field"));
    // Older: none of the 2026 fields.
    let older: Envelope<KeyInfo> =
        serde_json::from_str(r#"{"data":{"label":"x","usage":0}}"#).unwrap();
    assert!(older.data.budgets.is_empty() && older.data.workspace_id.is_none());
    let key: Key = serde_json::from_str(KEY).unwrap();
    assert_eq!((key.external_user, key.last_used_at), (None, None));
    let endpoint: Endpoint = serde_json::from_str(
        r#"{"name":"e","pricing":{"prompt":"0.1","completion":"0.2"},"service_tier":"flex",
        "supports_tool_choice":{"auto":true,"function":true,"none":true,"required":false,"later":true},
        "native_tools":{"web_search":{"type":"web_search_2026"}}}"#,
    )
    .unwrap();
    assert_eq!(endpoint.service_tier.as_deref(), Some("flex"));
    assert!(!endpoint.supports_tool_choice.unwrap().required);
    let ws: super::workspaces::Workspace =
        serde_json::from_str(r#"{"id":"w","name":"W","is_observability_broadcast_enabled":true}"#)
            .unwrap();
    assert!(ws.extra.contains_key("is_observability_broadcast_enabled"));
}
