//! Test plumbing: a fresh database per test, seeding, raw access for at-rest checks.

use std::sync::Arc;

use orteam_core::{ControllableClock, Money, SharedClock};
use orteam_ledger::{Ledger, LedgerOptions, ModelAccess, NewMember, OnDisallowed, SecretKey, Tier};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiates each named `async fn(Backend)` as a `sqlite` and a `postgres` test.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(crate::support::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(crate::support::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn pg_base_url() -> String {
    std::env::var(orteam_ledger::env::ORTEAM_TEST_DATABASE_URL)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database for one test: a temp SQLite file or a fresh PostgreSQL schema (dropped at the end).
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("orteam.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    schema: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = pg_base_url();
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let client = pg_connect(&base).await;
                client
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .unwrap();
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb {
                    backend,
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                    schema: Some(schema),
                    _dir: None,
                }
            }
        }
    }

    pub fn sqlite_path(&self) -> String {
        self.url.trim_start_matches("sqlite://").to_owned()
    }

    pub async fn open(&self, opts: LedgerOptions) -> Ledger {
        Ledger::open(&self.url, opts).await.unwrap()
    }

    /// Rows of a raw SQL query, every column rendered as text (for at-rest checks).
    pub async fn raw(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            let v: rusqlite::types::Value = r.get(i)?;
                            Ok(match v {
                                rusqlite::types::Value::Null => None,
                                rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                                rusqlite::types::Value::Real(f) => Some(f.to_string()),
                                rusqlite::types::Value::Text(t) => Some(t),
                                rusqlite::types::Value::Blob(b) => Some(hex::encode(b)),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
            }
            Backend::Postgres => {
                let client = pg_connect(&self.url).await;
                let rows = client.simple_query(sql).await.unwrap();
                rows.into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                        }
                        _ => None,
                    })
                    .collect()
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            let base = pg_base_url();
            // Drop in a thread with its own runtime: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok((client, conn)) =
                        tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = client
                            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Connects or fails loudly: PostgreSQL tests are never skipped.
pub async fn pg_connect(url: &str) -> tokio_postgres::Client {
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({e}). The PostgreSQL tests need a server: \
             start one (the CI script does) or set ORTEAM_TEST_DATABASE_URL."
        ),
    }
}

pub fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

pub fn test_key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32]).unwrap()
}

pub fn opts_with_clock(clock: &Arc<ControllableClock>) -> LedgerOptions {
    let c: SharedClock = clock.clone();
    LedgerOptions::serving()
        .with_clock(c)
        .with_secret_key(test_key())
}

pub fn serving() -> LedgerOptions {
    LedgerOptions::serving().with_secret_key(test_key())
}

/// org `acme` ⊃ teams `core`, `web` ⊃ members; tier `standard` (all models).
pub async fn seed(ledger: &Ledger, members: &[(&str, &str)]) {
    ledger.put_org("acme", "Acme").await.unwrap();
    ledger.put_team("core", "acme", "Core").await.unwrap();
    ledger.put_team("web", "acme", "Web").await.unwrap();
    ledger
        .put_tier(Tier {
            id: "standard".into(),
            name: "Standard".into(),
            models: ModelAccess::All,
            on_disallowed: OnDisallowed::Deny,
            ..Default::default()
        })
        .await
        .unwrap();
    for (id, team) in members {
        ledger
            .put_member(NewMember {
                id: (*id).into(),
                display_name: id.to_uppercase(),
                team_id: (*team).into(),
                tier_id: "standard".into(),
            })
            .await
            .unwrap();
    }
}
