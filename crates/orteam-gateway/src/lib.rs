//! The orteam gateway: a proxy in front of OpenRouter for every API a team's tools speak
//! (OpenAI chat completions, Anthropic Messages, OpenAI Responses, embeddings, legacy
//! completions). It authenticates `ot-…` keys, applies the member's tier policy, clamps the
//! output cap to what the tightest budget can still pay, reserves the worst case, forwards to
//! OpenRouter and settles at the exact cost.
//!
//! One module per stage, in request order: [`server`] (workers) → [`gateway`] (dispatch by
//! path) → [`pipeline`] (the stages in sequence): [`auth`] → [`body`] → [`wire`] (the route's
//! adapter: parse, rewrite, read the bill) → [`policy`] → [`pricing`] → [`reserve`] (rate
//! limits, budget-aware cap, hold) → [`forward`] ([`upstream`] connections) → [`respond`]
//! ([`sse`], [`stream_body`]) → [`settle`]. [`health`] answers probes, [`current_key`] a
//! member's `GET /v1/key`, [`admin`] everything else; [`serve`] starts
//! and drains it all.

pub mod admin;
pub mod admin_access;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod config;
pub mod current_key;
pub mod error;
pub mod forward;
pub mod gateway;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod pricing;
pub mod ratelimit;
pub mod refused;
pub mod reserve;
pub mod respond;
pub mod serve;
pub mod server;
pub mod settle;
pub mod sse;
pub mod sso;
pub mod stream_body;
pub mod trace;
pub mod upstream;
pub mod wire;

pub use config::{GatewayConfig, MemberLabels};
pub use error::GatewayError;
pub use gateway::Gateway;
pub use serve::{RunningGateway, StartError, start};
