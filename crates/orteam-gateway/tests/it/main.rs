//! Gateway integration tests: real HTTP on ephemeral ports, the simulator as upstream, both
//! ledger backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod access;
mod agents;
mod budget;
mod chat;
mod current_key;
mod faults;
mod hardening;
mod input;
mod ops;
mod refusals;
mod routes;
mod sdk;
mod sso;
mod support;
mod tier_policy;
mod trace;
mod upstream;
