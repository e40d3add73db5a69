//! Running orteam in production, through the real binary: readiness flips on database loss and
//! at the start of a graceful shutdown; a backup taken under load restores every event
//! acknowledged before it began; restore refuses a served ledger; serve refuses a ledger newer
//! than itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orteam_core::Money;
use orteam_ledger::{EventFilter, LedgerOptions};
use orteam_test_support::{
    Backend, CuttableProxy, TestDb, poll_until, postgres_addr, seed_directory,
};
use serde_json::{Value, json};

use crate::support::{ServeProcess, bin, both_backends};

/// `GET path` on the gateway: (status, JSON body), or `None` when it does not answer.
async fn probe(http: &reqwest::Client, root: &str, path: &str) -> Option<(u16, Value)> {
    let resp = http.get(format!("{root}{path}")).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

/// Polls `/health/ready` until its status is `want`; returns the last body.
async fn ready_becomes(http: &reqwest::Client, root: &str, want: u16) -> Value {
    match poll_until(
        || probe(http, root, "/health/ready"),
        |p| p.as_ref().is_some_and(|(s, _)| *s == want),
    )
    .await
    {
        Ok(Some((_, body))) => body,
        Ok(None) | Err(_) => panic!("/health/ready never answered {want}"),
    }
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello [[sim:tokens=5]]"}],
        "max_tokens": 40,
        "stream": stream,
    })
}

