//! What every command works with, resolved once by the dispatcher ([`crate::main`]) and passed
//! to the commands that need it: the process clock, the ledger opener, the OpenRouter
//! management client and the sink new secrets go to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use orteam_core::env::ORTEAM_CLOCK_OFFSET_SECONDS;
use orteam_core::{Clock, ControllableClock};
use orteam_ledger::{Ledger, LedgerError, LedgerOptions};
use orteam_openrouter::Client;
use orteam_team::TeamError;
use orteam_team::apply::{NewSecret, SecretKind, SecretSink};
use secrecy::{ExposeSecret, SecretString};

use crate::args_team::ConnectArgs;

/// The command context.
#[derive(Debug, Clone)]
pub struct Context {
    /// The process clock: the wall clock, shifted by `ORTEAM_CLOCK_OFFSET_SECONDS` (a testing
    /// aid).
    pub clock: Arc<ControllableClock>,
}

impl Context {
    /// Resolves the context from the environment.
    pub fn from_env() -> anyhow::Result<Context> {
        let clock = ControllableClock::new();
        if let Ok(v) = std::env::var(ORTEAM_CLOCK_OFFSET_SECONDS)
            && !v.trim().is_empty()
        {
            let secs: i64 = v.trim().parse().with_context(|| {
                format!("{ORTEAM_CLOCK_OFFSET_SECONDS}={v:?} is not an integer")
            })?;
            clock.set_offset(TimeDelta::seconds(secs));
        }
        Ok(Context {
            clock: Arc::new(clock),
        })
    }

    /// The context's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The clock as the ledger and the gateway take it.
    pub fn shared_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Opens the existing ledger of `connect` as an admin (not serving), on the context's clock:
    /// a SQLite file that does not exist is an error, never a new empty ledger that reads as
    /// zeros.
    pub async fn open_ledger(&self, connect: &ConnectArgs) -> anyhow::Result<Ledger> {
        self.open_ledger_with(connect, LedgerOptions::admin().existing())
            .await
    }

    /// Opens the ledger of `connect` as an admin, creating it if it does not exist (team
    /// plan/apply, which set a ledger up).
    pub async fn open_or_create_ledger(&self, connect: &ConnectArgs) -> anyhow::Result<Ledger> {
        self.open_ledger_with(connect, LedgerOptions::admin()).await
    }

    /// Opens the ledger of `connect` with `opts`, on the context's clock.
    pub async fn open_ledger_with(
        &self,
        connect: &ConnectArgs,
        opts: LedgerOptions,
    ) -> anyhow::Result<Ledger> {
        match Ledger::open(&connect.database_url, opts.with_clock(self.shared_clock())).await {
            Ok(l) => Ok(l),
            // These already name the path and what to do.
            Err(e @ (LedgerError::NoLedger { .. } | LedgerError::MissingDirectory { .. })) => {
                Err(e.into())
            }
            Err(e) => Err(anyhow::Error::from(e).context(format!(
                "opening the ledger {}",
                redact_url(&connect.database_url)
            ))),
        }
    }

    /// The OpenRouter client with the management key of `connect`; a clear error when it is
    /// missing.
    pub fn client(&self, connect: &ConnectArgs) -> anyhow::Result<Client> {
        let key = connect
            .provisioning_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(TeamError::MissingProvisioningKey)?;
        Client::builder()
            .api_key(SecretString::from(key.to_owned()))
            .cache_ttl(None)
            .build()
            .context("building the OpenRouter client")
    }

    /// Where new secrets go: the `--secrets-out` file when given, else stdout.
    pub fn sink(&self, secrets_out: Option<&Path>) -> anyhow::Result<Sink> {
        Ok(match secrets_out {
            Some(p) => Sink::File(FileSink::open(p)?),
            None => Sink::Stdout(StdoutSink { count: 0 }),
        })
    }
}

/// A URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Writes new secrets to stdout, once.
pub struct StdoutSink {
    pub count: usize,
}

impl SecretSink for StdoutSink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let kind = match s.kind {
            SecretKind::Virtual => "gateway key",
            SecretKind::Direct => "OpenRouter key",
            SecretKind::AdminToken => "admin token",
        };
        // An admin token is named itself; a key is for a member.
        let owner = match s.kind {
            SecretKind::AdminToken => "",
            SecretKind::Virtual | SecretKind::Direct => "for ",
        };
        writeln!(
            out,
            "new {kind} {owner}{} ({}): {}",
            s.member,
            s.reference,
            s.secret.expose_secret()
        )?;
        out.flush()?;
        self.count += 1;
        Ok(())
    }
}

/// Appends new secrets as JSON lines to a file created with mode 0600, synced after each.
pub struct FileSink {
    file: std::fs::File,
    pub path: PathBuf,
    pub count: usize,
}

impl FileSink {
    pub fn open(path: &Path) -> anyhow::Result<FileSink> {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .with_context(|| format!("opening --secrets-out {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
        }
        Ok(FileSink {
            file,
            path: path.to_owned(),
            count: 0,
        })
    }
}

impl SecretSink for FileSink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        // An admin token belongs to no member: its line names the token instead.
        let owner = match s.kind {
            SecretKind::AdminToken => "token",
            SecretKind::Virtual | SecretKind::Direct => "member",
        };
        let line = serde_json::json!({
            owner: s.member,
            "kind": s.kind,
            "key": s.reference,
            "secret": s.secret.expose_secret(),
        });
        writeln!(self.file, "{line}")?;
        self.file.flush()?;
        self.file.sync_all()?;
        self.count += 1;
        Ok(())
    }
}

/// Either sink, chosen by `--secrets-out`.
pub enum Sink {
    Stdout(StdoutSink),
    File(FileSink),
}

impl Sink {
    /// Says where the secrets went, when they went to a file.
    pub fn report(&self) {
        if let Sink::File(f) = self
            && f.count > 0
        {
            let _ = writeln!(
                std::io::stderr(),
                "wrote {} new secret{} to {} (shown nowhere else)",
                f.count,
                if f.count == 1 { "" } else { "s" },
                f.path.display()
            );
        }
    }
}

impl SecretSink for Sink {
    fn deliver(&mut self, s: &NewSecret) -> std::io::Result<()> {
        match self {
            Sink::Stdout(x) => x.deliver(s),
            Sink::File(x) => x.deliver(s),
        }
    }
}
