//! In-memory cache of successful GET response bodies, keyed by full URL.
//!
//! Only `GET /credits`, `/key`, `/keys` (any query) and `/keys/{hash}` are cached. Every write to
//! `/keys*` drops every `/keys*` entry (not `/key`, not `/credits`), and a GET that was in flight
//! while such a write happened does not store its (possibly stale) body.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// At most this many entries; the oldest are dropped first.
const MAX_ENTRIES: usize = 1024;

#[derive(Debug)]
pub(crate) struct ResponseCache {
    ttl: Duration,
    /// `{base}/keys`: the prefix of every `/keys*` URL.
    keys_prefix: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, (Instant, Bytes)>,
    /// Bumped by every `/keys*` invalidation.
    keys_epoch: u64,
}

impl ResponseCache {
    pub(crate) fn new(ttl: Duration, base_url: &str) -> Self {
        ResponseCache {
            ttl,
            keys_prefix: format!("{}/keys", base_url.trim_end_matches('/')),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_keys_url(&self, url: &str) -> bool {
        url.strip_prefix(&self.keys_prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    /// A fresh cached body for `url`.
    pub(crate) fn get(&self, url: &str) -> Option<Bytes> {
        let mut st = self.lock();
        match st.entries.get(url) {
            Some((at, body)) if at.elapsed() < self.ttl => Some(body.clone()),
            Some(_) => {
                st.entries.remove(url);
                None
            }
            None => None,
        }
    }

    /// The invalidation epoch to pass to [`insert`](Self::insert) (read before sending).
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().keys_epoch
    }

    /// Stores `body` unless a `/keys*` write happened since `epoch` was read.
    pub(crate) fn insert(&self, url: &str, body: Bytes, epoch: u64) {
        let mut st = self.lock();
        if self.is_keys_url(url) && st.keys_epoch != epoch {
            return;
        }
        let ttl = self.ttl;
        st.entries.retain(|_, (at, _)| at.elapsed() < ttl);
        if st.entries.len() >= MAX_ENTRIES
            && let Some(oldest) = st
                .entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            st.entries.remove(&oldest);
        }
        st.entries.insert(url.to_owned(), (Instant::now(), body));
    }

    /// Drops every `/keys*` entry.
    pub(crate) fn invalidate_keys(&self) {
        let mut st = self.lock();
        st.keys_epoch = st.keys_epoch.wrapping_add(1);
        let prefix = &self.keys_prefix;
        st.entries.retain(|url, _| {
            !url.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        });
    }

    pub(crate) fn clear(&self) {
        let mut st = self.lock();
        st.keys_epoch = st.keys_epoch.wrapping_add(1);
        st.entries.clear();
    }
}

/// Whether a GET of `path` (below the base URL, without query) may be cached.
pub(crate) fn is_cacheable_path(path: &str) -> bool {
    matches!(path, "/credits" | "/key" | "/keys")
        || path
            .strip_prefix("/keys/")
            .is_some_and(|h| !h.is_empty() && !h.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://x/api/v1";

    #[test]
    fn cacheable_paths() {
        for p in ["/credits", "/key", "/keys", "/keys/abc"] {
            assert!(is_cacheable_path(p), "{p}");
        }
        for p in [
            "/generation",
            "/activity",
            "/models",
            "/guardrails",
            "/keys/abc/x",
            "/keys/",
        ] {
            assert!(!is_cacheable_path(p), "{p}");
        }
    }

    #[test]
    fn keys_invalidation_spares_key_and_credits() {
        let c = ResponseCache::new(Duration::from_secs(60), BASE);
        let e = c.epoch();
        for u in ["/keys", "/keys?offset=100", "/keys/abc", "/key", "/credits"] {
            c.insert(&format!("{BASE}{u}"), Bytes::from_static(b"{}"), e);
        }
        c.invalidate_keys();
        assert!(c.get(&format!("{BASE}/keys")).is_none());
        assert!(c.get(&format!("{BASE}/keys?offset=100")).is_none());
        assert!(c.get(&format!("{BASE}/keys/abc")).is_none());
        assert!(c.get(&format!("{BASE}/key")).is_some());
        assert!(c.get(&format!("{BASE}/credits")).is_some());
    }

    #[test]
    fn stale_inflight_get_is_not_stored() {
        let c = ResponseCache::new(Duration::from_secs(60), BASE);
        let e = c.epoch();
        c.invalidate_keys();
        c.insert(&format!("{BASE}/keys"), Bytes::from_static(b"old"), e);
        assert!(c.get(&format!("{BASE}/keys")).is_none());
        c.insert(&format!("{BASE}/credits"), Bytes::from_static(b"c"), e);
        assert!(c.get(&format!("{BASE}/credits")).is_some());
    }

    #[test]
    fn entries_expire() {
        let c = ResponseCache::new(Duration::ZERO, BASE);
        c.insert(
            &format!("{BASE}/credits"),
            Bytes::from_static(b"c"),
            c.epoch(),
        );
        assert!(c.get(&format!("{BASE}/credits")).is_none());
    }
}
