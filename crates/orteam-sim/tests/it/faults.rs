//! Each fault kind, over HTTP and through the handle.

use orteam_sim::{Fault, FaultRule};
use serde_json::json;

use crate::{Ctx, m, wait_generation};

#[tokio::test]
async fn status_fault_with_retry_after_counts_down() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    let set = c
        .post(
            "/__sim/faults",
            None,
            json!({"rules": [{"method": "GET", "path_prefix": "/api/v1/credits", "times": 2,
                              "fault": {"kind": "status", "status": 429, "retry_after": "1"}}]}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    for _ in 0..2 {
        let r = c.get("/credits", Some(&mgmt)).await;
        assert_eq!(r.assert_error(429), "Rate limit exceeded");
        assert_eq!(r.headers["retry-after"], "1");
    }
    assert_eq!(c.get("/credits", Some(&mgmt)).await.status, 200);
    assert_eq!(c.sim.request_count("GET", "/api/v1/credits"), 3);
    // Other paths were never affected; the spent rule is gone.
    assert_eq!(c.get("/key", Some(&mgmt)).await.status, 200);
    let list = c.get("/__sim/faults", None).await;
    assert_eq!(list.json, json!({"rules": []}));
}

#[tokio::test]
async fn status_fault_via_handle_and_compact_form() {
    let c = Ctx::new().await;
    let key = c.key("k");
    let rule: FaultRule = "status:502:message=Provider returned error:times=1:path=/api/v1/chat"
        .parse()
        .unwrap();
    c.sim.set_faults(vec![rule]);
    let r = c.chat(&key, "openai/gpt-4o", "hi").await;
    assert_eq!(r.assert_error(502), "Provider returned error");
    assert_eq!(c.chat(&key, "openai/gpt-4o", "hi").await.status, 200);
    // The faulted request was not billed.
    let (_, used) = c.admin_credits().await;
    let again = c.chat(&key, "openai/gpt-4o", "hi").await;
    assert_eq!(
        c.admin_credits().await.1,
        used.plus(again.money("/usage/cost")).unwrap()
    );

    c.sim.set_faults(vec![FaultRule::always(Fault::Status {
        status: 503,
        retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        message: None,
    })]);
    let r = c.get("/models", None).await;
    r.assert_error(503);
    assert_eq!(r.headers["retry-after"], "Wed, 21 Oct 2015 07:28:00 GMT");
    c.sim.clear_faults();
    assert_eq!(c.get("/models", None).await.status, 200);
    // The admin API itself is never faulted.
    c.sim.set_faults(vec!["status:500".parse().unwrap()]);
    assert_eq!(c.get("/__sim/faults", None).await.status, 200);
    let cleared = c.delete("/__sim/faults", None).await;
    assert_eq!(cleared.json, json!({"rules": []}));
    assert!(c.sim.faults().is_empty());
}

#[tokio::test]
async fn latency_fault_delays_then_proceeds() {
    let c = Ctx::new().await;
    c.sim.set_faults(vec!["latency:5:times=1".parse().unwrap()]);
    assert_eq!(c.sim.faults().len(), 1);
    let r = c.get("/models", None).await;
    assert_eq!(r.status, 200);
    assert!(c.sim.faults().is_empty(), "the rule was applied once");
}

#[tokio::test]
async fn stream_cut_bills_partial_generation() {
    let c = Ctx::new().await;
    let (key, hash) = c.sim.create_key("cut", None, None);
    c.sim.set_faults(vec!["stream_cut:3".parse().unwrap()]);
    let body = json!({"model": "openai/gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "[[sim:tokens=10]]"}]});
    let (status, headers, st) = c.stream(&key, body).await;
    assert_eq!(status, 200);
    assert!(st.cut, "the stream must end abruptly: {}", st.text);
    assert!(!st.has_done());
    assert_eq!(st.chunks().len(), 3);
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    wait_generation(&c.sim, &id).await;
    let g = c.get(&format!("/generation?id={id}"), Some(&key)).await;
    assert_eq!(g.json["data"]["tokens_completion"], 3);
    assert_eq!(g.json["data"]["cancelled"], true);
    assert_eq!(g.json["data"]["streamed"], true);
    // "[[sim:tokens=10]]" is 17 bytes: 4 + 5 = 9 prompt tokens.
    let want = m("0.00000015")
        .times(9)
        .unwrap()
        .plus(m("0.0000006").times(3).unwrap())
        .unwrap();
    assert_eq!(g.money("/data/total_cost"), want);
    assert_eq!(c.key_info(&hash).await.money("/data/usage"), want);
    // A stream fault does not touch non-streamed requests, and it was used up.
    assert!(c.sim.faults().is_empty() || c.sim.faults()[0].times.is_none());
    assert_eq!(c.chat(&key, "openai/gpt-4o-mini", "hi").await.status, 200);
}

#[tokio::test]
async fn stream_error_sends_error_chunk() {
    let c = Ctx::new().await;
    let key = c.key("err");
    c.sim.set_faults(vec![
        FaultRule::always(Fault::StreamError {
            after_chunks: 2,
            code: 502,
            message: Some("Upstream exploded".into()),
        })
        .times(1),
    ]);
    let (status, headers, st) = c
        .stream(
            &key,
            json!({"model": "openai/gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "[[sim:tokens=6]]"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!st.cut);
    assert!(!st.has_done());
    let chunks = st.chunks();
    assert_eq!(chunks.len(), 3);
    let last = &chunks[2];
    assert_eq!(last["error"]["code"], 502);
    assert_eq!(last["error"]["message"], "Upstream exploded");
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    assert_eq!(last["choices"][0]["delta"]["content"], "");
    let id = headers["x-generation-id"].to_str().unwrap().to_owned();
    wait_generation(&c.sim, &id).await;
    let g = c.get(&format!("/generation?id={id}"), Some(&key)).await;
    assert_eq!(g.json["data"]["tokens_completion"], 2);
    assert_eq!(g.json["data"]["finish_reason"], "error");
    // Used up: the next stream completes.
    let (_, _, ok) = c
        .stream(
            &key,
            json!({"model": "openai/gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "[[sim:tokens=6]]"}]}),
        )
        .await;
    assert!(ok.has_done());
}

#[tokio::test]
async fn client_disconnect_records_cancelled_generation() {
    let c = Ctx::new().await;
    let (key, hash) = c.sim.create_key("dc", None, None);
    let mut r = c
        .http
        .post(format!("{}/chat/completions", c.sim.base_url()))
        .bearer_auth(&key)
        .json(&json!({"model": "openai/gpt-4o-mini", "stream": true,
            "messages": [{"role": "user", "content": "[[sim:tokens=2000]] [[sim:delay_ms=5]]"}]}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-generation-id"].to_str().unwrap().to_owned();
    let mut seen = String::new();
    while seen.matches("data: ").count() < 2 {
        seen.push_str(std::str::from_utf8(&r.chunk().await.unwrap().unwrap()).unwrap());
    }
    drop(r);
    wait_generation(&c.sim, &id).await;
    let g = c.get(&format!("/generation?id={id}"), Some(&key)).await;
    assert_eq!(g.json["data"]["cancelled"], true);
    let produced = g.json["data"]["tokens_completion"].as_u64().unwrap();
    assert!((2..2000).contains(&produced), "{produced}");
    assert_eq!(
        c.key_info(&hash).await.money("/data/usage"),
        g.money("/data/total_cost")
    );
}
