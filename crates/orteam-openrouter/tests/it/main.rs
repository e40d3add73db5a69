//! Integration tests against the local OpenRouter simulator (real HTTP on ephemeral ports).

// Helpers outside `#[test]` functions panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod cache;
mod chat;
mod common;
mod guardrails;
mod keys;
mod models;
mod retries;
mod secrets;
mod wire;
mod workspaces;
