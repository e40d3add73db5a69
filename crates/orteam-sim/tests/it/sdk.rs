//! The official OpenRouter Python SDK (`openrouter`, pinned in scripts/python-env.sh) as an
//! independent oracle: it is generated from OpenRouter's OpenAPI document and validates every
//! answer, so a shape the simulator gets wrong fails here even if orteam's own client agrees.

use orteam_sim::DEFAULT_PROVISIONING_KEY;

use crate::Ctx;

/// Runs `tests/python/<script>`; panics with its output unless it printed OK.
async fn python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("ORTEAM_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ORTEAM_TEST_PYTHON is not set: run ./scripts/test, or point it at a Python with the \
             `openrouter` package (bash scripts/python-env.sh prints one)"
        )
    });
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK"),
        "{script}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_official_openrouter_sdk_validates_every_answer_of_the_simulator() {
    let ctx = Ctx::new().await;
    let report = python(
        "openrouter_sdk.py",
        &[
            &ctx.sim.base_url(),
            DEFAULT_PROVISIONING_KEY,
            &ctx.sim.root_url(),
        ],
    )
    .await;
    // Every method listed in the script ran and validated.
    assert!(!report.contains("FAIL"), "{report}");
    println!("{report}");
}
