//! orteam-insight end to end: a gateway in front of the simulator, 30 simulated days of traffic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod alerts;
mod anomaly;
mod reconcile;
mod report;
mod route;
mod support;
