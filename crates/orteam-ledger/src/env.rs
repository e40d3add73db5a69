//! The environment variables the ledger reads (named once, in `orteam_core::env`).

pub use orteam_core::env::{ORTEAM_SECRET_KEY, ORTEAM_TEST_DATABASE_URL};
