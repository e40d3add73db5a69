//! What the browser and terminal tests need: Playwright's `playwright-core` and a Chromium
//! (`scripts/browser-env.sh` installs both, and tmux), found once for every crate's tests.

use std::path::PathBuf;

/// How to get the browser test environment.
pub const BROWSER_SETUP: &str = "run `ORTEAM_TEST_NODE_MODULES=\"$(bash scripts/browser-env.sh)\" \
                                 cargo test …` (the script installs Debian's chromium and tmux if \
                                 missing, and playwright-core from npm into target/browser-test)";

/// `ORTEAM_TEST_NODE_MODULES` (a node_modules directory with `playwright-core`) and the
/// Chromium binary (`ORTEAM_TEST_CHROMIUM`, default `/usr/bin/chromium`).
///
/// # Panics
/// With [`BROWSER_SETUP`] when either is missing: the tests never skip.
pub fn browser_env() -> (PathBuf, PathBuf) {
    let Some(modules) = std::env::var_os("ORTEAM_TEST_NODE_MODULES").filter(|v| !v.is_empty())
    else {
        panic!("ORTEAM_TEST_NODE_MODULES is not set: {BROWSER_SETUP}");
    };
    let modules = PathBuf::from(modules);
    assert!(
        modules.join("playwright-core").is_dir(),
        "no playwright-core in ORTEAM_TEST_NODE_MODULES={}: {BROWSER_SETUP}",
        modules.display()
    );
    let chromium = std::env::var_os("ORTEAM_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "no Chromium at {}: {BROWSER_SETUP}",
        chromium.display()
    );
    (modules, chromium)
}
