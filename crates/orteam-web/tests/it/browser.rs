//! The dashboard in headless Chromium, driven by Playwright (`tests/browser/dashboard.mjs`):
//! it loads, refuses a wrong token with a message, signs in, every chart and panel renders
//! with data, the by-model toggle redraws, and a request sent while the page is open appears
//! without a reload. Saves a screenshot (`target/browser-test/dashboard.png`, and
//! `docs/dashboard.png` when that file is missing or `ORTEAM_UPDATE_SCREENSHOT=1`).
//!
//! Needs `ORTEAM_TEST_NODE_MODULES`: a node_modules directory with `playwright-core`, and
//! Debian's Chromium at /usr/bin/chromium (or `ORTEAM_TEST_CHROMIUM`). `scripts/browser-env.sh`
//! installs both and prints the directory:
//!
//!   ORTEAM_TEST_NODE_MODULES="$(bash scripts/browser-env.sh)" cargo test -p orteam-web
//!
//! Without them the test fails with these instructions; it never skips.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orteam_test_support::{ADMIN_TOKEN, BROWSER_SETUP, browser_env};

use crate::support::seeded_gateway;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let (modules, chromium) = browser_env();
    let tg = seeded_gateway().await;
    let out_dir = workspace_root().join("target/browser-test");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("dashboard.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(tg.root_url())
        .arg(ADMIN_TOKEN)
        .env("ORTEAM_TEST_NODE_MODULES", &modules)
        .env("ORTEAM_TEST_CHROMIUM", &chromium)
        .env("ORTEAM_TEST_MEMBER_KEY", tg.key("carol"))
        .env("ORTEAM_TEST_SCREENSHOT", &shot)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser test timed out")
        .unwrap_or_else(|e| panic!("cannot run node: {e}: {BROWSER_SETUP}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("dashboard ok"), "{stdout}\n{stderr}");
    assert!(!stdout.contains(tg.key("carol")), "a member key leaked");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let docs = workspace_root().join("docs/dashboard.png");
    if !docs.exists() || std::env::var_os("ORTEAM_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        std::fs::copy(&shot, &docs).unwrap();
    }
}
