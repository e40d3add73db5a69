//! Several processes: two gateways hammering one PostgreSQL budget, and kill -9 mid-load.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;

use orteam_core::{ControllableClock, Money, Window};
use orteam_ledger::{BudgetScope, LedgerOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::*;

fn probe(url: &str, member: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orteam-ledger-probe"))
        .args(["--url", url, "--member", member])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn probe")
}

/// Acknowledged ids and costs from a probe's stdout, read to the end.
async fn acks(child: &mut Child) -> (Vec<(String, Money)>, bool) {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let mut acks = Vec::new();
    let mut done = false;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, cost) = rest.split_once(' ').unwrap();
            acks.push((id.to_owned(), m(cost)));
        } else if line == "DONE" {
            done = true;
        }
    }
    (acks, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_never_overspend() {
    let db = TestDb::new(Backend::Postgres).await;
    let admin = db.open(LedgerOptions::admin()).await;
    seed(&admin, &[("alice", "core"), ("bob", "core")]).await;
    admin
        .set_budget(BudgetScope::Member, "alice", Window::Daily, m("20"))
        .await
        .unwrap();
    // Bob may take at most 10 of the team's 30, so alice's 20 are hers whichever probe starts
    // first. (With bob unbounded, a bob probe that opened its ledger first could spend the
    // whole team budget before the alice probes had started — under CPU load process start-up
    // takes long enough — and the alice probes were then denied at once.)
    admin
        .set_budget(BudgetScope::Member, "bob", Window::Daily, m("10"))
        .await
        .unwrap();
    admin
        .set_budget(BudgetScope::Team, "core", Window::Daily, m("30"))
        .await
        .unwrap();
    admin
        .set_budget(BudgetScope::Org, "acme", Window::Monthly, m("1000"))
        .await
        .unwrap();
    let mut p1 = probe(
        &db.url,
        "alice",
        &["--tasks", "16", "--until-denied", "--prefix", "p1"],
    );
    let mut p2 = probe(
        &db.url,
        "alice",
        &["--tasks", "16", "--until-denied", "--prefix", "p2"],
    );
    let mut p3 = probe(
        &db.url,
        "bob",
        &["--tasks", "16", "--until-denied", "--prefix", "p3"],
    );
    let ((a1, d1), (a2, d2), (a3, d3)) = tokio::join!(acks(&mut p1), acks(&mut p2), acks(&mut p3));
    for p in [&mut p1, &mut p2, &mut p3] {
        assert!(p.wait().await.unwrap().success());
    }
    assert!(d1 && d2 && d3, "probes shut down gracefully");
    let alice: Money = a1.iter().chain(&a2).map(|(_, c)| *c).sum();
    let team: Money = alice.plus(a3.iter().map(|(_, c)| *c).sum()).unwrap();
    assert!(alice <= m("20"), "member overspend: {alice}");
    assert!(team <= m("30"), "team overspend: {team}");
    // Which alice process wins more of her budget depends on scheduling; that they spent it is
    // what matters.
    assert!(
        !a1.is_empty() || !a2.is_empty(),
        "the probes spent alice's budget"
    );

    // The database agrees, and no lease is left behind after graceful shutdowns.
    let rows = db
        .raw("SELECT scope, scope_id, win, spent::text, leased::text FROM budget_windows WHERE scope_id IN ('alice','core') AND win = 'daily'")
        .await;
    for r in &rows {
        let spent = m(r[3].as_deref().unwrap());
        let leased = m(r[4].as_deref().unwrap());
        assert_eq!(leased, Money::ZERO, "lease left: {r:?}");
        let want = if r[1].as_deref() == Some("alice") {
            alice
        } else {
            team
        };
        assert_eq!(spent, want, "{r:?}");
    }
    let events = admin.events(Default::default()).await.unwrap();
    let ids: HashSet<_> = events.iter().map(|e| e.usage.request_id.clone()).collect();
    assert_eq!(ids.len(), a1.len() + a2.len() + a3.len());
    admin.shutdown().await.unwrap();
}

/// kill -9 mid-load: every acknowledged event is durable; the reopened ledger serves again and
/// (PostgreSQL) the dead instance's leases are reclaimed.
async fn kill_9_keeps_acknowledged_events(b: Backend) {
    kill_9_mid_load(b, false).await;
}

/// The same with settles acknowledged once journaled (the gateway's path): the restart replays
/// the journal, so nothing acknowledged is missing and the spend counters match the events.
async fn kill_9_keeps_journaled_events(b: Backend) {
    kill_9_mid_load(b, true).await;
}

async fn kill_9_mid_load(b: Backend, journaled: bool) {
    let db = TestDb::new(b).await;
    let admin = db.open(LedgerOptions::admin()).await;
    seed(&admin, &[("alice", "core")]).await;
    admin
        .set_budget(BudgetScope::Member, "alice", Window::Monthly, m("100000"))
        .await
        .unwrap();
    admin.shutdown().await.unwrap();
    drop(admin);

    let mut args = vec!["--tasks", "8"];
    if journaled {
        args.push("--journaled");
    }
    let mut child = probe(&db.url, "alice", &args);
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let mut acked = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.strip_prefix("ACK ") {
            acked.push(rest.split_once(' ').unwrap().0.to_owned());
            if acked.len() >= if journaled { 3000 } else { 300 } {
                break;
            }
        }
    }
    child.start_kill().unwrap(); // SIGKILL
    // Acks already written to the pipe before the kill are acknowledged too.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(rest) = line.strip_prefix("ACK ") {
            acked.push(rest.split_once(' ').unwrap().0.to_owned());
        }
    }
    let status = child.wait().await.unwrap();
    assert!(!status.success());

    if journaled && b == Backend::Sqlite {
        // With no gateway running, even an admin process (a report) sees every acknowledged
        // event: it commits what the dead server left in its journal.
        let admin = db.open(LedgerOptions::admin()).await;
        let events = admin.events(Default::default()).await.unwrap();
        let have: HashSet<_> = events.iter().map(|e| e.usage.request_id.as_str()).collect();
        let missing = acked
            .iter()
            .filter(|id| !have.contains(id.as_str()))
            .count();
        assert_eq!(
            missing, 0,
            "acknowledged events missing for an admin reader"
        );
        admin.shutdown().await.unwrap();
    }

    // Reopen as a server (on SQLite this also proves the serve lock died with the process),
    // an hour later so that the dead instance's PostgreSQL leases have expired.
    let clock = Arc::new(ControllableClock::new());
    clock.set_offset(chrono::TimeDelta::hours(1));
    let ledger = db.open(opts_with_clock(&clock)).await;
    let reclaimed = ledger.reclaim_stale().await.unwrap();
    if b == Backend::Postgres {
        // (The background maintenance may have reclaimed them first; either way none is left.)
        println!("reclaimed {} lease rows", reclaimed.leases);
        let rows = db.raw("SELECT leased::text FROM budget_windows").await;
        assert!(
            rows.iter().all(|r| m(r[0].as_deref().unwrap()).is_zero()),
            "{rows:?}"
        );
    }
    let events = ledger.events(Default::default()).await.unwrap();
    let have: HashSet<_> = events.iter().map(|e| e.usage.request_id.as_str()).collect();
    for id in &acked {
        assert!(have.contains(id.as_str()), "acknowledged event {id} lost");
    }
    // Spend counters match the events exactly.
    let total: Money = events.iter().map(|e| e.usage.cost).sum();
    let rows = db
        .raw("SELECT spent FROM budget_windows WHERE scope = 'member' AND scope_id = 'alice' AND win = 'monthly'")
        .await;
    let counted: Money = rows.iter().map(|r| m(r[0].as_deref().unwrap())).sum();
    assert_eq!(counted, total);
    let r = ledger.reserve("alice", m("1")).await.unwrap();
    r.release();
    ledger.shutdown().await.unwrap();
}

backend_tests!(kill_9_keeps_acknowledged_events);
backend_tests!(kill_9_keeps_journaled_events);
