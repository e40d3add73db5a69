//! Budget alerts fire once at each threshold, survive a restart of the sender without loss or
//! repetition, and are retried with backoff.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use orteam_core::Window;
use orteam_insight::alerts::{deliver_due, enqueue_alerts};
use orteam_insight::{AlertsConfig, run_alerts_once};
use orteam_ledger::{BudgetScope, LedgerOptions};
use orteam_openrouter::RetryPolicy;
use orteam_test_support::{Backend, TestGateway, backend_tests};

use crate::support::{Receiver, m, set_time, sim_today_noon};

async fn budget_alerts_once_per_threshold(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "alice", Window::Daily, "0.05")
        .start()
        .await;
    set_time(&tg, sim_today_noon());
    let rx = Receiver::start().await;
    let cfg = AlertsConfig {
        webhooks: vec![rx.url.clone()],
        anomalies: None,
        ..AlertsConfig::default()
    };
    let http = reqwest::Client::new();
    let day = sim_today_noon().date_naive();
    let id = |t: u32| format!("budget:member:alice:daily:{day}:{t}");
    // Nothing spent: nothing to say.
    assert_eq!(
        run_alerts_once(&tg.admin, &http, &cfg)
            .await
            .unwrap()
            .enqueued,
        0
    );

    let mut sender = tg.admin.clone();
    let mut restarted = false;
    let mut crossed = BTreeSet::new();
    for i in 0..40 {
        let status = tg.admin.budget_status("alice").await.unwrap();
        let b = status
            .iter()
            .find(|b| b.scope == BudgetScope::Member)
            .unwrap()
            .clone();
        if b.spent >= b.limit {
            break;
        }
        let resp = tg
            .chat("alice", crate::support::body("openai/gpt-4o", 300))
            .await;
        if resp.status() == 200 {
            drop(resp);
            // Wait (bounded) until the spend is committed.
            orteam_test_support::poll_until(
                || async { tg.admin.budget_status("alice").await.unwrap() },
                |s| {
                    s.iter()
                        .find(|b| b.scope == BudgetScope::Member)
                        .unwrap()
                        .spent
                        > b.spent
                },
            )
            .await
            .expect("the spend is committed");
        } else {
            // The gateway never overspends: the rest of the budget fits no request. Lower the
            // limit to what was spent, as an admin would, to reach 100 %.
            tg.admin
                .set_budget(BudgetScope::Member, "alice", Window::Daily, b.spent)
                .await
                .unwrap();
        }
        let s = tg.admin.budget_status("alice").await.unwrap();
        let b = s
            .iter()
            .find(|b| b.scope == BudgetScope::Member)
            .unwrap()
            .clone();
        let spent = b.spent;
        let now_crossed: BTreeSet<u32> = [50u32, 80, 100]
            .into_iter()
            .filter(|t| {
                spent.checked_mul_u64(100).unwrap()
                    >= b.limit.checked_mul_u64(u64::from(*t)).unwrap()
            })
            .collect();
        let fresh: Vec<u32> = now_crossed.difference(&crossed).copied().collect();
        if !fresh.is_empty() && !restarted {
            // The first crossing: the receiver is down, and the sender "crashes" after
            // recording the alert.
            restarted = true;
            rx.set_failing(true);
            let r = run_alerts_once(&sender, &http, &cfg).await.unwrap();
            assert_eq!(r.enqueued, fresh.len(), "step {i}");
            assert_eq!((r.delivered, r.failed), (0, fresh.len()));
            drop(sender);
            // A new sender process: same database, nothing in memory.
            sender = tg
                .db
                .open(LedgerOptions::admin().with_clock(tg.clock.clone()))
                .await;
            rx.set_failing(false);
            // Not due yet (backoff), so nothing is sent …
            let r = run_alerts_once(&sender, &http, &cfg).await.unwrap();
            assert_eq!((r.enqueued, r.delivered), (0, 0));
            // … until the backoff has passed.
            set_time(&tg, sim_today_noon() + TimeDelta::minutes(1 + i64::from(i)));
        }
        let r = run_alerts_once(&sender, &http, &cfg).await.unwrap();
        assert_eq!(r.failed, 0);
        crossed.extend(fresh);
        let expected: Vec<String> = crossed.iter().map(|t| id(*t)).collect();
        let mut got = rx.ids();
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "step {i}: every crossed threshold exactly once");
    }
    assert!(restarted);
    assert_eq!(
        crossed,
        BTreeSet::from([50, 80, 100]),
        "the test crosses every threshold"
    );
    // Later runs repeat nothing.
    for _ in 0..2 {
        let r = run_alerts_once(&sender, &http, &cfg).await.unwrap();
        assert_eq!((r.enqueued, r.delivered), (0, 0));
    }
    assert_eq!(rx.ids().len(), 3);
    let outbox = sender.outbox_entries(false).await.unwrap();
    assert_eq!(outbox.len(), 3);
    assert!(outbox.iter().all(|e| e.delivered_at.is_some()));
    assert_eq!(outbox.iter().map(|e| e.attempts).sum::<u32>(), 1);
    let body = rx.deliveries()[0].body.clone();
    assert_eq!(body["kind"], "budget");
    assert_eq!(body["budget"]["threshold_percent"], 50);
    assert_eq!(body["budget"]["limit"], "0.05");
    assert!(rx.ids().contains(&id(100)));

    // A crash between recording and delivering loses nothing: the next process delivers.
    tg.admin
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("0.02"))
        .await
        .unwrap();
    let a = tg
        .db
        .open(LedgerOptions::admin().with_clock(tg.clock.clone()))
        .await;
    let other = AlertsConfig {
        thresholds: vec![90],
        ..cfg.clone()
    };
    assert_eq!(enqueue_alerts(&a, &other).await.unwrap(), 1);
    drop(a);
    let b = tg
        .db
        .open(LedgerOptions::admin().with_clock(tg.clock.clone()))
        .await;
    assert_eq!(deliver_due(&b, &http, &other).await.unwrap(), (1, 0, 0));
    assert_eq!(deliver_due(&b, &http, &other).await.unwrap(), (0, 0, 0));
    assert_eq!(rx.ids().len(), 4);

    // Retries with backoff, then dead after max attempts.
    let dead_cfg = AlertsConfig {
        thresholds: vec![95],
        retry: RetryPolicy {
            max_retries: 1,
            ..cfg.retry.clone()
        },
        ..cfg.clone()
    };
    rx.set_failing(true);
    let r = run_alerts_once(&b, &http, &dead_cfg).await.unwrap();
    assert_eq!((r.enqueued, r.failed, r.dead), (1, 1, 0));
    set_time(&tg, sim_today_noon() + TimeDelta::hours(2));
    let r = run_alerts_once(&b, &http, &dead_cfg).await.unwrap();
    assert_eq!((r.failed, r.dead), (0, 1));
    rx.set_failing(false);
    set_time(&tg, sim_today_noon() + TimeDelta::hours(4));
    let r = run_alerts_once(&b, &http, &dead_cfg).await.unwrap();
    assert_eq!(r, Default::default());
    assert_eq!(rx.ids().len(), 4);
    assert_eq!(b.outbox_entries(true).await.unwrap().len(), 0);
    assert!(
        b.outbox_entries(false)
            .await
            .unwrap()
            .iter()
            .any(|e| e.dead)
    );
}

backend_tests!(budget_alerts_once_per_threshold);
