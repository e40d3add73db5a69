//! `orteam demo` runs to completion and shows the planted events.

use crate::support::bin;

fn count(stdout: &str, phrase: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(phrase))
        .unwrap_or_else(|| panic!("no line with {phrase:?} in:\n{stdout}"));
    line.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_every_planted_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(bin())
        .args([
            "demo",
            "--duration",
            "5",
            "--no-wait",
            "--listen",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(dir.path())
        .env_remove("ORTEAM_LOG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(count(&stdout, "requests answered") > 20, "{stdout}");
    assert!(
        count(&stdout, "clamped to the remaining budget") > 0,
        "{stdout}"
    );
    assert!(count(&stdout, "refused: budget exhausted") > 0, "{stdout}");
    assert!(
        count(&stdout, "downgraded to an allowed model") > 0,
        "{stdout}"
    );
    assert!(count(&stdout, "spike requests") > 0, "{stdout}");
    assert!(stdout.contains("key rotated: frank"), "{stdout}");
    assert!(stdout.contains("Weekly report"), "{stdout}");
    assert!(
        stdout.contains("spike flagged as an anomaly: yes (dave)"),
        "{stdout}"
    );
    assert!(stdout.contains("member dave spent"), "{stdout}");
    assert!(stdout.contains("Dashboard: http://127.0.0.1:"), "{stdout}");
    // Carol's small daily budget is used up to the last cent, never beyond.
    let carol = stdout.lines().find(|l| l.contains("carol")).unwrap();
    assert!(carol.contains("$0.02 daily"), "{carol}");
    let spend = orteam_core::Money::parse(
        carol
            .split('┆')
            .nth(2)
            .unwrap()
            .trim()
            .trim_start_matches('$'),
    )
    .unwrap();
    assert!(
        spend <= orteam_core::Money::parse("0.02").unwrap(),
        "{carol}"
    );
    // Refusals per member, from the ledger: carol's by her daily budget, in the summary table
    // and in the weekly report.
    assert!(carol.contains("(daily budget)"), "{carol}");
    let refused_in_summary: u64 = carol
        .split('┆')
        .nth(7)
        .and_then(|c| c.trim().split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refused count in {carol:?}"));
    assert_eq!(
        refused_in_summary,
        count(&stdout, "refused: budget exhausted"),
        "every 402 the demo saw is in the ledger"
    );
    assert!(
        stdout.contains(&format!(
            "carol refused {refused_in_summary}× by the member \"carol\" daily budget"
        )),
        "{stdout}"
    );
    // The demo leaves a ledger and the team file behind.
    assert!(dir.path().join("team.toml").exists());
    assert!(dir.path().join("orteam.db").exists());
}

/// The cells of the summary table's row whose first cell is `first`.
fn row_cells(block: &str, first: &str) -> Vec<String> {
    let line = block
        .lines()
        .find(|l| {
            l.trim_start_matches(['│', ' '])
                .split('┆')
                .next()
                .is_some_and(|c| c.trim() == first)
        })
        .unwrap_or_else(|| panic!("no {first:?} row in:\n{block}"));
    line.trim_matches(['│', ' '])
        .split('┆')
        .map(|c| c.trim().to_owned())
        .collect()
}

/// Is `line` a log line (`2026-…Z  INFO target: …`)?
fn is_log_line(line: &str) -> bool {
    [" TRACE ", " DEBUG ", " INFO ", " WARN ", " ERROR "]
        .iter()
        .any(|level| line.contains(level))
}

/// Right after `orteam demo` (logging at `-v`, stdout and stderr into one file as on a
/// terminal): the summary is one block with no log line inside; the dashboard in headless
/// Chromium and `orteam top` in tmux show the summary's spend, refusals and the spike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_seen_in_the_dashboard_and_in_top() {
    let (modules, chromium) = orteam_test_support::browser_env();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.out");
    let file = std::fs::File::create(&log).unwrap();
    let mut demo = tokio::process::Command::new(bin())
        .args([
            "-v",
            "demo",
            "--duration",
            "5",
            "--listen",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(dir.path().join("files"))
        .env_remove("ORTEAM_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The demo keeps serving after its summary: wait for the summary's last line.
    let mut text = String::new();
    for _ in 0..1800 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().any(|l| l.starts_with("Files:")) {
            break;
        }
        assert!(
            demo.try_wait().unwrap().is_none(),
            "the demo ended early:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let start = text
        .find("What happened")
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    let end = start
        + text[start..]
            .find("\nFiles:")
            .unwrap_or_else(|| panic!("no end of the summary:\n{text}"));
    let block = &text[start..end];
    assert!(
        text.lines().any(is_log_line),
        "the gateway logs at -v, so the check below means something:\n{text}"
    );
    let inside: Vec<&str> = block.lines().filter(|l| is_log_line(l)).collect();
    assert!(
        inside.is_empty(),
        "log lines inside the summary: {inside:#?}\n{block}"
    );
    assert!(!text.contains('\x1b'), "no ANSI in a redirected log");

    let total = row_cells(block, "total");
    let spend = total[2].clone();
    let refused = total[7].clone();
    assert!(spend.starts_with('$') && spend != "$0.00", "{total:?}");
    assert!(refused.parse::<u64>().unwrap() > 0, "{total:?}");
    assert!(
        block.contains("spike flagged as an anomaly: yes (dave)"),
        "{block}"
    );
    let dashboard = block
        .lines()
        .find_map(|l| l.strip_prefix("Dashboard: "))
        .unwrap();
    let (url, token) = dashboard.split_once("   admin token: ").unwrap();
    let root = url.trim().trim_end_matches("/dashboard").to_owned();
    let token = token.trim().to_owned();

    // The dashboard.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/demo.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .args([&root, &token, &spend, &refused, "carol", "dave"])
        .env("ORTEAM_TEST_NODE_MODULES", &modules)
        .env("ORTEAM_TEST_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .expect("the browser test timed out")
        .unwrap_or_else(|e| {
            panic!(
                "cannot run node: {e}: {}",
                orteam_test_support::BROWSER_SETUP
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("demo dashboard ok"),
        "demo.mjs failed ({}):\n{stdout}\n{stderr}\n--- summary\n{block}",
        out.status
    );

    // `orteam top`.
    use crate::dashboards::{TmuxServer, tmux, wait_for};
    let socket = format!("orteam-demo-top-{}", std::process::id());
    let server = TmuxServer(socket.clone());
    let command = format!(
        "'{}' top --url '{root}' --interval 500ms; echo EXITED=$?; sleep 60",
        bin().display()
    );
    let out = tmux(
        &server.0,
        &[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "120",
            "-y",
            "40",
            "-e",
            &format!("ORTEAM_ADMIN_TOKEN={token}"),
            &command,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pane = wait_for(&socket, "top's totals", &format!("today {spend}")).await;
    for needle in [
        format!("{refused} refused"),
        "dave".to_owned(),
        "carol".to_owned(),
    ] {
        assert!(pane.contains(&needle), "{needle:?} missing:\n{pane}");
    }
    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    let pane = wait_for(&socket, "exit", "EXITED=").await;
    assert!(pane.contains("EXITED=0"), "{pane}");
    drop(server);

    // Ctrl-C ends the demo cleanly.
    let pid = demo.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = demo.wait().await.unwrap();
    assert!(status.success(), "{status}");
}
