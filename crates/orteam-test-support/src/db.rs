//! A database for one test: a temp SQLite file, or a fresh PostgreSQL schema (dropped at the
//! end). PostgreSQL tests are never skipped: if no server answers, the test fails and says so.

use orteam_ledger::{Ledger, LedgerOptions};

/// Which ledger backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiates each named `async fn(Backend)` as a `sqlite` and a `postgres` test.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// `ORTEAM_TEST_DATABASE_URL`, else the local default.
pub fn pg_base_url() -> String {
    std::env::var(orteam_core::env::ORTEAM_TEST_DATABASE_URL)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// See the module docs.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub schema: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("orteam.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    schema: None,
                    dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let base = pg_base_url();
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let client = pg_connect(&base).await;
                client
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb {
                    backend,
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                    schema: Some(schema),
                    dir: None,
                }
            }
        }
    }

    /// The temp directory of a SQLite database (a place for other test files too).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    pub fn sqlite_path(&self) -> String {
        self.url.trim_start_matches("sqlite://").to_owned()
    }

    pub async fn open(&self, opts: LedgerOptions) -> Ledger {
        Ledger::open(&self.url, opts).await.expect("open ledger")
    }

    /// Rows of a raw SQL query, every column rendered as text (for at-rest checks).
    pub async fn raw(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(self.sqlite_path()).expect("open sqlite");
                let mut stmt = conn.prepare(sql).expect("prepare");
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
                .expect("query")
                .collect::<Result<Vec<_>, _>>()
                .expect("rows")
            }
            Backend::Postgres => {
                let client = pg_connect(&self.url).await;
                let rows = client.simple_query(sql).await.expect("query");
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
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
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
             run ./scripts/test (it starts one) or set ORTEAM_TEST_DATABASE_URL."
        ),
    }
}
