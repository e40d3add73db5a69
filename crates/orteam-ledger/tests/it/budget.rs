//! The invariant under concurrency: for every budget, spent + held <= limit; and no false
//! denials: the budget is used up to within one request's maximum cost.

use std::sync::Arc;

use orteam_core::{Money, Window};
use orteam_ledger::{BudgetScope, Ledger, LedgerError, LedgerOptions, Usage};
use rand::Rng;

use crate::support::*;

const TASKS: usize = 64;
const MAX_COST_CENTS: i64 = 50;

/// 64 tasks reserve random costs (1..=50 cents) and settle at a random actual ≤ reserved until
/// they are denied. Every denial must be justified by the numbers it reports. Then, with no
/// holds left, one task fills the budget with max-cost requests: it must get within one
/// request's maximum cost of the limit.
async fn hammer(backend: Backend, scope: BudgetScope) {
    hammer_with(backend, scope, serving()).await
}

async fn hammer_with(backend: Backend, scope: BudgetScope, opts: LedgerOptions) {
    let db = TestDb::new(backend).await;
    let ledger = db.open(opts).await;
    let members: Vec<(&str, &str)> = vec![
        ("alice", "core"),
        ("bob", "core"),
        ("carol", "core"),
        ("dave", "web"),
    ];
    seed(&ledger, &members).await;
    let (scope_id, limit, who): (&str, Money, Vec<&str>) = match scope {
        BudgetScope::Member => ("alice", m("12"), vec!["alice"]),
        BudgetScope::Team => ("core", m("15"), vec!["alice", "bob", "carol"]),
        BudgetScope::Org => ("acme", m("18"), vec!["alice", "bob", "carol", "dave"]),
    };
    ledger
        .set_budget(scope, scope_id, Window::Daily, limit)
        .await
        .unwrap();
    // A second, looser window on the same scope must not interfere.
    ledger
        .set_budget(scope, scope_id, Window::Monthly, m("1000"))
        .await
        .unwrap();

    let mut handles = Vec::new();
    for t in 0..TASKS {
        let ledger = ledger.clone();
        let member = who[t % who.len()].to_owned();
        handles.push(tokio::spawn(async move { worker(ledger, member, t).await }));
    }
    let mut settled = Money::ZERO;
    for h in handles {
        settled = settled.plus(h.await.unwrap()).unwrap();
    }
    ledger.flush().await.unwrap();
    assert_eq!(ledger.holds_in_flight(), 0);
    assert!(
        settled <= limit,
        "overspend: settled {settled} > limit {limit}"
    );

    // Fill what is left sequentially with max-cost requests, settled in full.
    let max = Money::from_cents(MAX_COST_CENTS);
    let mut i = 0;
    loop {
        match ledger.reserve(who[0], max).await {
            Ok(r) => {
                i += 1;
                r.settle(Usage::new(format!("fill-{i}"), "m", max))
                    .await
                    .unwrap();
                settled = settled.plus(max).unwrap();
            }
            Err(LedgerError::BudgetExceeded(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        settled <= limit,
        "overspend after fill: {settled} > {limit}"
    );
    assert!(
        limit.minus(settled).unwrap() < max,
        "false denial: {settled} settled of {limit}, a {max} request was refused"
    );
    let status = ledger.budget_status(who[0]).await.unwrap();
    let s = status
        .iter()
        .find(|s| s.scope == scope && s.window == Window::Daily)
        .unwrap();
    assert_eq!(s.spent, settled, "budget spend matches what was settled");
    let events = ledger.events(Default::default()).await.unwrap();
    let total: Money = events.iter().map(|e| e.usage.cost).sum();
    assert_eq!(total, settled, "events sum to the spend exactly");
    ledger.shutdown().await.unwrap();
}

async fn worker(ledger: Ledger, member: String, task: usize) -> Money {
    let mut spent = Money::ZERO;
    for n in 0.. {
        let cents = rand::rng().random_range(1..=MAX_COST_CENTS);
        let cost = Money::from_cents(cents);
        match ledger.reserve(&member, cost).await {
            Ok(r) => {
                let actual = Money::from_cents(rand::rng().random_range(0..=cents));
                let s = r
                    .settle(Usage::new(
                        format!("t{task}-{n}"),
                        "openai/gpt-4o-mini",
                        actual,
                    ))
                    .await
                    .unwrap();
                assert!(!s.duplicate);
                spent = spent.plus(actual).unwrap();
            }
            Err(LedgerError::BudgetExceeded(b)) => {
                // The denial must be real at the moment it was decided.
                let after = b.spent.plus(b.held).unwrap().plus(b.requested).unwrap();
                assert!(after > b.limit, "unjustified denial: {b}");
                assert_eq!(b.window, Window::Daily);
                return spent;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        if n % 8 == 7 {
            tokio::task::yield_now().await;
        }
    }
    spent
}

async fn member_budget_64_tasks(b: Backend) {
    hammer(b, BudgetScope::Member).await
}
async fn team_budget_64_tasks(b: Backend) {
    hammer(b, BudgetScope::Team).await
}
async fn org_budget_64_tasks(b: Backend) {
    hammer(b, BudgetScope::Org).await
}

/// PostgreSQL with `synchronous_commit=off`: faster commits once let a lease request judge an
/// older row than the figures read for its denial, a false denial with room left about one
/// run in twelve. Several rounds, so a regression has a fair chance to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn org_budget_64_tasks_postgres_async_commit() {
    for _ in 0..4 {
        let mut opts = serving();
        opts.postgres_synchronous_commit = false;
        hammer_with(Backend::Postgres, BudgetScope::Org, opts).await;
    }
}

/// Releases and drops free the hold; under-reserving still records the true cost.
async fn release_drop_and_under_reserve(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("1"))
        .await
        .unwrap();

    let r = ledger.reserve("alice", m("0.8")).await.unwrap();
    assert!(matches!(
        ledger.reserve("alice", m("0.3")).await,
        Err(LedgerError::BudgetExceeded(_))
    ));
    r.release();
    {
        let _r = ledger.reserve("alice", m("0.8")).await.unwrap();
        // dropped here without settle: a client disconnect
    }
    assert_eq!(ledger.holds_in_flight(), 0);
    let r = ledger.reserve("alice", m("0.1")).await.unwrap();
    r.settle(Usage::new("under", "m", m("0.3"))).await.unwrap();
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.3"), "money is never dropped");
    let t = ledger.tightest_remaining("alice").unwrap().unwrap();
    assert_eq!(t.scope, BudgetScope::Member);
    assert!(t.remaining <= m("0.7"));

    // Unknown and removed members.
    assert!(matches!(
        ledger.reserve("nobody", m("0.1")).await,
        Err(LedgerError::UnknownMember(_))
    ));
    ledger.remove_member("alice").await.unwrap();
    assert!(matches!(
        ledger.reserve("alice", m("0.1")).await,
        Err(LedgerError::MemberRemoved(_))
    ));
    ledger.shutdown().await.unwrap();
    assert!(matches!(
        ledger.reserve("bob", m("0.1")).await,
        Err(LedgerError::Closed)
    ));
}

/// Holds that outlive the TTL are reclaimed; settling afterwards still records the cost.
async fn ttl_reclaims_leaked_holds(b: Backend) {
    let db = TestDb::new(b).await;
    let clock = Arc::new(orteam_core::ControllableClock::frozen_at(
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 24, 12, 0, 0).unwrap(),
    ));
    let ledger = db
        .open(opts_with_clock(&clock).with_reservation_ttl(std::time::Duration::from_secs(60)))
        .await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("1"))
        .await
        .unwrap();
    let leaked = ledger.reserve("alice", m("0.9")).await.unwrap();
    std::mem::forget(leaked);
    let late = ledger.reserve("alice", m("0.05")).await.unwrap();
    assert!(ledger.reserve("alice", m("0.1")).await.is_err());
    clock.advance(chrono::TimeDelta::minutes(2));
    let rec = ledger.reclaim_stale().await.unwrap();
    assert!(rec.holds >= 2);
    assert_eq!(ledger.holds_in_flight(), 0);
    late.settle(Usage::new("late", "m", m("0.05")))
        .await
        .unwrap();
    let r = ledger.reserve("alice", m("0.9")).await.unwrap();
    r.release();
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.05"));
    ledger.shutdown().await.unwrap();
}

backend_tests!(
    member_budget_64_tasks,
    team_budget_64_tasks,
    org_budget_64_tasks,
    release_drop_and_under_reserve,
    ttl_reclaims_leaked_holds,
);
