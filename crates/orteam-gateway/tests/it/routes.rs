//! Every API the gateway speaks (chat, Anthropic Messages, OpenAI Responses, embeddings,
//! legacy completions) goes through the same pipeline with the same guarantees: budgets hold
//! under 64 concurrent clients, the ledger equals what upstream billed to the digit, cut
//! streams and hang-ups are charged exactly, and bad input gets that API's own error shape.

use std::sync::Arc;

use orteam_core::{Money, Window};
use orteam_ledger::{BudgetScope, Outcome, UsageEvent};
use orteam_sim::{Fault, FaultRule};
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::{Value, json};

use crate::support::*;

/// One API, as a client of it writes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Messages,
    Responses,
    Embeddings,
    Completions,
}

pub const ALL: [Api; 5] = [
    Api::Chat,
    Api::Messages,
    Api::Responses,
    Api::Embeddings,
    Api::Completions,
];

impl Api {
    /// The path below `/v1`.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/chat/completions",
            Api::Messages => "/messages",
            Api::Responses => "/responses",
            Api::Embeddings => "/embeddings",
            Api::Completions => "/completions",
        }
    }

    /// The route usage events record.
    pub fn route(self) -> orteam_core::ApiRoute {
        use orteam_core::ApiRoute;
        match self {
            Api::Chat => ApiRoute::Chat,
            Api::Messages => ApiRoute::Messages,
            Api::Responses => ApiRoute::Responses,
            Api::Embeddings => ApiRoute::Embeddings,
            Api::Completions => ApiRoute::Completions,
        }
    }

    pub fn upstream_path(self) -> String {
        format!("/api/v1{}", self.path())
    }

    pub fn streams(self) -> bool {
        self != Api::Embeddings
    }

    pub fn model(self) -> &'static str {
        match self {
            Api::Embeddings => "openai/text-embedding-3-small",
            _ => "openai/gpt-4o-mini",
        }
    }

    /// A request whose prompt carries `directive` (`[[sim:tokens=N]]` …).
    pub fn body(self, directive: &str, max: Option<u64>, stream: bool) -> Value {
        let text = format!("Say hello. {directive}");
        let mut b = match self {
            Api::Chat => {
                json!({"model": self.model(), "messages": [{"role": "user", "content": text}]})
            }
            Api::Messages => {
                json!({"model": self.model(), "messages": [{"role": "user", "content": text}]})
            }
            Api::Responses => json!({"model": self.model(), "input": text}),
            Api::Embeddings => json!({"model": self.model(), "input": [text, "a second text"]}),
            Api::Completions => json!({"model": self.model(), "prompt": text}),
        };
        if let Some(n) = max {
            let name = match self {
                Api::Responses => "max_output_tokens",
                Api::Embeddings => return b,
                _ => "max_tokens",
            };
            b[name] = n.into();
        }
        if stream {
            b["stream"] = true.into();
        }
        b
    }

    /// Checks that `v` is an error in this API's own shape and returns its type/code.
    pub fn error_kind(self, v: &Value) -> String {
        match self {
            Api::Messages => {
                assert_eq!(v["type"], "error", "{v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{v}"
                );
                v["error"]["type"].as_str().expect("error.type").to_owned()
            }
            _ => {
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{v}"
                );
                v["error"]["code"].as_str().expect("error.code").to_owned()
            }
        }
    }
}

/// Waits (bounded) until the ledger holds `n` events, none of them provisional (streamed
/// Messages answers are settled from `/generation`), and returns them.
pub async fn settled_events(tg: &TestGateway, n: usize) -> Vec<UsageEvent> {
    orteam_test_support::poll_until(
        || all_events(tg),
        |e| e.len() >= n && orteam_test_support::all_settled(e),
    )
    .await
    .unwrap_or_else(|events| {
        panic!(
            "expected {n} settled events, have {}: {events:?}",
            events.len()
        )
    })
}

backend_tests!(every_route_holds_its_budget_under_64_clients);

async fn every_route_holds_its_budget_under_64_clients(backend: Backend) {
    for api in ALL {
        hammer(backend, api).await;
    }
}

