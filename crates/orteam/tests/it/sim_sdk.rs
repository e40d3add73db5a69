//! The official OpenRouter Python SDK against the real `orteam sim` process, as a new user
//! would try it: every management method orteam's client covers and chat in each mode, with
//! the SDK's own response validation (the script is the simulator crate's oracle suite).

use tokio::io::{AsyncBufReadExt, BufReader};

const KEY: &str = "sk-or-v1-5d1c0ffee0000000000000000000000000000000000000000000000000000019";

#[tokio::test]
async fn the_official_openrouter_sdk_validates_orteam_sim() {
    let Ok(python) = std::env::var("ORTEAM_TEST_PYTHON") else {
        panic!("ORTEAM_TEST_PYTHON is not set: bash scripts/python-env.sh prints one");
    };
    let mut sim = tokio::process::Command::new(crate::support::bin())
        .args(["sim", "--listen", "127.0.0.1:0", "--provisioning-key", KEY])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn orteam sim");
    // Its first line is the base URL.
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let base = lines.next_line().await.unwrap().expect("the base URL line");
    let root = base.trim_end_matches("/api/v1").to_owned();
    let script = format!(
        "{}/../orteam-sim/tests/python/openrouter_sdk.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(python)
        .args([script.as_str(), &base, KEY, &root])
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK") && !stdout.contains("FAIL"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sim.kill().await.unwrap();
}
