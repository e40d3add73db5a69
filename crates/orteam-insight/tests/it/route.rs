//! Reports and the weekly summary by gateway API route, over a ledger holding requests of
//! several routes (written straight to the ledger: the gateway serves chat only so far).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use orteam_core::{ApiRoute, ControllableClock, Money, SharedClock};
use orteam_insight::report::{CSV_HEADER, ReportOptions, Source, build_report};
use orteam_insight::{NoProgress, Range, Upstream, weekly_report};
use orteam_ledger::{GroupBy, Ledger, LedgerOptions, ModelAccess, NewMember, Tier, Usage};
use orteam_test_support::{Backend, TestDb, backend_tests};

use crate::support::m;

/// Wednesday noon; the weekly summary covers the Monday-to-Monday week before.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 10, 12, 0, 0).unwrap()
}

async fn ledger(db: &TestDb, clock: &Arc<ControllableClock>) -> Ledger {
    let c: SharedClock = clock.clone();
    let ledger = db.open(LedgerOptions::serving().with_clock(c)).await;
    ledger.put_org("acme", "Acme").await.unwrap();
    ledger.put_team("core", "acme", "Core").await.unwrap();
    ledger
        .put_tier(Tier {
            id: "standard".into(),
            name: "Standard".into(),
            models: ModelAccess::All,
            ..Default::default()
        })
        .await
        .unwrap();
    for id in ["alice", "bob"] {
        ledger
            .put_member(NewMember {
                id: id.into(),
                display_name: id.to_uppercase(),
                team_id: "core".into(),
                tier_id: "standard".into(),
            })
            .await
            .unwrap();
    }
    ledger
}

/// Settles one request of `member` at `at`.
async fn settle(
    ledger: &Ledger,
    clock: &ControllableClock,
    at: DateTime<Utc>,
    member: &str,
    id: &str,
    route: ApiRoute,
    cost: &str,
) {
    clock.freeze(at);
    let r = ledger.reserve(member, m("1")).await.unwrap();
    let mut u = Usage::new(id, "openai/gpt-4o-mini", m(cost)).with_route(route);
    u.served_model = Some("openai/gpt-4o-mini".into());
    r.settle(u).await.unwrap();
}

fn no_upstream() -> Upstream {
    Upstream::from_keys(None, None, None).unwrap()
}

