//! The stdio binary as a child process, driven by rmcp's client.

use std::process::Stdio;
use std::time::Duration;

use orteam_mcp::READ_TOOLS;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::common::{assert_no_key, text_of};

const BIN: &str = env!("CARGO_BIN_EXE_orteam-mcp-stdio");

fn command(base_url: &str, key: Option<&str>, allow_write: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("OPENROUTER_PROVISIONING_KEY")
        .env_remove("OPENROUTER_ADMIN_ALLOW_WRITE")
        .env("OPENROUTER_BASE_URL", base_url)
        // Debug logs of every crate: they must not contain the key either.
        .env("RUST_LOG", "debug")
        .kill_on_drop(true);
    if let Some(k) = key {
        cmd.env("OPENROUTER_PROVISIONING_KEY", k);
    }
    if let Some(w) = allow_write {
        cmd.env("OPENROUTER_ADMIN_ALLOW_WRITE", w);
    }
    cmd
}

fn call(name: &str, args: serde_json::Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(name.to_owned());
    p.arguments = args.as_object().cloned();
    p
}

#[tokio::test]
async fn stdio_binary_serves_tools_and_keeps_the_key_out_of_stderr() {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let (transport, stderr) =
        TokioChildProcess::builder(command(&sim.base_url(), Some(&key), None))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let mut stderr = stderr.expect("piped stderr");
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let client = ().serve(transport).await.expect("initialize over stdio");
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("orteam")
    );

    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = READ_TOOLS.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected);

    let r = client
        .call_tool(call("or_credits", json!({})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    assert!(text_of(&r).starts_with("Credits:\n- Purchased: $100.0000"));
    let r = client
        .call_tool(call("or_key_get", json!({ "hash": "missing" })))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_no_key(&text_of(&r), &key);
    let err = client
        .call_tool(call("or_key_create", json!({ "name": "x" })))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("OPENROUTER_ADMIN_ALLOW_WRITE=1"),
        "{err}"
    );
    // Still serving after errors.
    let r = client
        .call_tool(call("or_overview", json!({})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_no_key(&text_of(&r), &key);

    client.cancel().await.unwrap();
    let stderr = tokio::time::timeout(Duration::from_secs(20), stderr_task)
        .await
        .expect("server exits when stdin closes")
        .unwrap();
    assert!(
        stderr.contains("orteam mcp running on stdio (write tools: disabled)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("OpenRouter request"),
        "debug logs were captured: {stderr}"
    );
    assert_no_key(&stderr, &key);
}

#[tokio::test]
async fn stdio_binary_announces_write_mode() {
    let sim = orteam_test_support::spawn_sim().await;
    let key = sim.provisioning_key().to_owned();
    let (transport, stderr) =
        TokioChildProcess::builder(command(&sim.base_url(), Some(&key), Some("TRUE")))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let mut stderr = stderr.unwrap();
    let client = ().serve(transport).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 26);
    let r = client
        .call_tool(call("or_key_create", json!({ "name": "from-stdio" })))
        .await
        .unwrap();
    assert!(
        text_of(&r).starts_with("Created key **from-stdio**"),
        "{}",
        text_of(&r)
    );
    client.cancel().await.unwrap();
    let mut s = String::new();
    tokio::time::timeout(Duration::from_secs(20), stderr.read_to_string(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.contains("orteam mcp running on stdio (write tools: ENABLED)"),
        "{s}"
    );
    assert_no_key(&s, &key);
}

#[tokio::test]
async fn stdio_binary_without_a_key_explains_how_to_set_it() {
    let out = command("http://127.0.0.1:9/api/v1", None, None)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "stdout is the protocol channel");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OPENROUTER_PROVISIONING_KEY is not set"),
        "{err}"
    );
    assert!(err.contains("export OPENROUTER_PROVISIONING_KEY="), "{err}");
}
