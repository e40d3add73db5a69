//! A standalone simulator for demos and benchmarks (the real CLI is `orteam sim`).
//!
//! ```text
//! cargo run --release -p orteam-sim --example sim_server -- [--port N] [--threads N] [--credits USD]
//! ```
//! Prints `BASE_URL=…`, `MANAGEMENT_KEY=…` and `KEY=…` (a fresh inference key) on stdout, then
//! serves until Ctrl-C. `--threads 1` (the default) runs a current-thread runtime, the fastest
//! setup on a pinned CPU.
#![allow(clippy::print_stdout)] // stdout is this program's interface

use std::io::Write;

use orteam_core::Money;
use orteam_sim::SimConfig;

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = arg("--port").map_or(Ok(0), |p| p.parse())?;
    let threads: usize = arg("--threads").map_or(Ok(1), |t| t.parse())?;
    let credits = Money::parse(&arg("--credits").unwrap_or_else(|| "1000000".into()))?;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let sim = orteam_sim::spawn_on(
            listener,
            SimConfig {
                initial_credits: credits,
                ..SimConfig::default()
            },
        )
        .await?;
        let (key, _) = sim.create_key("bench", None, None);
        let mut out = std::io::stdout().lock();
        writeln!(out, "BASE_URL={}", sim.base_url())?;
        writeln!(out, "MANAGEMENT_KEY={}", sim.provisioning_key())?;
        writeln!(out, "KEY={key}")?;
        out.flush()?;
        drop(out);
        tokio::signal::ctrl_c().await?;
        sim.shutdown().await;
        Ok(())
    })
}
