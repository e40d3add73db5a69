//! A stateful local OpenRouter for development, demos and tests.
//!
//! The simulator serves OpenRouter's API under `/api/v1` with its JSON shapes, status codes and
//! error bodies (`{"error":{"code":N,"message":"…"}}`, HTTP status == code): API keys with
//! limits that reset on UTC day/week/month boundaries, credits, a model catalog with real-looking
//! per-token prices, chat completions (plain and streamed) billed exactly, the other inference
//! routes (Anthropic `/messages`, OpenAI `/responses`, legacy `/completions`, `/embeddings`),
//! `/generation`, `/activity`, guardrails, workspaces and organization members. Time comes from a [`ControllableClock`], so
//! tests can cross a UTC midnight, a Monday or the 1st of a month instantly.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orteam_sim::SimError> {
//! let sim = orteam_sim::spawn(orteam_sim::SimConfig::default()).await?;
//! let (secret, _hash) = sim.create_key("alice", None, None);
//! // POST {sim.base_url()}/chat/completions with `Authorization: Bearer {secret}` …
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Keys
//! The management (provisioning) key is [`SimConfig::provisioning_key`], by default
//! [`DEFAULT_PROVISIONING_KEY`]. Inference keys are created with `POST /api/v1/keys` or
//! [`SimHandle::create_key`].
//!
//! # Completions are deterministic
//! - **Prompt tokens**: for each message, `4 + ceil(utf8_bytes(text) / 4)`, where `text` is the
//!   string content or the concatenated `text` of its content parts; every non-text part (image,
//!   file, audio) adds 85 tokens.
//! - **Completion tokens**: `8 + (FNV-1a hash of the message texts) % 57` (8..=64), capped by
//!   `max_tokens` / `max_completion_tokens` (else by the model's max completion tokens). When
//!   capped, `finish_reason` is `"length"`, otherwise `"stop"`.
//! - The reply is one word per completion token from a fixed vocabulary (reasoning tokens are
//!   words of `message.reasoning`, the rest are `message.content`).
//! - **Cost** = (prompt − cached) × `pricing.prompt` + cached × `pricing.input_cache_read`
//!   (prompt price if none) + (completion − reasoning) × `pricing.completion` + reasoning ×
//!   `pricing.internal_reasoning` (published as the completion price when the model has no separate rate) +
//!   `pricing.request`. It is exact decimal arithmetic, written as a JSON number with every
//!   digit. Failed requests (4xx/5xx, injected status faults) are never billed.
//!
//! # Chat options
//! - A forced `tool_choice` (`"required"`: the first function tool; `{"type":"function",
//!   "function":{"name":X}}`: tool X, 400 if it is not among `tools`) answers one `tool_calls`
//!   entry (`content: null`) whose `arguments` are a JSON value generated from the tool's
//!   `parameters` schema, with `finish_reason: "tool_calls"`.
//! - `response_format` `json_object` answers `{"answer": "<words>"}`; `json_schema` answers a
//!   value of `json_schema.schema`. An answer cut by `max_tokens` (`finish_reason: "length"`) is
//!   cut mid-text, about four bytes per token, as a real model's would be.
//! - `n` (1..=16) answers n choices and bills n × the completion tokens.
//! - `stop` (a string or up to 4) ends a text answer before the first stop sequence, keeping
//!   whole words only (`finish_reason: "stop"`).
//! - Streams carry every choice (one frame per choice per step); a structured answer arrives
//!   in one content chunk.
//!
//! # Workspaces
//! A default workspace (slug `default`) holds everything created without a `workspace_id`;
//! `/workspaces` has CRUD and members (organization members only), paths accept an id or a
//! slug, and keys and guardrails carry the workspace they were created in. Deleting a
//! workspace that still holds keys or guardrails is refused (400).
//!
//! # Other inference routes
//! All take the same Bearer inference key, pre-checks (key limit, credits, guardrails), model
//! fallbacks (`models`), directives, faults and exact billing as chat, record a generation
//! (`X-Generation-Id` on every answer, the body `id` is the same `gen-…` id) and activity:
//! - `POST /messages` (Anthropic Messages): `system` and every message count as chat messages
//!   (text, thinking and tool-use/tool-result text count as text, images/documents as media).
//!   `thinking` enabled/adaptive → a thinking block first (half of the output tokens, rounded
//!   down, unless `[[sim:reasoning=N]]`); `tool_choice` `{"type":"tool","name":X}` /
//!   `{"type":"any"}` → one `tool_use` block with `input:{}` and `stop_reason:"tool_use"`.
//!   Errors, including injected status faults, use Anthropic's shape
//!   `{"type":"error","error":{"type","message"},"request_id":null}`; a key limit is
//!   `permission_error` (403) or `billing_error` (402). Streams carry no `cost` (OpenRouter's
//!   spec) and no `[DONE]`; a `stream_error` fault is an `event: error` whose `request_id` is the
//!   generation id. `/messages/count_tokens` is 404, as on OpenRouter.
//! - `POST /responses` (OpenAI Responses, stateless): `store:true` or a non-null
//!   `previous_response_id` → 400. `instructions` counts as a system message, a string `input`
//!   as a user message, items as messages (`function_call`: name + arguments;
//!   `function_call_output`: output). `reasoning` → a reasoning item (as thinking above);
//!   `tool_choice` `"required"` / `{"type":"function","name":X}` → a `function_call` item. An
//!   answer cut by `max_output_tokens` is `status:"incomplete"` (stream: `response.incomplete`);
//!   a `stream_error` fault ends the stream with `response.failed`.
//! - `POST /completions` (legacy): `prompt` strings count `ceil(bytes / 4)` each (token ids one
//!   each, no message framing); `n` (≤ 16) answers n choices and bills n × completion tokens.
//! - `POST /embeddings`: see the `embeddings` module docs; `GET /embeddings/models` lists the
//!   embedding models, which `/models` shows only with `output_modalities=embeddings|all`.
//!   Text routes refuse embedding models and vice versa (400).
//!
//! `/generation`'s `api_type` is `embeddings` for embeddings and `completions` for the rest.
//!
//! # Directives
//! Written anywhere in the **last user message** (legacy completions and embeddings: anywhere
//! in the prompt), on every route:
//! - `[[sim:tokens=N]]`: exactly `min(N, max_tokens)` completion tokens.
//! - `[[sim:reasoning=N]]`: N of the completion tokens are reasoning tokens.
//! - `[[sim:cached=N]]`: N prompt tokens (at most all of them) are cache reads.
//! - `[[sim:delay_ms=N]]`: streaming only, wait N ms before each content chunk (for
//!   disconnect and timeout demos).
//!
//! # Streaming
//! `stream: true` answers `text/event-stream`: a `: OPENROUTER PROCESSING` comment, one chunk per
//! token (role in the first delta, `finish_reason` on the last content chunk), one chunk with
//! `"choices":[]` and the full usage (identical to the non-streamed usage), then `data: [DONE]`.
//! A cut stream or a client disconnect still records and bills the tokens produced so far
//! (`cancelled: true` in `/generation`).
//!
//! # Admin API (unauthenticated, outside `/api/v1`)
//! - `GET /__sim/faults`, `POST /__sim/faults` with `{"rules":[FaultRule…]}` (replaces),
//!   `DELETE /__sim/faults` (clears). See [`FaultRule`] and [`Fault`] for the JSON shape, e.g.
//!   `{"method":"POST","path_prefix":"/api/v1/chat/completions","times":2,
//!   "fault":{"kind":"status","status":429,"retry_after":"1"}}`; kinds are `status`, `latency`
//!   (`ms`), `stream_cut` (`after_chunks`) and `stream_error` (`after_chunks`, `code`,
//!   `message`). The compact CLI form (`status:429:retry_after=1:times=2`, `latency:50`,
//!   `stream_cut:3`) parses with [`FaultRule`]'s `FromStr`. A rule can target one inference
//!   route by name: `"route":"messages"` in JSON, `route=messages` in the compact form, or
//!   [`FaultRule::on_route`] with a [`Route`] (POST on that route's path). Status faults answer in
//!   the route's error shape; stream faults apply to whichever route streams (`after_chunks`
//!   counts content chunks; a forced tool call is one chunk).
//! - `GET /__sim/clock` → `{"now","offset_seconds","frozen"}`; `POST /__sim/clock` with one of
//!   `{"offset_seconds":n}`, `{"advance_seconds":n}`, `{"freeze_at":"<rfc3339>"}`,
//!   `{"unfreeze":true}`.
//! - `GET /__sim/stats` → `{"requests":{"GET /api/v1/credits":3,…}}`.
//! - `POST /__sim/credits` with `{"add":"100.00"}` → the new `/credits` data.
//! - `POST /__sim/members` with `{"id"?,"email","first_name"?,"last_name"?,"role"?}` adds an
//!   organization member (the real API has no such call; the seeded org has four).
//!
//! # Simulator choices where OpenRouter's behaviour is unconfirmed
//! - A management key on `/chat/completions` gets 403 "Management keys cannot be used for
//!   inference…".
//! - A used-up key limit answers 403 "Key limit exceeded (daily limit). Manage it using
//!   <https://openrouter.ai/settings/keys>" ([`SimConfig::key_limit_status`] switches to 402).
//! - `limit_remaining` is clamped at 0; `GET /keys` includes disabled keys unless
//!   `include_disabled=false`.
//! - `/activity` never shows today; a `date` outside the last 30 completed days gives no rows.
//! - `/generation` answers for the key that made the request and for the management key.
//! - A mid-stream error chunk is not followed by `[DONE]`.
//! - Guardrail budgets: a key's guardrail limits that key's spend, a member's guardrail limits
//!   the member's spend across all keys they created, in the guardrail's `reset_interval`.

