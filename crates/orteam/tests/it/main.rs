//! End-to-end tests of the `orteam` binary against the simulator and a real ledger, on SQLite
//! and on PostgreSQL (`ORTEAM_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, a fresh schema per test).

// Test plumbing outside #[test] functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_cli;
mod crash;
mod dashboards;
mod db_faults;
mod defence;
mod demo;
mod file_tokens;
mod first_hour;
mod gateway;
mod insight;
mod lead;
mod me;
mod operations;
mod readme;
mod refusals;
mod sim_sdk;
mod support;
mod team;
