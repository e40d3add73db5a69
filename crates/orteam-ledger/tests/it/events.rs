//! Usage events: idempotent settle, exact sums in every grouping, corrections, persistence.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use orteam_core::{ControllableClock, Money, Window};
use orteam_ledger::{BudgetScope, GroupBy, LedgerError, Outcome, Usage, UsageQuery};

use crate::support::*;

async fn settle_is_idempotent_by_request_id(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = serving_alice_daily(&db, "10").await;
    let r1 = ledger.reserve("alice", m("1")).await.unwrap();
    let r2 = ledger.reserve("alice", m("1")).await.unwrap();
    let r3 = ledger.reserve("alice", m("1")).await.unwrap();
    let a = r1.settle(Usage::new("req-1", "m", m("0.4"))).await.unwrap();
    assert!(!a.duplicate);
    let (b2, b3) = tokio::join!(
        r2.settle(Usage::new("req-1", "m", m("0.4"))),
        r3.settle(Usage::new("req-1", "m", m("0.4")))
    );
    assert!(b2.unwrap().duplicate && b3.unwrap().duplicate);
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.4"), "charged once");
    assert_eq!(st[0].held, Money::ZERO.max(st[0].held)); // holds released
    assert_eq!(ledger.holds_in_flight(), 0);
    assert_eq!(ledger.events(Default::default()).await.unwrap().len(), 1);
    // The next reservation sees the single charge.
    let r = ledger.reserve("alice", m("9.6")).await.unwrap();
    r.release();
    assert!(ledger.reserve("alice", m("9.61")).await.is_err());
    ledger.shutdown().await.unwrap();
}

/// Prices with more digits than a nano-dollar, times token counts, over members, teams, models,
/// providers, keys and days: every grouping sums exactly to the expected totals.
async fn queries_sum_exactly_in_every_grouping(b: Backend) {
    let db = TestDb::new(b).await;
    let start = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let clock = Arc::new(ControllableClock::frozen_at(start));
    let ledger = db.open(opts_with_clock(&clock)).await;
    seed(
        &ledger,
        &[("alice", "core"), ("bob", "core"), ("dave", "web")],
    )
    .await;
    let prices = [
        "0.0000000375",
        "0.00000015",
        "0.000003",
        "0.0000006",
        "0.00000000001",
    ];
    let members = ["alice", "bob", "dave"];
    let models = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"];
    let providers = ["OpenAI", "Anthropic", "Azure"];
    let mut expected: Vec<(
        String,
        String,
        String,
        chrono::NaiveDate,
        String,
        String,
        Money,
    )> = Vec::new();
    let mut n = 0u64;
    for day in 0..3 {
        clock.freeze(start + TimeDelta::days(day));
        for (i, member) in members.iter().enumerate() {
            for (j, model) in models.iter().enumerate() {
                n += 1;
                let price = Money::parse(prices[(i + j + day as usize) % prices.len()]).unwrap();
                let tokens = 1_234_567 + n * 7919;
                let cost = price.times(tokens).unwrap();
                let provider = providers[(i + j) % providers.len()];
                let key = format!("key-{member}-{}", j % 2);
                let r = ledger.reserve(member, cost).await.unwrap();
                let mut u = Usage::new(format!("q-{n}"), *model, cost);
                u.served_model = Some((*model).to_owned());
                u.provider = Some(provider.to_owned());
                u.virtual_key_id = Some(key.clone());
                u.prompt_tokens = tokens;
                r.settle(u).await.unwrap();
                let team = if *member == "dave" { "web" } else { "core" };
                expected.push((
                    (*member).into(),
                    team.into(),
                    (*model).into(),
                    clock.now_date(),
                    provider.into(),
                    key,
                    cost,
                ));
            }
        }
    }
    let total: Money = expected.iter().map(|e| e.6).sum();
    let dims = [
        GroupBy::Member,
        GroupBy::Team,
        GroupBy::Model,
        GroupBy::Day,
        GroupBy::Provider,
        GroupBy::Key,
    ];
    for mask in 0u32..64 {
        let group_by: Vec<GroupBy> = dims
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, g)| *g)
            .collect();
        let groups = ledger
            .usage(&UsageQuery {
                group_by: group_by.clone(),
                ..UsageQuery::default()
            })
            .await
            .unwrap();
        let sum: Money = groups.iter().map(|g| g.cost).sum();
        assert_eq!(sum, total, "grouping {group_by:?}");
        assert_eq!(
            groups.iter().map(|g| g.requests).sum::<u64>(),
            expected.len() as u64
        );
        for g in &groups {
            let want: Money = expected
                .iter()
                .filter(|e| {
                    g.member.as_ref().is_none_or(|v| *v == e.0)
                        && g.team.as_ref().is_none_or(|v| *v == e.1)
                        && g.model.as_ref().is_none_or(|v| *v == e.2)
                        && g.day.is_none_or(|v| v == e.3)
                        && g.provider.as_ref().is_none_or(|v| *v == e.4)
                        && g.key.as_ref().is_none_or(|v| *v == e.5)
                })
                .map(|e| e.6)
                .sum();
            assert_eq!(g.cost, want, "group {g:?}");
        }
    }
    // A period filter and a member filter.
    let day2 = ledger
        .usage(&UsageQuery {
            from: Some(start + TimeDelta::days(1) - TimeDelta::hours(12)),
            to: Some(start + TimeDelta::days(2) - TimeDelta::hours(12)),
            member: Some("alice".into()),
            group_by: vec![GroupBy::Member],
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(day2.len(), 1);
    assert_eq!(day2[0].requests, 2);

    // Trailing series, zero-filled.
    clock.freeze(start + TimeDelta::days(4));
    let series = ledger.daily_series("alice", 7).await.unwrap();
    assert_eq!(series.len(), 7);
    assert_eq!(series[6].day, (start + TimeDelta::days(4)).date_naive());
    assert_eq!(series[6].cost, Money::ZERO);
    let alice_total: Money = expected
        .iter()
        .filter(|e| e.0 == "alice")
        .map(|e| e.6)
        .sum();
    assert_eq!(series.iter().map(|p| p.cost).sum::<Money>(), alice_total);
    assert_eq!(series.iter().filter(|p| p.requests > 0).count(), 3);

    let recent = ledger.recent_events(4).await.unwrap();
    assert_eq!(recent.len(), 4);
    assert!(recent[0].time >= recent[3].time);
    let csv = orteam_ledger::UsageGroup::CSV_HEADER;
    assert!(csv.starts_with("member,"));
    ledger.shutdown().await.unwrap();
}

trait NowDate {
    fn now_date(&self) -> chrono::NaiveDate;
}
impl NowDate for ControllableClock {
    fn now_date(&self) -> chrono::NaiveDate {
        orteam_core::Clock::now(self).date_naive()
    }
}

async fn provisional_costs_are_corrected(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("1"))
        .await
        .unwrap();
    ledger
        .set_budget(BudgetScope::Team, "core", Window::Monthly, m("5"))
        .await
        .unwrap();
    let r = ledger.reserve("alice", m("0.6")).await.unwrap();
    let mut u = Usage::new("prov-1", "m", m("0.5"));
    u.outcome = Outcome::Provisional;
    r.settle(u).await.unwrap();
    let prov = ledger.provisional_events().await.unwrap();
    assert_eq!(prov.len(), 1);
    assert_eq!(prov[0].usage.request_id, "prov-1");
    assert!(ledger.reserve("alice", m("0.6")).await.is_err());

    let c = ledger.correct_cost("prov-1", m("0.3")).await.unwrap();
    assert_eq!(c.previous, m("0.5"));
    assert_eq!(c.exact, m("0.3"));
    assert!(ledger.provisional_events().await.unwrap().is_empty());
    let ev = ledger.event("prov-1").await.unwrap().unwrap();
    assert_eq!(ev.usage.cost, m("0.3"));
    assert_eq!(ev.usage.outcome, Outcome::Ok);
    let st = ledger.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.3")), "{st:?}");
    let r = ledger.reserve("alice", m("0.7")).await.unwrap();
    r.release();
    assert!(matches!(
        ledger.correct_cost("nope", m("1")).await,
        Err(LedgerError::NotFound { .. })
    ));
    ledger.shutdown().await.unwrap();

    // Durable: a reopened ledger starts from the corrected spend.
    let again = db.open(serving()).await;
    let st = again.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.3")), "{st:?}");
    assert!(again.reserve("alice", m("0.71")).await.is_err());
    again.shutdown().await.unwrap();
}

