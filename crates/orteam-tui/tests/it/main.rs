//! `orteam top` rendering in ratatui's `TestBackend` at 80×24, compared cell by cell.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod render;
