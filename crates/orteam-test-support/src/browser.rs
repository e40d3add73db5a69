//! What the browser tests need, written once: where Playwright and Chromium are
//! ([`browser_env`]) and a real OpenID provider on loopback ([`OidcProvider`]: the certified
//! `oidc-provider` npm package, run by `js/oidc-provider.mjs`).
//!
//! `scripts/browser-env.sh` installs Debian's Chromium, `playwright-core` and `oidc-provider`
//! and prints the node_modules directory for `ORTEAM_TEST_NODE_MODULES`. Without them the tests
//! fail with these instructions; they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to set up the browser tests.
pub const SETUP: &str = "run `ORTEAM_TEST_NODE_MODULES=\"$(bash scripts/browser-env.sh)\" cargo \
                         test …` (the script installs Debian's chromium and tmux if missing, and \
                         playwright-core and oidc-provider from npm into target/browser-test)";

/// `(node_modules, chromium)`: `ORTEAM_TEST_NODE_MODULES` (with `playwright-core`) and
/// `ORTEAM_TEST_CHROMIUM` (default `/usr/bin/chromium`). Panics with [`SETUP`] when missing.
pub fn browser_env() -> (PathBuf, PathBuf) {
    let Some(modules) = std::env::var_os("ORTEAM_TEST_NODE_MODULES").filter(|v| !v.is_empty())
    else {
        panic!("ORTEAM_TEST_NODE_MODULES is not set: {SETUP}");
    };
    let modules = PathBuf::from(modules);
    assert!(
        modules.join("playwright-core").is_dir(),
        "no playwright-core in ORTEAM_TEST_NODE_MODULES={}: {SETUP}",
        modules.display()
    );
    let chromium = std::env::var_os("ORTEAM_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "no Chromium at {}: {SETUP}",
        chromium.display()
    );
    (modules, chromium)
}

/// A real OpenID provider (`oidc-provider`) on `127.0.0.1`, an ephemeral port, offline, with
/// one confidential client. Its accounts and faults are listed in `js/oidc-provider.mjs`; the
/// process ends when this is dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider for a client whose redirect URI is `redirect_uri`.
    pub async fn start(modules: &Path, redirect_uri: &str) -> OidcProvider {
        assert!(
            modules.join("oidc-provider").is_dir(),
            "no oidc-provider in {}: {SETUP}",
            modules.display()
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("js/oidc-provider.mjs");
        let client_id = "orteam-dashboard".to_owned();
        let client_secret = format!("client-secret-{}", uuid::Uuid::new_v4().simple());
        let mut child = Command::new("node")
            .arg(&script)
            .arg(redirect_uri)
            .arg(&client_id)
            .arg(&client_secret)
            .env("ORTEAM_TEST_NODE_MODULES", modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node: {e}: {SETUP}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the OpenID provider did not start within 60 s")
            .expect("reading the provider's output")
            .expect("the OpenID provider exited before listening");
        let issuer = first
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("unexpected first line from the provider: {first}"))
            .to_owned();
        // Keep reading (and echoing) what it prints, so it never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("oidc-provider: {line}");
            }
        });
        OidcProvider {
            issuer,
            client_id,
            client_secret,
            child,
        }
    }

    /// Makes the next token answer's ID token `tampered`, `expired` or `wrong_aud`.
    pub async fn fault(&self, mode: &str) {
        let resp = reqwest::Client::new()
            .post(format!("{}/__fault/{mode}", self.issuer))
            .send()
            .await
            .expect("provider fault");
        assert_eq!(resp.status().as_u16(), 204, "fault {mode}");
    }

    /// Stops the provider.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
