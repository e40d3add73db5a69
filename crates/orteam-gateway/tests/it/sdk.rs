//! The official OpenAI Python SDK against the gateway, as a member would use it.

use orteam_test_support::{Backend, TestGateway};

#[tokio::test]
async fn the_openai_python_sdk_works_unchanged() {
    let python = std::env::var("ORTEAM_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ORTEAM_TEST_PYTHON is not set: run ./scripts/test, or point it at a Python with the \
             `openai` package (bash scripts/python-env.sh prints one)"
        )
    });
    let tg = TestGateway::start(Backend::Sqlite).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_sdk.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(&tg.base_url)
        .arg(tg.key("alice"))
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Every SDK request was recorded.
    let events = crate::support::all_events(&tg).await;
    assert_eq!(events.len(), 3, "{events:?}");
}
