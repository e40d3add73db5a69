//! The dashboard's state, separate from drawing: which tab is shown, the latest snapshot, the
//! last error, the scroll position. Keys and fetched data change it; nothing here draws.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orteam_dashboard_types::Snapshot;

/// The tabs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Budgets,
    Requests,
    Keys,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Overview, Tab::Budgets, Tab::Requests, Tab::Keys];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Budgets => "Budgets",
            Tab::Requests => "Requests",
            Tab::Keys => "Keys",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct App {
    pub url: String,
    pub tab: Tab,
    pub snapshot: Option<Snapshot>,
    /// The last refresh failed with this (the previous snapshot stays on screen).
    pub error: Option<String>,
    pub refreshes: u64,
    /// First row shown in scrollable tables.
    pub scroll: usize,
    quit: bool,
}

impl App {
    pub fn new(url: impl Into<String>) -> Self {
        App {
            url: url.into(),
            tab: Tab::Overview,
            snapshot: None,
            error: None,
            refreshes: 0,
            scroll: 0,
            quit: false,
        }
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// When the shown data was read (the gateway's clock).
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.snapshot.as_ref().map(|s| s.generated_at)
    }

    pub fn on_snapshot(&mut self, result: Result<Snapshot, String>) {
        match result {
            Ok(s) => {
                self.snapshot = Some(s);
                self.error = None;
                self.refreshes += 1;
                self.scroll = self.scroll.min(self.rows().saturating_sub(1));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Rows in the current tab's scrollable table.
    fn rows(&self) -> usize {
        let Some(s) = &self.snapshot else { return 0 };
        match self.tab {
            Tab::Overview => 0,
            Tab::Budgets => s.budgets.len(),
            Tab::Requests => s.recent.len(),
            Tab::Keys => s.keys.len(),
        }
    }

    fn select(&mut self, tab: Tab) {
        if self.tab != tab {
            self.tab = tab;
            self.scroll = 0;
        }
    }

    /// Handles a key; returns true when the user asked for a refresh now.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        let i = self.tab.index();
        let n = Tab::ALL.len();
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => self.quit = true,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => {
                self.select(Tab::ALL[(i + 1) % n])
            }
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => {
                self.select(Tab::ALL[(i + n - 1) % n])
            }
            KeyCode::Char(c @ '1'..='4') => {
                let idx = (c as usize) - ('1' as usize);
                self.select(Tab::ALL[idx]);
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll = (self.scroll + 1).min(self.rows().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => {
                self.scroll = (self.scroll + 10).min(self.rows().saturating_sub(1))
            }
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => self.scroll = 0,
            KeyCode::Char('r') => return true,
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_move_between_tabs_and_quit() {
        let mut app = App::new("http://x");
        app.on_key(key(KeyCode::Right));
        assert_eq!(app.tab, Tab::Budgets);
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.tab, Tab::Requests);
        app.on_key(key(KeyCode::Left));
        app.on_key(key(KeyCode::Left));
        app.on_key(key(KeyCode::Left));
        assert_eq!(app.tab, Tab::Keys, "wraps around");
        app.on_key(key(KeyCode::Char('1')));
        assert_eq!(app.tab, Tab::Overview);
        assert!(app.on_key(key(KeyCode::Char('r'))), "r refreshes");
        assert!(!app.should_quit());
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.should_quit());
    }

    #[test]
    fn an_error_keeps_the_last_snapshot() {
        let mut app = App::new("http://x");
        app.on_snapshot(Err("down".into()));
        assert_eq!(app.error.as_deref(), Some("down"));
        assert_eq!(app.refreshes, 0);
    }
}
