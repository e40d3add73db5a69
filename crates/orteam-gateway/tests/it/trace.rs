//! OpenTelemetry: the gateway's spans, received and decoded by a real OTLP/HTTP receiver (the
//! official `opentelemetry-proto` Python package), one request span per request with the GenAI
//! and orteam attributes, child spans for reserve/upstream/settle, the client's `traceparent`
//! honoured and propagated upstream, and never a prompt or completion.
//!
//! Needs `ORTEAM_TEST_PYTHON` (scripts/python-env.sh installs opentelemetry-proto).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use orteam_test_support::{Backend, TestGateway, poll_until};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::event;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
/// Text in the prompt that must appear in no span.
const CANARY: &str = "canary-prompt-text-7f3a";

/// An upstream in front of the simulator (once [`RecordingUpstream::target`] names it) that
/// records each request's `traceparent`.
struct RecordingUpstream {
    base_url: String,
    target: Arc<Mutex<Option<String>>>,
    traceparents: Arc<Mutex<Vec<String>>>,
}

async fn recording_upstream() -> RecordingUpstream {
    #[derive(Clone)]
    struct St {
        target: Arc<Mutex<Option<String>>>,
        seen: Arc<Mutex<Vec<String>>>,
        http: reqwest::Client,
    }
    async fn forward(State(st): State<St>, req: Request) -> axum::response::Response {
        let Some(sim_base) = st.target.lock().unwrap().clone() else {
            return http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        let (parts, body) = req.into_parts();
        if let Some(tp) = parts.headers.get("traceparent") {
            st.seen
                .lock()
                .unwrap()
                .push(tp.to_str().unwrap().to_owned());
        }
        let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let path = parts.uri.path_and_query().unwrap().as_str();
        let mut out = st.http.request(
            parts.method.clone(),
            format!("{sim_base}{}", path.trim_start_matches("/api/v1")),
        );
        for (k, v) in &parts.headers {
            if k != "host" && k != "content-length" {
                out = out.header(k, v);
            }
        }
        let resp = out.body(body).send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let mut answer = (status, bytes).into_response();
        for (k, v) in &headers {
            if k != "content-length" && k != "transfer-encoding" {
                answer.headers_mut().insert(k, v.clone());
            }
        }
        answer
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::new(Mutex::new(None));
    let app = axum::Router::new().fallback(forward).with_state(St {
        target: target.clone(),
        seen: seen.clone(),
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    RecordingUpstream {
        base_url: format!("http://{addr}/api/v1"),
        target,
        traceparents: seen,
    }
}

/// Starts the receiver; returns it and a reader of the spans it prints.
async fn otlp_receiver() -> (
    tokio::process::Child,
    u16,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let python = std::env::var("ORTEAM_TEST_PYTHON").expect(
        "ORTEAM_TEST_PYTHON must point to a python with opentelemetry-proto (scripts/python-env.sh)",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/otlp_receiver.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the OTLP receiver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines
        .next_line()
        .await
        .unwrap()
        .expect("the receiver's port");
    (child, port.trim().parse().unwrap(), lines)
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_request_is_one_span_with_genai_attributes_and_no_contents() {
    let (_receiver, port, mut lines) = otlp_receiver().await;
    let upstream = recording_upstream().await;
    let upstream_url = upstream.base_url.clone();
    let mut tg = TestGateway::builder(Backend::Sqlite)
        .configure(move |c| {
            c.upstream_base_url = upstream_url;
            let env: HashMap<&str, String> = [
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("http://127.0.0.1:{port}"),
                ),
                ("OTEL_SERVICE_NAME", "orteam-under-test".to_owned()),
                ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
            ]
            .into();
            c.otel =
                orteam_gateway::trace::OtelSettings::from_env(|k| env.get(k).cloned()).unwrap();
        })
        .start()
        .await;
    // The catalog loads on the first request once the simulator is behind the recorder.
    *upstream.target.lock().unwrap() = Some(tg.sim.base_url());

    let prompt = |stream: bool| {
        json!({
            "model": "openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": format!("{CANARY} [[sim:tokens=7]]")}],
            "max_tokens": 50,
            "stream": stream,
        })
    };
    let traced = tg
        .http
        .post(format!("{}/chat/completions", tg.base_url))
        .bearer_auth(tg.key("alice"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .json(&prompt(false))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    let traced_id = traced.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer = traced.text().await.unwrap();
    let streamed = tg.chat("bob", prompt(true)).await;
    assert_eq!(streamed.status(), 200);
    let streamed_id = streamed.headers()["x-orteam-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = streamed.text().await.unwrap();
    let refused = tg
        .chat(
            "carol",
            json!({"model": "anthropic/claude-sonnet-4.5", "messages": [{"role": "user", "content": CANARY}]}),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let exact = event(&tg, &traced_id, true).await;
    event(&tg, &streamed_id, true).await;
    tg.stop().await; // flushes the exporter

    let mut spans: Vec<Value> = Vec::new();
    let done = poll_until(
        || {
            let got = futures::FutureExt::now_or_never(lines.next_line());
            if let Some(Ok(Some(line))) = got {
                spans.push(serde_json::from_str(&line).unwrap());
            }
            let n = spans.len();
            async move { n }
        },
        |n| *n >= 3 + 2 * 3,
    )
    .await;
    assert!(done.is_ok(), "spans received: {spans:#?}");
    let completion =
        serde_json::from_str::<Value>(&answer).unwrap()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(completion.len() > 10, "{completion}");
    for s in &spans {
        assert_eq!(s["path"], "/v1/traces");
        assert_eq!(s["content_type"], "application/x-protobuf");
        assert_eq!(s["resource"]["service.name"], "orteam-under-test");
        let text = s.to_string();
        assert!(!text.contains(CANARY), "a span carries prompt text: {s}");
        assert!(
            !text.contains(&completion),
            "a span carries the completion: {s}"
        );
    }
    let requests: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(requests.len(), 3, "one server span per request: {spans:#?}");

    // The traced request: a child of the client's span, with every attribute.
    let root = requests
        .iter()
        .find(|s| attr(s, "orteam.request_id") == traced_id.as_str())
        .unwrap();
    assert_eq!(root["trace_id"], TRACE_ID);
    assert_eq!(root["parent_span_id"], PARENT_SPAN_ID);
    assert_eq!(root["name"], "chat openai/gpt-4o-mini");
    assert_eq!(attr(root, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(root, "gen_ai.provider.name"), "openrouter");
    assert_eq!(attr(root, "gen_ai.request.model"), "openai/gpt-4o-mini");
    assert_eq!(
        attr(root, "gen_ai.response.model"),
        exact.usage.served_model.as_deref().unwrap()
    );
    assert_eq!(
        attr(root, "gen_ai.usage.input_tokens"),
        exact.usage.prompt_tokens as i64
    );
    assert_eq!(attr(root, "gen_ai.usage.output_tokens"), 7);
    assert_eq!(attr(root, "gen_ai.request.max_tokens"), 50);
    assert_eq!(attr(root, "orteam.member"), "alice");
    assert_eq!(attr(root, "orteam.team"), "core");
    assert_eq!(attr(root, "orteam.tier"), "all");
    assert_eq!(attr(root, "orteam.route"), "chat");
    assert_eq!(attr(root, "orteam.budget.decision"), "allowed");
    assert_eq!(attr(root, "orteam.outcome"), "ok");
    assert_eq!(attr(root, "http.response.status_code"), 200);
    // The cost, as an exact string equal to the ledger's.
    assert_eq!(
        attr(root, "orteam.cost").as_str().unwrap(),
        exact.usage.cost.to_canonical_string()
    );
    // Its children: reserve, the upstream call, settle.
    let root_id = root["span_id"].as_str().unwrap();
    let children: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parent_span_id"] == root_id)
        .collect();
    let names: Vec<&str> = children
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"orteam.reserve"), "{names:?}");
    assert!(names.contains(&"orteam.settle"), "{names:?}");
    let client = children
        .iter()
        .find(|s| s["kind"] == 3)
        .expect("an upstream client span");
    assert_eq!(client["trace_id"], TRACE_ID);
    // Upstream got the trace context, naming the client span as its parent.
    let sent = format!("00-{TRACE_ID}-{}-01", client["span_id"].as_str().unwrap());
    assert!(
        upstream.traceparents.lock().unwrap().contains(&sent),
        "{sent} not among {:?}",
        upstream.traceparents.lock().unwrap()
    );

    // The stream's span ends after its usage is recorded, with its tokens.
    let stream_root = requests
        .iter()
        .find(|s| attr(s, "orteam.request_id") == streamed_id.as_str())
        .unwrap();
    assert_eq!(attr(stream_root, "orteam.stream"), true);
    assert_eq!(attr(stream_root, "orteam.member"), "bob");
    assert_eq!(attr(stream_root, "gen_ai.usage.output_tokens"), 7);

    // The refusal: an error span naming why, no cost.
    let refusal = requests
        .iter()
        .find(|s| attr(s, "orteam.member") == "carol")
        .unwrap();
    assert_eq!(refusal["status_code"], 2, "STATUS_CODE_ERROR");
    assert_eq!(attr(refusal, "error.type"), "model_not_allowed");
    assert!(attr(refusal, "orteam.cost").is_null());
}