async fn hammer(backend: Backend, api: Api) {
    let limit = if api == Api::Embeddings {
        "0.00002"
    } else {
        "0.003"
    };
    let tg = Arc::new(
        TestGateway::builder(backend)
            .budget(BudgetScope::Member, "alice", Window::Daily, limit)
            .start()
            .await,
    );
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let tg = tg.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for j in 0..25u64 {
                let tokens = 20 + (i * 7 + j * 13) % 180;
                let stream = api.streams() && (i + j) % 3 == 0;
                let req = api.body(&format!("[[sim:tokens={tokens}]]"), Some(200), stream);
                let resp = tg.post("alice", api.path(), req).await;
                match resp.status().as_u16() {
                    200 => {
                        let _ = resp.bytes().await.unwrap();
                        ok += 1;
                    }
                    // Responses answers an exhausted budget with OpenAI's 429 quota error.
                    402 => break,
                    429 if api == Api::Responses => break,
                    other => panic!(
                        "{api:?}: unexpected status {other}: {}",
                        resp.text().await.unwrap()
                    ),
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert!(ok > 10, "{api:?}: some requests went through ({ok})");
    let events = settled_events(&tg, ok).await;
    assert_eq!(
        events.len(),
        ok,
        "{api:?}: every answered request is in the ledger"
    );
    let spent: Money = events.iter().map(|e| e.usage.cost).sum();
    assert!(spent <= m(limit), "{api:?}: spent {spent} of {limit}");
    assert_eq!(
        spent,
        sim_total_usage(&tg).await,
        "{api:?}: ledger == billed"
    );
    assert_eq!(
        tg.gateway().ledger.holds_in_flight(),
        0,
        "{api:?}: no hold leaked"
    );
    for e in &events {
        assert!(e.usage.generation_id.is_some(), "{api:?}: {e:?}");
        assert_eq!(e.usage.route, api.route(), "{api:?}: the route is recorded");
    }
}

backend_tests!(cut_streams_errors_and_hang_ups_are_charged_exactly_on_every_route);

/// Streams one request through `fault` and returns its event once settled, after checking it
/// was charged exactly what upstream billed for the generation.
async fn stream_through_fault(tg: &TestGateway, api: Api, fault: Fault) -> UsageEvent {
    tg.sim.set_faults(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: Some(api.upstream_path()),
        times: Some(1),
        fault,
    }]);
    let resp = tg
        .post(
            "alice",
            api.path(),
            api.body("[[sim:tokens=30]]", Some(40), true),
        )
        .await;
    assert_eq!(resp.status(), 200, "{api:?}");
    let request_id = resp.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.text().await; // the fault shows up as a broken or short body
    let e = event(tg, &request_id, true).await;
    let gen_id = e.usage.generation_id.clone().expect("generation id");
    let g = sim_generation(tg, &gen_id).await;
    assert_eq!(e.usage.cost, json_money(&g["total_cost"]), "{api:?}: {e:?}");
    assert!(e.usage.cost > Money::ZERO, "{api:?}");
    e
}

async fn cut_streams_errors_and_hang_ups_are_charged_exactly_on_every_route(backend: Backend) {
    for api in ALL.into_iter().filter(|a| a.streams()) {
        let tg = TestGateway::start(backend).await;
        let cut = stream_through_fault(&tg, api, Fault::StreamCut { after_chunks: 3 }).await;
        assert_eq!(
            cut.usage.outcome,
            Outcome::Partial,
            "{api:?}: a cut stream is partial"
        );
        // A mid-stream error from upstream (in the route's own form: an error chunk, an
        // Anthropic `error` event, `response.failed`) is charged what upstream billed.
        let error = Fault::StreamError {
            after_chunks: 2,
            code: 502,
            message: None,
        };
        stream_through_fault(&tg, api, error).await;

        // A client that hangs up mid-stream is charged what was generated.
        tg.sim.clear_faults();
        let mut resp = tg
            .post(
                "alice",
                api.path(),
                api.body("[[sim:tokens=30]] [[sim:delay_ms=20]]", Some(40), true),
            )
            .await;
        let request_id = resp.headers()["x-orteam-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _first = resp.chunk().await.unwrap();
        drop(resp);
        let e = event(&tg, &request_id, true).await;
        let gen_id = e.usage.generation_id.clone().expect("generation id");
        let g = sim_generation(&tg, &gen_id).await;
        assert_eq!(
            e.usage.cost,
            json_money(&g["total_cost"]),
            "{api:?}: hang-up"
        );
        let events = settled_events(&tg, 3).await;
        let total: Money = events.iter().map(|e| e.usage.cost).sum();
        assert_eq!(total, sim_total_usage(&tg).await, "{api:?}");
    }
}

#[tokio::test]
async fn bad_input_gets_each_apis_own_error_and_costs_nothing() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .configure(|c| c.max_body_bytes = 4096)
        .start()
        .await;
    for api in ALL {
        let url = format!("{}{}", tg.base_url, api.path());
        let good = api.body("", Some(10), false);
        let mut no_model = good.clone();
        no_model.as_object_mut().unwrap().remove("model");
        let mut unknown = good.clone();
        unknown["model"] = "nope/nothing".into();
        let mut big = good.clone();
        big["padding"] = "x".repeat(8000).into();
        let json_ct = "application/json";
        // (what, body, content type, key override, status)
        type Case<'a> = (&'a str, Vec<u8>, &'a str, Option<&'a str>, u16);
        let cases: Vec<Case> = vec![
            ("malformed JSON", b"{not json".to_vec(), json_ct, None, 400),
            (
                "missing model",
                serde_json::to_vec(&no_model).unwrap(),
                json_ct,
                None,
                400,
            ),
            (
                "unknown model",
                serde_json::to_vec(&unknown).unwrap(),
                json_ct,
                None,
                if api == Api::Messages { 404 } else { 400 },
            ),
            (
                "wrong content type",
                serde_json::to_vec(&good).unwrap(),
                "text/plain",
                None,
                415,
            ),
            (
                "body too large",
                serde_json::to_vec(&big).unwrap(),
                json_ct,
                None,
                413,
            ),
            (
                "bad key",
                serde_json::to_vec(&good).unwrap(),
                json_ct,
                Some("ot-not-a-real-key"),
                401,
            ),
        ];
        for (what, body, ct, key, status) in cases {
            let resp = tg
                .http
                .post(&url)
                .bearer_auth(key.unwrap_or(tg.key("alice")))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), status, "{api:?} {what}");
            let v: Value = resp
                .json()
                .await
                .unwrap_or_else(|e| panic!("{api:?} {what}: {e}"));
            let kind = api.error_kind(&v);
            if api == Api::Messages {
                let want = match status {
                    401 => "authentication_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    _ => "invalid_request_error",
                };
                assert_eq!(kind, want, "{what}: {v}");
            }
        }
        assert_eq!(
            tg.sim.request_count("POST", &api.upstream_path()),
            0,
            "{api:?}"
        );
    }
    assert!(all_events(&tg).await.is_empty());
    assert_eq!(sim_total_usage(&tg).await, Money::ZERO);
    for s in tg.gateway().ledger.budget_status("alice").await.unwrap() {
        assert!(s.held.is_zero());
    }
}

