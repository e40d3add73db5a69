//! Integration tests for orteam-mcp, through real MCP clients against the simulator:
//! rmcp's client over an in-process duplex transport, the stdio binary as a child process,
//! the streamable HTTP transport, and the official Python SDK.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod extend;
mod http;
mod python;
mod read_tools;
mod stdio;
mod team;
mod write_tools;
