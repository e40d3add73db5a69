//! Versioned migrations: SQL files embedded at build time (`migrations/sqlite/`,
//! `migrations/postgres/`), applied in order inside one transaction each and recorded in
//! `schema_migrations` by each backend's runner (`sqlite/migrate.rs`, `postgres/migrate.rs`).
//! Opening a ledger applies whatever is missing, so every process runs on the schema it was
//! built for; a database a newer orteam migrated is refused ([`LedgerError::SchemaTooNew`]).

use crate::error::LedgerError;

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
        version: 5,
        name: "routing_policy",
        sql: include_str!("../migrations/sqlite/0005_routing_policy.sql"),
    },
    Migration {
        version: 7,
        name: "refusals",
        sql: include_str!("../migrations/sqlite/0007_refusals.sql"),
    },
    Migration {
        version: 8,
        name: "access",
        sql: include_str!("../migrations/sqlite/0008_access.sql"),
    },
    Migration {
        version: 9,
        name: "reconciled",
        sql: include_str!("../migrations/sqlite/0009_reconciled.sql"),
    },
    Migration {
        version: 11,
        name: "gateway_keys",
        sql: include_str!("../migrations/sqlite/0011_gateway_keys.sql"),
    },
    Migration {
        version: 12,
        name: "event_latency_us",
        sql: include_str!("../migrations/sqlite/0012_event_latency_us.sql"),
    },
    Migration {
        version: 13,
        name: "token_names",
        sql: include_str!("../migrations/sqlite/0013_token_names.sql"),
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
        version: 4,
        name: "routing_policy",
        sql: include_str!("../migrations/postgres/0004_routing_policy.sql"),
    },
    Migration {
        version: 5,
        name: "inflight",
        sql: include_str!("../migrations/postgres/0005_inflight.sql"),
    },
    Migration {
        version: 6,
        name: "refusals",
        sql: include_str!("../migrations/postgres/0006_refusals.sql"),
    },
    Migration {
        version: 7,
        name: "access",
        sql: include_str!("../migrations/postgres/0007_access.sql"),
    },
    Migration {
        version: 8,
        name: "reconciled",
        sql: include_str!("../migrations/postgres/0008_reconciled.sql"),
    },
    Migration {
        version: 10,
        name: "gateway_keys",
        sql: include_str!("../migrations/postgres/0010_gateway_keys.sql"),
    },
    Migration {
        version: 11,
        name: "event_latency_us",
        sql: include_str!("../migrations/postgres/0011_event_latency_us.sql"),
    },
    Migration {
        version: 12,
        name: "token_names",
        sql: include_str!("../migrations/postgres/0012_token_names.sql"),
    },
];

/// The newest schema version this build knows for a backend's migrations.
pub fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database whose schema is newer than `migrations` (a newer orteam migrated it).
pub(crate) fn refuse_newer(current: i64, migrations: &[Migration]) -> Result<(), LedgerError> {
    let supported = latest(migrations);
    if current > supported {
        return Err(LedgerError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    Ok(())
}

/// Whether a database at schema `found` is exactly what this build migrates to.
pub(crate) fn check_current(found: i64, migrations: &[Migration]) -> Result<(), LedgerError> {
    refuse_newer(found, migrations)?;
    let supported = latest(migrations);
    if found < supported {
        return Err(LedgerError::SchemaBehind { found, supported });
    }
    Ok(())
}

/// The table every runner records applied migrations in.
pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";
