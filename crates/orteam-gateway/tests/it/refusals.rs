//! Refused requests are recorded in the ledger: exact counts per member and reason after a
//! burst of 402/403/429/401, and a flood of 10,000 bad requests stays a handful of rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use orteam_core::Window;
use orteam_ledger::{BudgetScope, RefusalFilter, refusals::summarize};
use orteam_test_support::{Backend, TestGateway, backend_tests};

use crate::support::*;

backend_tests!(
    a_burst_of_refusals_is_counted_exactly,
    a_flood_of_bad_requests_stays_bounded
);

/// (member, reason, detail) → count, as the ledger summarises them.
async fn recorded(tg: &TestGateway) -> BTreeMap<(String, String, String), u64> {
    // The gateway hands its counts to its writer and waits for the commit; the admin ledger
    // (another connection, as `orteam report` would be) then reads them.
    tg.gateway()
        .ledger
        .refusals(RefusalFilter::default())
        .await
        .unwrap();
    let rows = tg.admin.refusals(RefusalFilter::default()).await.unwrap();
    summarize(&rows)
        .into_iter()
        .map(|s| ((s.member_id, s.reason, s.detail), s.count))
        .collect()
}

async fn a_burst_of_refusals_is_counted_exactly(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "carol", Window::Daily, "0")
        .tier_limits("basic", Some(2), None)
        .start()
        .await;
    let mut seen: BTreeMap<u16, u64> = BTreeMap::new();
    // carol's daily budget is zero: every allowed request is 402.
    for _ in 0..7 {
        let s = tg
            .chat("carol", body("openai/gpt-4o-mini", "", Some(10)))
            .await
            .status();
        *seen.entry(s.as_u16()).or_default() += 1;
    }
    // carol's tier allows gpt-4o-mini only: another model is 403 (before any budget check).
    for _ in 0..4 {
        let s = tg
            .chat("carol", body("openai/gpt-4o", "", Some(10)))
            .await
            .status();
        *seen.entry(s.as_u16()).or_default() += 1;
    }
    // bob may send 2 requests a minute: the rest of a burst of 6 is 429.
    let mut bob_limited = 0;
    for _ in 0..6 {
        let s = tg
            .chat("bob", body("openai/gpt-4o-mini", "", Some(10)))
            .await
            .status();
        if s == 429 {
            bob_limited += 1;
        } else {
            assert_eq!(s, 200);
        }
    }
    // A key nobody holds is 401, with no member.
    for _ in 0..3 {
        let s = tg
            .http
            .post(format!("{}/messages", tg.base_url))
            .header("x-api-key", "ot-not-a-key")
            .header("anthropic-version", "2023-06-01")
            .json(&body("openai/gpt-4o-mini", "", Some(10)))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 401);
    }
    assert_eq!(seen[&402], 7, "{seen:?}");
    assert_eq!(seen[&403], 4, "{seen:?}");
    assert!(bob_limited >= 4, "only {bob_limited} of 6 were limited");

    let got = recorded(&tg).await;
    let key = |m: &str, r: &str, d: &str| (m.to_owned(), r.to_owned(), d.to_owned());
    let want: BTreeMap<_, _> = [
        (key("carol", "budget_exceeded", "member \"carol\" daily"), 7),
        (key("carol", "model_not_allowed", "tier strict"), 4),
        (
            key("bob", "rate_limit_exceeded", "requests per minute"),
            bob_limited,
        ),
        (key("", "invalid_api_key", ""), 3),
    ]
    .into();
    assert_eq!(got, want);
    // The rows carry the route and the requested model.
    let rows = tg.admin.refusals(RefusalFilter::default()).await.unwrap();
    assert!(rows.iter().any(|r| r.key.member_id == "carol"
        && r.key.model == "openai/gpt-4o"
        && r.key.route == orteam_core::ApiRoute::Chat));
    assert!(rows.iter().any(
        |r| r.key.reason == "invalid_api_key" && r.key.route == orteam_core::ApiRoute::Messages
    ));
    // A member filter reads only that member's rows.
    let bob = tg
        .admin
        .refusals(RefusalFilter {
            member: Some("bob".into()),
            ..RefusalFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(bob.iter().map(|r| r.count).sum::<u64>(), bob_limited);
}

async fn a_flood_of_bad_requests_stays_bounded(backend: Backend) {
    let tg = Arc::new(TestGateway::start(backend).await);
    // 5,000 requests with keys nobody holds and 5,000 from alice, each naming a model that does
    // not exist (a different one each time: the part of a key a member controls).
    let statuses: Vec<u16> = futures::stream::iter(0..10_000u32)
        .map(|i| {
            let tg = tg.clone();
            async move {
                let req = tg.http.post(format!("{}/chat/completions", tg.base_url));
                let req = if i % 2 == 0 {
                    req.bearer_auth(format!("ot-bogus-{i}"))
                } else {
                    req.bearer_auth(tg.key("alice"))
                };
                req.json(&body(&format!("made/up-{i}"), "", Some(10)))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5_000);
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 5_000);

    let got = recorded(&tg).await;
    assert_eq!(
        got[&("".into(), "invalid_api_key".into(), "".into())],
        5_000
    );
    assert_eq!(
        got[&("alice".into(), "model_not_found".into(), "".into())],
        5_000
    );
    // The test clock stands still: one minute. Bad keys are one row; alice's made-up models
    // at most the per-minute bound plus the row without a model.
    let rows = tg.admin.refusals(RefusalFilter::default()).await.unwrap();
    assert!(
        rows.len() <= orteam_ledger::refusals::MAX_KEYS_PER_MINUTE + 2,
        "{} rows",
        rows.len()
    );
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 10_000);
    println!("{} refusal rows for 10,000 refused requests", rows.len());
}
