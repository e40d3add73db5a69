//! Key limits with resets on UTC day/week/month boundaries, and credit drawdown.

use chrono::TimeDelta;
use orteam_core::{Money, Window};
use orteam_sim::SimConfig;
use serde_json::json;

use crate::{Ctx, m, utc};

/// `hi [[sim:tokens=10]]` on gpt-4o-mini: 9 prompt tokens × 0.00000015 + 10 × 0.0000006.
const COST: &str = "0.00000735";
const PROMPT: &str = "hi [[sim:tokens=10]]";
const MODEL: &str = "openai/gpt-4o-mini";

async fn spend(c: &Ctx, key: &str) -> u16 {
    let r = c.chat(key, MODEL, PROMPT).await;
    if r.status == 200 {
        assert_eq!(r.money("/usage/cost"), m(COST));
    }
    r.status.as_u16()
}

async fn usage(c: &Ctx, hash: &str) -> (Money, Money, Money, Money, Option<Money>) {
    let r = c.key_info(hash).await;
    let rem = (r.json["data"]["limit_remaining"] != serde_json::Value::Null)
        .then(|| r.money("/data/limit_remaining"));
    (
        r.money("/data/usage"),
        r.money("/data/usage_daily"),
        r.money("/data/usage_weekly"),
        r.money("/data/usage_monthly"),
        rem,
    )
}

#[tokio::test]
async fn daily_limit_resets_at_utc_midnight() {
    // Wednesday 23:00 UTC.
    let c = Ctx::frozen_at(utc(2026, 3, 4, 23, 0)).await;
    let (key, hash) = c.key_with_limit("d", "0.000005", Some(Window::Daily));
    assert_eq!(spend(&c, &key).await, 200);
    let r = c.chat(&key, MODEL, PROMPT).await;
    let msg = r.assert_error(403);
    assert!(msg.starts_with("Key limit exceeded (daily limit)"), "{msg}");
    assert_eq!(
        usage(&c, &hash).await,
        (m(COST), m(COST), m(COST), m(COST), Some(m("0")))
    );

    c.sim.clock().advance(TimeDelta::hours(2)); // Thursday 01:00
    assert_eq!(
        usage(&c, &hash).await,
        (m(COST), m("0"), m(COST), m(COST), Some(m("0.000005")))
    );
    assert_eq!(spend(&c, &key).await, 200);
    let current = c.get("/key", Some(&key)).await;
    assert_eq!(current.money("/data/usage_daily"), m(COST));
    assert_eq!(current.money("/data/usage"), m("0.0000147"));
}

#[tokio::test]
async fn weekly_limit_resets_on_monday_only() {
    // Saturday 23:00 UTC.
    let c = Ctx::frozen_at(utc(2026, 3, 7, 23, 0)).await;
    let (key, hash) = c.key_with_limit("w", "0.000005", Some(Window::Weekly));
    assert_eq!(spend(&c, &key).await, 200);
    assert!(
        c.chat(&key, MODEL, PROMPT)
            .await
            .assert_error(403)
            .contains("(weekly limit)")
    );
    c.sim.clock().advance(TimeDelta::hours(2)); // Sunday 01:00: same week
    assert_eq!(
        usage(&c, &hash).await,
        (m(COST), m("0"), m(COST), m(COST), Some(m("0")))
    );
    assert_eq!(spend(&c, &key).await, 403);
    c.sim.clock().advance(TimeDelta::days(1)); // Monday 01:00: new week
    let (_, d, w, mo, rem) = usage(&c, &hash).await;
    assert_eq!(
        (d, w, mo, rem),
        (m("0"), m("0"), m(COST), Some(m("0.000005")))
    );
    assert_eq!(spend(&c, &key).await, 200);
}