mod activity;
mod admin;
mod auth;
mod chat;
mod completions;
mod embeddings;
mod envelope;
mod error;
mod extract;
mod faults;
mod guardrails;
mod inference;
mod keys;
mod messages;
mod models;
mod org;
mod responses;
mod schema;
mod server;
mod shared;
mod sse;
mod state;
mod workspaces;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use orteam_core::{Clock, ControllableClock, Money, Window};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::SimError;
pub use faults::{Fault, FaultRule, Route};

use shared::Shared;

/// The local default management key. It is public on purpose: the simulator holds no money.
pub const DEFAULT_PROVISIONING_KEY: &str =
    "sk-or-v1-0000000000000000000000000000000000000000000000000000000000051a7e";

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The management (provisioning) key.
    pub provisioning_key: String,
    /// Credits on the account at start (ignored when a state file is loaded).
    pub initial_credits: Money,
    pub clock: Arc<ControllableClock>,
    /// Persist state as JSON: loaded at spawn, saved on shutdown and every 2 s when changed.
    pub state_file: Option<PathBuf>,
    /// Faults active from the start.
    pub faults: Vec<FaultRule>,
    /// Status for a used-up key limit: 403 (default, what logs show) or 402 (what docs say).
    pub key_limit_status: u16,
    /// Also serve the openrouter-admin-mcp guardrail paths (`/guardrails/key-assignments`, …).
    pub legacy_mcp_paths: bool,
    /// Limit `:free` models to 20 requests per minute per key.
    pub free_model_rate_limits: bool,
    /// Bound on stored `/generation` records; the oldest are evicted.
    pub max_generations: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            provisioning_key: DEFAULT_PROVISIONING_KEY.to_owned(),
            initial_credits: Money::from_cents(10_000),
            clock: Arc::new(ControllableClock::new()),
            state_file: None,
            faults: Vec::new(),
            key_limit_status: 403,
            legacy_mcp_paths: false,
            free_model_rate_limits: true,
            max_generations: 200_000,
        }
    }
}

