use futures::StreamExt;
use orteam_openrouter::ErrorKind;
use orteam_openrouter::types::chat::{ChatRequest, Message};
use orteam_sim::{Fault, FaultRule};

use crate::common::{inference, mgmt, sim};

fn req(text: &str) -> ChatRequest {
    ChatRequest::new(
        "openai/gpt-4o",
        vec![Message::system("be brief"), Message::user(text)],
    )
}

#[tokio::test]
async fn non_stream_completion() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "chat");
    let done = c.chat(&req("hello [[sim:tokens=5]]")).await.unwrap();
    let r = &done.response;
    assert!(r.id.starts_with("gen-"));
    assert_eq!(done.generation_id.as_deref(), Some(r.id.as_str()));
    assert_eq!(r.model, "openai/gpt-4o");
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(!r.text().is_empty());
    let u = r.usage.as_ref().unwrap();
    assert_eq!(u.completion_tokens, 5);
    assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert!(u.cost > orteam_core::Money::ZERO);
    assert_eq!(done.retries, 0);

    // max_tokens caps the directive and finishes with "length".
    let capped = c
        .chat(&req("hello [[sim:tokens=50]]").max_tokens(3))
        .await
        .unwrap();
    assert_eq!(capped.response.usage.unwrap().completion_tokens, 3);
    assert_eq!(
        capped.response.choices[0].finish_reason.as_deref(),
        Some("length")
    );
}

#[tokio::test]
async fn streamed_usage_equals_non_streamed_usage() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "stream");
    let r = req("the same request [[sim:tokens=12]]");
    let plain = c.chat(&r).await.unwrap();

    let mut s = c.chat_stream(&r).await.unwrap();
    let header_id = s.generation_id().map(str::to_owned);
    assert!(header_id.is_some());
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        text.push_str(chunk.content().unwrap_or_default());
    }
    assert!(s.is_complete());
    let usage = s.usage().unwrap().clone();
    let pu = plain.response.usage.clone().unwrap();
    assert_eq!(usage.prompt_tokens, pu.prompt_tokens);
    assert_eq!(usage.completion_tokens, pu.completion_tokens);
    assert_eq!(usage.total_tokens, pu.total_tokens);
    assert_eq!(usage.cost, pu.cost);
    assert_eq!(text, plain.response.text());
    assert!(chunks >= 12);
    assert_eq!(s.generation_id(), header_id.as_deref());

    // The collect helper gives the same.
    let sum = c.chat_stream(&r).await.unwrap().collect().await.unwrap();
    assert_eq!(sum.usage.unwrap().cost, pu.cost);
    assert_eq!(sum.text, text);
    assert_eq!(sum.finish_reason.as_deref(), Some("stop"));
    // The stream's generation is recorded as streamed.
    let id = sum.generation_id.unwrap();
    sim.wait_for_generation(&id).await;
    let g = c.generation(&id).await.unwrap();
    assert_eq!(g.streamed, Some(true));
    assert_eq!(g.total_cost, Some(pu.cost));
}

#[tokio::test]
async fn stream_cut_is_stream_ended() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "cut");
    sim.set_faults(vec![
        FaultRule::always(Fault::StreamCut { after_chunks: 2 })
            .on("POST", "/api/v1/chat/completions")
            .times(1),
    ]);
    let mut s = c
        .chat_stream(&req("cut me [[sim:tokens=10]]"))
        .await
        .unwrap();
    let mut oks = 0;
    let err = loop {
        match s.next().await {
            Some(Ok(_)) => oks += 1,
            Some(Err(e)) => break e,
            None => panic!("stream ended cleanly"),
        }
    };
    assert!(oks >= 1);
    assert!(
        matches!(err.kind(), ErrorKind::StreamEnded { .. }),
        "{err:?}"
    );
    assert!(err.partial_usage().is_none());
    assert!(err.generation_id().is_some_and(|g| g.starts_with("gen-")));
    assert!(s.next().await.is_none());
    assert!(!s.is_complete());
    assert!(s.usage().is_none());
    // Never retried.
    assert_eq!(sim.request_count("POST", "/api/v1/chat/completions"), 1);
}

#[tokio::test]
async fn mid_stream_error_surfaces_its_code() {
    let sim = sim().await;
    let (c, _, _) = inference(&sim, "err");
    sim.set_faults(vec![
        FaultRule::always(Fault::StreamError {
            after_chunks: 1,
            code: 502,
            message: Some("Provider returned error".into()),
        })
        .on("POST", "/api/v1/chat/completions")
        .times(1),
    ]);
    let err = c
        .chat_stream(&req("fail me [[sim:tokens=10]]"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Stream { .. }), "{err:?}");
    assert_eq!(err.status(), Some(502));
    assert_eq!(err.message(), Some("Provider returned error"));
    assert!(err.generation_id().is_some());
    assert_eq!(sim.request_count("POST", "/api/v1/chat/completions"), 1);
}

#[tokio::test]
async fn management_key_cannot_do_inference() {
    let sim = sim().await;
    let e = mgmt(&sim).chat(&req("hi")).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e:?}");
    assert_eq!(e.retries(), 0);
    let e = mgmt(&sim).chat_stream(&req("hi")).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
}
