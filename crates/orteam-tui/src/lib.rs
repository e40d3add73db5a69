//! `orteam top`: a live terminal dashboard of a running gateway.
//!
//! It reads the same JSON as the web dashboard (`GET /admin/v1/dashboard`, behind the admin
//! token) rather than the ledger database: it works from any machine that can reach the gateway
//! (over SSH too), needs no database credentials, sees every gateway instance's spend on
//! PostgreSQL, and never holds a lock on the gateway's SQLite file.
//!
//! [`App`] holds the state and reacts to keys and data; [`ui::render`] draws it; [`run`] is the
//! loop that selects between a refresh tick, the terminal's events and fetched snapshots.

mod app;
mod client;
pub mod ui;

use std::io::IsTerminal;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use orteam_dashboard_types::Range;
use secrecy::SecretString;

pub use app::{App, Tab};
pub use client::{Client, FetchError};

/// Why `orteam top` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(
        "orteam top needs a terminal; for scripts read the same data with `curl -H \"Authorization: Bearer $ORTEAM_ADMIN_TOKEN\" {0}/admin/v1/dashboard`"
    )]
    NotATerminal(String),
}

/// What `orteam top` connects to and how often it refreshes.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// The gateway's root URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub token: SecretString,
    pub interval: Duration,
    pub range: Range,
}

/// Runs the dashboard until the user quits. The first snapshot is fetched before the terminal
/// is taken over, so a wrong URL or token is reported as a plain error.
pub async fn run(opts: TopOptions) -> Result<(), TuiError> {
    let client = Client::new(&opts.url, opts.token.clone(), opts.range)?;
    let first = client.fetch().await?;
    if !std::io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal(
            opts.url.trim_end_matches('/').to_owned(),
        ));
    }
    let mut app = App::new(opts.url.clone());
    app.on_snapshot(Ok(first));

    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, &client, opts.interval).await;
    ratatui::try_restore()?;
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    client: &Client,
    interval: Duration,
) -> Result<(), TuiError> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        terminal.draw(|f| ui::render(f, app))?;
        if app.should_quit() {
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick() => {
                let r = client.fetch().await.map_err(|e| e.to_string());
                app.on_snapshot(r);
            }
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    if app.on_key(k) {
                        let r = client.fetch().await.map_err(|e| e.to_string());
                        app.on_snapshot(r);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
        }
    }
}
