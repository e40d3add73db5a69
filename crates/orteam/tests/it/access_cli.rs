//! Named admin tokens and the audit log through the `orteam` binary: `token create/list/revoke`,
//! the CLI acting as a token's role (`ORTEAM_TOKEN`), `audit list/verify` naming edited,
//! deleted and swapped rows on both backends, and two `orteam serve` processes on one
//! PostgreSQL appending to one chain.

use std::collections::HashMap;
use std::process::Output;

use chrono::TimeDelta;
use orteam_core::{Clock, Window};
use orteam_ledger::{BudgetScope, LedgerOptions};
use orteam_test_support::{
    ADMIN_TOKEN, Backend, TestDb, TestGateway, backend_tests, seed_directory,
};
use serde_json::{Value, json};

use crate::gateway::serve;
use crate::support::bin;

backend_tests!(
    audit_verify_names_edited_deleted_and_swapped_rows,
    tokens_and_roles_through_the_cli
);

async fn orteam(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .env("ORTEAM_DATABASE_URL", db_url)
        .env_remove("ORTEAM_LOG")
        .env_remove("ORTEAM_TOKEN")
        .env_remove("ORTEAM_CLOCK_OFFSET_SECONDS")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn raise_over_http(http: &reqwest::Client, root: &str, member: &str, amount: &str) {
    let until = (chrono::Utc::now() + TimeDelta::hours(4)).to_rfc3339();
    let r = http
        .post(format!("{root}/admin/v1/budgets/raise"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"scope": "member", "id": member, "window": "daily", "amount": amount, "until": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

async fn verify(db_url: &str) -> (bool, String, String) {
    let o = orteam(db_url, &["audit", "verify"], &[]).await;
    let (out, err) = text(&o);
    (o.status.success(), out, err)
}

async fn audit_verify_names_edited_deleted_and_swapped_rows(backend: Backend) {
    let tg = TestGateway::start(backend).await;
    for i in 1..=8 {
        raise_over_http(&tg.http, &tg.root_url(), "alice", &format!("{i}")).await;
    }
    let url = tg.db.url.clone();
    let (ok, out, err) = verify(&url).await;
    assert!(
        ok && out.contains("audit log intact: 8 entries"),
        "{out}{err}"
    );

    // Edited: one row's `after` changed.
    let original = tg.db.raw("SELECT after FROM audit_log WHERE seq = 5").await[0][0]
        .clone()
        .unwrap();
    tg.db
        .raw("UPDATE audit_log SET after = '{\"raise\":\"0.01\"}' WHERE seq = 5")
        .await;
    let (ok, out, err) = verify(&url).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("row 5: its content does not match its hash: the row was edited"),
        "{out}"
    );
    assert!(
        err.contains(
            "error: the audit log was tampered with: 1 problem in 8 entries (first at row 5)"
        ),
        "{err}"
    );
    // Put back, the chain is intact again (the check is of content, not a flag).
    tg.db
        .raw(&format!(
            "UPDATE audit_log SET after = '{original}' WHERE seq = 5"
        ))
        .await;
    assert!(verify(&url).await.0);
    // Swapped: rows 3 and 4 exchange places.
    tg.db
        .raw("UPDATE audit_log SET seq = -3 WHERE seq = 3")
        .await;
    tg.db
        .raw("UPDATE audit_log SET seq = 3 WHERE seq = 4")
        .await;
    tg.db
        .raw("UPDATE audit_log SET seq = 4 WHERE seq = -3")
        .await;
    let (ok, out, _) = verify(&url).await;
    assert!(!ok);
    assert!(
        out.contains("row 3: its prev_hash does not match row 2's hash"),
        "{out}"
    );
    assert!(out.contains("row 4:"), "{out}");
    // Deleted: row 7 removed.
    tg.db.raw("DELETE FROM audit_log WHERE seq = 7").await;
    let (ok, out, _) = verify(&url).await;
    assert!(!ok);
    assert!(
        out.contains("row 8: expected row 7 here: rows 7..7 were deleted"),
        "{out}"
    );

    // The list: table, JSON and CSV, filtered.
    let o = orteam(
        &url,
        &["audit", "list", "--action", "raise", "--format", "json"],
        &[],
    )
    .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), 7);
    assert!(
        v.iter()
            .all(|e| e["actor"] == "bootstrap" && e["target"] == "member:alice:daily")
    );
    let o = orteam(&url, &["audit", "list", "--format", "csv"], &[]).await;
    let (out, _) = text(&o);
    assert!(
        out.starts_with("seq,at,actor,action,target,before,after,source,prev_hash,hash\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 8);
    let o = orteam(&url, &["audit", "list"], &[]).await;
    let (out, _) = text(&o);
    assert!(
        out.contains("bootstrap") && out.contains("before → after"),
        "{out}"
    );
}

async fn tokens_and_roles_through_the_cli(backend: Backend) {
    // Daily budgets to raise (a raise needs a budget).
    let tg = TestGateway::builder(backend)
        .budget(BudgetScope::Member, "bob", Window::Daily, "5")
        .budget(BudgetScope::Member, "carol", Window::Daily, "5")
        .start()
        .await;
    let url = tg.db.url.clone();
    let o = orteam(
        &url,
        &[
            "token",
            "create",
            "core-lead",
            "--role",
            "team-lead",
            "--team",
            "core",
            "--max-raise",
            "5",
            "--expires",
            "90d",
        ],
        &[("USER", "ops")],
    )
    .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.starts_with("created token core-lead (team_lead) for team core, expires "),
        "{out}"
    );
    let secret = out.lines().nth(1).unwrap().trim().to_owned();
    assert!(secret.starts_with("ota-") && secret.len() == 56, "{secret}");
    // Stored hashed: the secret is nowhere in the database.
    let rows = tg.db.raw("SELECT * FROM admin_tokens").await;
    assert!(
        !format!("{rows:?}").contains(&secret[4..]),
        "the secret is stored"
    );
    // The lead, through the CLI: raise within the team and cap; refused outside, above, or org.
    let lead = [("ORTEAM_TOKEN", secret.as_str())];
    let cases: [(&[&str], bool, &str); 5] = [
        (
            &[
                "budget", "raise", "bob", "2", "--window", "daily", "--until", "4h",
            ],
            true,
            "",
        ),
        (
            &[
                "budget", "raise", "bob", "6", "--window", "daily", "--until", "4h",
            ],
            false,
            "error: core-lead (team_lead) may not raise a budget of team \"core\": the raise 6 is above this token's max_raise 5",
        ),
        (
            &[
                "budget", "raise", "carol", "1", "--window", "daily", "--until", "4h",
            ],
            false,
            "may not raise a budget of team \"web\"",
        ),
        (
            &["member", "revoke", "carol", "--yes"],
            false,
            "error: core-lead (team_lead) may not revoke in team \"web\": a team lead of core only",
        ),
        (&["token", "list"], false, "may not manage admin tokens"),
    ];
    for (args, allowed, message) in cases {
        let o = orteam(&url, args, &lead).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.success(), allowed, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // A viewer may read the audit log, not change anything.
    let o = orteam(
        &url,
        &["token", "create", "finance", "--role", "viewer"],
        &[],
    )
    .await;
    let viewer = text(&o).0.lines().nth(1).unwrap().trim().to_owned();
    let o = orteam(
        &url,
        &["audit", "list", "--format", "json"],
        &[("ORTEAM_TOKEN", &viewer)],
    )
    .await;
    assert!(o.status.success(), "{:?}", text(&o));
    let entries: Vec<Value> = serde_json::from_str(&text(&o).0).unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.len(), 3, "{entries:#?}");
    assert_eq!(actions[0], ("cli:ops", "token_create"));
    assert_eq!(actions[1], ("core-lead", "raise"));
    assert!(actions[2].0.starts_with("cli:") && actions[2].1 == "token_create");
    assert_eq!(entries[1]["target"], "member:bob:daily");
    let o = orteam(
        &url,
        &[
            "budget", "raise", "bob", "1", "--window", "daily", "--until", "1h",
        ],
        &[("ORTEAM_TOKEN", &viewer)],
    )
    .await;
    assert!(
        text(&o).1.contains("the viewer role is read-only"),
        "{:?}",
        text(&o)
    );
    // List (table) shows names, roles, prefixes, never secrets; revoke stops the token at once.
    let o = orteam(&url, &["token", "list"], &[]).await;
    let (out, _) = text(&o);
    assert!(
        out.contains("core-lead") && out.contains("team_lead") && out.contains("live"),
        "{out}"
    );
    assert!(!out.contains(&secret), "{out}");
    let o = orteam(&url, &["token", "revoke", "core-lead", "--yes"], &[]).await;
    assert!(o.status.success());
    let o = orteam(
        &url,
        &[
            "budget", "raise", "bob", "1", "--window", "daily", "--until", "1h",
        ],
        &lead,
    )
    .await;
    assert!(
        text(&o)
            .1
            .contains("error: ORTEAM_TOKEN: admin token \"core-lead\" has been revoked"),
        "{:?}",
        text(&o)
    );
    // The gateway's admin API refuses it too, at once.
    let r = tg
        .http
        .get(format!("{}/admin/v1/members", tg.root_url()))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _ = tg.clock.now();
}

/// Two `orteam serve` processes on one PostgreSQL, each taking 15 raises at once: the audit
/// log is one chain of 30 entries that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_postgres_form_one_chain() {
    let sim = orteam_test_support::spawn_sim().await;
    sim.add_credits(orteam_core::Money::from_cents(100_000));
    let upstream = orteam_test_support::inference_key(&sim, "shared");
    let db = TestDb::new(Backend::Postgres).await;
    let admin = db.open(LedgerOptions::admin()).await;
    seed_directory(&admin, &HashMap::new()).await;
    let a = serve(&db.url, &sim, &upstream).await;
    let b = serve(&db.url, &sim, &upstream).await;
    let http = reqwest::Client::new();
    let roots = [
        a.base_url.trim_end_matches("/v1").to_owned(),
        b.base_url.trim_end_matches("/v1").to_owned(),
    ];
    let mut tasks = Vec::new();
    for i in 0..30 {
        let http = http.clone();
        let root = roots[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            raise_over_http(&http, &root, ["alice", "bob", "carol"][i % 3], "1").await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = admin.audit_entries().await.unwrap();
    assert_eq!(entries.len(), 30);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    let (ok, out, err) = verify(&db.url).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("audit log intact: 30 entries"), "{out}");
}
