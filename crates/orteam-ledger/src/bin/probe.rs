//! orteam-ledger-probe: a small process for multi-process tests and benchmarks.
//!
//! `orteam-ledger-probe --url URL --member ID [--tasks N] [--count N] [--max-cents N]
//!  [--prefix P] [--until-denied] [--journaled]`
//!
//! Runs `tasks` concurrent loops of reserve(random cost) → settle(random actual ≤ cost) and
//! prints `ACK <request id> <cost>` on stdout after each settle has returned (the event is then
//! committed, or with `--journaled` appended to the write-ahead journal). With `--until-denied` a loop stops at its first budget denial. Prints `DONE` after
//! a graceful shutdown.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use orteam_core::Money;
use orteam_ledger::{Ledger, LedgerError, LedgerOptions, Usage};
use rand::Rng;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut url = String::new();
    let mut member = String::new();
    let mut tasks = 8usize;
    let mut count = u64::MAX;
    let mut max_cents = 50i64;
    let mut prefix = uuid::Uuid::new_v4().simple().to_string();
    let mut until_denied = false;
    let mut journaled = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next().unwrap(),
            "--member" => member = args.next().unwrap(),
            "--tasks" => tasks = args.next().unwrap().parse().unwrap(),
            "--count" => count = args.next().unwrap().parse().unwrap(),
            "--max-cents" => max_cents = args.next().unwrap().parse().unwrap(),
            "--prefix" => prefix = args.next().unwrap(),
            "--until-denied" => until_denied = true,
            "--journaled" => journaled = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let ledger = Ledger::open(&url, LedgerOptions::serving())
        .await
        .expect("open ledger");
    println!("READY {}", ledger.instance_id());
    let mut handles = Vec::new();
    for t in 0..tasks {
        let ledger = ledger.clone();
        let member = member.clone();
        let prefix = prefix.clone();
        handles.push(tokio::spawn(async move {
            let mut i = 0u64;
            while i < count {
                i += 1;
                let cents = rand::rng().random_range(1..=max_cents);
                match ledger.reserve(&member, Money::from_cents(cents)).await {
                    Ok(r) => {
                        let actual = Money::from_cents(rand::rng().random_range(0..=cents));
                        let id = format!("{prefix}-{t}-{i}");
                        let usage = Usage::new(id.clone(), "probe/model", actual);
                        if journaled {
                            r.settle_journaled(usage).await.expect("settle");
                        } else {
                            r.settle(usage).await.expect("settle");
                        }
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {id} {actual}").unwrap();
                        out.flush().unwrap();
                    }
                    Err(LedgerError::BudgetExceeded(_)) if until_denied => break,
                    Err(LedgerError::BudgetExceeded(_)) => tokio::task::yield_now().await,
                    Err(e) => panic!("reserve failed: {e}"),
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    ledger.shutdown().await.expect("shutdown");
    println!("DONE");
}