#[tokio::test]
async fn monthly_limit_resets_on_the_first() {
    let c = Ctx::frozen_at(utc(2026, 1, 30, 23, 0)).await;
    let (key, hash) = c.key_with_limit("mo", "0.000005", Some(Window::Monthly));
    assert_eq!(spend(&c, &key).await, 200);
    assert!(
        c.chat(&key, MODEL, PROMPT)
            .await
            .assert_error(403)
            .contains("(monthly limit)")
    );
    c.sim.clock().advance(TimeDelta::hours(2)); // Jan 31
    assert_eq!(spend(&c, &key).await, 403);
    assert_eq!(usage(&c, &hash).await.3, m(COST));
    c.sim.clock().advance(TimeDelta::days(1)); // Feb 1 (a Sunday: the week is unchanged)
    let (total, d, w, mo, rem) = usage(&c, &hash).await;
    assert_eq!(
        (total, d, w, mo, rem),
        (m(COST), m("0"), m(COST), m("0"), Some(m("0.000005")))
    );
    assert_eq!(spend(&c, &key).await, 200);
}

#[tokio::test]
async fn total_limit_never_resets_and_remaining_is_exact() {
    let c = Ctx::frozen_at(utc(2026, 3, 4, 12, 0)).await;
    let (key, hash) = c.key_with_limit("t", "0.00001", None);
    assert_eq!(spend(&c, &key).await, 200);
    assert_eq!(usage(&c, &hash).await.4, Some(m("0.00000265")));
    assert_eq!(spend(&c, &key).await, 200);
    assert_eq!(usage(&c, &hash).await.4, Some(m("0")));
    c.sim.clock().advance(TimeDelta::days(40));
    assert!(
        c.chat(&key, MODEL, PROMPT)
            .await
            .assert_error(403)
            .starts_with("Key limit exceeded (total limit)")
    );
}

#[tokio::test]
async fn key_limit_status_402_is_configurable() {
    let c = Ctx::with(SimConfig {
        key_limit_status: 402,
        ..SimConfig::default()
    })
    .await;
    let (key, _) = c.key_with_limit("t", "0", None);
    assert!(
        c.chat(&key, MODEL, PROMPT)
            .await
            .assert_error(402)
            .contains("Key limit exceeded")
    );
    assert!(
        orteam_sim::spawn(SimConfig {
            key_limit_status: 500,
            ..SimConfig::default()
        })
        .await
        .is_err()
    );
}

#[tokio::test]
async fn credits_draw_down_to_402_and_can_be_topped_up() {
    let c = Ctx::with(SimConfig {
        initial_credits: m("0.00001"),
        ..SimConfig::default()
    })
    .await;
    let key = c.key("k");
    assert_eq!(spend(&c, &key).await, 200);
    assert_eq!(spend(&c, &key).await, 200); // balance was still positive
    let r = c.chat(&key, MODEL, PROMPT).await;
    assert!(r.assert_error(402).starts_with("Insufficient credits"));
    let (credits, used) = c.admin_credits().await;
    assert_eq!(credits, m("0.00001"));
    assert_eq!(used, m("0.0000147"));
    // Free models are blocked too.
    c.chat(&key, "google/gemma-2-9b-it:free", "hi")
        .await
        .assert_error(402);

    let top = c.post("/__sim/credits", None, json!({"add": "1.50"})).await;
    assert_eq!(top.status, 200, "{}", top.text);
    assert_eq!(top.money("/data/total_credits"), m("1.50001"));
    assert_eq!(spend(&c, &key).await, 200);
    c.sim.add_credits(m("1"));
    assert_eq!(c.admin_credits().await.0, m("2.50001"));
}

#[tokio::test]
async fn zero_credits_is_free_tier_and_402() {
    let c = Ctx::with(SimConfig {
        initial_credits: Money::ZERO,
        ..SimConfig::default()
    })
    .await;
    let key = c.key("k");
    assert_eq!(
        c.get("/key", Some(&key)).await.json["data"]["is_free_tier"],
        true
    );
    c.chat(&key, MODEL, PROMPT).await.assert_error(402);
}
