//! Test plumbing shared by orteam's integration tests (a dev-dependency only).
//!
//! Everything binds `127.0.0.1:0`, so tests run in parallel, and each call gets fresh state and
//! a fresh clock (several simulators coexist in one process).
//!
//! - [`spawn_sim`]: a simulator; [`inference_key`]: a key on it.
//! - [`TestDb`] / [`Backend`] / [`backend_tests!`]: one database per test, on both backends.
//! - `TestGateway` (feature `gateway`): a seeded gateway in front of a simulator;
//!   [`seed_directory`]: the directory it is seeded with, on any ledger.
//! - [`poll_until`], [`wait_for_events`], [`wait_for_event`]: bounded polling for what settles in
//!   the background.
//! - [`WebhookReceiver`]: records the alerts POSTed to it.
//! - [`CuttableProxy`]: a TCP proxy to cut, for database loss without stopping the database.
//! - [`sim_management_get`]: a management-key GET on a simulator.
//! - [`browser_env`]: Playwright and Chromium for the browser tests.
//!
//! ```no_run
//! # async fn t() {
//! let sim = orteam_test_support::spawn_sim().await;
//! let key = orteam_test_support::inference_key(&sim, "alice");
//! // call sim.base_url() with `Authorization: Bearer {key.secret}`
//! # }
//! ```

// Test plumbing: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod browser;
mod db;
#[cfg(feature = "gateway")]
mod gateway;
mod proxy;
mod seed;
mod wait;
mod webhook;

pub use browser::{SETUP as BROWSER_SETUP, browser_env};
pub use db::{Backend, TestDb, pg_base_url, pg_connect};
#[cfg(feature = "gateway")]
pub use gateway::{TestGateway, TestGatewayBuilder};
pub use proxy::{CuttableProxy, postgres_addr};
pub use seed::{ADMIN_TOKEN, seed_directory};
pub use wait::{
    POLL_EVERY, POLL_ROUNDS, all_settled, poll_until, wait_for_event, wait_for_events,
    wait_for_settled_events,
};
pub use webhook::{Delivery, WebhookReceiver};

use orteam_core::{Money, Window};
pub use orteam_sim::{Fault, FaultRule, SimConfig, SimHandle};

/// A simulator with the default configuration (100 credits, the default management key, a
/// fresh unfrozen clock).
///
/// # Panics
/// If the simulator cannot bind a local port (a broken test environment).
pub async fn spawn_sim() -> SimHandle {
    spawn_sim_with(SimConfig::default()).await
}

/// A simulator with `config`.
///
/// # Panics
/// If the simulator cannot start (bad config or no local port).
pub async fn spawn_sim_with(config: SimConfig) -> SimHandle {
    orteam_sim::spawn(config)
        .await
        .expect("orteam-sim failed to start")
}

/// An inference key created on a simulator.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// `sk-or-v1-…`, for the `Authorization: Bearer` header.
    pub secret: String,
    /// The key's hash (its id in the management API).
    pub hash: String,
}

/// Creates an inference key with no limit.
pub fn inference_key(sim: &SimHandle, name: &str) -> TestKey {
    inference_key_with_limit(sim, name, None, None)
}

/// Creates an inference key with a limit that resets on `reset` (or never, for `None`).
pub fn inference_key_with_limit(
    sim: &SimHandle,
    name: &str,
    limit: Option<Money>,
    reset: Option<Window>,
) -> TestKey {
    let (secret, hash) = sim.create_key(name, limit, reset);
    TestKey { secret, hash }
}

/// `GET {sim}/api/v1{path}` with the simulator's management key, as JSON.
pub async fn sim_management_get(sim: &SimHandle, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(sim.provisioning_key())
        .send()
        .await
        .expect("simulator request")
        .json()
        .await
        .expect("simulator JSON")
}

/// What the simulator billed in total (`/credits` `total_usage`), exactly.
pub async fn sim_credits_used(sim: &SimHandle) -> Money {
    let v = sim_management_get(sim, "/credits").await;
    serde_json::from_value(v["data"]["total_usage"].clone()).expect("exact total_usage")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawns_and_creates_keys() {
        let sim = spawn_sim().await;
        let k = inference_key(&sim, "t");
        assert!(k.secret.starts_with("sk-or-v1-"));
        assert_eq!(k.hash.len(), 64);
        assert!(sim.base_url().ends_with("/api/v1"));
        sim.shutdown().await;
    }
}
