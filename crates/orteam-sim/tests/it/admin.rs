//! The clock and stats admin endpoints.

use serde_json::json;

use crate::Ctx;

#[tokio::test]
async fn clock_endpoints_move_time() {
    let c = Ctx::new().await;
    let g = c.get("/__sim/clock", None).await;
    assert_eq!(g.json["frozen"], false);
    assert_eq!(g.json["offset_seconds"], 0);
    let f = c
        .post(
            "/__sim/clock",
            None,
            json!({"freeze_at": "2026-02-28T23:59:00Z"}),
        )
        .await;
    assert_eq!(f.status, 200, "{}", f.text);
    assert_eq!(f.json["now"], "2026-02-28T23:59:00.000Z");
    assert_eq!(f.json["frozen"], true);
    let a = c
        .post("/__sim/clock", None, json!({"advance_seconds": 120}))
        .await;
    assert_eq!(a.json["now"], "2026-03-01T00:01:00.000Z");
    assert_eq!(
        c.sim.clock().frozen().unwrap().to_rfc3339(),
        "2026-03-01T00:01:00+00:00"
    );
    let u = c
        .post("/__sim/clock", None, json!({"unfreeze": true}))
        .await;
    assert_eq!(u.json["frozen"], false);
    let o = c
        .post("/__sim/clock", None, json!({"offset_seconds": 86400}))
        .await;
    assert_eq!(o.json["offset_seconds"], 86400);
    c.post("/__sim/clock", None, json!({}))
        .await
        .assert_error(400);
    c.post("/__sim/clock", None, json!({"freeze_at": "yesterday"}))
        .await
        .assert_error(400);
}

#[tokio::test]
async fn stats_count_requests_by_method_and_path() {
    let c = Ctx::new().await;
    let mgmt = c.mgmt();
    for _ in 0..3 {
        c.get("/credits?x=1", Some(&mgmt)).await;
    }
    c.get("/key", None).await;
    let s = c.get("/__sim/stats", None).await;
    assert_eq!(s.json["requests"]["GET /api/v1/credits"], 3);
    assert_eq!(s.json["requests"]["GET /api/v1/key"], 1);
    assert_eq!(c.sim.request_count("GET", "/api/v1/credits"), 3);
    assert_eq!(c.sim.request_count("get", "/api/v1/credits"), 3);
    assert_eq!(c.sim.request_count("POST", "/api/v1/credits"), 0);
}