#[tokio::test]
async fn every_route_is_priced_clamped_and_refused_like_chat() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.0001")
        .start()
        .await;
    for api in [Api::Messages, Api::Responses, Api::Completions] {
        // A huge cap is lowered to what the budget can pay, and the answer says so.
        let resp = tg
            .post(
                "alice",
                api.path(),
                api.body("[[sim:tokens=5]]", Some(100_000), false),
            )
            .await;
        assert_eq!(resp.status(), 200, "{api:?}");
        let clamped: u64 = resp.headers()["x-orteam-max-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((16..100_000).contains(&clamped), "{api:?}: {clamped}");
        // No cap at all (Codex sends none): one is set and announced.
        let resp = tg
            .post(
                "alice",
                api.path(),
                api.body("[[sim:tokens=5]]", None, false),
            )
            .await;
        assert_eq!(resp.status(), 200, "{api:?}");
        assert!(
            resp.headers().get("x-orteam-max-tokens").is_some(),
            "{api:?}"
        );
    }
    // The tier applies on every route: carol may use only gpt-4o-mini.
    for api in [Api::Chat, Api::Messages, Api::Responses, Api::Completions] {
        let mut b = api.body("", Some(10), false);
        b["model"] = "openai/gpt-4o".into();
        let resp = tg.post("carol", api.path(), b).await;
        assert_eq!(resp.status(), 403, "{api:?}");
        let v: Value = resp.json().await.unwrap();
        let kind = api.error_kind(&v);
        assert!(
            kind == "permission_error" || kind == "model_not_allowed",
            "{api:?}: {v}"
        );
    }
    // Spend until refused: 402 in the route's shape.
    for api in [Api::Messages, Api::Responses] {
        let mut refused = None;
        for _ in 0..40 {
            let resp = tg
                .post(
                    "alice",
                    api.path(),
                    api.body("[[sim:tokens=50]]", Some(50), false),
                )
                .await;
            if resp.status() == 402 || resp.status() == 429 {
                refused = Some((
                    resp.status(),
                    resp.headers().clone(),
                    resp.json::<Value>().await.unwrap(),
                ));
                break;
            }
            assert_eq!(resp.status(), 200, "{api:?}");
        }
        let (status, headers, v) = refused.expect("the budget ran out");
        let kind = api.error_kind(&v);
        assert_eq!(headers["x-should-retry"], "false", "{api:?}");
        if api == Api::Messages {
            assert_eq!((status.as_u16(), kind.as_str()), (402, "billing_error"));
        } else {
            // OpenAI's own answer to an exhausted quota, which Codex does not retry.
            assert_eq!(
                (status.as_u16(), kind.as_str()),
                (429, "insufficient_quota")
            );
        }
    }
    let events = settled_events(&tg, 1).await;
    let spent: Money = events.iter().map(|e| e.usage.cost).sum();
    assert!(spent <= m("0.0001"), "spent {spent}");
    assert_eq!(spent, sim_total_usage(&tg).await);
}

