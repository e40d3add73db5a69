//! Versioned migrations: SQL files embedded at build time (`migrations/sqlite/`,
//! `migrations/postgres/`), applied in order inside one transaction each and recorded in
//! `schema_migrations` by each backend's runner (`sqlite/migrate.rs`, `postgres/migrate.rs`).
//! Opening a ledger applies whatever is missing, so every process runs on the schema it was
//! built for.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "insight",
        sql: include_str!("../migrations/sqlite/0002_insight.sql"),
    },
    Migration {
        version: 3,
        name: "event_outcome_check",
        sql: include_str!("../migrations/sqlite/0003_event_outcome_check.sql"),
    },
    Migration {
        version: 4,
        name: "event_route",
        sql: include_str!("../migrations/sqlite/0004_event_route.sql"),
    },
    Migration {
        version: 8,
        name: "access",
        sql: include_str!("../migrations/sqlite/0008_access.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "insight",
        sql: include_str!("../migrations/postgres/0002_insight.sql"),
    },
    Migration {
        version: 3,
        name: "event_route",
        sql: include_str!("../migrations/postgres/0003_event_route.sql"),
    },
    Migration {
        version: 7,
        name: "access",
        sql: include_str!("../migrations/postgres/0007_access.sql"),
    },
];

/// The table every runner records applied migrations in.
pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";
