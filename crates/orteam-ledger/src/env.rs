//! Every environment variable the ledger reads, in one place.

/// Base64 of the 32-byte AES-256-GCM key that encrypts upstream key secrets at rest.
pub const ORTEAM_SECRET_KEY: &str = "ORTEAM_SECRET_KEY";

/// PostgreSQL URL the integration tests use (default `postgres://postgres@127.0.0.1:5432/test`).
pub const ORTEAM_TEST_DATABASE_URL: &str = "ORTEAM_TEST_DATABASE_URL";