#[tokio::test]
async fn count_tokens_and_models_speak_anthropic() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let resp = tg
        .http
        .post(format!("{}/messages/count_tokens", tg.base_url))
        .header("x-api-key", tg.key("alice"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(
        all_events(&tg).await.is_empty(),
        "count_tokens is never billed"
    );
    assert_eq!(
        tg.sim
            .request_count("POST", "/api/v1/messages/count_tokens"),
        0
    );

    let v: Value = tg
        .http
        .get(format!("{}/models", tg.base_url))
        .header("x-api-key", tg.key("carol"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["openai/gpt-4o-mini"], "carol's tier only: {v}");
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn routing_fields_cannot_reach_what_the_tier_forbids() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.01")
        .start()
        .await;
    let generating = [Api::Chat, Api::Messages, Api::Responses, Api::Completions];
    for api in generating {
        let forbidden: Vec<(&str, Value)> = vec![
            ("models", json!(["openai/gpt-4o"])),
            ("plugins", json!([{"id": "web"}])),
            ("preset", json!("team-default")),
        ];
        for (field, value) in forbidden {
            let mut b = api.body("", Some(10), false);
            b[field] = value;
            let resp = tg.post("carol", api.path(), b).await;
            assert_eq!(resp.status(), 403, "{api:?} {field}");
            let v: Value = resp.json().await.unwrap();
            api.error_kind(&v);
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(&format!("`{field}`")),
                "{api:?} {field}: {msg}"
            );
        }
        // A preset named in the model, and a duplicated member, are refused too.
        let mut b = api.body("", Some(10), false);
        b["model"] = "openai/gpt-4o-mini@preset/cheap".into();
        assert_eq!(
            tg.post("alice", api.path(), b).await.status(),
            403,
            "{api:?}"
        );
        let good = serde_json::to_string(&api.body("", Some(10), false)).unwrap();
        let dup = format!(
            "{},\"model\":\"openai/gpt-4o\"}}",
            good.trim_end_matches('}')
        );
        let resp = tg
            .http
            .post(format!("{}{}", tg.base_url, api.path()))
            .bearer_auth(tg.key("alice"))
            .header("content-type", "application/json")
            .body(dup)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{api:?}: duplicate member");
        let v: Value = resp.json().await.unwrap();
        api.error_kind(&v);
        // Nothing forbidden reached upstream.
        assert_eq!(
            tg.sim.request_count("POST", &api.upstream_path()),
            0,
            "{api:?}"
        );
    }
    // Messages' own fallback field and fast mode.
    let mut b = Api::Messages.body("", Some(10), false);
    b["fallbacks"] = json!([{"model": "openai/gpt-4o"}]);
    assert_eq!(tg.post("carol", "/messages", b).await.status(), 403);
    let mut b = Api::Messages.body("", Some(10), false);
    b["speed"] = "fast".into();
    assert_eq!(tg.post("alice", "/messages", b).await.status(), 403);
    assert!(all_events(&tg).await.is_empty());

    // Fallbacks the tier allows are quoted at the dearest of them: the same budget pays for
    // fewer tokens when gpt-4o may serve.
    let cap = |resp: &reqwest::Response| -> u64 {
        resp.headers()["x-orteam-max-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let cheap = tg
        .post(
            "alice",
            "/chat/completions",
            Api::Chat.body("[[sim:tokens=3]]", Some(1_000_000), false),
        )
        .await;
    assert_eq!(cheap.status(), 200);
    let mut b = Api::Chat.body("[[sim:tokens=3]]", Some(1_000_000), false);
    b["models"] = json!(["openai/gpt-4o"]);
    let dear = tg.post("alice", "/chat/completions", b).await;
    assert_eq!(dear.status(), 200);
    assert!(cap(&dear) < cap(&cheap), "{} < {}", cap(&dear), cap(&cheap));

    // Priced server tools are removed, and the answer says so.
    let mut b = Api::Chat.body("[[sim:tokens=3]]", Some(10), false);
    b["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}, {"type": "openrouter:web_search"}]);
    let resp = tg.post("alice", "/chat/completions", b).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-orteam-removed"],
        "tools.openrouter:web_search"
    );
}
