//! Retry policy: which failures are retried for which calls, and how long to wait.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderValue;

/// How the delay between attempts is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// A uniform delay in `[0, backoff]` (AWS "full jitter").
    #[default]
    Full,
    /// `backoff/2 + uniform[0, backoff/2]` (AWS "equal jitter"): never less than half.
    Equal,
    /// Exactly the backoff (deterministic; useful in tests).
    None,
}

/// Retry configuration. The defaults: 3 retries (4 attempts), backoff `base × 2^n` capped at
/// 8 s with full jitter, base 500 ms, and a server's `Retry-After` honoured up to 60 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff of the first retry (before jitter).
    pub base_delay: Duration,
    /// Upper bound of any computed backoff.
    pub max_delay: Duration,
    pub jitter: Jitter,
    /// Upper bound applied to a server-sent `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The capped exponential backoff before retry number `retry` (0-based), before jitter:
    /// `min(base × 2^retry, max_delay)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The jittered backoff before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        let mut rng = rand::rng();
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(rng.random_range(0.0..=1.0)),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + half.mul_f64(rng.random_range(0.0..=1.0))
            }
        }
    }

    /// The wait before retry number `retry`: the server's `Retry-After` (capped at
    /// `max_retry_after`) when given, else the jittered backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }
}

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads and idempotent writes (GET, PATCH, DELETE, assignment sets): 429, 5xx and
    /// transport errors are retried.
    Idempotent,
    /// Creates (`POST /keys`, `POST /guardrails`): only 429 and connect failures (the request
    /// was never sent) are retried; a 5xx may have created the resource.
    Create,
    /// Chat completions: 429 and 5xx before any body is consumed, and connect failures.
    Completion,
}

impl Idempotency {
    pub(crate) fn retries_status(self, status: u16) -> bool {
        match self {
            Idempotency::Idempotent | Idempotency::Completion => is_retryable_status(status),
            Idempotency::Create => status == 429,
        }
    }

    /// `connect`: the connection failed before the request was sent.
    pub(crate) fn retries_transport(self, connect: bool) -> bool {
        match self {
            Idempotency::Idempotent => true,
            Idempotency::Create | Idempotency::Completion => connect,
        }
    }
}

/// 429 and every 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parses `Retry-After`: delta seconds (`"120"`, also fractional `"1.5"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. A date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(Duration::from_secs);
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Duration::try_from_secs_f64(secs).ok();
        }
        return None;
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

pub(crate) fn retry_after_header(value: Option<&HeaderValue>) -> Option<Duration> {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Passed to the retry hook before each retry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryEvent {
    /// e.g. `GET /credits`.
    pub endpoint: String,
    /// 1 for the first retry.
    pub retry: u32,
    /// The status that caused the retry, or `None` for a transport error.
    pub status: Option<u16>,
    /// How long the client waits before the retry.
    pub delay: Duration,
    /// Whether the delay came from `Retry-After`.
    pub from_retry_after: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_is_capped_exponential() {
        let p = RetryPolicy {
            jitter: Jitter::None,
            ..Default::default()
        };
        let got: Vec<u64> = (0..6).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(got, vec![500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(p.backoff_ceiling(200), Duration::from_secs(8));
    }

    #[test]
    fn jitter_bounds() {
        let full = RetryPolicy::default();
        let equal = RetryPolicy {
            jitter: Jitter::Equal,
            ..Default::default()
        };
        for n in 0..8 {
            let ceiling = full.backoff_ceiling(n);
            for _ in 0..200 {
                let f = full.backoff(n);
                assert!(f <= ceiling, "{f:?} > {ceiling:?}");
                let e = equal.backoff(n);
                assert!(
                    e >= ceiling / 2 && e <= ceiling,
                    "{e:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn idempotency_rules() {
        for s in [429, 500, 502, 503, 504, 524, 529] {
            assert!(Idempotency::Idempotent.retries_status(s));
            assert!(Idempotency::Completion.retries_status(s));
        }
        assert!(Idempotency::Create.retries_status(429));
        for s in [500, 502, 503] {
            assert!(!Idempotency::Create.retries_status(s));
        }
        for s in [400, 401, 402, 403, 404, 408, 409, 413, 422] {
            assert!(!Idempotency::Idempotent.retries_status(s));
            assert!(!Idempotency::Create.retries_status(s));
            assert!(!Idempotency::Completion.retries_status(s));
        }
        assert!(Idempotency::Idempotent.retries_transport(false));
        assert!(!Idempotency::Create.retries_transport(false));
        assert!(Idempotency::Create.retries_transport(true));
        assert!(!Idempotency::Completion.retries_transport(false));
    }
}
