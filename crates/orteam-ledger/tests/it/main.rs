//! One integration-test binary for the ledger. Every behavioural test runs against both
//! backends through `backend_tests!` (SQLite in a temp dir, PostgreSQL in a fresh schema).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[macro_use]
extern crate orteam_test_support;

mod support;

mod auth;
mod budget;
mod events;
mod inflight;
mod multiproc;
mod upgrade;
mod windows;
