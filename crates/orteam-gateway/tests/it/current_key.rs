//! `GET /v1/key`: a member reads their own budgets with their own key, every figure exact
//! after known traffic, on both backends; OpenRouter's SDK and the OpenAI SDK read it too.

use chrono::TimeDelta;
use orteam_core::{Clock, Money, Window};
use orteam_gateway::current_key::CurrentKey;
use orteam_ledger::{BudgetScope, BudgetStatus};
use orteam_test_support::{Backend, TestGateway, backend_tests};
use serde_json::Value;

use crate::routes::settled_events;
use crate::support::*;

backend_tests!(every_figure_is_exact_after_known_traffic);

/// The budgets of the test: alice daily 1 (+0.5 raise) and weekly 5, team core monthly 20,
/// org monthly 100, team web daily 3.
async fn gateway(backend: Backend) -> TestGateway {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "alice", Window::Daily, "1")
        .budget(BudgetScope::Member, "alice", Window::Weekly, "5")
        .budget(BudgetScope::Team, "core", Window::Monthly, "20")
        .budget(BudgetScope::Org, "acme", Window::Monthly, "100")
        .budget(BudgetScope::Team, "web", Window::Daily, "3")
        .tier_limits("all", Some(600), Some(1_000_000))
        .start()
        .await;
    let until = tg.clock.now() + TimeDelta::days(1);
    tg.admin
        .add_raise(
            BudgetScope::Member,
            "alice",
            Window::Daily,
            m("0.5"),
            until,
            "test",
        )
        .await
        .unwrap();
    tg.sync().await;
    tg
}

