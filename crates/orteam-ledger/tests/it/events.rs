//! Usage events: idempotent settle, exact sums in every grouping, corrections, persistence.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use orteam_core::{ApiRoute, ControllableClock, Money, Window};
use orteam_ledger::{
    BudgetScope, EventFilter, GroupBy, LedgerError, Outcome, Usage, UsageGroup, UsageQuery,
};

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

/// Member, team, model, day, provider, key, cost, route of one settled request.
type Expected = (
    String,
    String,
    String,
    chrono::NaiveDate,
    String,
    String,
    Money,
    ApiRoute,
);

/// Prices with more digits than a nano-dollar, times token counts, over members, teams, models,
/// providers, keys, API routes and days: every grouping sums exactly to the expected totals.
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
    let mut expected: Vec<Expected> = Vec::new();
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
                let route = ApiRoute::ALL[n as usize % ApiRoute::ALL.len()];
                let r = ledger.reserve(member, cost).await.unwrap();
                let mut u = Usage::new(format!("q-{n}"), *model, cost).with_route(route);
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
                    route,
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
        GroupBy::Route,
    ];
    for mask in 0u32..128 {
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
                        && g.route.is_none_or(|v| v == e.7)
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
    // A route filter.
    let messages = ledger
        .usage(&UsageQuery {
            route: Some(ApiRoute::Messages),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    let want: Money = expected
        .iter()
        .filter(|e| e.7 == ApiRoute::Messages)
        .map(|e| e.6)
        .sum();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].cost, want);
    assert_eq!(
        messages[0].requests,
        expected
            .iter()
            .filter(|e| e.7 == ApiRoute::Messages)
            .count() as u64
    );

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

    let c = ledger
        .correct_cost("prov-1", m("0.3"), Outcome::Ok)
        .await
        .unwrap();
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
        ledger.correct_cost("nope", m("1"), Outcome::Ok).await,
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

/// A cut stream is charged provisionally and corrected later: the correction gives the event
/// the outcome it names (`partial`), and leaves an event that was not provisional as it was.
async fn a_correction_gives_a_provisional_event_its_final_outcome(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = serving_alice_daily(&db, "10").await;
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    let mut u = Usage::new("cut-1", "m", m("0.5"));
    u.outcome = Outcome::Provisional;
    r.settle(u).await.unwrap();
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    r.settle(Usage::new("done-1", "m", m("0.25")))
        .await
        .unwrap();

    assert!(matches!(
        ledger
            .correct_cost("cut-1", m("0.4"), Outcome::Provisional)
            .await,
        Err(LedgerError::Invalid(_))
    ));
    let c = ledger
        .correct_cost("cut-1", m("0.4"), Outcome::Partial)
        .await
        .unwrap();
    assert_eq!((c.previous, c.exact), (m("0.5"), m("0.4")));
    let ev = ledger.event("cut-1").await.unwrap().unwrap();
    assert_eq!(ev.usage.outcome, Outcome::Partial);
    assert_eq!(ev.usage.cost, m("0.4"));
    assert!(ledger.provisional_events().await.unwrap().is_empty());

    // Not provisional: the cost is corrected, the outcome stays.
    ledger
        .correct_cost("done-1", m("0.3"), Outcome::Partial)
        .await
        .unwrap();
    let ev = ledger.event("done-1").await.unwrap().unwrap();
    assert_eq!(ev.usage.outcome, Outcome::Ok);
    assert_eq!(ev.usage.cost, m("0.3"));
    let st = ledger.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.7")), "{st:?}");
    ledger.shutdown().await.unwrap();

    let again = db.open(serving()).await;
    let st = again.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.7")), "{st:?}");
    again.shutdown().await.unwrap();
}

/// Both writers apply one correction rule: a difference that overflows is an error (never a
/// silent zero), the event and the budget counters stay as they were, and the writer goes on.
async fn a_correction_that_overflows_is_an_error(b: Backend) {
    const MAX: &str = "79228162514264337593543950335";
    let db = TestDb::new(b).await;
    let ledger = serving_alice_daily(&db, "10").await;
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    let mut u = Usage::new("big-1", "m", m("0.5"));
    u.outcome = Outcome::Provisional;
    r.settle(u).await.unwrap();
    // A recorded cost no settle can produce, so that `exact - previous` overflows.
    let rows = db
        .raw(&format!(
            "UPDATE usage_events SET cost = '-{MAX}' WHERE request_id = 'big-1' RETURNING request_id"
        ))
        .await;
    assert_eq!(rows.len(), 1);

    let err = ledger
        .correct_cost("big-1", m(MAX), Outcome::Ok)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Invalid(_)), "{err:?}");
    let ev = ledger.event("big-1").await.unwrap().unwrap();
    assert_eq!(ev.usage.cost, m(&format!("-{MAX}")));
    assert_eq!(ev.usage.outcome, Outcome::Provisional);
    let st = ledger.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.5")), "{st:?}");

    // The writer is still healthy.
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    r.settle(Usage::new("after-1", "m", m("0.25")))
        .await
        .unwrap();
    let st = ledger.budget_status("alice").await.unwrap();
    assert!(st.iter().all(|s| s.spent == m("0.75")), "{st:?}");
    ledger.shutdown().await.unwrap();
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