/// One chat request; its request id if the whole answer arrived.
async fn chat(http: &reqwest::Client, base: &str, key: &str, stream: bool) -> Option<String> {
    let resp = http
        .post(format!("{base}/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(stream))
        .send()
        .await
        .ok()?;
    let ok = resp.status() == 200;
    let id = resp
        .headers()
        .get("x-orteam-request-id")?
        .to_str()
        .ok()?
        .to_owned();
    let text = resp.text().await.ok()?;
    let complete = if stream {
        text.contains("data: [DONE]")
    } else {
        serde_json::from_str::<Value>(&text).is_ok()
    };
    (ok && complete).then_some(id)
}

both_backends!(readiness_follows_the_database_and_the_drain);

async fn readiness_follows_the_database_and_the_drain(backend: Backend) {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(Money::from_cents(10_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(backend).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    // PostgreSQL is reached through a proxy the test cuts (the server itself is shared).
    let proxy = match backend {
        Backend::Postgres => Some(CuttableProxy::start(postgres_addr(&db.url)).await),
        Backend::Sqlite => None,
    };
    let url = proxy
        .as_ref()
        .map_or(db.url.clone(), |p| p.postgres_url(&db.url));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orteam.toml");
    std::fs::write(
        &config,
        "[limits]\nunready_before_drain = \"5s\"\ndrain = \"5s\"\n",
    )
    .unwrap();
    let mut serve = ServeProcess::start(
        &url,
        &sim,
        &upstream,
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let root = serve.root_url();
    let http = reqwest::Client::new();

    let live = probe(&http, &root, "/health/live").await.unwrap();
    assert_eq!(live, (200, json!({"status": "live"})));
    let body = ready_becomes(&http, &root, 200).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["upstream_key"]["ok"], true, "{body}");
    assert!(body["checks"]["catalog"]["models"].as_u64().unwrap() > 0);
    assert!(
        body["checks"]["database"]["schema_version"]
            .as_i64()
            .unwrap()
            > 0
    );

    // The database goes away: not ready (and still live); it comes back: ready again.
    let sqlite_path = db.sqlite_path();
    let moved = format!("{sqlite_path}.moved");
    match &proxy {
        Some(p) => p.cut(),
        None => std::fs::rename(&sqlite_path, &moved).unwrap(),
    }
    let body = ready_becomes(&http, &root, 503).await;
    assert_eq!(body["checks"]["database"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["draining"], false, "{body}");
    assert_eq!(
        probe(&http, &root, "/health/live").await.unwrap().0,
        200,
        "liveness never depends on the database"
    );
    match &proxy {
        Some(p) => p.restore(),
        None => std::fs::rename(&moved, &sqlite_path).unwrap(),
    }
    ready_becomes(&http, &root, 200).await;
    assert!(
        chat(&http, &serve.base_url, &keys["alice"], false)
            .await
            .is_some(),
        "serves again once the database is back"
    );

    // SIGTERM: readiness turns false while requests are still accepted, then the drain.
    serve.terminate();
    let body = ready_becomes(&http, &root, 503).await;
    assert_eq!(body["checks"]["draining"], true, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
    assert!(
        chat(&http, &serve.base_url, &keys["bob"], true)
            .await
            .is_some(),
        "still served during the readiness notice"
    );
    let status = tokio::time::timeout(Duration::from_secs(60), serve.child.wait())
        .await
        .expect("the gateway exits after its drain")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let events = admin.events(EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 2, "both answered requests recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_event_acknowledged_before_it() {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(Money::from_cents(100_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(Backend::Sqlite).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    drop(admin);
    let mut serve = ServeProcess::start(&db.url, &sim, &upstream, &[]).await;
    let http = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..8usize {
        let (http, base, done, stop) = (
            http.clone(),
            serve.base_url.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        let key = keys[["alice", "bob", "carol"][i % 3]].clone();
        load.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 5_000 {
                n += 1;
                if let Some(id) = chat(&http, &base, &key, (i + n as usize).is_multiple_of(2)).await
                {
                    done.lock().unwrap().push(id);
                }
            }
        }));
    }
    poll_until(
        || async { acknowledged.lock().unwrap().len() },
        |n| *n >= 100,
    )
    .await
    .expect("load reached the gateway");

    // Everything acknowledged so far must be in the backup; load goes on while it runs.
    let before: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    let out = run(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--database-url",
        &db.url,
    ])
    .await;
    assert_eq!(out.0, 0, "{out:?}");
    assert!(out.1.contains("backed up"), "{out:?}");
    // A serving ledger always has an open journal segment: the copy replayed it.
    assert!(!out.1.contains(" 0 journal segments"), "{out:?}");
    let during = acknowledged.lock().unwrap().len();

    // A served ledger is never overwritten.
    let refused = run(&[
        "restore",
        backup.to_str().unwrap(),
        "--database-url",
        &db.url,
        "--force",
    ])
    .await;
    assert_eq!(refused.0, 1, "{refused:?}");
    assert!(refused.2.contains("being served"), "says why: {refused:?}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    serve.terminate();
    assert!(serve.child.wait().await.unwrap().success());

    let restored_url = format!("sqlite://{}", dir.path().join("restored.db").display());
    let out = run(&[
        "restore",
        backup.to_str().unwrap(),
        "--database-url",
        &restored_url,
    ])
    .await;
    assert_eq!(out.0, 0, "{out:?}");
    // Restoring over an existing ledger needs --force.
    let again = run(&[
        "restore",
        backup.to_str().unwrap(),
        "--database-url",
        &restored_url,
    ])
    .await;
    assert_eq!(again.0, 1, "{again:?}");
    assert!(again.2.contains("--force"), "{again:?}");

    let restored = orteam_ledger::Ledger::open(&restored_url, LedgerOptions::admin())
        .await
        .unwrap();
    let ids: HashSet<String> = restored
        .events(EventFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.usage.request_id)
        .collect();
    let missing: Vec<&String> = before.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing from the restored ledger: {missing:?}",
        missing.len(),
        before.len()
    );
    assert!(during > before.len(), "load went on during the backup");
}

/// Runs the CLI: (exit code, stdout, stderr).
async fn run(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(bin())
        .args(args)
        .env_remove("ORTEAM_LOG")
        .env_remove("ORTEAM_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

both_backends!(serve_refuses_a_ledger_newer_than_itself);

async fn serve_refuses_a_ledger_newer_than_itself(backend: Backend) {
    let sim = orteam_test_support::spawn_sim().await;
    let db = TestDb::new(backend).await;
    drop(db.open(LedgerOptions::admin()).await);
    let insert = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', '2030-01-01T00:00:00Z')";
    db.raw(insert).await;
    let out = tokio::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .env_remove("ORTEAM_LOG")
        .env("OPENROUTER_BASE_URL", sim.base_url())
        .env("ORTEAM_DATABASE_URL", &db.url)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("schema is at version 9999") && stderr.contains("newer than this orteam"),
        "a clear message: {stderr}"
    );
    // Nothing was changed: the future version is still the newest.
    let rows = db.raw("SELECT MAX(version) FROM schema_migrations").await;
    assert_eq!(rows[0][0].as_deref(), Some("9999"));
}

/// PostgreSQL ledgers are backed up with the database's own tools: a `pg_dump` of the ledger's
/// schema, restored with `pg_restore` into a fresh database, serves (docs/operations.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pg_dump_of_a_ledger_restores_to_one_that_serves() {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(Money::from_cents(10_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(Backend::Postgres).await;
    let admin = db.open(LedgerOptions::admin()).await;
    let keys = seed_directory(&admin, &HashMap::new()).await;
    let mut serve = ServeProcess::start(&db.url, &sim, &upstream, &[]).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for stream in [false, true, false] {
        ids.push(
            chat(&http, &serve.base_url, &keys["alice"], stream)
                .await
                .expect("answered"),
        );
    }
    serve.terminate();
    assert!(serve.child.wait().await.unwrap().success());

    let base = orteam_test_support::pg_base_url();
    let schema = db.schema.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("ledger.dump");
    let status = tokio::process::Command::new("pg_dump")
        .args([
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--schema",
            &schema,
        ])
        .arg("--file")
        .arg(&dump)
        .arg(&base)
        .status()
        .await
        .expect("pg_dump");
    assert!(status.success());
    // A fresh database of this test's own, dropped at the end.
    let restored_db = format!("orteam_restore_{}", uuid::Uuid::new_v4().simple());
    let server = orteam_test_support::pg_connect(&base).await;
    server
        .batch_execute(&format!("CREATE DATABASE {restored_db}"))
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let restored_base = format!("{prefix}/{restored_db}");
    let status = tokio::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--dbname",
            &restored_base,
        ])
        .arg(&dump)
        .status()
        .await
        .expect("pg_restore");
    assert!(status.success());
    let restored_url = format!("{restored_base}?options=-c%20search_path%3D{schema}");

    let serve = ServeProcess::start(&restored_url, &sim, &upstream, &[]).await;
    let ready = ready_becomes(&http, &serve.root_url(), 200).await;
    assert_eq!(ready["checks"]["database"]["ok"], true, "{ready}");
    assert!(
        chat(&http, &serve.base_url, &keys["bob"], false)
            .await
            .is_some(),
        "the restored ledger serves, with the same keys"
    );
    serve.terminate();
    let mut serve = serve;
    assert!(serve.child.wait().await.unwrap().success());
    let restored = orteam_ledger::Ledger::open(&restored_url, LedgerOptions::admin())
        .await
        .unwrap();
    let events = restored.events(EventFilter::default()).await.unwrap();
    for id in &ids {
        assert!(
            events.iter().any(|e| &e.usage.request_id == id),
            "{id} restored"
        );
    }
    assert_eq!(events.len(), 4);
    restored.shutdown().await.unwrap();
    drop(restored);
    server
        .batch_execute(&format!("DROP DATABASE {restored_db} WITH (FORCE)"))
        .await
        .unwrap();
}

/// The shipped systemd unit passes `systemd-analyze verify` (pointed at this build's binary).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/orteam.service"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orteam.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/orteam", bin().to_str().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}