/// A journaled settle is charged at once in memory, readable at once through the ledger's
/// queries (they wait for the writer), committed with its spend counters, and a repeated
/// request id is charged once, exactly like a committed settle.
async fn journaled_settles_are_read_back_and_charged_once(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = serving_alice_daily(&db, "10").await;
    assert_eq!(ledger.journaling(), b == Backend::Sqlite);
    let mut ids = Vec::new();
    for i in 0..50 {
        let r = ledger.reserve("alice", m("0.1")).await.unwrap();
        let id = format!("j-{i}");
        let how = r
            .settle_journaled(Usage::new(id.clone(), "m", m("0.0100000001")))
            .await
            .unwrap();
        if b == Backend::Sqlite {
            assert_eq!(how, orteam_ledger::Durability::Journaled);
        }
        ids.push(id);
    }
    // A repeat of a recorded id, journaled: refunded once the writer sees the conflict.
    let r = ledger.reserve("alice", m("0.1")).await.unwrap();
    r.settle_journaled(Usage::new("j-0", "m", m("0.0100000001")))
        .await
        .unwrap();
    let events = ledger.events(Default::default()).await.unwrap();
    assert_eq!(events.len(), 50, "read-your-writes through the journal");
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.500000005"), "charged once per request id");
    assert_eq!(ledger.holds_in_flight(), 0);
    ledger.shutdown().await.unwrap();
    // The database has the spend counters too (a fresh process loads them).
    let again = db.open(serving()).await;
    let st = again.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.500000005"));
    again.shutdown().await.unwrap();
}

/// The change watcher polls once per interval: it never spins (an idle gateway must not burn
/// a core; on SQLite there is no notification channel to wait on).
async fn change_watcher_polls_at_its_interval(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    let before = ledger.change_polls();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let polls = ledger.change_polls() - before;
    // 200 ms interval: about 7 (notifications may add a few on PostgreSQL); a spinning watcher
    // makes thousands.
    assert!(polls <= 20, "{polls} change polls in 1.5 s");
    assert!(polls >= 1, "the watcher polls");
    ledger.shutdown().await.unwrap();
}

backend_tests!(
    journaled_settles_are_read_back_and_charged_once,
    change_watcher_polls_at_its_interval,
    settle_is_idempotent_by_request_id,
    queries_sum_exactly_in_every_grouping,
    provisional_costs_are_corrected,
);
