//! A lead's first hour at the terminal: destructive commands ask first, and a `team apply`
//! interrupted by Ctrl-C stops between two changes and is finished by the next apply.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Backend, Env, bin, both_backends, read_secrets};

/// Gateway members (ledger only) and direct members (each a `POST /keys` at OpenRouter).
const TEAM: &str = r#"
[org]
name = "acme"

[tiers.basic]
models = ["openai/gpt-4o-mini"]

[teams.backend]

[[members]]
id = "alice"
team = "backend"
tier = "basic"

[[members]]
id = "bob"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "5.00", limit_reset = "monthly" }

[[members]]
id = "carol"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "5.00", limit_reset = "monthly" }

[[members]]
id = "dave"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "5.00", limit_reset = "monthly" }

[[members]]
id = "erin"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "5.00", limit_reset = "monthly" }
"#;

const DIRECT_MEMBERS: usize = 4;

both_backends!(
    ctrl_c_stops_apply_between_changes_and_apply_again_finishes,
    revoke_asks_on_a_terminal_and_refuses_without_one,
);

async fn ctrl_c_stops_apply_between_changes_and_apply_again_finishes(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(TEAM);
    // OpenRouter is slow to create keys: each direct member's change takes a second.
    env.sim.set_faults(vec![orteam_test_support::FaultRule {
        method: Some("POST".into()),
        path_prefix: Some("/api/v1/keys".into()),
        times: None,
        fault: orteam_test_support::Fault::Latency { ms: 1000 },
    }]);
    let secrets = env.path("secrets.jsonl");
    let mut child = env
        .command(
            &bin(),
            &[
                "team",
                "apply",
                "--yes",
                "--secrets-out",
                secrets.to_str().unwrap(),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdout = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut BufReader::new(stdout), &mut s).await;
        s
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // The first change made (reported on stderr) is the moment to press Ctrl-C.
    loop {
        let line = stderr
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("apply ended before any change:\n{}", seen.join("\n")));
        let first = line.starts_with("applied:");
        seen.push(line);
        if first {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    while let Some(line) = stderr.next_line().await.unwrap() {
        seen.push(line);
    }
    let status = child.wait().await.unwrap();
    let stdout = stdout.await.unwrap();
    let stderr = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    let message = seen
        .iter()
        .find(|l| l.starts_with("interrupted after "))
        .unwrap_or_else(|| panic!("no interruption message:\n{stderr}"));
    assert!(
        message.ends_with("; nothing half-done; run `orteam team apply` again to finish"),
        "{message}"
    );
    let counts: Vec<usize> = message
        .trim_start_matches("interrupted after ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    let (done, total) = (counts[0], counts[1]);
    assert!(done >= 1 && done < total, "{message}");
    let applied = seen.iter().filter(|l| l.starts_with("applied:")).count();
    assert_eq!(applied, done, "every change reported is counted:\n{stderr}");
    // Every key made so far was delivered and recorded: nothing half-done.
    let delivered = read_secrets(&secrets);
    let at_openrouter = env.sim_keys().await;
    assert_eq!(
        delivered.iter().filter(|s| s.1 == "direct").count(),
        at_openrouter.len()
    );
    assert!(at_openrouter.len() < DIRECT_MEMBERS, "{stderr}");

    // The plan shows what is left; a second apply finishes it.
    let plan = env.orteam(&["team", "plan"]).await;
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(!plan.stdout.contains("orphan"), "{plan:?}");
    env.sim.clear_faults();
    let again = env
        .orteam(&[
            "team",
            "apply",
            "--yes",
            "--secrets-out",
            secrets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(env.orteam(&["team", "plan"]).await.code, 0);
    // One key per direct member at OpenRouter, generation 1 each: no duplicates, no orphans.
    let mut names: Vec<String> = env.sim_keys().await.into_iter().map(|k| k.name).collect();
    names.sort();
    assert_eq!(
        names,
        ["bob", "carol", "dave", "erin"]
            .map(|m| format!("orteam:acme:{m}:1"))
            .to_vec()
    );
    let delivered = read_secrets(&secrets);
    assert_eq!(delivered.len(), DIRECT_MEMBERS + 1, "{delivered:?}");
    let ledger = env.ledger().await;
    ledger.reload().await.unwrap();
    assert_eq!(
        ledger
            .directory()
            .members
            .values()
            .filter(|m| m.state != orteam_ledger::MemberState::Removed)
            .count(),
        5
    );
    ledger.shutdown().await.unwrap();
}

/// Runs `orteam ARGS` on a terminal (a pty made by `script`), typing `answer`.
async fn on_a_terminal(env: &Env, args: &str, answer: &str) -> crate::support::Out {
    let line = format!("'{}' {args}", bin().display());
    let mut child = env
        .command(
            std::path::Path::new("script"),
            &["-q", "-e", "-c", &line, "/dev/null"],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, answer.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    drop(stdin);
    crate::support::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn revoke_asks_on_a_terminal_and_refuses_without_one(backend: Backend) {
    let env = Env::new(backend).await;
    env.write_team(TEAM);
    let secrets = env.path("secrets.jsonl");
    let out = env
        .orteam(&[
            "team",
            "apply",
            "--yes",
            "--secrets-out",
            secrets.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let members = || async {
        let ledger = env.ledger().await;
        ledger.reload().await.unwrap();
        let n = ledger
            .directory()
            .members
            .values()
            .filter(|m| m.state != orteam_ledger::MemberState::Removed)
            .count();
        ledger.shutdown().await.unwrap();
        n
    };

    // No terminal, no --yes: one clear line, nothing revoked.
    let out = env.orteam(&["member", "revoke", "alice"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.error_line(),
        "error: refusing to revoke alice without --yes: stdin is not a terminal, so nobody can confirm"
    );
    assert_eq!(members().await, 5);

    // On a terminal: asked, and "n" changes nothing.
    let out = on_a_terminal(&env, "member revoke alice", "n\n").await;
    assert!(
        out.stdout
            .contains("Revoke alice's key(s) and remove the member?")
            && out.stdout.contains("[y/N]"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Nothing changed."), "{out:?}");
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(members().await, 5);

    // "y" revokes.
    let out = on_a_terminal(&env, "member revoke bob", "y\n").await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("revoked bob: member removed"),
        "{out:?}"
    );
    assert_eq!(members().await, 4);

    // --yes asks nothing.
    let out = env.orteam(&["member", "revoke", "alice", "--yes"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("[y/N]"), "{out:?}");
    assert_eq!(members().await, 3);
    // The same rule for admin tokens.
    let out = env.orteam(&["token", "revoke", "nobody"]).await;
    assert!(
        out.error_line()
            .starts_with("error: refusing to revoke token nobody without --yes"),
        "{out:?}"
    );
}
