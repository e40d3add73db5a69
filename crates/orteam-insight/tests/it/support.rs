//! Seeding a known traffic pattern over 30 simulated days, with the gateway's ledger clock and
//! the simulator's clock moved together.

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use orteam_core::Money;
use orteam_core::money::json_number;
use orteam_insight::Upstream;
use orteam_test_support::{Backend, TestGateway};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// Noon of "today" in the simulation: 31 days after the real today, so every simulated day is
/// after the directory was seeded.
pub fn sim_today_noon() -> DateTime<Utc> {
    let d = Utc::now().date_naive() + Days::new(31);
    orteam_core::window::midnight(d) + TimeDelta::hours(12)
}

/// Freezes both clocks at `at`.
pub fn set_time(tg: &TestGateway, at: DateTime<Utc>) {
    tg.clock.freeze(at);
    tg.sim.clock().freeze(at);
}

/// One request as the client saw it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub member: String,
    pub day: NaiveDate,
    pub model: String,
    pub provider: String,
    pub cost: Money,
    pub request_id: Option<String>,
    pub direct: bool,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(with = "json_number")]
    cost: Money,
}

#[derive(Deserialize)]
struct ChatBody {
    model: String,
    provider: String,
    usage: UsageBody,
}

pub fn body(model: &str, tokens: u64) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": format!("Summarise the report. [[sim:tokens={tokens}]]")}],
    })
}

async fn parse(resp: reqwest::Response, member: &str, day: NaiveDate, direct: bool) -> Sent {
    assert_eq!(resp.status(), 200, "{member} on {day}");
    let request_id = resp
        .headers()
        .get("x-orteam-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.bytes().await.unwrap();
    let b: ChatBody = serde_json::from_slice(&bytes).unwrap();
    Sent {
        member: member.to_owned(),
        day,
        model: b.model,
        provider: b.provider,
        cost: b.usage.cost,
        request_id,
        direct,
    }
}

/// Sends one request through the gateway.
pub async fn chat(tg: &TestGateway, member: &str, model: &str, tokens: u64) -> Sent {
    let day = tg.clock.now_date();
    let resp = tg.chat(member, body(model, tokens)).await;
    parse(resp, member, day, false).await
}

/// Sends one request straight to the simulator with a direct-mode key.
pub async fn chat_direct(
    tg: &TestGateway,
    member: &str,
    secret: &str,
    model: &str,
    tokens: u64,
) -> Sent {
    let day = tg.clock.now_date();
    let resp = tg
        .http
        .post(format!("{}/chat/completions", tg.sim.base_url()))
        .bearer_auth(secret)
        .json(&body(model, tokens))
        .send()
        .await
        .unwrap();
    parse(resp, member, day, true).await
}

trait NowDate {
    fn now_date(&self) -> NaiveDate;
}

impl NowDate for orteam_core::ControllableClock {
    fn now_date(&self) -> NaiveDate {
        orteam_core::Clock::now(self).date_naive()
    }
}

/// A seeded world.
pub struct World {
    pub tg: TestGateway,
    pub today: DateTime<Utc>,
    pub sent: Vec<Sent>,
    pub dave_hash: String,
}

impl World {
    pub fn upstream(&self) -> Upstream {
        upstream_of(&self.tg)
    }

    /// The simulator's `/activity` (management key), all rows.
    pub async fn activity(&self) -> Vec<Value> {
        let v = orteam_test_support::sim_management_get(&self.tg.sim, "/activity").await;
        v["data"].as_array().unwrap().clone()
    }
}

/// OpenRouter as the gateway `tg` sees it: the simulator, its management key and the shared key.
pub fn upstream_of(tg: &TestGateway) -> Upstream {
    Upstream::from_keys(
        Some(&tg.sim.base_url()),
        Some(tg.sim.provisioning_key().to_owned().into()),
        Some(tg.upstream_key.secret.clone().into()),
    )
    .unwrap()
}

/// Daily spend pattern of day `i` (0 = 30 days ago): alice 2 requests (gpt-4o-mini), bob 1
/// (llama), carol 1 every other day, dave (direct key) 1 every third day.
pub async fn seed(backend: Backend) -> World {
    let tg = TestGateway::start(backend).await;
    let dave = tg.add_direct_member("dave", "web").await;
    let (dave_secret, dave_hash) = (dave.secret, dave.hash);
    let today = sim_today_noon();
    let mut sent = Vec::new();
    for i in 0..30u64 {
        let at = today - TimeDelta::days(30 - i as i64);
        set_time(&tg, at);
        sent.push(chat(&tg, "alice", "openai/gpt-4o-mini", 10 + i).await);
        sent.push(chat(&tg, "alice", "openai/gpt-4o-mini", 40 + (i * 7) % 13).await);
        sent.push(chat(&tg, "bob", "meta-llama/llama-3.1-8b-instruct", 20 + i % 5).await);
        if i % 2 == 0 {
            sent.push(chat(&tg, "carol", "openai/gpt-4o-mini", 15).await);
        }
        if i % 3 == 0 {
            sent.push(chat_direct(&tg, "dave", &dave_secret, "openai/gpt-4o", 30).await);
        }
    }
    set_time(&tg, today);
    let world = World {
        tg,
        today,
        sent,
        dave_hash,
    };
    wait_recorded(&world).await;
    world
}

/// Bounded polling until the ledger holds every gateway request sent.
pub async fn wait_recorded(w: &World) {
    let want = w.sent.iter().filter(|s| !s.direct).count();
    let events = orteam_test_support::wait_for_events(&w.tg.admin, want).await;
    assert!(
        events.len() >= want,
        "the ledger never recorded {want} events"
    );
}

/// The webhook receiver of the alert tests.
pub use orteam_test_support::WebhookReceiver as Receiver;
