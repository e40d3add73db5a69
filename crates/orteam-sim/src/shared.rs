//! The state every handler shares ([`Shared`]) and the request counters. Handlers import this
//! module; only `server.rs`, which mounts them, imports the handlers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use orteam_core::{Clock, ControllableClock};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use crate::SimConfig;
use crate::error::SimError;
use crate::faults::Faults;
use crate::models::{Catalog, build_catalog};
use crate::state::{State as SimState, write_atomically};

/// Request counters by method and path (two levels so the hot path looks up without allocating).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    map: RwLock<FxHashMap<Method, FxHashMap<Box<str>, AtomicU64>>>,
}

impl Stats {
    pub fn hit(&self, method: &Method, path: &str) {
        if let Some(c) = self.map.read().get(method).and_then(|m| m.get(path)) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.map
            .write()
            .entry(method.clone())
            .or_default()
            .entry(path.into())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, method: &str, path: &str) -> u64 {
        let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
            return 0;
        };
        self.map
            .read()
            .get(&method)
            .and_then(|m| m.get(path))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let map = self.map.read();
        map.iter()
            .flat_map(|(m, paths)| {
                paths
                    .iter()
                    .map(move |(p, c)| (format!("{m} {p}"), c.load(Ordering::Relaxed)))
            })
            .collect()
    }
}

/// Everything handlers share. One per simulator; nothing is global.
pub(crate) struct Shared {
    pub provisioning_key: String,
    pub key_limit_status: StatusCode,
    pub legacy_mcp_paths: bool,
    pub free_model_rate_limits: bool,
    pub clock: Arc<ControllableClock>,
    pub catalog: Catalog,
    pub state: Mutex<SimState>,
    pub faults: Faults,
    pub stats: Stats,
    /// Woken whenever a generation is recorded (lets tests wait without sleeping).
    pub generation_recorded: Notify,
    /// Tasks inside [`crate::SimHandle::wait_for_generation`]; the hot path skips the notify
    /// (which takes a lock) when there are none.
    pub generation_waiters: AtomicUsize,
    pub dirty: AtomicBool,
    pub state_file: Option<PathBuf>,
    /// Test hooks (off unless a test turns them on): see [`TestHooks`].
    pub hooks: TestHooks,
}

/// What tests use to play an upstream that misbehaves or to look at what reached it; empty
/// (and off the hot path) unless a test sets them.
#[derive(Debug, Default)]
pub(crate) struct TestHooks {
    /// Model index → the model index that serves it instead (a provider-side substitution).
    pub substitutions: RwLock<FxHashMap<usize, usize>>,
    pub has_substitutions: AtomicBool,
    /// Inference request bodies, by path, when recording is on.
    pub bodies: Mutex<Option<Vec<(String, bytes::Bytes)>>>,
    pub recording: AtomicBool,
}

impl Shared {
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        let key_limit_status = match config.key_limit_status {
            402 => StatusCode::PAYMENT_REQUIRED,
            403 => StatusCode::FORBIDDEN,
            other => {
                return Err(SimError::Config(format!(
                    "key_limit_status must be 402 or 403, got {other}"
                )));
            }
        };
        let now = config.clock.now();
        let state = match &config.state_file {
            Some(path) if path.exists() => {
                let bytes = std::fs::read(path).map_err(|source| SimError::StateRead {
                    path: path.clone(),
                    source,
                })?;
                SimState::from_snapshot_json(&bytes, config.max_generations, path)?
            }
            _ => SimState::new(config.initial_credits, config.max_generations, now),
        };
        Ok(Shared {
            provisioning_key: config.provisioning_key,
            key_limit_status,
            legacy_mcp_paths: config.legacy_mcp_paths,
            free_model_rate_limits: config.free_model_rate_limits,
            clock: config.clock,
            catalog: build_catalog()?,
            state: Mutex::new(state),
            faults: Faults::new(config.faults),
            stats: Stats::default(),
            generation_recorded: Notify::new(),
            generation_waiters: AtomicUsize::new(0),
            dirty: AtomicBool::new(false),
            state_file: config.state_file,
            hooks: TestHooks::default(),
        })
    }

    pub fn mark_dirty(&self) {
        // Load first: on the hot path the flag is usually already set, and a load keeps the
        // cache line shared.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Call after a generation was inserted (and the state lock released).
    pub fn notify_generation(&self) {
        if self.generation_waiters.load(Ordering::SeqCst) > 0 {
            self.generation_recorded.notify_waiters();
        }
    }

    /// The simulator clock as a unix timestamp.
    pub fn clock_now_ts(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// After a generation was recorded and the state lock released: marks the state dirty and
    /// wakes generation waiters.
    pub fn generation_recorded_after_unlock(&self) {
        self.mark_dirty();
        self.notify_generation();
    }

    /// Writes the state file if one is configured and something changed.
    pub fn persist(&self) -> Result<(), SimError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let bytes = {
            let st = self.state.lock();
            st.to_snapshot_json()
        };
        let bytes = bytes.map_err(|e| SimError::StateWrite {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomically(path, &bytes).inspect_err(|_| self.mark_dirty())
    }
}