fn routed(id: &str, route: ApiRoute, cost: &str) -> Usage {
    Usage::new(id, "openai/gpt-4o-mini", m(cost)).with_route(route)
}

/// Events of several API routes: each is recorded with its route (journaled or committed),
/// grouped by route alone and with other dimensions, filtered by route, and kept across a
/// restart.
async fn routes_are_recorded_grouped_and_filtered(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core"), ("bob", "web")]).await;
    let plan = [
        ("alice", "c1", ApiRoute::Chat, "0.1"),
        ("alice", "c2", ApiRoute::Chat, "0.2"),
        ("alice", "m1", ApiRoute::Messages, "0.0000000375"),
        ("bob", "m2", ApiRoute::Messages, "0.3"),
        ("bob", "r1", ApiRoute::Responses, "0.05"),
        ("bob", "e1", ApiRoute::Embeddings, "0.000001"),
        ("alice", "l1", ApiRoute::Completions, "0.4"),
    ];
    for (i, (member, id, route, cost)) in plan.iter().enumerate() {
        let r = ledger.reserve(member, m("1")).await.unwrap();
        // Both settle paths carry the route.
        if i % 2 == 0 {
            r.settle(routed(id, *route, cost)).await.unwrap();
        } else {
            r.settle_journaled(routed(id, *route, cost)).await.unwrap();
        }
    }
    let check = |groups: Vec<UsageGroup>| {
        let got: Vec<_> = groups
            .iter()
            .map(|g| (g.route.unwrap(), g.requests, g.cost))
            .collect();
        assert_eq!(
            got,
            [
                (ApiRoute::Chat, 2, m("0.3")),
                (ApiRoute::Messages, 2, m("0.3000000375")),
                (ApiRoute::Responses, 1, m("0.05")),
                (ApiRoute::Embeddings, 1, m("0.000001")),
                (ApiRoute::Completions, 1, m("0.4")),
            ]
        );
        assert!(
            groups
                .iter()
                .all(|g| g.member.is_none() && g.model.is_none())
        );
    };
    let by_route = UsageQuery {
        group_by: vec![GroupBy::Route],
        ..UsageQuery::default()
    };
    check(ledger.usage(&by_route).await.unwrap());

    // Member × route.
    let groups = ledger
        .usage(&UsageQuery {
            group_by: vec![GroupBy::Member, GroupBy::Route],
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = groups
        .iter()
        .map(|g| (g.member.as_deref().unwrap(), g.route.unwrap(), g.requests))
        .collect();
    assert_eq!(
        got,
        [
            ("alice", ApiRoute::Chat, 2),
            ("alice", ApiRoute::Messages, 1),
            ("alice", ApiRoute::Completions, 1),
            ("bob", ApiRoute::Messages, 1),
            ("bob", ApiRoute::Responses, 1),
            ("bob", ApiRoute::Embeddings, 1),
        ]
    );

    // A route filter, alone and with a member filter and a grouping.
    let messages = ledger
        .usage(&UsageQuery {
            route: Some(ApiRoute::Messages),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].requests, 2);
    assert_eq!(messages[0].cost, m("0.3000000375"));
    assert_eq!(messages[0].route, None, "not grouped by route");
    let bob_messages = ledger
        .usage(&UsageQuery {
            route: Some(ApiRoute::Messages),
            member: Some("bob".into()),
            group_by: vec![GroupBy::Model],
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(bob_messages.len(), 1);
    assert_eq!(bob_messages[0].cost, m("0.3"));
    let none = ledger
        .usage(&UsageQuery {
            route: Some(ApiRoute::Embeddings),
            member: Some("alice".into()),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert!(none.iter().all(|g| g.requests == 0), "{none:?}");
    let events = ledger
        .events(EventFilter {
            route: Some(ApiRoute::Chat),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.usage.request_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);

    // Single events and the recent list carry the route.
    let e = ledger.event("r1").await.unwrap().unwrap();
    assert_eq!(e.route(), ApiRoute::Responses);
    let recent = ledger.recent_events(1).await.unwrap();
    assert_eq!(recent[0].usage.route, ApiRoute::Completions);
    // JSON of an event names the route.
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["route"], "responses");
    // At rest: the lowercase name.
    let rows = db
        .raw("SELECT request_id, route FROM usage_events ORDER BY request_id")
        .await;
    let at_rest: Vec<_> = rows
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert!(
        at_rest.contains(&("e1".into(), "embeddings".into())),
        "{at_rest:?}"
    );
    assert!(
        at_rest.contains(&("l1".into(), "completions".into())),
        "{at_rest:?}"
    );
    ledger.shutdown().await.unwrap();

    // Durable: a reopened ledger reads the same routes.
    let again = db.open(serving()).await;
    check(again.usage(&by_route).await.unwrap());
    again.shutdown().await.unwrap();
}

/// The schema refuses a route name outside the five (the CHECK constraint).
async fn the_schema_refuses_unknown_routes(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger.shutdown().await.unwrap();
    let insert = |route: &str| {
        format!(
            "INSERT INTO usage_events (request_id, time, member_id, team_id, org_id, requested_model, \
             prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost, streamed, outcome, \
             latency_ms, route) VALUES ('x-{route}', {time}, 'alice', 'core', 'acme', 'm', 0, 0, 0, 0, '0', \
             {no}, 'ok', 0, '{route}')",
            time = match b {
                Backend::Sqlite => "0",
                Backend::Postgres => "now()",
            },
            no = match b {
                Backend::Sqlite => "0",
                Backend::Postgres => "false",
            },
        )
    };
    for route in ApiRoute::ALL {
        assert!(exec(&db, &insert(route.as_str())).await.is_ok(), "{route}");
    }
    for bad in ["Chat", "chat/completions", ""] {
        assert!(exec(&db, &insert(bad)).await.is_err(), "{bad:?} accepted");
    }
}

/// Runs one statement on the test database; `Err` with the database's message.
async fn exec(db: &TestDb, sql: &str) -> Result<(), String> {
    match db.backend {
        Backend::Sqlite => rusqlite::Connection::open(db.sqlite_path())
            .and_then(|c| c.execute_batch(sql))
            .map_err(|e| e.to_string()),
        Backend::Postgres => orteam_test_support::pg_connect(&db.url)
            .await
            .batch_execute(sql)
            .await
            .map_err(|e| e.to_string()),
    }
}

/// A ledger created before routes were recorded upgrades in place: the migration adds the
/// column, old events read back as chat (in reports too), and new events record their route.
async fn an_existing_ledger_upgrades_with_old_events_as_chat(b: Backend) {
    let db = TestDb::new(b).await;
    // The schema as it was before the route migration, with one event in it.
    let (migrations, time, no): (&[orteam_ledger::migrate::Migration], _, _) = match b {
        Backend::Sqlite => (orteam_ledger::migrate::SQLITE, "1700000000000000", "0"),
        Backend::Postgres => (
            orteam_ledger::migrate::POSTGRES,
            "'2023-11-14T22:13:20Z'",
            "false",
        ),
    };
    let mut sql = String::from(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);\n",
    );
    for mig in migrations
        .iter()
        .take_while(|mig| mig.name != "event_route")
    {
        sql.push_str(mig.sql);
        sql.push_str(&format!(
            ";\nINSERT INTO schema_migrations VALUES ({}, '{}', '2026-01-01T00:00:00Z');\n",
            mig.version, mig.name
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO usage_events (request_id, time, member_id, team_id, org_id, requested_model, \
         prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, cost, streamed, outcome, \
         latency_ms) VALUES ('old-1', {time}, 'alice', 'core', 'acme', 'openai/gpt-4o-mini', 10, 20, 0, 0, \
         '0.25', {no}, 'ok', 5);"
    ));
    exec(&db, &sql).await.unwrap();

    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    let old = ledger.event("old-1").await.unwrap().unwrap();
    assert_eq!(old.usage.route, ApiRoute::Chat);
    assert_eq!(old.usage.cost, m("0.25"));
    assert_eq!(old.usage.prompt_tokens, 10);
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    r.settle(routed("new-1", ApiRoute::Embeddings, "0.5"))
        .await
        .unwrap();
    let groups = ledger
        .usage(&UsageQuery {
            group_by: vec![GroupBy::Route],
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = groups.iter().map(|g| (g.route.unwrap(), g.cost)).collect();
    assert_eq!(
        got,
        [
            (ApiRoute::Chat, m("0.25")),
            (ApiRoute::Embeddings, m("0.5"))
        ]
    );
    ledger.shutdown().await.unwrap();
    let versions = db
        .raw("SELECT name FROM schema_migrations ORDER BY version")
        .await;
    assert!(
        versions
            .iter()
            .any(|r| r[0].as_deref() == Some("event_route")),
        "{versions:?}"
    );
}

backend_tests!(
    routes_are_recorded_grouped_and_filtered,
    the_schema_refuses_unknown_routes,
    an_existing_ledger_upgrades_with_old_events_as_chat,
);

/// A journal line written before routes were recorded (no `route` member), left by a process
/// that died before committing it, replays at the next start as a chat event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_journal_line_replays_as_chat() {
    let db = TestDb::new(Backend::Sqlite).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger.shutdown().await.unwrap();
    let json = br#"{"time":"2026-03-02T10:00:00Z","member":"alice","team":"core","org":"acme","usage":{"request_id":"journal-old","virtual_key_id":null,"upstream_key_hash":null,"requested_model":"openai/gpt-4o-mini","served_model":null,"provider":null,"prompt_tokens":1,"completion_tokens":2,"reasoning_tokens":0,"cached_tokens":0,"cost":"0.125","generation_id":null,"streamed":true,"outcome":"ok","latency_ms":3,"title":null}}"#;
    let mut line = format!("{:08x} ", crc32fast::hash(json)).into_bytes();
    line.extend_from_slice(json);
    line.push(b'\n');
    std::fs::write(format!("{}.pending.0000000001", db.sqlite_path()), line).unwrap();

    let again = db.open(serving()).await;
    let e = again.event("journal-old").await.unwrap().unwrap();
    assert_eq!(e.usage.route, ApiRoute::Chat);
    assert_eq!(e.usage.cost, m("0.125"));
    assert!(e.usage.streamed);
    let rows = db
        .raw("SELECT route FROM usage_events WHERE request_id = 'journal-old'")
        .await;
    assert_eq!(rows, [[Some("chat".to_owned())]]);
    again.shutdown().await.unwrap();
}

backend_tests!(
    journaled_settles_are_read_back_and_charged_once,
    change_watcher_polls_at_its_interval,
    settle_is_idempotent_by_request_id,
    queries_sum_exactly_in_every_grouping,
    provisional_costs_are_corrected,
    a_correction_gives_a_provisional_event_its_final_outcome,
    a_correction_that_overflows_is_an_error,
);

/// A reconciliation event (a charge upstream billed that the ledger never recorded), queued by
/// any process and applied by the serving one: recorded at 0 then corrected, marked with its
/// evidence, counted against the org's windows only when booked at org level, so the org's
/// budget refuses what it no longer has room for, also from a lease taken before it
/// (PostgreSQL); applying or queueing it again changes nothing.
async fn reconciliation_events_count_against_the_org(b: Backend) {
    let db = TestDb::new(b).await;
    let ledger = db.open(serving()).await;
    seed(&ledger, &[("alice", "core")]).await;
    ledger
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("5"))
        .await
        .unwrap();
    ledger
        .set_budget(BudgetScope::Org, "acme", Window::Monthly, m("1"))
        .await
        .unwrap();
    let r = ledger.reserve("alice", m("0.1")).await.unwrap();
    r.settle(Usage::new("req-1", "m", m("0.1"))).await.unwrap();

    let now = ledger.now();
    let event = orteam_ledger::UsageEvent {
        time: now,
        member_id: orteam_ledger::ORG_LEVEL.into(),
        team_id: orteam_ledger::ORG_LEVEL.into(),
        org_id: "acme".into(),
        usage: Usage::new("reconcile-1", "m", Money::ZERO),
        reconciled: None,
    };
    let queue = || orteam_ledger::NewCorrection {
        request_id: "reconcile-1".into(),
        exact: m("0.9"),
        generation_id: None,
        evidence: Some("/activity: billed 0.9 more".into()),
        new_event: Some(event.clone()),
    };
    // Queued by an admin process (no writer), applied by the serving one.
    let admin = db.open(orteam_ledger::LedgerOptions::admin()).await;
    assert!(admin.request_correction(queue()).await.unwrap());
    let applied = ledger.apply_pending_corrections().await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].correction.exact, m("0.9"));
    let e = ledger.event("reconcile-1").await.unwrap().unwrap();
    assert!(e.is_org_level());
    assert_eq!(e.usage.cost, m("0.9"));
    assert_eq!(e.reconciled.unwrap().evidence, "/activity: billed 0.9 more");
    let st = ledger.all_budget_status().await.unwrap();
    let org = st.iter().find(|s| s.scope == BudgetScope::Org).unwrap();
    assert_eq!(org.spent, m("1.0"));
    let alice = st.iter().find(|s| s.scope == BudgetScope::Member).unwrap();
    assert_eq!(alice.spent, m("0.1"), "org-level money is not alice's");
    assert!(
        ledger.reserve("alice", m("0.01")).await.is_err(),
        "the org has no room left"
    );
    // Idempotent: applied once.
    assert!(!admin.request_correction(queue()).await.unwrap());
    assert!(ledger.apply_pending_corrections().await.unwrap().is_empty());
    admin.shutdown().await.unwrap();
    ledger.shutdown().await.unwrap();

    // Durable: a reopened ledger starts from the same spend.
    let again = db.open(serving()).await;
    let st = again.all_budget_status().await.unwrap();
    assert_eq!(
        st.iter()
            .find(|s| s.scope == BudgetScope::Org)
            .unwrap()
            .spent,
        m("1.0")
    );
    assert!(again.reserve("alice", m("0.01")).await.is_err());
    again.shutdown().await.unwrap();
}

backend_tests!(reconciliation_events_count_against_the_org);
