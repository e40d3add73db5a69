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
