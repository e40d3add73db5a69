//! Test plumbing: a simulator, a ledger database, a temp dir and the CLI binary.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::TimeDelta;
use orteam_core::ControllableClock;
use orteam_ledger::{Ledger, LedgerOptions, SecretKey};
use orteam_openrouter::Client;
use orteam_openrouter::types::keys::Key;
use orteam_test_support::SimHandle;
use std::sync::Mutex;

use secrecy::SecretString;

pub use orteam_test_support::{Backend, TestDb};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The error line: exactly one line starting with `error:`, and it is the last.
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "want one error line, stderr:\n{}",
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().last(),
            Some(errors[0]),
            "the error must be the last line:\n{}",
            self.stderr
        );
        errors[0]
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub struct Env {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    /// Owns the database (a fresh PostgreSQL schema is dropped with it).
    _db: TestDb,
    pub secret_key: String,
    offset: AtomicI64,
    /// Everything the CLI printed, for the secret scan.
    pub transcript: Mutex<Vec<String>>,
}

pub fn bin() -> PathBuf {
    PathBuf::from(
        option_env!("CARGO_BIN_EXE_orteam")
            .map(str::to_owned)
            .or_else(|| std::env::var("NEXTEST_BIN_EXE_orteam").ok())
            .expect("the orteam binary"),
    )
}

impl Env {
    pub async fn new(backend: Backend) -> Env {
        let sim = orteam_test_support::spawn_sim().await;
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(backend).await;
        Env {
            sim,
            dir,
            db_url: db.url.clone(),
            _db: db,
            secret_key: SecretKey::generate_base64(),
            offset: AtomicI64::new(0),
            transcript: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_team(&self, text: &str) -> PathBuf {
        let p = self.path("team.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Moves the CLI's clock and the simulator's clock to `secs` from now.
    pub fn set_offset(&self, secs: i64) {
        self.offset.store(secs, Ordering::SeqCst);
        self.sim.clock().set_offset(TimeDelta::seconds(secs));
    }

    pub async fn orteam(&self, args: &[&str]) -> Out {
        self.orteam_with(args, &[], &[]).await
    }

    /// The CLI (`program`: the binary itself, or a wrapper such as `script` given the binary
    /// in `args`) with the test environment, in the test's directory, stdin closed.
    pub fn command(&self, program: &std::path::Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("ORTEAM_LOG")
            .env("OPENROUTER_BASE_URL", self.sim.base_url())
            .env("OPENROUTER_PROVISIONING_KEY", self.sim.provisioning_key())
            .env("ORTEAM_DATABASE_URL", &self.db_url)
            .env("ORTEAM_SECRET_KEY", &self.secret_key)
            .env(
                "ORTEAM_CLOCK_OFFSET_SECONDS",
                self.offset.load(Ordering::SeqCst).to_string(),
            )
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs the CLI with the test environment, plus `env`, minus `remove`.
    pub async fn orteam_with(&self, args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Out {
        let mut cmd = tokio::process::Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("ORTEAM_LOG")
            .env("OPENROUTER_BASE_URL", self.sim.base_url())
            .env("OPENROUTER_PROVISIONING_KEY", self.sim.provisioning_key())
            .env("ORTEAM_DATABASE_URL", &self.db_url)
            .env("ORTEAM_SECRET_KEY", &self.secret_key)
            .env(
                "ORTEAM_CLOCK_OFFSET_SECONDS",
                self.offset.load(Ordering::SeqCst).to_string(),
            )
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in remove {
            cmd.env_remove(k);
        }
        let out = cmd.output().await.unwrap();
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut t = self.transcript.lock().unwrap();
        t.push(out.stdout.clone());
        t.push(out.stderr.clone());
        out
    }

    /// A ledger handle on the same database, with the same clock offset.
    pub async fn ledger(&self) -> Ledger {
        let clock = ControllableClock::new();
        clock.set_offset(TimeDelta::seconds(self.offset.load(Ordering::SeqCst)));
        let clock: Arc<dyn orteam_core::Clock> = Arc::new(clock);
        Ledger::open(
            &self.db_url,
            LedgerOptions::admin()
                .with_clock(clock)
                .with_secret_key(SecretKey::from_base64(&self.secret_key).unwrap()),
        )
        .await
        .unwrap()
    }

    pub fn client(&self) -> Client {
        Client::builder()
            .base_url(self.sim.base_url())
            .api_key(SecretString::from(self.sim.provisioning_key().to_owned()))
            .cache_ttl(None)
            .build()
            .unwrap()
    }

    /// Every key at the simulator.
    pub async fn sim_keys(&self) -> Vec<Key> {
        self.client().list_all_keys(Some(true)).await.unwrap()
    }

    /// Asserts that no secret appears in anything the CLI printed.
    pub fn assert_secrets_hidden(&self, secrets: &[String]) {
        let t = self.transcript.lock().unwrap();
        for s in secrets {
            assert!(s.len() > 20, "suspiciously short secret");
            for chunk in t.iter() {
                assert!(
                    !chunk.contains(s.as_str()),
                    "a secret leaked into the output:\n{chunk}"
                );
            }
        }
    }
}

/// The secrets in a `--secrets-out` file: (member, kind, key, secret); an admin token's line
/// names the token instead of a member.
pub fn read_secrets(path: &std::path::Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            let owner = if v["kind"] == "admin_token" {
                "token"
            } else {
                "member"
            };
            (s(owner), s("kind"), s("key"), s("secret"))
        })
        .collect()
}

pub(crate) use orteam_test_support::backend_tests as both_backends;

/// A running `orteam serve` process.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl ServeProcess {
    /// Starts `orteam serve` on `db_url` in front of `sim` with the shared key `upstream`, plus
    /// `args`; waits for the URL it prints.
    pub async fn start(
        db_url: &str,
        sim: &SimHandle,
        upstream: &orteam_test_support::TestKey,
        args: &[&str],
    ) -> ServeProcess {
        let mut child = tokio::process::Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(args)
            .env_remove("ORTEAM_LOG")
            .env("OPENROUTER_BASE_URL", sim.base_url())
            .env("OPENROUTER_API_KEY", &upstream.secret)
            .env("ORTEAM_DATABASE_URL", db_url)
            .env("ORTEAM_ADMIN_TOKEN", orteam_test_support::ADMIN_TOKEN)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn orteam serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let base_url = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("orteam serve printed its URL in time")
            .unwrap()
            .expect("a URL line");
        assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
        ServeProcess { child, base_url }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> String {
        self.base_url.trim_end_matches("/v1").to_owned()
    }

    /// Sends SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}