/// Runs a simulator on `listener` until `shutdown` is cancelled (for the CLI: pass a token
/// cancelled on Ctrl-C). Saves the state file, if any, before returning.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    let shared = Arc::new(Shared::new(config)?);
    server::run(listener, shared, shutdown).await
}

/// Starts a simulator on `127.0.0.1:0`.
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SimError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(SimError::Listener)?;
    spawn_on(listener, config).await
}

/// Starts a simulator on an already bound listener.
pub async fn spawn_on(listener: TcpListener, config: SimConfig) -> Result<SimHandle, SimError> {
    Ok(spawn_on_after(listener, config, |_| ()).await?.0)
}

/// Starts a simulator on an already bound listener once `setup` has run on it: what `setup`
/// does (create keys, write a file naming them) is done before the first request is answered.
pub async fn spawn_on_after<R>(
    listener: TcpListener,
    config: SimConfig,
    setup: impl FnOnce(&SimHandle) -> R,
) -> Result<(SimHandle, R), SimError> {
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    let shared = Arc::new(Shared::new(config)?);
    let mut handle = SimHandle {
        addr,
        shared,
        shutdown: CancellationToken::new(),
        task: None,
    };
    let prepared = setup(&handle);
    let tracker = TaskTracker::new();
    let task = tracker.spawn(server::run(
        listener,
        handle.shared.clone(),
        handle.shutdown.clone(),
    ));
    tracker.close();
    handle.task = Some(task);
    Ok((handle, prepared))
}

