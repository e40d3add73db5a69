//! The orteam gateway: an OpenAI-compatible proxy that authenticates `ot-…` keys, applies the
//! member's tier policy, clamps `max_tokens` to what the tightest budget can still pay, reserves
//! the worst case, forwards to OpenRouter and settles at the exact `usage.cost`.
//!
//! Each stage of a request lives in its own module, in request order:
//! [`request`] (parse only the fields we need) → [`policy`] (tier allowlist, downgrade) →
//! [`pricing`] (worst-case cost, budget-aware max_tokens) → … (reserve, forward, settle).

pub mod catalog;
pub mod config;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod pricing;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod server;
pub mod stream_body;
pub mod upstream;
