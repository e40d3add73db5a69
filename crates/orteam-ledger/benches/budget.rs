//! In-memory budget check latency: reserve + release against member, team and org budgets
//! (three scopes × daily and monthly windows = six cells checked and held per reservation).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use orteam_core::{Money, Window};
use orteam_ledger::budget::engine::{BudgetEngine, Id, MemberInfo, Mode, ScopeLimits, TryReserve};
use orteam_ledger::{
    BudgetScope, Ledger, LedgerOptions, MemberState, ModelAccess, NewMember, OnDisallowed, Tier,
};

fn engine() -> BudgetEngine {
    let e = BudgetEngine::new(Mode::Owned, chrono::TimeDelta::minutes(15));
    let mut members = HashMap::new();
    let mut limits: [HashMap<Id, ScopeLimits>; 3] = Default::default();
    for i in 0..100 {
        let id: Id = Arc::from(format!("member-{i}").as_str());
        members.insert(
            id.clone(),
            MemberInfo {
                id: id.clone(),
                team: Arc::from("team"),
                org: Arc::from("org"),
                state: MemberState::Active,
            },
        );
        let mut sl = ScopeLimits::default();
        sl.limits[0] = Some(Money::from_cents(1_000_000));
        sl.limits[2] = Some(Money::from_cents(10_000_000));
        limits[0].insert(id, sl);
    }
    for (i, id) in [(1usize, "team"), (2, "org")] {
        let mut sl = ScopeLimits::default();
        sl.limits[0] = Some(Money::from_cents(100_000_000));
        sl.limits[2] = Some(Money::from_cents(1_000_000_000));
        limits[i].insert(Arc::from(id), sl);
    }
    e.set_directory(members, limits);
    e
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let now = Utc::now();
    let cost = Money::parse("0.0123").unwrap();
    c.bench_function("engine reserve+release (6 budgets)", |b| {
        b.iter(
            || match e.try_reserve(black_box("member-42"), cost, now).unwrap() {
                TryReserve::Held { id, .. } => e.release(id),
                TryReserve::Short(_) => unreachable!(),
            },
        )
    });

    // Through the public API on an in-memory SQLite ledger (no database round trip).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ledger = rt.block_on(async {
        let l = Ledger::open("sqlite::memory:", LedgerOptions::serving())
            .await
            .unwrap();
        l.put_org("org", "Org").await.unwrap();
        l.put_team("team", "org", "Team").await.unwrap();
        l.put_tier(Tier {
            id: "t".into(),
            name: "T".into(),
            models: ModelAccess::All,
            on_disallowed: OnDisallowed::Deny,
            ..Default::default()
        })
        .await
        .unwrap();
        l.put_member(NewMember {
            id: "alice".into(),
            display_name: "Alice".into(),
            team_id: "team".into(),
            tier_id: "t".into(),
        })
        .await
        .unwrap();
        for (s, id) in [
            (BudgetScope::Member, "alice"),
            (BudgetScope::Team, "team"),
            (BudgetScope::Org, "org"),
        ] {
            l.set_budget(s, id, Window::Daily, Money::from_cents(1_000_000))
                .await
                .unwrap();
            l.set_budget(s, id, Window::Monthly, Money::from_cents(10_000_000))
                .await
                .unwrap();
        }
        l
    });
    c.bench_function("Ledger::reserve+release (6 budgets)", |b| {
        b.iter(|| {
            let r = futures::executor::block_on(ledger.reserve(black_box("alice"), cost)).unwrap();
            r.release();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
