//! Throughput of reserve + settle with durable acknowledgement: each settle returns only after
//! its event is committed (`settle`), or after it is appended to the write-ahead journal
//! (`settle_journaled`, the gateway's path; the clock stops only once the writer has committed
//! every event to the database too).
//!
//! cargo run --release -p orteam-ledger --example ledger_throughput -- [sqlite|postgres|all|journal] [events]
//!
//! PostgreSQL uses ORTEAM_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) in a
//! fresh schema that is dropped afterwards. ORTEAM_BENCH_PG_ASYNC_COMMIT=1 measures the writer
//! with `synchronous_commit=off` (`LedgerOptions::postgres_synchronous_commit`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

// The allocator the `orteam` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use orteam_core::{Money, Window};
use orteam_ledger::{
    BudgetScope, Ledger, LedgerOptions, ModelAccess, NewMember, OnDisallowed, Tier, Usage,
};

async fn setup(url: &str) -> Ledger {
    let mut opts = LedgerOptions::serving();
    opts.postgres_synchronous_commit = std::env::var_os("ORTEAM_BENCH_PG_ASYNC_COMMIT").is_none();
    let l = Ledger::open(url, opts).await.unwrap();
    l.put_org("org", "Org").await.unwrap();
    l.put_team("team", "org", "Team").await.unwrap();
    l.put_tier(Tier {
        id: "t".into(),
        name: "T".into(),
        models: ModelAccess::All,
        on_disallowed: OnDisallowed::Deny,
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..8 {
        l.put_member(NewMember {
            id: format!("m{i}"),
            display_name: format!("M{i}"),
            team_id: "team".into(),
            tier_id: "t".into(),
        })
        .await
        .unwrap();
        l.set_budget(
            BudgetScope::Member,
            &format!("m{i}"),
            Window::Daily,
            Money::from_cents(100_000_000),
        )
        .await
        .unwrap();
    }
    l.set_budget(
        BudgetScope::Team,
        "team",
        Window::Monthly,
        Money::from_cents(1_000_000_000),
    )
    .await
    .unwrap();
    l.set_budget(
        BudgetScope::Org,
        "org",
        Window::Monthly,
        Money::from_cents(1_000_000_000),
    )
    .await
    .unwrap();
    l
}

async fn run(label: &str, url: &str, tasks: usize, events: usize, journaled: bool) {
    let ledger = setup(url).await;
    let per_task = events / tasks;
    let price = Money::parse("0.0000000375").unwrap();
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let ledger = ledger.clone();
        handles.push(tokio::spawn(async move {
            let member = format!("m{}", t % 8);
            for i in 0..per_task {
                let r = ledger.reserve(&member, Money::from_cents(5)).await.unwrap();
                let cost = price.times(1000 + i as u64).unwrap();
                let usage = Usage::new(format!("{t}-{i}"), "bench/model", cost);
                if journaled {
                    r.settle_journaled(usage).await.unwrap();
                } else {
                    r.settle(usage).await.unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Every event in the database, not only in the journal.
    ledger.flush().await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let n = per_task * tasks;
    println!(
        "{label:<15} tasks={tasks:<3} events={n:<7} {:>9.0} settled events/s ({:.2} s)",
        n as f64 / secs,
        secs
    );
    ledger.shutdown().await.unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("all").to_owned();
    let events: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(200_000);
    if which == "journal" {
        // Only the journaled path at 64 tasks (for profiling).
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("sqlite+journal", &url, 64, events, true).await;
        return;
    }
    if which == "sqlite" || which == "all" {
        for tasks in [1, 64, 256] {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let n = if tasks == 1 { events / 4 } else { events };
            run("sqlite", &url, tasks, n, false).await;
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            run("sqlite+journal", &url, tasks, n, true).await;
        }
    }
    if which == "postgres" || which == "all" {
        let base = std::env::var("ORTEAM_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for tasks in [1, 64, 256] {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            let n = if tasks == 1 { events / 20 } else { events / 2 };
            run("postgres", &url, tasks, n, false).await;
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}
