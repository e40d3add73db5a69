//! Nothing gets around the gateway: slow and idle clients are closed by deadlines, a
//! connection flood stops at a cap without starving members, and the operator surfaces
//! (`/metrics`, admin answers, 405s, upstream rate limits) say no more than they should.

use std::time::Duration;

use orteam_sim::{Fault, FaultRule};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestGateway};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads until the server closes the connection; panics if it stays open for `bound`.
async fn closed_within(mut s: TcpStream, bound: Duration) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(bound, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_members_are_served() {
    let tg = TestGateway::builder(Backend::Sqlite)
        .configure(|c| c.header_read_timeout = Duration::from_secs(1))
        .start()
        .await;
    let addr = tg.root_url().trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // A header line now and then does not keep a connection alive past its deadline.
    for s in &mut slow {
        let _ = s.write_all(b"X-Slow: 1\r\n").await;
    }
    // Meanwhile a member keeps getting answers.
    for _ in 0..5 {
        let resp = tg
            .chat("alice", body("openai/gpt-4o-mini", "", Some(5)))
            .await;
        assert_eq!(resp.status(), 200);
    }
    for s in slow.into_iter().chain(idle) {
        closed_within(s, Duration::from_secs(20)).await;
    }
}

#[tokio::test]
async fn a_connection_flood_stops_at_the_cap_and_members_are_served_after_it() {
    // Idle connections are not timed out here (30 s): only the cap can close the extra one.
    let tg = TestGateway::builder(Backend::Sqlite)
        .configure(|c| c.max_connections = 40)
        .start()
        .await;
    let addr = tg.root_url().trim_start_matches("http://").to_owned();
    let mut flood = Vec::new();
    for _ in 0..50 {
        flood.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Past the cap a connection is closed at once instead of holding a descriptor: of 50
    // idle connections, the server keeps 40 and closes the rest.
    let checks = flood.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => None,
            Ok(Ok(_)) => panic!("the server wrote to an idle connection"),
            Err(_) => Some(s),
        }
    });
    let held: Vec<TcpStream> = futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(held.len(), 40, "the cap holds exactly 40 connections");
    // The flood leaves; members are served again (bounded wait for the closes to be seen).
    drop(held);
    let mut status = 0;
    for _ in 0..100 {
        match tg
            .http
            .post(format!("{}/chat/completions", tg.base_url))
            .bearer_auth(tg.key("alice"))
            .json(&body("openai/gpt-4o-mini", "", Some(5)))
            .send()
            .await
        {
            Ok(resp) => {
                status = resp.status().as_u16();
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn operator_surfaces_say_no_more_than_they_should() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let root = tg.root_url();
    // /metrics names members and their spend: not without a token.
    let resp = tg.http.get(format!("{root}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = tg
        .http
        .get(format!("{root}/metrics"))
        .bearer_auth(tg.key("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a member key is not a metrics token");
    // Admin answers are never cached or sniffed.
    let resp = tg
        .http
        .get(format!("{root}/admin/v1/members"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    // Every 405 names what is allowed, with an error body.
    let resp = tg
        .http
        .get(format!("{}/chat/completions", tg.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let resp = tg
        .http
        .post(format!("{}/models", tg.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(
        resp.headers()["allow"].to_str().unwrap().contains("GET"),
        "{:?}",
        resp.headers()
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn an_upstream_rate_limit_longer_than_the_retry_window_is_answered_at_once() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    tg.sim.set_faults(vec![FaultRule {
        method: Some("POST".into()),
        path_prefix: Some("/api/v1/chat/completions".into()),
        times: Some(1),
        fault: Fault::Status {
            status: 429,
            retry_after: Some("30".into()),
            message: None,
        },
    }]);
    let resp = tg
        .chat("alice", body("openai/gpt-4o-mini", "", Some(5)))
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(
        tg.sim.request_count("POST", "/api/v1/chat/completions"),
        1,
        "not retried"
    );
    assert!(all_events(&tg).await.is_empty());
}
