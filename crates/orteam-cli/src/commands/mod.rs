//! One module per command.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod budget;
pub mod demo;
pub mod keys;
pub mod mcp;
pub mod me;
pub mod member;
pub mod reconcile;
pub mod report;
pub mod serve;
pub mod sim;
pub mod team;
pub mod token;
pub mod top;
