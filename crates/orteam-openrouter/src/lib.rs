//! Typed client for the OpenRouter HTTP API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orteam_openrouter::ClientError> {
//! use orteam_openrouter::{Client, types::chat::{ChatRequest, Message}};
//! use secrecy::SecretString;
//!
//! let client = Client::builder()
//!     .api_key(SecretString::from("sk-or-v1-…"))
//!     .build()?;
//! let credits = client.credits().await?;
//! let done = client
//!     .chat(&ChatRequest::new("openai/gpt-4o", vec![Message::user("Hi")]))
//!     .await?;
//! println!("{} cost {}", done.response.text(), done.response.usage.unwrap().cost);
//! # let _ = credits; Ok(()) }
//! ```
//!
//! # Endpoints
//! One method per endpoint on [`Client`]: keys (`list_keys`, `list_all_keys`, `create_key`,
//! `get_key`, `update_key`, `delete_key`, `current_key`), `credits`, `activity`, `generation`,
//! models (`models`, `model_endpoints`, `user_models`, `zdr_endpoints`), guardrails (CRUD,
//! `assign_keys`/`unassign_keys`, `assign_members`/`unassign_members`, the assignment listings),
//! `organization_members`, and chat (`chat`, `chat_stream`). Wire types live in [`types`]; every
//! money amount is an exact [`orteam_core::Money`], and unknown fields are kept in `extra`.
//!
//! The base URL is the builder's, else `OPENROUTER_BASE_URL`, else
//! `https://openrouter.ai/api/v1`.
//!
//! # Retries
//! A failed attempt is retried (by default up to 3 times, so at most 4 attempts) when:
//! - the status is **429 or any 5xx**, for reads and idempotent writes: every GET, `PATCH`,
//!   `DELETE`, and the guardrail assignment POSTs (assigning the same set twice is harmless);
//! - the connection failed or broke before a full response, for the same idempotent calls.
//!
//! The wait is the server's `Retry-After` (delta seconds or an HTTP date), capped at
//! [`RetryPolicy::max_retry_after`] (60 s by default), else a capped exponential backoff
//! `min(base × 2^n, cap)` (500 ms base, 8 s cap) with full jitter (or equal / no jitter).
//!
//! Calls with narrower rules:
//! - **`create_key` (`POST /keys`) and `create_guardrail` (`POST /guardrails`)** are retried on
//!   **429 only** (plus a connection that could not be established, when nothing was sent). A 5xx
//!   or a broken connection may have created the resource, so it is returned to the caller, who
//!   reconciles (e.g. lists keys by name).
//! - **`chat` and `chat_stream`** are retried on 429 and 5xx, and on connect failures, but only
//!   before any success body is read. A non-streamed completion whose body breaks while being
//!   read is not retried (it was billed), and **a stream that has begun is never retried**.
//! - 400, 401, 402, 403, 404, 408, 413, 422 and every other 4xx are **never retried**.
//! - With `RetryPolicy::none()` nothing is retried.
//!
//! A `DELETE` whose first attempt was applied but whose response was lost (5xx or a broken
//! connection) answers 404 on the retry; the error then has `retries() > 0`.
//!
//! Every error reports its retry count and elapsed time ([`ClientError::retries`],
//! [`ClientError::elapsed`]). Retries are counted in [`Client::retry_count`] (an `AtomicU64`
//! shared by clones, injectable with [`ClientBuilder::retry_counter`]) and reported to the
//! [`ClientBuilder::on_retry`] hook, for metrics.
//!
//! # GET cache
//! Successful bodies of `GET /credits`, `GET /key`, `GET /keys` (any query) and
//! `GET /keys/{hash}` are cached in memory, keyed by full URL, for 60 s by default
//! ([`ClientBuilder::cache_ttl`]; `None` disables it). Every write to `/keys*` (create, update,
//! delete; successful or not, as a failed write may have been applied) drops every `/keys*` entry;
//! `/key` and `/credits` are unaffected. A GET in flight during such a write does not store its
//! result. `/generation`, activity, models, guardrails, members and chat are never cached. Each
//! client has its own cache ([`Client::with_api_key`] starts an empty one), shared by its clones;
//! [`Client::clear_cache`] empties it.
//!
//! # Secrets
//! The API key is a [`secrecy::SecretString`] from the builder to the request: it is exposed only
//! where the `Authorization` header is built, and that header is marked sensitive. `Debug` of the
//! client and builder prints `[REDACTED]`. Upstream error bodies, stream error messages and
//! transport messages are scrubbed of the key (and of any `sk-or-…` token) before an error stores
//! them, so neither `Display` nor `Debug` of any error can contain it; nothing the crate logs
//! (`tracing` at debug/trace: endpoint, status, retry, delay) contains headers or bodies. The
//! secret returned by `create_key` ([`types::keys::CreatedKey::key`]) is a `SecretString` too.
//!
//! # Errors
//! [`ClientError`] wraps an [`ErrorKind`] with the retries and elapsed time. API failures carry
//! OpenRouter's status, `error.code`, `error.message` and `error.metadata`
//! ([`ClientError::status`], [`code`](ClientError::code), [`message`](ClientError::message),
//! [`metadata`](ClientError::metadata), [`retry_after`](ClientError::retry_after),
//! [`category`](ClientError::category)) and helpers such as
//! [`is_management_key_required`](ClientError::is_management_key_required) and
//! [`is_key_limit_exceeded`](ClientError::is_key_limit_exceeded).
//!
//! # Streaming
//! [`Client::chat_stream`] checks the status and `content-type: text/event-stream` first (any
//! other answer is a JSON error), then returns a [`ChatStream`] of typed chunks. See its docs for
//! comments, `[DONE]`, mid-stream errors and cut streams.

mod cache;
pub mod client;
pub mod error;
pub mod retry;
pub mod stream;
pub mod types;

pub use client::{BASE_URL_ENV, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CACHE_TTL};
pub use error::{ApiError, ClientError, ErrorCategory, ErrorKind};
pub use retry::{Jitter, RetryEvent, RetryPolicy, is_retryable_status, parse_retry_after};
pub use stream::{ChatStream, StreamSummary};
pub use types::{Deleted, Page, Pagination, Patch};
