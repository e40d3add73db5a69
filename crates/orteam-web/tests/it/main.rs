//! orteam-web integration tests: the snapshot API against a real gateway, and the dashboard in
//! headless Chromium driven by Playwright (see `browser.rs` for its setup).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod api;
mod browser;
mod support;
