//! The real coding agents, unmodified, through `orteam serve`'s pipeline: Claude Code
//! (`claude -p`, Anthropic Messages) and Codex (`codex exec`, OpenAI Responses), installed from
//! npm by `scripts/agents-env.sh`, run offline against loopback by the drivers in
//! `tests/agents/`. The ledger's spend equals what the simulator billed, exactly, and a member
//! whose budget is spent is refused once, in the form each agent stops on (no retry loop).

use std::process::Output;

use orteam_core::{Money, Window};
use orteam_ledger::BudgetScope;
use orteam_test_support::{Backend, TestGateway, backend_tests};

use crate::routes::settled_events;
use crate::support::*;

backend_tests!(claude_code_and_codex_work_through_the_gateway);

/// Runs `tests/agents/<driver>` with the agents' bin directory and `args`.
async fn agent(driver: &str, args: &[&str]) -> Output {
    let bin = std::env::var("ORTEAM_TEST_AGENTS_BIN").unwrap_or_else(|_| {
        panic!(
            "ORTEAM_TEST_AGENTS_BIN is not set: run ./scripts/test, or point it at what \
             `bash scripts/agents-env.sh` prints"
        )
    });
    let script = format!("{}/tests/agents/{driver}", env!("CARGO_MANIFEST_DIR"));
    tokio::process::Command::new("bash")
        .arg(script)
        .arg(bin)
        .args(args)
        .env("ORTEAM_AGENT_TIMEOUT", "90")
        .output()
        .await
        .expect("run the agent driver")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn claude_code_and_codex_work_through_the_gateway(backend: Backend) {
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "carol", Window::Daily, "0.0000001")
        .start()
        .await;
    let root = tg.root_url();

    // Claude Code: one-shot prompt, streamed Messages with its tools, system prompt and
    // extended thinking; settled from /generation (a Messages stream carries no cost).
    let out = agent(
        "claude_code.sh",
        &[
            &root,
            tg.key("alice"),
            "anthropic/claude-haiku-4.5",
            "Say hello [[sim:tokens=12]]",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    // Half of the 12 tokens are thinking (the simulator's rule when thinking is on).
    let answer = String::from_utf8_lossy(&out.stdout);
    assert_eq!(answer.split_whitespace().count(), 6, "{}", text(&out));
    assert_eq!(tg.sim.request_count("POST", "/api/v1/messages"), 1);

    // Codex: one-shot prompt, streamed Responses.
    let out = agent(
        "codex.sh",
        &[
            &tg.base_url,
            tg.key("alice"),
            "openai/gpt-4o-mini",
            "Say hello [[sim:tokens=8]]",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(tg.sim.request_count("POST", "/api/v1/responses"), 1);

    // Every dollar both agents spent is in the ledger, exactly what upstream billed.
    let events = settled_events(&tg, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let spent: Money = events.iter().map(|e| e.usage.cost).sum();
    assert!(spent > Money::ZERO);
    let mut routes: Vec<_> = events.iter().map(|e| e.usage.route.as_str()).collect();
    routes.sort_unstable();
    assert_eq!(
        routes,
        ["messages", "responses"],
        "what each agent cost, by route"
    );
    assert_eq!(spent, sim_total_usage(&tg).await);

    // A member with no budget left: each agent is refused once and stops.
    let out = agent(
        "claude_code.sh",
        &[&root, tg.key("carol"), "openai/gpt-4o-mini", "Say hello"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("402"),
        "{}",
        text(&out)
    );
    let out = agent(
        "codex.sh",
        &[
            &tg.base_url,
            tg.key("carol"),
            "openai/gpt-4o-mini",
            "Say hello",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Quota exceeded"),
        "{}",
        text(&out)
    );
    let refused = tg
        .gateway()
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("orteam_errors_total{code=\"budget_exceeded\"}"))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(refused, ["2"], "one refusal per agent, no retry loop");
    assert_eq!(tg.sim.request_count("POST", "/api/v1/messages"), 1);
    assert_eq!(tg.sim.request_count("POST", "/api/v1/responses"), 1);
    assert_eq!(
        all_events(&tg).await.len(),
        2,
        "nothing charged for refusals"
    );
}
