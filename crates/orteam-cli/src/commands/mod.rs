//! One module per command.

pub mod alerts;
pub mod backup;
pub mod budget;
pub mod demo;
pub mod keys;
pub mod mcp;
pub mod member;
pub mod reconcile;
pub mod report;
pub mod serve;
pub mod sim;
pub mod team;
pub mod top;
