//! The orteam gateway: an OpenAI-compatible proxy that authenticates `ot-…` keys, applies the
//! member's tier policy, clamps `max_tokens` to what the tightest budget can still pay, reserves
//! the worst case, forwards to OpenRouter and settles at the exact `usage.cost`.
//!
//! Each stage of a request lives in its own module, in request order: [`server`] (workers) →
//! [`app`] (the pipeline: authenticate) → [`request`] (parse only the fields we need) →
//! [`policy`] (tier allowlist, downgrade) → [`pricing`] (worst case, budget-aware max_tokens) →
//! [`ratelimit`] → reserve (ledger) → [`upstream`] (forward) → [`response`] /
//! [`stream_body`] (read the bill, pass bytes through) → settle (ledger).
//! [`admin`] serves everything else; [`serve`] starts and drains it all.

pub mod admin;
pub mod app;
pub mod catalog;
pub mod config;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod pricing;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod serve;
pub mod server;
pub mod stream_body;
pub mod upstream;

pub use config::GatewayConfig;
pub use error::GatewayError;
pub use serve::{RunningGateway, StartError, start};
