//! A lead's first hour, through the real binary: what is wrong is said once, where it is.
//!
//! - `serve` checks its shared key with OpenRouter (`GET /key`) before opening anything and
//!   refuses to start on a key upstream rejects, or on a management key, naming
//!   `OPENROUTER_API_KEY`; when OpenRouter does not answer it starts, says so, and stays unready.
//! - A shared key rejected while serving is a 502 in each route's own error shape naming the
//!   gateway's configuration, never upstream's "User not found"; nothing is charged.
//! - The shared key is registered in the ledger, so it is never a stray and `--prune` never
//!   deletes it.
//! - An unknown model in the team file is reported at its line and column with the nearest
//!   catalog ids.

use std::collections::HashMap;

use orteam_ledger::{EventFilter, LedgerOptions};
use orteam_test_support::{ADMIN_TOKEN, Backend, TestDb, seed_directory};
use serde_json::{Value, json};

use crate::support::{Env, Out, ServeProcess, bin, both_backends};

/// Runs `orteam serve` against `sim` with `OPENROUTER_API_KEY=key` until it exits by itself.
async fn serve_refusing(sim: &orteam_test_support::SimHandle, db_url: &str, key: &str) -> Out {
    let out = tokio::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", sim.base_url())
        .env("OPENROUTER_API_KEY", key)
        .env("ORTEAM_DATABASE_URL", db_url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("serve exits by itself")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_shared_key_upstream_rejects() {
    let sim = orteam_test_support::spawn_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orteam.db");
    let db_url = format!("sqlite://{}", db.display());
    let base = sim.base_url();

    let made_up = format!("sk-or-v1-{}", "ab".repeat(32));
    let out = serve_refusing(&sim, &db_url, &made_up).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.error_line(),
        format!(
            "error: starting the gateway: the shared key in OPENROUTER_API_KEY is unusable: \
             OpenRouter returned 401 for GET /key: User not found.; set it to an inference key of \
             the OpenRouter account at {base}"
        )
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!out.stderr.contains(&made_up), "{out:?}");

    // The simulator's management key, a newcomer's likely mistake: refused too.
    let out = serve_refusing(&sim, &db_url, sim.provisioning_key()).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.error_line(),
        format!(
            "error: starting the gateway: the shared key in OPENROUTER_API_KEY is unusable: it is \
             a management (provisioning) key, which cannot run inference; set it to an inference \
             key of the OpenRouter account at {base}"
        )
    );
    // Nothing was created.
    assert!(!db.exists(), "the ledger was created");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

both_backends!(a_shared_key_rejected_while_serving_is_the_gateways_error);

async fn a_shared_key_rejected_while_serving_is_the_gateways_error(backend: Backend) {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(orteam_core::Money::from_cents(10_000));
    let shared = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(backend).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    let key = keys["alice"].clone();
    let serve = ServeProcess::start(&db.url, &sim, &shared, &[]).await;
    let http = reqwest::Client::new();
    let root = serve.root_url();
    let chat = json!({"model": "openai/gpt-4o-mini", "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi [[sim:tokens=3]]"}]});
    let ok = http
        .post(format!("{}/chat/completions", serve.base_url))
        .bearer_auth(&key)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    let charged = orteam_test_support::wait_for_events(&admin, 1).await;
    assert_eq!(charged.len(), 1);

    // The operator's shared key dies at OpenRouter (deleted, here).
    let deleted = http
        .delete(format!("{}/keys/{}", sim.base_url(), shared.hash))
        .bearer_auth(sim.provisioning_key())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let message = "the gateway's OpenRouter key was rejected (upstream 401); the operator must \
                   check OPENROUTER_API_KEY on the gateway. Your orteam key is fine and nothing \
                   was charged";
    let routes = [
        ("/v1/chat/completions", chat.clone(), false),
        (
            "/v1/messages",
            json!({"model": "openai/gpt-4o-mini", "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}]}),
            true,
        ),
        (
            "/v1/responses",
            json!({"model": "openai/gpt-4o-mini", "max_output_tokens": 20, "input": "hi"}),
            false,
        ),
    ];
    for (path, body, anthropic) in &routes {
        let resp = http
            .post(format!("{root}{path}"))
            .bearer_auth(&key)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert!(!v.to_string().contains("User not found"), "{path}: {v}");
        if *anthropic {
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "api_error", "{v}");
            assert_eq!(v["error"]["message"], message, "{v}");
        } else {
            assert_eq!(v["error"]["code"], "upstream_key_rejected", "{path}: {v}");
            assert_eq!(v["error"]["type"], "server_error", "{path}: {v}");
            assert_eq!(v["error"]["message"], message, "{path}: {v}");
        }
    }
    // Nothing was charged; readiness says what is wrong; the metric counts it.
    let events = admin.events(EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let ready: Value = http
        .get(format!("{root}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["upstream_key"]["ok"], false, "{ready}");
    let metrics = http
        .get(format!("{root}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("orteam_errors_total{code=\"upstream_key_rejected\"} 3")),
        "{metrics}"
    );
}

both_backends!(the_gateways_shared_key_is_never_a_stray);

async fn the_gateways_shared_key_is_never_a_stray(backend: Backend) {
    let env = Env::new(backend).await;
    let shared = orteam_test_support::inference_key(&env.sim, "team-shared");
    let stray = orteam_test_support::inference_key(&env.sim, "old-script");
    env.write_team(
        "[org]\nname = \"acme\"\n\n[tiers.basic]\nmodels = [\"openai/gpt-4o-mini\"]\n\n\
         [teams.backend]\n\n[[members]]\nid = \"alice\"\nteam = \"backend\"\ntier = \"basic\"\n",
    );
    // The gateway starts with the shared key: it records it.
    let mut serve = ServeProcess::start(&env.db_url, &env.sim, &shared, &[]).await;
    serve.child.kill().await.unwrap();

    // Without OPENROUTER_API_KEY in the lead's shell: only the real stray is one.
    let out = env
        .orteam_with(
            &["team", "plan", "--format", "json"],
            &[],
            &["OPENROUTER_API_KEY"],
        )
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let strays: Vec<&str> = plan["strays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hash"].as_str().unwrap())
        .collect();
    assert_eq!(strays, [stray.hash.as_str()], "{plan}");
    let out = env
        .orteam_with(
            &["team", "apply", "--yes", "--prune"],
            &[],
            &["OPENROUTER_API_KEY"],
        )
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let hashes: Vec<String> = env.sim_keys().await.into_iter().map(|k| k.hash).collect();
    assert!(
        hashes.contains(&shared.hash),
        "--prune deleted the gateway's key"
    );
    assert!(
        !hashes.contains(&stray.hash),
        "the real stray survived --prune"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_model_is_named_where_it_is_written() {
    let env = Env::new(Backend::Sqlite).await;
    env.write_team(
        "[org]\nname = \"acme\"\n\n[tiers.basic]\nmodels = [\"openai/gpt-4o-mini\", \
         \"openai/gpt-4o-mnii\"]\n\n[teams.backend]\n\n[[members]]\nid = \"alice\"\n\
         team = \"backend\"\ntier = \"basic\"\n",
    );
    for args in [&["team", "plan"][..], &["team", "apply", "--yes"][..]] {
        let out = env.orteam(args).await;
        assert_eq!(out.code, 1, "{out:?}");
        assert_eq!(
            out.error_line(),
            "error: team.toml:5:33: unknown model \"openai/gpt-4o-mnii\"; did you mean \
             \"openai/gpt-4o-mini\"?"
        );
    }
    // Nothing was created, at OpenRouter or in the ledger.
    assert!(env.sim_keys().await.is_empty());
    let db = env.db_url.trim_start_matches("sqlite://");
    assert!(!std::path::Path::new(db).exists(), "the ledger was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_unready_when_openrouter_does_not_answer() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v1", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", &base)
        .env(
            "OPENROUTER_API_KEY",
            format!("sk-or-v1-{}", "cd".repeat(32)),
        )
        .env(
            "ORTEAM_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("orteam.db").display()),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("serve started")
        .unwrap()
        .expect("its URL");
    let root = url.trim_end_matches("/v1");
    let resp = reqwest::get(format!("{root}/health/ready")).await.unwrap();
    assert_eq!(resp.status(), 503);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["checks"]["upstream_key"]["ok"], false, "{ready}");
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot check the shared key (OPENROUTER_API_KEY) at start; starting anyway, \
             /health/ready answers 503 until upstream accepts it"
        ),
        "{stderr}"
    );
}