async fn reports_group_and_filter_by_route(b: Backend) {
    let db = TestDb::new(b).await;
    let clock = Arc::new(ControllableClock::frozen_at(now()));
    let ledger = ledger(&db, &clock).await;
    let last_week = now() - TimeDelta::days(5); // Friday of the week before
    let before = now() - TimeDelta::days(12); // the week before that
    for (at, member, id, route, cost) in [
        (last_week, "alice", "a1", ApiRoute::Chat, "0.10"),
        (last_week, "alice", "a2", ApiRoute::Messages, "0.0000000375"),
        (last_week, "bob", "b1", ApiRoute::Messages, "0.30"),
        (last_week, "bob", "b2", ApiRoute::Embeddings, "0.000002"),
        (before, "alice", "a0", ApiRoute::Chat, "0.05"),
        (before, "bob", "b0", ApiRoute::Messages, "0.60"),
    ] {
        settle(&ledger, &clock, at, member, id, route, cost).await;
    }
    clock.freeze(now());
    let range = Range {
        from: now() - TimeDelta::days(30),
        to: now(),
    };
    let opts = |group_by: Vec<GroupBy>, route: Option<ApiRoute>| ReportOptions {
        range,
        group_by,
        route,
        direct: true,
        anomalies: None,
    };

    // By route.
    let report = build_report(
        &ledger,
        &no_upstream(),
        &opts(vec![GroupBy::Route], None),
        &NoProgress,
    )
    .await
    .unwrap();
    let rows: Vec<_> = report
        .rows
        .iter()
        .map(|r| {
            (
                r.source,
                r.route,
                r.dimension(GroupBy::Route),
                r.requests,
                r.cost,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                Source::Gateway,
                Some(ApiRoute::Chat),
                "chat".into(),
                2,
                m("0.15")
            ),
            (
                Source::Gateway,
                Some(ApiRoute::Messages),
                "messages".into(),
                3,
                m("0.9000000375")
            ),
            (
                Source::Gateway,
                Some(ApiRoute::Embeddings),
                "embeddings".into(),
                1,
                m("0.000002")
            ),
        ]
    );
    assert_eq!(report.totals.cost, m("1.0500020375"));
    // JSON: the route of each row and the grouping by name.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["group_by"], serde_json::json!(["route"]));
    assert_eq!(json["rows"][1]["route"], "messages");
    assert!(json.get("route").is_none(), "no filter, no filter member");
    // CSV: a route column, and the rows sum to the total.
    let csv = report.to_csv();
    assert!(CSV_HEADER.contains(",key,route,requests,"));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let route_col = CSV_HEADER.split(',').position(|c| c == "route").unwrap();
    let cost_col = CSV_HEADER.split(',').position(|c| c == "cost").unwrap();
    let parsed: Vec<(String, Money)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[route_col].to_owned(), m(f[cost_col]))
        })
        .collect();
    assert_eq!(
        parsed.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["chat", "messages", "embeddings"]
    );
    assert_eq!(
        parsed.iter().map(|p| p.1).sum::<Money>(),
        report.totals.cost
    );

    // Member × route, filtered to one route.
    let report = build_report(
        &ledger,
        &no_upstream(),
        &opts(
            vec![GroupBy::Member, GroupBy::Route],
            Some(ApiRoute::Messages),
        ),
        &NoProgress,
    )
    .await
    .unwrap();
    let rows: Vec<_> = report
        .rows
        .iter()
        .map(|r| (r.member.as_deref().unwrap(), r.route, r.requests, r.cost))
        .collect();
    assert_eq!(
        rows,
        [
            ("alice", Some(ApiRoute::Messages), 1, m("0.0000000375")),
            ("bob", Some(ApiRoute::Messages), 2, m("0.90")),
        ]
    );
    assert_eq!(report.route, Some(ApiRoute::Messages));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["route"], "messages");

    // The weekly summary: three routes had spend last week, so it lists them, most
    // expensive first, with the change from the week before.
    let weekly = weekly_report(&ledger, &no_upstream(), &Default::default(), &NoProgress)
        .await
        .unwrap();
    let routes: Vec<_> = weekly
        .routes
        .iter()
        .map(|r| (r.route, r.spend, r.requests, r.previous, r.change.clone()))
        .collect();
    assert_eq!(
        routes,
        [
            (
                ApiRoute::Messages,
                m("0.3000000375"),
                2,
                m("0.60"),
                Some("-50.0".into())
            ),
            (
                ApiRoute::Chat,
                m("0.10"),
                1,
                m("0.05"),
                Some("+100.0".into())
            ),
            (ApiRoute::Embeddings, m("0.000002"), 1, Money::ZERO, None),
        ]
    );
    assert_eq!(weekly.spend, m("0.4000020375"));
    let json = serde_json::to_value(&weekly).unwrap();
    assert_eq!(json["routes"][0]["route"], "messages");
    ledger.shutdown().await.unwrap();
}

/// With a single route in the week, the summary has no route section.
async fn weekly_has_no_route_section_for_one_route(b: Backend) {
    let db = TestDb::new(b).await;
    let clock = Arc::new(ControllableClock::frozen_at(now()));
    let ledger = ledger(&db, &clock).await;
    let last_week = now() - TimeDelta::days(5);
    settle(
        &ledger,
        &clock,
        last_week,
        "alice",
        "a1",
        ApiRoute::Chat,
        "0.10",
    )
    .await;
    settle(
        &ledger,
        &clock,
        last_week,
        "bob",
        "b1",
        ApiRoute::Chat,
        "0.20",
    )
    .await;
    // Another route, but outside the week: it does not count.
    settle(
        &ledger,
        &clock,
        now(),
        "bob",
        "b2",
        ApiRoute::Responses,
        "0.20",
    )
    .await;
    let weekly = weekly_report(&ledger, &no_upstream(), &Default::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(weekly.spend, m("0.30"));
    assert!(weekly.routes.is_empty(), "{:?}", weekly.routes);
    ledger.shutdown().await.unwrap();
}

backend_tests!(
    reports_group_and_filter_by_route,
    weekly_has_no_route_section_for_one_route,
);
