//! One module per command.

pub mod sim;