/// A running simulator. Dropping it stops the server (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), SimError>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api/v1`
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT` (the admin API lives under `/__sim`).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn provisioning_key(&self) -> &str {
        &self.shared.provisioning_key
    }

    pub fn clock(&self) -> Arc<ControllableClock> {
        self.shared.clock.clone()
    }

    /// Replaces the fault rules (same as `POST /__sim/faults`).
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.shared.faults.set(rules);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.set(Vec::new());
    }

    /// The active fault rules, with their remaining `times`.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults.list()
    }

    /// From now on, answers requests for `requested` with `served` and bills them as
    /// `served` (a provider-side substitution; OpenRouter names the model that served).
    pub fn substitute_model(&self, requested: &str, served: &str) -> Result<(), SimError> {
        let index = |id: &str| {
            self.shared
                .catalog
                .get(id)
                .ok_or_else(|| SimError::Config(format!("unknown model {id:?}")))
        };
        let (from, to) = (index(requested)?, index(served)?);
        self.shared.hooks.substitutions.write().insert(from, to);
        self.shared
            .hooks
            .has_substitutions
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Starts keeping the body of every POST request (for tests that check what reached
    /// upstream).
    pub fn record_request_bodies(&self) {
        let mut log = self.shared.hooks.bodies.lock();
        log.get_or_insert_with(Vec::new);
        self.shared
            .hooks
            .recording
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The recorded bodies of POST requests to `path` (e.g. `"/api/v1/chat/completions"`), in
    /// arrival order.
    pub fn request_bodies(&self, path: &str) -> Vec<bytes::Bytes> {
        self.shared
            .hooks
            .bodies
            .lock()
            .iter()
            .flatten()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// How many `method` requests reached `path` (without query), e.g. `"/api/v1/credits"`.
    pub fn request_count(&self, method: &str, path: &str) -> u64 {
        self.shared.stats.get(method, path)
    }

    /// Creates an inference key, as `POST /keys` does; returns (secret, hash).
    pub fn create_key(
        &self,
        name: &str,
        limit: Option<Money>,
        limit_reset: Option<Window>,
    ) -> (String, String) {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        let k = keys::insert_key(
            &mut st,
            keys::NewKey {
                name: name.to_owned(),
                limit,
                limit_reset,
                include_byok_in_limit: false,
                expires_at: None,
                creator_user_id: None,
                workspace_id: keys::DEFAULT_WORKSPACE_ID.to_owned(),
                external_user: None,
            },
            now,
        );
        drop(st);
        self.shared.mark_dirty();
        k
    }

    /// Adds purchased credits.
    pub fn add_credits(&self, amount: Money) {
        self.shared.state.lock().add_credits(amount);
        self.shared.mark_dirty();
    }

    /// Current balance (`total_credits − total_usage`).
    pub fn balance(&self) -> Money {
        self.shared.state.lock().balance()
    }

    /// Resolves once generation `id` has been recorded (streams record theirs when they end,
    /// are cut, or the client disconnects). Wrap in a timeout in tests.
    pub async fn wait_for_generation(&self, id: &str) {
        struct Waiting<'a>(&'a Shared);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0
                    .generation_waiters
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.shared
            .generation_waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _waiting = Waiting(&self.shared);
        loop {
            let notified = self.shared.generation_recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.state.lock().generations.contains_key(id) {
                return;
            }
            notified.await;
        }
    }

    /// A token that stops the server when cancelled (e.g. on Ctrl-C); then await [`Self::wait`].
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server stops (after [`Self::shutdown_token`] is cancelled) and returns
    /// its result, including a failed final state save.
    pub async fn wait(mut self) -> Result<(), SimError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(r) => r,
                Err(e) => Err(SimError::Serve(std::io::Error::other(e))),
            },
            None => Ok(()),
        }
    }

    /// Stops the server gracefully and persists the state file, if any.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.wait().await {
            tracing::warn!(error = %e, "simulator shutdown");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
