//! A planted spike is flagged; a normal day is not. Flags reach the report, the admin
//! endpoint's body, the gauge values and a webhook (once).

use chrono::{Days, TimeDelta};
use orteam_insight::anomaly::{
    AnomalyConfig, AnomalyQuery, SubjectKind, anomalies_endpoint, detect,
};
use orteam_insight::report::{ReportOptions, build_report};
use orteam_insight::{AlertsConfig, NoProgress, Period, run_alerts_once};
use orteam_ledger::GroupBy;
use orteam_test_support::{Backend, backend_tests};

use crate::support::{Receiver, chat, m, seed, set_time, wait_recorded};

async fn spike_is_flagged_normal_day_is_not(backend: Backend) {
    let mut w = seed(backend).await;
    let rule = AnomalyConfig::default().with_min_spend(m("0.001"));
    let today = w.today.date_naive();
    // Today: bob and carol as usual, alice five large gpt-4o answers (a spike).
    set_time(&w.tg, w.today - TimeDelta::hours(2));
    w.sent
        .push(chat(&w.tg, "bob", "meta-llama/llama-3.1-8b-instruct", 22).await);
    w.sent
        .push(chat(&w.tg, "carol", "openai/gpt-4o-mini", 15).await);
    for _ in 0..5 {
        w.sent
            .push(chat(&w.tg, "alice", "openai/gpt-4o", 1000).await);
    }
    set_time(&w.tg, w.today);
    wait_recorded(&w).await;

    let all = detect(&w.tg.admin, today, &rule).await.unwrap();
    let flagged = |kind: SubjectKind, s: &str| {
        all.iter()
            .find(|a| a.kind == kind && a.subject == s)
            .unwrap_or_else(|| panic!("{kind:?} {s} not evaluated: {all:?}"))
            .flagged
    };
    assert!(flagged(SubjectKind::Member, "alice"), "{all:#?}");
    assert!(flagged(SubjectKind::Model, "openai/gpt-4o"));
    let alice_key =
        w.tg.admin
            .directory()
            .virtual_keys
            .values()
            .find(|k| k.member_id == "alice")
            .unwrap()
            .id
            .clone();
    assert!(flagged(SubjectKind::Key, &alice_key));
    assert!(
        !flagged(SubjectKind::Member, "bob"),
        "a normal day is not flagged: {all:#?}"
    );
    assert!(!flagged(SubjectKind::Member, "carol"));
    assert!(!flagged(
        SubjectKind::Model,
        "meta-llama/llama-3.1-8b-instruct"
    ));
    // A normal past day of alice is not flagged either.
    for back in [1u64, 5, 10] {
        let past = detect(&w.tg.admin, today - Days::new(back), &rule)
            .await
            .unwrap();
        assert!(past.iter().all(|a| !a.flagged), "day -{back}: {past:#?}");
    }

    // The admin endpoint and the gauge.
    let body = anomalies_endpoint(
        &w.tg.admin,
        AnomalyQuery {
            day: None,
            all: true,
            min_spend: Some(m("0.001")),
        },
    )
    .await
    .unwrap();
    assert_eq!(body.day, today);
    assert_eq!(body.flagged.len(), 3, "{:#?}", body.flagged);
    assert!(body.all.as_ref().unwrap().len() > 3);
    let gauges = body.gauge_values();
    assert!(gauges.contains(&("member".into(), "alice".into(), 1)));
    serde_json::to_value(&body).unwrap();

    // The report marks alice's row.
    let report = build_report(
        &w.tg.admin,
        &w.upstream(),
        &ReportOptions {
            range: Period::Today.range(w.today),
            group_by: vec![GroupBy::Member],
            route: None,
            direct: false,
            anomalies: Some((today, rule.clone())),
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let row = |mem: &str| {
        report
            .rows
            .iter()
            .find(|r| r.member.as_deref() == Some(mem))
            .unwrap()
    };
    assert!(row("alice").anomaly);
    assert!(!row("bob").anomaly);
    assert_eq!(report.anomalies.len(), 3);

    // Anomaly alerts: one webhook per flagged subject, once.
    let rx = Receiver::start().await;
    let cfg = AlertsConfig {
        webhooks: vec![rx.url.clone()],
        anomalies: Some(rule),
        ..AlertsConfig::default()
    };
    let http = reqwest::Client::new();
    let r = run_alerts_once(&w.tg.admin, &http, &cfg).await.unwrap();
    assert_eq!((r.enqueued, r.delivered), (3, 3));
    let r = run_alerts_once(&w.tg.admin, &http, &cfg).await.unwrap();
    assert_eq!((r.enqueued, r.delivered), (0, 0));
    let mut ids = rx.ids();
    ids.sort();
    assert_eq!(ids[0], format!("anomaly:key:{alice_key}:{today}"));
    assert!(ids.contains(&format!("anomaly:member:alice:{today}")));
    let body = rx.deliveries()[0].body.clone();
    assert_eq!(body["kind"], "anomaly");
    assert!(body["text"].as_str().unwrap().contains("unusual spend"));
}

backend_tests!(spike_is_flagged_normal_day_is_not);
