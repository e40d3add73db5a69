//! Requests in flight: a hold recorded before forwarding that never saw its settle is charged
//! provisionally at its worst case by the next process (at start, or when a dead instance's
//! leases are reclaimed), with its generation id when known, exactly once.

use std::sync::Arc;

use orteam_core::{ControllableClock, Money, Outcome, Window};
use orteam_ledger::{BudgetScope, EventFilter, Ledger, LedgerOptions, Usage};

use crate::support::*;

fn opts(instance: &str) -> LedgerOptions {
    let mut o = serving().with_instance_id(instance);
    // These tests check that a generation id recorded is in the next commit.
    o.stream_generation_after = std::time::Duration::ZERO;
    o
}

async fn spent_today(ledger: &Ledger) -> Money {
    ledger
        .budget_status("alice")
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.scope == BudgetScope::Member && s.window == Window::Daily)
        .map(|s| s.spent)
        .unwrap()
}

/// Leaves two requests in flight (one whose generation id is known), one settled and one
/// released, then stops the process without settling them.
async fn leave_requests_in_flight(ledger: &Ledger) {
    let mut r1 = ledger.reserve("alice", m("3")).await.unwrap();
    r1.record_in_flight(Usage::new("r1", "m/a", Money::ZERO))
        .await
        .unwrap();
    r1.record_generation_id("gen-1");
    let mut r2 = ledger.reserve("alice", m("2")).await.unwrap();
    r2.record_in_flight(Usage::new("r2", "m/a", Money::ZERO))
        .await
        .unwrap();
    let mut r3 = ledger.reserve("alice", m("1")).await.unwrap();
    r3.record_in_flight(Usage::new("r3", "m/a", Money::ZERO))
        .await
        .unwrap();
    r3.settle_journaled(Usage::new("r3", "m/a", m("0.5")))
        .await
        .unwrap();
    let mut r4 = ledger.reserve("alice", m("1")).await.unwrap();
    r4.record_in_flight(Usage::new("r4", "m/a", Money::ZERO))
        .await
        .unwrap();
    r4.release();
    // The process "dies" with r1 and r2 in flight: they are never settled nor released.
    std::mem::forget(r1);
    std::mem::forget(r2);
    ledger.shutdown().await.unwrap();
}

async fn in_flight_is_charged_at_restart(b: Backend) {
    let db = TestDb::new(b).await;
    let first = db.open(opts("gw-1")).await;
    seed(&first, &[("alice", "core")]).await;
    first
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("10"))
        .await
        .unwrap();
    leave_requests_in_flight(&first).await;

    // The restarted process (same instance id on PostgreSQL) resolves them before serving.
    let second = db.open(opts("gw-1")).await;
    assert_eq!(second.resolved_in_flight().in_flight, 2);
    let events = second.events(EventFilter::default()).await.unwrap();
    let by_id = |id: &str| events.iter().find(|e| e.usage.request_id == id).cloned();
    let r1 = by_id("r1").expect("r1 charged");
    assert_eq!(r1.usage.cost, m("3"));
    assert_eq!(r1.usage.outcome, Outcome::Provisional);
    assert_eq!(r1.usage.generation_id.as_deref(), Some("gen-1"));
    let r2 = by_id("r2").expect("r2 charged");
    assert_eq!(r2.usage.cost, m("2"));
    assert_eq!(r2.usage.generation_id, None);
    assert_eq!(by_id("r3").map(|e| e.usage.cost), Some(m("0.5")));
    assert!(by_id("r4").is_none(), "a released request costs nothing");
    assert_eq!(events.len(), 3);
    // The budget counts them before granting anything again: 10 - 5.5 left.
    assert_eq!(spent_today(&second).await, m("5.5"));
    assert!(second.reserve("alice", m("4.6")).await.is_err());
    second.reserve("alice", m("4.5")).await.unwrap().release();

    // The exact cost corrects the provisional charge and the budget with it.
    second
        .correct_cost("r1", m("0.25"), Outcome::Ok)
        .await
        .unwrap();
    assert_eq!(spent_today(&second).await, m("2.75"));
    second.shutdown().await.unwrap();

    // Resolved once: a third start charges nothing again.
    let third = db.open(opts("gw-1")).await;
    assert_eq!(third.resolved_in_flight().in_flight, 0);
    assert_eq!(spent_today(&third).await, m("2.75"));
    assert_eq!(third.events(EventFilter::default()).await.unwrap().len(), 3);
    third.shutdown().await.unwrap();
}

backend_tests!(in_flight_is_charged_at_restart);

/// PostgreSQL: another instance finds the dead one (its heartbeat lapsed), charges its holds
/// and only then returns its leases, so the budget never grants that money twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_instances_holds_are_charged_before_its_leases_return() {
    let db = TestDb::new(Backend::Postgres).await;
    let dead = db.open(opts("gw-dead")).await;
    seed(&dead, &[("alice", "core")]).await;
    dead.set_budget(BudgetScope::Member, "alice", Window::Daily, m("10"))
        .await
        .unwrap();
    let mut r = dead.reserve("alice", m("6")).await.unwrap();
    r.record_in_flight(Usage::new("lost-1", "m/a", Money::ZERO))
        .await
        .unwrap();
    r.record_generation_id("gen-lost-1");
    dead.flush().await.unwrap();
    // Killed: no shutdown, its lease and in-flight row stay behind.
    std::mem::forget(r);

    // While its heartbeat vouches for it, nothing is resolved and its lease stays held.
    let live = db.open(opts("gw-live")).await;
    assert_eq!(live.resolved_in_flight().in_flight, 0);
    assert!(
        live.reserve("alice", m("5")).await.is_err(),
        "6 of 10 still held"
    );

    // An hour later its heartbeat has lapsed: the hold is charged, then the lease returns.
    let clock = Arc::new(ControllableClock::new());
    clock.set_offset(chrono::TimeDelta::hours(1));
    let later = db
        .open(opts_with_clock(&clock).with_instance_id("gw-later"))
        .await;
    later.reclaim_stale().await.unwrap();
    assert_eq!(later.resolved_in_flight().in_flight, 1);
    let e = later.event("lost-1").await.unwrap().expect("charged");
    assert_eq!(e.usage.cost, m("6"));
    assert_eq!(e.usage.generation_id.as_deref(), Some("gen-lost-1"));
    let rows = db
        .raw("SELECT spent::text, leased::text FROM budget_windows WHERE scope = 'member' AND win = 'daily'")
        .await;
    assert_eq!(m(rows[0][0].as_deref().unwrap()), m("6"));
    assert!(m(rows[0][1].as_deref().unwrap()).is_zero(), "{rows:?}");
    assert_eq!(
        db.raw("SELECT count(*)::text FROM inflight_requests").await[0][0].as_deref(),
        Some("0")
    );
    later.shutdown().await.unwrap();
    live.shutdown().await.unwrap();
}
