//! One module per command.

pub mod mcp;
pub mod sim;
