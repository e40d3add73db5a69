//! UTC calendar windows with a controllable clock: rollover at midnight, on Monday (weeks start
//! on Monday) and on the first of the month; raises that expire by themselves.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use orteam_core::{ControllableClock, Window};
use orteam_ledger::{BudgetScope, Ledger, LedgerError, Usage};

use crate::support::*;

async fn spend(ledger: &Ledger, id: &str, amount: &str) {
    let r = ledger.reserve("alice", m(amount)).await.unwrap();
    r.settle(Usage::new(id, "m", m(amount))).await.unwrap();
}

async fn denied(ledger: &Ledger, amount: &str) -> Option<orteam_ledger::BudgetExceeded> {
    match ledger.reserve("alice", m(amount)).await {
        Ok(r) => {
            r.release();
            None
        }
        Err(LedgerError::BudgetExceeded(b)) => Some(*b),
        Err(e) => panic!("{e}"),
    }
}

async fn rollover(
    b: Backend,
    window: Window,
    start: chrono::DateTime<Utc>,
    expect_reset: chrono::DateTime<Utc>,
) {
    let db = TestDb::new(b).await;
    let clock = Arc::new(ControllableClock::frozen_at(start));
    let ledger = db.open(opts_with_clock(&clock)).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", window, m("1"))
        .await
        .unwrap();
    spend(&ledger, "a", "1").await;
    let d = denied(&ledger, "0.01")
        .await
        .expect("exhausted budget must deny");
    assert_eq!(d.window, window);
    assert_eq!(d.scope, BudgetScope::Member);
    assert_eq!(d.scope_id, "alice");
    assert_eq!(d.reset_at, expect_reset);
    assert_eq!(d.limit, m("1"));
    // One second before the reset it still denies; at the reset it allows again.
    clock.freeze(expect_reset - TimeDelta::seconds(1));
    assert!(denied(&ledger, "0.01").await.is_some());
    clock.freeze(expect_reset);
    assert!(
        denied(&ledger, "1").await.is_none(),
        "new {window} window starts empty"
    );
    spend(&ledger, "b", "0.25").await;
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].spent, m("0.25"));
    assert_eq!(st[0].window_start, expect_reset.date_naive());
    ledger.shutdown().await.unwrap();
}

/// Tuesday 23:59:30 → Wednesday 00:00 UTC.
async fn daily_rollover_at_utc_midnight(b: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 23, 59, 30).unwrap();
    rollover(
        b,
        Window::Daily,
        start,
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
    )
    .await
}

/// Sunday → Monday 00:00 UTC; a day boundary mid-week does not reset the week.
async fn weekly_rollover_on_monday(b: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(); // Thursday
    rollover(
        b,
        Window::Weekly,
        start,
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
    )
    .await
}

/// 30 November → 1 December 00:00 UTC.
async fn monthly_rollover_on_the_first(b: Backend) {
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap();
    rollover(
        b,
        Window::Monthly,
        start,
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
    )
    .await
}

/// A raise adds to the limit until its instant, then is gone by itself.
async fn raises_expire(b: Backend) {
    let db = TestDb::new(b).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
    let clock = Arc::new(ControllableClock::frozen_at(now));
    let ledger = db.open(opts_with_clock(&clock)).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("1"))
        .await
        .unwrap();
    spend(&ledger, "a", "1").await;
    assert!(denied(&ledger, "0.5").await.is_some());
    ledger
        .add_raise(
            BudgetScope::Member,
            "alice",
            Window::Daily,
            m("2"),
            now + TimeDelta::hours(1),
            "demo day",
        )
        .await
        .unwrap();
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].limit, m("3"));
    assert_eq!(st[0].raised, m("2"));
    spend(&ledger, "b", "1.5").await;
    clock.advance(TimeDelta::hours(2));
    let d = denied(&ledger, "0.01").await.expect("raise expired");
    assert_eq!(d.limit, m("1"));
    assert_eq!(d.spent, m("2.5"));
    let st = ledger.budget_status("alice").await.unwrap();
    assert_eq!(st[0].raised, m("0"));
    assert_eq!(st[0].remaining, m("0"));
    ledger.shutdown().await.unwrap();
}

backend_tests!(
    daily_rollover_at_utc_midnight,
    weekly_rollover_on_monday,
    monthly_rollover_on_the_first,
    raises_expire,
);
