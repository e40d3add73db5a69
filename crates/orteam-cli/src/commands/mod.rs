//! One module per command.

pub mod budget;
pub mod keys;
pub mod mcp;
pub mod member;
pub mod serve;
pub mod sim;
pub mod team;
