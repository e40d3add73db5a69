//! Reconciliation reports zero differences on clean traffic, corrects a planted difference and
//! turns a provisional charge into the exact one (queued by an admin process, applied by the
//! serving gateway), and books what OpenRouter billed that the ledger never recorded, so the
//! budgets it belongs to reflect it; a second run changes nothing.

use chrono::TimeDelta;
use orteam_core::{Money, Window};
use orteam_insight::reconcile::{
    ChangeKind, CheckStatus, ReconcileOptions, reconcile, reconcile_tick,
};
use orteam_insight::report::{ReportOptions, build_report};
use orteam_insight::{AlertsConfig, NoProgress, Range, run_alerts_once};
use orteam_ledger::{BudgetScope, GroupBy, ORG_LEVEL, Outcome};
use orteam_test_support::{Backend, TestGateway, backend_tests};

use crate::support::{Receiver, body, chat_direct, m, seed, set_time, upstream_of};

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
    assert!(clean.changes.is_empty(), "{:#?}", clean.changes);
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
    // Both are repaired: the exact event that differs is corrected to `/generation`'s
    // total_cost, the provisional one gets its exact cost; nothing is left outstanding.
    assert!(!dirty.money_differs(), "{:#?}", dirty.differences());
    assert_eq!(dirty.summary.differed, 1, "{:?}", dirty.summary);
    assert_eq!(dirty.summary.corrected, 1);
    assert_eq!(dirty.summary.changed, 2);
    assert_eq!(dirty.summary.inserted, 0);
    assert_eq!(dirty.summary.matched, gateway_requests - 2);
    let g = dirty
        .generations
        .iter()
        .find(|g| g.request_id == vid)
        .unwrap();
    assert_eq!(g.status, CheckStatus::Differs);
    assert_eq!(g.openrouter, Some(victim.cost));
    assert!(g.repaired);
    // The day totals compare the corrected figures: they match.
    assert_eq!(dirty.summary.totals_differed, 0, "{:#?}", dirty.totals);
    let change = dirty.changes.iter().find(|c| c.request_id == vid).unwrap();
    assert_eq!(change.kind, ChangeKind::Corrected);
    assert_eq!((change.before, change.after), (m("0.5"), victim.cost));
    assert!(!change.applied, "an admin process queues");
    assert!(
        change.evidence.contains("total_cost"),
        "{}",
        change.evidence
    );
    assert!(
        change.describe().starts_with("corrected bob "),
        "{}",
        change.describe()
    );

    // The admin process only queued the exact costs; the serving gateway applies them.
    let queued = w.tg.admin.pending_cost_corrections().await.unwrap();
    assert_eq!(queued.len(), 2);
    let q = queued.iter().find(|q| q.request_id == pid).unwrap();
    assert_eq!(q.exact, prov.cost);
    let gateway_ledger = w.tg.gateway().ledger.clone();
    let tick = reconcile_tick(&gateway_ledger, &up, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    // The tick applied the queued corrections and its own look-ups all answered.
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
    assert!(e.reconciled.is_some());
    let e = w.tg.admin.event(&vid).await.unwrap().unwrap();
    assert_eq!(e.usage.cost, victim.cost);
    let marker = e.reconciled.expect("marked reconciled");
    assert!(
        marker.evidence.contains("total_cost"),
        "{}",
        marker.evidence
    );

    // Idempotent: a second run changes nothing and finds everything equal.
    let again = reconcile(&w.tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(!again.money_differs(), "{:#?}", again.differences());
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert_eq!(again.summary.matched, gateway_requests);
    assert!(
        w.tg.admin
            .pending_cost_corrections()
            .await
            .unwrap()
            .is_empty()
    );
}

backend_tests!(reconcile_clean_then_planted);

/// The 15th of a month at least a month ahead, at noon: "today" for tests that need the day
/// before to lie in the same month (monthly budget windows).
fn mid_month_noon() -> chrono::DateTime<chrono::Utc> {
    use chrono::Datelike;
    let d = chrono::Utc::now().date_naive() + chrono::Days::new(40);
    let d = d.with_day(15).unwrap();
    orteam_core::window::midnight(d) + TimeDelta::hours(12)
}

fn org_monthly(s: &[orteam_ledger::BudgetStatus]) -> orteam_ledger::BudgetStatus {
    monthly(s, BudgetScope::Org)
}

/// The monthly budget of `scope` among `s`.
fn monthly(s: &[orteam_ledger::BudgetStatus], scope: BudgetScope) -> orteam_ledger::BudgetStatus {
    s.iter()
        .find(|b| b.scope == scope && b.window == Window::Monthly)
        .expect("a monthly budget")
        .clone()
}

/// The days a reconciliation around `today` covers in these tests.
fn days_around(today: chrono::DateTime<chrono::Utc>) -> Range {
    Range {
        from: today - TimeDelta::days(3),
        to: today + TimeDelta::days(1),
    }
}

/// A generation OpenRouter billed on the shared key that the ledger never recorded (the key
/// used outside the gateway) is booked at org level: the org's budget reflects it exactly (a
/// request it no longer has room for is refused), reports and the dashboard show it as
/// "unattributed (org)", the alert goes out, and a second run changes nothing.
async fn reconcile_books_unrecorded_spend(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Org, "acme", Window::Monthly, "100")
        .start()
        .await;
    let today = mid_month_noon();
    let yesterday = today - TimeDelta::days(1);
    set_time(&tg, yesterday);
    // Billed by OpenRouter on the gateway's shared key, never seen by the gateway.
    let mut unrecorded = Money::ZERO;
    for tokens in [40, 70] {
        let s = chat_direct(&tg, "?", &tg.upstream_key.secret, "openai/gpt-4o", tokens).await;
        unrecorded = unrecorded.checked_add(s.cost).unwrap();
    }
    set_time(&tg, today);
    // Leave the org exactly the money OpenRouter billed beyond the ledger (set before the
    // gateway leases any of it on PostgreSQL).
    tg.admin
        .set_budget(BudgetScope::Org, "acme", Window::Monthly, unrecorded)
        .await
        .unwrap();
    tg.sync().await;
    let gateway_ledger = tg.gateway().ledger.clone();
    let alice_before = gateway_ledger.budget_status("alice").await.unwrap();
    let before = org_monthly(&gateway_ledger.all_budget_status().await.unwrap());
    assert_eq!(before.spent, Money::ZERO);
    let room = |b: &orteam_ledger::BudgetStatus| b.limit.checked_sub(b.spent).unwrap();
    assert_eq!(room(&before), unrecorded);

    let up = upstream_of(&tg);
    let range = days_around(today);
    let r = reconcile(&tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(!r.money_differs(), "{:#?}", r.differences());
    assert_eq!(r.summary.inserted, 1, "{:#?}", r.changes);
    assert_eq!(r.summary.changed, 0);
    assert_eq!(r.summary.org_level, unrecorded);
    let c = &r.changes[0];
    assert_eq!(c.kind, ChangeKind::Inserted);
    assert_eq!(c.member, ORG_LEVEL);
    assert_eq!(c.who(), "unattributed (org)");
    assert_eq!((c.before, c.after), (Money::ZERO, unrecorded));
    assert_eq!(c.day, yesterday.date_naive());
    assert!(c.evidence.contains("/activity"), "{}", c.evidence);
    assert!(
        r.summary.changes_line().contains("inserted 1, booked"),
        "{}",
        r.summary.changes_line()
    );
    orteam_insight::reconcile::record_run(&tg.admin, "cli", &r)
        .await
        .unwrap();
    // A second run before the gateway applied the queue books nothing more.
    let queued_again = reconcile(&tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(
        queued_again.changes.is_empty(),
        "{:#?}",
        queued_again.changes
    );
    assert_eq!(tg.admin.pending_cost_corrections().await.unwrap().len(), 1);

    // The serving gateway applies it: the org's budget has no room left, alice's is untouched.
    let tick = reconcile_tick(
        &gateway_ledger,
        &up,
        std::time::Duration::from_secs(3 * 86_400),
    )
    .await
    .unwrap();
    assert!(tick.changes.is_empty(), "{:#?}", tick.changes);
    assert!(!tick.money_differs(), "{:#?}", tick.differences());
    let after = org_monthly(&gateway_ledger.all_budget_status().await.unwrap());
    assert_eq!(after.spent, before.spent.checked_add(unrecorded).unwrap());
    assert_eq!(room(&after), Money::ZERO);
    let alice_after = gateway_ledger.budget_status("alice").await.unwrap();
    let spent = |s: &[orteam_ledger::BudgetStatus]| -> Vec<Money> {
        s.iter()
            .filter(|b| b.scope != BudgetScope::Org)
            .map(|b| b.spent)
            .collect()
    };
    assert_eq!(spent(&alice_before), spent(&alice_after));
    let refused = tg.chat("alice", body("openai/gpt-4o-mini", 5)).await;
    assert_eq!(refused.status(), 402, "the org budget is spent");
    // The durable figures agree (what another process or a restart reads).
    let durable = org_monthly(&tg.admin.all_budget_status().await.unwrap());
    assert_eq!(durable.spent, after.spent);

    let e = tg.admin.event(&c.request_id).await.unwrap().unwrap();
    assert!(e.is_org_level());
    assert_eq!(e.usage.cost, unrecorded);
    assert_eq!(e.time.date_naive(), yesterday.date_naive());
    assert_eq!(e.reconciled.as_ref().unwrap().evidence, c.evidence);

    // Idempotent once applied too.
    let again = reconcile(&tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert!(!again.money_differs(), "{:#?}", again.differences());
    assert_eq!(
        org_monthly(&gateway_ledger.all_budget_status().await.unwrap()).spent,
        after.spent
    );

    // Reports show it as "unattributed (org)".
    let report = build_report(
        &tg.admin,
        &up,
        &ReportOptions {
            range,
            group_by: vec![GroupBy::Member],
            route: None,
            direct: false,
            anomalies: None,
        },
        &NoProgress,
    )
    .await
    .unwrap();
    let row = report
        .rows
        .iter()
        .find(|r| r.member.as_deref() == Some("unattributed (org)"))
        .expect("an unattributed (org) row");
    assert_eq!(row.cost, unrecorded);

    // The dashboard's JSON has the reconciliation panel and the event's marker.
    let snap: serde_json::Value = tg
        .http
        .get(format!("{}/admin/v1/dashboard", tg.root_url()))
        .bearer_auth(orteam_test_support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let panel = &snap["reconciliation"];
    assert_eq!(panel["inserted"], 1, "{panel}");
    assert_eq!(panel["outstanding"], 0, "{panel}");
    assert_eq!(
        panel["org_level"],
        unrecorded.to_canonical_string(),
        "{panel}"
    );
    assert_eq!(
        panel["org_level_month"],
        unrecorded.to_canonical_string(),
        "{panel}"
    );
    let recent = snap["recent"].as_array().unwrap();
    let row = recent
        .iter()
        .find(|x| x["request_id"] == c.request_id.as_str())
        .expect("the reconciliation event among recent requests");
    assert_eq!(row["member"], ORG_LEVEL);
    assert!(row["reconciled"].as_str().unwrap().contains("/activity"));

    // The alert goes through the outbox to the webhook.
    let rx = Receiver::start().await;
    let cfg = AlertsConfig {
        webhooks: vec![rx.url.clone()],
        anomalies: None,
        ..AlertsConfig::default()
    };
    run_alerts_once(&tg.admin, &reqwest::Client::new(), &cfg)
        .await
        .unwrap();
    let got = rx.deliveries();
    let alert = got
        .iter()
        .find(|d| d.body["kind"] == "reconcile_difference")
        .expect("a reconcile_difference alert");
    assert_eq!(alert.body["reconcile"]["summary"]["inserted"], 1);
    assert!(
        alert.body["text"]
            .as_str()
            .unwrap()
            .contains("at org level"),
        "{}",
        alert.body
    );
    // Once per finding: the next round sends nothing new.
    let n = rx.deliveries().len();
    run_alerts_once(&tg.admin, &reqwest::Client::new(), &cfg)
        .await
        .unwrap();
    assert_eq!(rx.deliveries().len(), n);
}

backend_tests!(reconcile_books_unrecorded_spend);

/// A generation OpenRouter billed on a member's own upstream key (one the gateway forwards
/// with, its secret held) that the ledger never recorded is that member's: reconciliation books
/// it to the member, so the member's, the team's and the org's budgets all reflect it exactly
/// (the member's next request is refused), and a second run changes nothing.
async fn reconcile_books_a_members_own_key_to_the_member(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Org, "acme", Window::Monthly, "100")
        .start()
        .await;
    let (secret, hash) = tg.sim.create_key("orteam:acme:alice:own", None, None);
    // Storing an upstream secret needs the encryption key.
    let keyed = tg
        .db
        .open(
            orteam_ledger::LedgerOptions::admin().with_secret_key(
                orteam_ledger::SecretKey::from_base64(&orteam_ledger::SecretKey::generate_base64())
                    .unwrap(),
            ),
        )
        .await;
    keyed
        .add_upstream_key(
            "alice",
            "orteam:acme:alice:own",
            &hash,
            Some(&secret.clone().into()),
        )
        .await
        .unwrap();
    let today = mid_month_noon();
    let yesterday = today - TimeDelta::days(1);
    set_time(&tg, yesterday);
    // Billed on alice's own key, never seen by the gateway.
    let mut unrecorded = Money::ZERO;
    for tokens in [30, 55] {
        let s = chat_direct(&tg, "alice", &secret, "openai/gpt-4o-mini", tokens).await;
        unrecorded = unrecorded.checked_add(s.cost).unwrap();
    }
    set_time(&tg, today);
    // Alice's month has exactly that much room.
    tg.admin
        .set_budget(BudgetScope::Member, "alice", Window::Monthly, unrecorded)
        .await
        .unwrap();
    tg.sync().await;
    let gateway_ledger = tg.gateway().ledger.clone();
    let org_before = monthly(
        &gateway_ledger.all_budget_status().await.unwrap(),
        BudgetScope::Org,
    )
    .spent;

    let up = upstream_of(&tg);
    let range = days_around(today);
    let r = reconcile(&tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(!r.money_differs(), "{:#?}", r.differences());
    assert_eq!(r.summary.inserted, 1, "{:#?}", r.changes);
    assert_eq!(
        r.summary.org_level,
        Money::ZERO,
        "booked to alice, not the org"
    );
    let c = &r.changes[0];
    assert_eq!((c.kind, c.member.as_str()), (ChangeKind::Inserted, "alice"));
    assert_eq!((c.before, c.after), (Money::ZERO, unrecorded));
    assert!(c.evidence.contains("booked to alice"), "{}", c.evidence);

    // The serving gateway applies it: alice's month is spent, so are her team's and org's
    // figures by the same amount; her next request is refused.
    let tick = reconcile_tick(
        &gateway_ledger,
        &up,
        std::time::Duration::from_secs(3 * 86_400),
    )
    .await
    .unwrap();
    assert!(tick.changes.is_empty(), "{:#?}", tick.changes);
    let alice = gateway_ledger.budget_status("alice").await.unwrap();
    assert_eq!(monthly(&alice, BudgetScope::Member).spent, unrecorded);
    assert_eq!(
        monthly(
            &gateway_ledger.all_budget_status().await.unwrap(),
            BudgetScope::Org
        )
        .spent,
        org_before.checked_add(unrecorded).unwrap()
    );
    let refused = tg.chat("alice", body("openai/gpt-4o-mini", 5)).await;
    assert_eq!(refused.status(), 402, "alice's month is spent");
    let e = tg.admin.event(&c.request_id).await.unwrap().unwrap();
    assert_eq!((e.member_id.as_str(), e.usage.cost), ("alice", unrecorded));
    assert_eq!(e.usage.upstream_key_hash.as_deref(), Some(hash.as_str()));

    let again = reconcile(&tg.admin, &up, &ReconcileOptions::new(range), &NoProgress)
        .await
        .unwrap();
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert!(!again.money_differs(), "{:#?}", again.differences());
}

backend_tests!(reconcile_books_a_members_own_key_to_the_member);
