//! Reconciliation reports zero differences on clean traffic, finds a planted difference, and
//! turns a provisional charge into the exact one (queued by an admin process, applied by the
//! serving gateway).

use chrono::TimeDelta;
use orteam_insight::reconcile::{CheckStatus, ReconcileOptions, reconcile, reconcile_tick};
use orteam_insight::{NoProgress, Range};
use orteam_ledger::Outcome;
use orteam_test_support::{Backend, backend_tests};

use crate::support::seed;

async fn reconcile_clean_then_planted(backend: Backend) {
    let w = seed(backend).await;
    let up = w.upstream();
    let range = Range {
        from: w.today - TimeDelta::days(31),
        to: w.today + TimeDelta::days(1),
    };
    let gateway_requests = w.sent.iter().filter(|s| !s.direct).count();

    let clean = reconcile(&w.tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(!clean.money_differs(), "{:#?}", clean.differences());
    assert!(!clean.incomplete(), "{:#?}", clean.differences());
    assert_eq!(clean.summary.events, gateway_requests);
    assert_eq!(clean.summary.matched, gateway_requests);
    assert_eq!(clean.summary.totals_differed, 0);
    assert!(
        clean.summary.totals_checked >= 30 * 2,
        "{:?}",
        clean.summary
    );
    assert!(
        clean
            .totals
            .iter()
            .all(|t| t.ledger_requests == t.openrouter_requests)
    );

    // Plant a difference: one exact event's cost altered in the database.
    let victim = w
        .sent
        .iter()
        .find(|s| !s.direct && s.member == "bob")
        .unwrap();
    let vid = victim.request_id.clone().unwrap();
    w.tg.db
        .raw(&format!(
            "UPDATE usage_events SET cost = '0.5' WHERE request_id = '{vid}'"
        ))
        .await;
    // And a provisional one: charged 0 while its exact cost is unknown.
    let prov = w
        .sent
        .iter()
        .rev()
        .find(|s| !s.direct && s.member == "carol")
        .unwrap();
    let pid = prov.request_id.clone().unwrap();
    w.tg.db
        .raw(&format!(
            "UPDATE usage_events SET cost = '0', outcome = 'provisional' WHERE request_id = '{pid}'"
        ))
        .await;

    let dirty = reconcile(&w.tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(dirty.money_differs());
    assert_eq!(dirty.summary.differed, 1, "{:?}", dirty.summary);
    assert_eq!(dirty.summary.corrected, 1);
    assert_eq!(dirty.summary.matched, gateway_requests - 2);
    let (gens, totals) = dirty.differences();
    assert_eq!(gens.len(), 1);
    assert_eq!(gens[0].request_id, vid);
    assert_eq!(gens[0].status, CheckStatus::Differs);
    assert_eq!(gens[0].openrouter, Some(victim.cost));
    // The planted cell differs; the provisional one is compared at its exact cost.
    assert_eq!(totals.len(), 1, "{totals:#?}");
    assert_eq!(totals[0].day, victim.day);
    assert_eq!(totals[0].model, victim.model);
    assert_eq!(totals[0].key, "shared");

    // The admin process only queued the exact cost; the serving gateway applies it.
    let queued = w.tg.admin.pending_cost_corrections().await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].request_id, pid);
    assert_eq!(queued[0].exact, prov.cost);
    let gateway_ledger = w.tg.gateway().ledger.clone();
    let tick = reconcile_tick(&gateway_ledger, &up, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    // The tick applied the queued correction and its own look-ups all answered.
    assert!(!tick.incomplete(), "{:#?}", tick.notes);
    assert!(
        w.tg.admin
            .pending_cost_corrections()
            .await
            .unwrap()
            .is_empty()
    );
    let e = w.tg.admin.event(&pid).await.unwrap().unwrap();
    assert_eq!(e.usage.outcome, Outcome::Ok);
    assert_eq!(e.usage.cost, prov.cost);

    // Repair the planted cost: clean again.
    w.tg.db
        .raw(&format!(
            "UPDATE usage_events SET cost = '{}' WHERE request_id = '{vid}'",
            victim.cost.to_canonical_string()
        ))
        .await;
    let again = reconcile(&w.tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(!again.money_differs(), "{:#?}", again.differences());
    assert_eq!(again.summary.matched, gateway_requests);
}

backend_tests!(reconcile_clean_then_planted);
