//! A gateway on an ephemeral port in front of a fresh simulator, with a seeded directory:
//!
//! - org `acme`; teams `core` and `web`;
//! - tiers `all` (every model), `basic` (gpt-4o-mini and `meta-llama/*`, others downgraded to
//!   gpt-4o-mini), `strict` (gpt-4o-mini only, others denied);
//! - members `alice` (all, core), `bob` (basic, core), `carol` (strict, web), each with a
//!   virtual key in [`TestGateway::key`];
//! - the shared upstream key is an inference key created on the simulator.

use std::collections::HashMap;
use std::sync::Arc;

use orteam_core::{ControllableClock, Money, SharedClock, Window, env};
use orteam_gateway::{GatewayConfig, RunningGateway};
use orteam_ledger::{BudgetScope, Ledger, LedgerOptions, NewMember};
use orteam_sim::SimHandle;
use tokio_util::sync::CancellationToken;

use crate::db::{Backend, TestDb};
use crate::seed::{ADMIN_TOKEN, seed_directory};

/// A change to the gateway's configuration before it starts.
type Configure = Box<dyn FnOnce(&mut GatewayConfig) + Send>;

/// Builder of a [`TestGateway`].
pub struct TestGatewayBuilder {
    backend: Backend,
    budgets: Vec<(BudgetScope, String, Window, Money)>,
    tier_limits: HashMap<String, (Option<u32>, Option<u64>)>,
    sim_config: orteam_sim::SimConfig,
    configure: Vec<Configure>,
    listener: Option<std::net::TcpListener>,
}

impl TestGatewayBuilder {
    /// Adds a budget (`scope` is member/team/org, `id` its id, `limit` a decimal string).
    pub fn budget(mut self, scope: BudgetScope, id: &str, window: Window, limit: &str) -> Self {
        self.budgets.push((
            scope,
            id.to_owned(),
            window,
            Money::parse(limit).expect("amount"),
        ));
        self
    }

    /// Rate limits of a tier.
    pub fn tier_limits(mut self, tier: &str, rpm: Option<u32>, tpm: Option<u64>) -> Self {
        self.tier_limits.insert(tier.to_owned(), (rpm, tpm));
        self
    }

    pub fn sim_config(mut self, config: orteam_sim::SimConfig) -> Self {
        self.sim_config = config;
        self
    }

    /// Serves on this listener (bound by the test, e.g. so a redirect URL can name its port
    /// before the gateway starts).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Adjusts the gateway's configuration before it starts.
    pub fn configure(mut self, f: impl FnOnce(&mut GatewayConfig) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    pub async fn start(self) -> TestGateway {
        let sim = crate::spawn_sim_with(self.sim_config).await;
        sim.add_credits(Money::from_cents(1_000_000));
        let upstream = crate::inference_key(&sim, "orteam-shared");
        let db = TestDb::new(self.backend).await;
        let clock = Arc::new(ControllableClock::new());
        let shared: SharedClock = clock.clone();
        let admin = db
            .open(LedgerOptions::admin().with_clock(shared.clone()))
            .await;
        let keys = seed_directory(&admin, &self.tier_limits).await;
        for (scope, id, window, limit) in &self.budgets {
            admin
                .set_budget(*scope, id, *window, *limit)
                .await
                .expect("budget");
        }
        let env: HashMap<&str, String> = [
            (env::OPENROUTER_BASE_URL, sim.base_url()),
            (env::ORTEAM_DATABASE_URL, db.url.clone()),
            (env::OPENROUTER_API_KEY, upstream.secret.clone()),
            (env::ORTEAM_ADMIN_TOKEN, ADMIN_TOKEN.to_owned()),
        ]
        .into();
        let mut config =
            GatewayConfig::load(None, |k| env.get(k).cloned()).expect("gateway config");
        config.workers = 2;
        config.retry_deadline = std::time::Duration::from_secs(5);
        config.drain = std::time::Duration::from_secs(5);
        for f in self.configure {
            f(&mut config);
        }
        let listener = match self.listener {
            Some(l) => l,
            None => std::net::TcpListener::bind("127.0.0.1:0").expect("bind"),
        };
        let shutdown = CancellationToken::new();
        let running = orteam_gateway::start(config, listener, shared, shutdown.clone())
            .await
            .expect("gateway start");
        let base_url = running.base_url();
        TestGateway {
            sim,
            db,
            admin,
            clock,
            running: Some(running),
            shutdown,
            base_url,
            keys,
            upstream_key: upstream,
            http: reqwest::Client::new(),
        }
    }
}

/// See the module docs.
pub struct TestGateway {
    pub sim: SimHandle,
    pub db: TestDb,
    /// An admin-role ledger on the gateway's database, for seeding and inspection.
    pub admin: Ledger,
    pub clock: Arc<ControllableClock>,
    running: Option<RunningGateway>,
    pub shutdown: CancellationToken,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    keys: HashMap<String, String>,
    /// The shared upstream key (on the simulator).
    pub upstream_key: crate::TestKey,
    pub http: reqwest::Client,
}

impl TestGateway {
    pub fn builder(backend: Backend) -> TestGatewayBuilder {
        TestGatewayBuilder {
            backend,
            budgets: Vec::new(),
            tier_limits: HashMap::new(),
            sim_config: orteam_sim::SimConfig::default(),
            configure: Vec::new(),
            listener: None,
        }
    }

    pub async fn start(backend: Backend) -> TestGateway {
        Self::builder(backend).start().await
    }

    /// The `ot-…` key of a seeded member.
    pub fn key(&self, member: &str) -> &str {
        self.keys
            .get(member)
            .map(String::as_str)
            .expect("seeded member")
    }

    /// Adds a direct-mode member: an OpenRouter key at the simulator, named the way
    /// `orteam team apply` names keys, recorded in the ledger by its hash (no secret held).
    pub async fn add_direct_member(&self, id: &str, team: &str) -> crate::TestKey {
        self.admin
            .put_member(NewMember {
                id: id.into(),
                display_name: id.to_uppercase(),
                team_id: team.into(),
                tier_id: "all".into(),
            })
            .await
            .expect("member");
        let name = format!("orteam:acme:{id}:1");
        let (secret, hash) = self.sim.create_key(&name, None, None);
        self.admin
            .add_upstream_key(id, &name, &hash, None)
            .await
            .expect("upstream key");
        crate::TestKey { secret, hash }
    }

    /// `http://127.0.0.1:PORT` (no `/v1`).
    pub fn root_url(&self) -> String {
        self.base_url.trim_end_matches("/v1").to_owned()
    }

    /// The running gateway's shared state (ledger, metrics…).
    pub fn gateway(&self) -> &Arc<orteam_gateway::Gateway> {
        &self.running.as_ref().expect("running").gateway
    }

    /// Makes the running gateway see every directory change made through `admin` (it would
    /// within one change poll anyway) and commits every usage event it has journaled, so what
    /// `admin` reads next is exactly what the gateway did.
    pub async fn sync(&self) {
        let ledger = &self.gateway().ledger;
        ledger
            .reload()
            .await
            .expect("reload the gateway's directory");
        ledger.flush().await.expect("flush the gateway's ledger");
    }

    /// POSTs a chat completion as `member`.
    pub async fn chat(&self, member: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/chat/completions", self.base_url))
            .bearer_auth(self.key(member))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// POSTs `body` as `member` to a path below `/v1` (`"/messages"`, `"/responses"` …).
    pub async fn post(
        &self,
        member: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.key(member))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Stops accepting, drains open requests and settlements, flushes the ledger.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.wait().await.expect("clean shutdown");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