async fn get_key(tg: &TestGateway, path: &str, key: &str) -> reqwest::Response {
    tg.http
        .get(format!("{}{path}", tg.root_url()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn current_key(tg: &TestGateway, path: &str, member: &str) -> (CurrentKey, String) {
    let resp = get_key(tg, path, tg.key(member)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let text = resp.text().await.unwrap();
    (serde_json::from_str(&text).expect(&text), text)
}

fn budget<'a>(
    budgets: &'a [BudgetStatus],
    scope: BudgetScope,
    id: &str,
    window: Window,
) -> &'a BudgetStatus {
    budgets
        .iter()
        .find(|b| b.scope == scope && b.scope_id == id && b.window == window)
        .unwrap_or_else(|| panic!("no {scope:?} {id} {window} budget in {budgets:?}"))
}

async fn every_figure_is_exact_after_known_traffic(backend: Backend) {
    let tg = gateway(backend).await;
    // Known traffic: alice 3 requests on two models, bob (same team) 1, carol (other team) 1.
    for (member, model, tokens) in [
        ("alice", "openai/gpt-4o-mini", 20),
        ("alice", "openai/gpt-4o-mini", 35),
        ("alice", "openai/gpt-4o", 12),
        ("bob", "openai/gpt-4o-mini", 40),
        ("carol", "openai/gpt-4o-mini", 9),
    ] {
        let resp = tg
            .chat(
                member,
                body(model, &format!("[[sim:tokens={tokens}]]"), Some(100)),
            )
            .await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    let events = settled_events(&tg, 5).await;
    let spent_by = |f: &dyn Fn(&orteam_ledger::UsageEvent) -> bool| -> Money {
        events.iter().filter(|e| f(e)).map(|e| e.usage.cost).sum()
    };
    let alice = spent_by(&|e| e.member_id == "alice");
    let core = spent_by(&|e| e.team_id == "core");
    let org = spent_by(&|_| true);
    let alice_4o =
        spent_by(&|e| e.member_id == "alice" && e.usage.requested_model == "openai/gpt-4o");
    assert!(!alice.is_zero() && core > alice && org > core);
    // The simulator billed exactly what the ledger holds.
    assert_eq!(org, sim_total_usage(&tg).await);

    let (v, text) = current_key(&tg, "/v1/key", "alice").await;
    let d = &v.data;
    let o = &d.orteam;
    assert_eq!(
        (o.member.as_str(), o.team.as_str(), o.org.as_str()),
        ("alice", "core", "acme")
    );
    // Every budget that applies, and only those (not team web's).
    assert_eq!(o.budgets.len(), 4, "{:?}", o.budgets);
    let daily = budget(&o.budgets, BudgetScope::Member, "alice", Window::Daily);
    assert_eq!(daily.base_limit, m("1"));
    assert_eq!(daily.raised, m("0.5"));
    assert_eq!(daily.limit, m("1.5"));
    assert_eq!(daily.spent, alice);
    assert_eq!(daily.held, Money::ZERO);
    assert_eq!(daily.remaining, m("1.5").minus(alice).unwrap());
    let weekly = budget(&o.budgets, BudgetScope::Member, "alice", Window::Weekly);
    assert_eq!((weekly.limit, weekly.spent), (m("5"), alice));
    assert_eq!(weekly.remaining, m("5").minus(alice).unwrap());
    let team = budget(&o.budgets, BudgetScope::Team, "core", Window::Monthly);
    assert_eq!(
        (team.limit, team.spent, team.held),
        (m("20"), core, Money::ZERO)
    );
    assert_eq!(team.remaining, m("20").minus(core).unwrap());
    let whole = budget(&o.budgets, BudgetScope::Org, "acme", Window::Monthly);
    assert_eq!((whole.limit, whole.spent), (m("100"), org));
    assert_eq!(whole.remaining, m("100").minus(org).unwrap());
    let now = tg.clock.now();
    assert_eq!(daily.reset_at, Window::Daily.reset_at(now));
    assert_eq!(team.reset_at, Window::Monthly.reset_at(now));
    // OpenRouter's fields: the binding budget (alice daily, least room) and the member's spend.
    assert_eq!(d.limit, Some(daily.limit));
    assert_eq!(d.limit_remaining, Some(daily.remaining));
    assert_eq!(d.limit_reset, Some(Window::Daily));
    assert_eq!(
        (d.usage, d.usage_daily, d.usage_weekly, d.usage_monthly),
        (alice, alice, alice, alice)
    );
    assert_eq!(d.budgets.len(), 4);
    let eff = d.effective_budget.as_ref().unwrap();
    assert_eq!(
        (eff.scope.as_str(), eff.limit_usd, eff.spend_usd),
        ("member", m("1.5"), alice)
    );
    assert_eq!(d.organization_id.as_deref(), Some("acme"));
    assert_eq!(d.workspace_id.as_deref(), Some("core"));
    assert_eq!(d.rate_limit.requests, 600);
    assert_eq!(o.tier.requests_per_minute, Some(600));
    assert_eq!(o.tier.tokens_per_minute, Some(1_000_000));
    assert_eq!(
        o.tier.models,
        orteam_gateway::current_key::AllowedModels::All
    );
    // This month by day and by model.
    assert_eq!(o.month_by_day.len(), 1);
    assert_eq!(
        (o.month_by_day[0].cost, o.month_by_day[0].requests),
        (alice, 3)
    );
    assert_eq!(o.month_by_model[0].model.as_str(), "openai/gpt-4o");
    assert_eq!(o.month_by_model[0].cost, alice_4o);
    assert_eq!(
        o.month_by_model.iter().map(|s| s.cost).sum::<Money>(),
        alice
    );
    // Money is written as exact JSON numbers in OpenRouter's fields and strings in orteam's.
    let raw: Value = serde_json::from_str(&text).unwrap();
    assert!(raw["data"]["usage"].is_number(), "{text}");
    assert!(
        raw["data"]["orteam"]["usage"]["total"].is_string(),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"usage\":{},", alice.to_canonical_string())),
        "{text}"
    );
    // Nothing about anyone else.
    for other in ["bob", "carol", "BOB", "CAROL", "\"web\""] {
        assert!(!text.contains(other), "{other} leaked: {text}");
    }
    // `/api/v1/key` is the same answer.
    let (api, _) = current_key(&tg, "/api/v1/key", "alice").await;
    assert_eq!(api.data.orteam.budgets, o.budgets);
    // A strict-tier member sees their allowlist and team web's budget, not core's.
    let (c, text) = current_key(&tg, "/v1/key", "carol").await;
    assert_eq!(
        c.data.orteam.tier.models,
        orteam_gateway::current_key::AllowedModels::Only(vec!["openai/gpt-4o-mini".into()])
    );
    assert!(
        !text.contains("alice") && !text.contains("\"core\""),
        "{text}"
    );
    let carol_daily = budget(
        &c.data.orteam.budgets,
        BudgetScope::Team,
        "web",
        Window::Daily,
    );
    assert_eq!(carol_daily.spent, spent_by(&|e| e.member_id == "carol"));
}

#[tokio::test]
async fn refused_without_a_member_key() {
    let tg = TestGateway::start(Backend::Sqlite).await;
    let resp = tg
        .http
        .get(format!("{}/v1/key", tg.root_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing API key"),
        "{v}"
    );
    // The admin token is not a member key.
    let resp = get_key(&tg, "/v1/key", orteam_test_support::ADMIN_TOKEN).await;
    assert_eq!(resp.status(), 401);
    // A revoked key stops working at once.
    let keys = tg.admin.directory().virtual_keys.clone();
    let bob_key = keys.values().find(|k| k.member_id == "bob").unwrap();
    tg.admin.revoke_virtual_key(&bob_key.id).await.unwrap();
    tg.sync().await;
    assert_eq!(get_key(&tg, "/v1/key", tg.key("bob")).await.status(), 401);
    // Only GET.
    let resp = tg
        .http
        .post(format!("{}/v1/key", tg.root_url()))
        .bearer_auth(tg.key("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

/// A member with the OpenAI SDK spends, then asks "how much is left?" with the official
/// OpenRouter SDK's `get_current_key_metadata` (and the OpenAI SDK's raw GET) through orteam.
#[tokio::test]
async fn openrouter_and_openai_sdks_read_the_current_key() {
    let tg = gateway(Backend::Sqlite).await;
    let out = crate::sdk::python_output(
        "current_key.py",
        &[&tg.base_url, &tg.root_url(), tg.key("alice")],
    )
    .await;
    let events = settled_events(&tg, 2).await;
    let alice: Money = events.iter().map(|e| e.usage.cost).sum();
    let reported: Value = serde_json::from_str(out.lines().last().unwrap()).expect(&out);
    // Python floats of the exact figures (the SDKs type money as float).
    let float = |m: Money| -> f64 { m.to_canonical_string().parse().unwrap() };
    assert_eq!(reported["openrouter_usage"].as_f64().unwrap(), float(alice));
    assert_eq!(reported["openrouter_limit"].as_f64().unwrap(), 1.5);
    assert_eq!(
        reported["openrouter_limit_remaining"].as_f64().unwrap(),
        float(m("1.5").minus(alice).unwrap())
    );
    assert_eq!(reported["openrouter_budgets"].as_u64().unwrap(), 4);
    // The raw body (read through the OpenAI SDK) has the exact decimal text.
    assert_eq!(
        reported["openai_usage_text"].as_str().unwrap(),
        alice.to_canonical_string()
    );
}
