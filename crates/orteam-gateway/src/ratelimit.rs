//! Stage 4: per-member rate limits, requests and tokens per minute (GCRA via `governor`).
//!
//! Tokens are counted at their worst case (prompt bound + max_tokens) when the request is
//! admitted: a limit that only counted tokens after the answer would let a burst through.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;

use crate::error::GatewayError;

/// A member's limits, from their tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

struct MemberLimiter {
    limits: Limits,
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<DefaultDirectRateLimiter>,
}

/// All members' limiters; created on first use, replaced when a tier's limits change.
#[derive(Default)]
pub struct RateLimits {
    members: RwLock<HashMap<Arc<str>, Arc<MemberLimiter>>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("members", &self.members.read().len())
            .finish()
    }
}

fn per_minute(n: u64) -> Option<DefaultDirectRateLimiter> {
    let n = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))?;
    Some(RateLimiter::direct(Quota::per_minute(n)))
}

impl RateLimits {
    /// Admits one request of up to `tokens` tokens for `member`, or says when to retry.
    pub fn check(
        &self,
        member: &Arc<str>,
        limits: Limits,
        tokens: u64,
    ) -> Result<(), GatewayError> {
        if limits == Limits::default() {
            return Ok(());
        }
        let limiter = self.limiter(member, limits);
        let clock = DefaultClock::default();
        if let Some(requests) = &limiter.requests
            && let Err(not_until) = requests.check()
        {
            return Err(GatewayError::RateLimited {
                what: "requests per minute",
                retry_after_secs: not_until.wait_time_from(clock.now()).as_secs().max(1),
            });
        }
        if let (Some(tpm), Some(tok)) = (limits.tokens_per_minute, &limiter.tokens) {
            let n = NonZeroU32::new(u32::try_from(tokens.min(tpm)).unwrap_or(u32::MAX));
            if let Some(n) = n {
                match tok.check_n(n) {
                    Ok(Ok(())) => {}
                    Ok(Err(not_until)) => {
                        return Err(GatewayError::RateLimited {
                            what: "tokens per minute",
                            retry_after_secs: not_until
                                .wait_time_from(clock.now())
                                .as_secs()
                                .max(1),
                        });
                    }
                    // Cannot happen: n is capped at the quota's burst.
                    Err(_) => {
                        return Err(GatewayError::RateLimited {
                            what: "tokens per minute",
                            retry_after_secs: 60,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn limiter(&self, member: &Arc<str>, limits: Limits) -> Arc<MemberLimiter> {
        if let Some(l) = self.members.read().get(member)
            && l.limits == limits
        {
            return l.clone();
        }
        let fresh = Arc::new(MemberLimiter {
            limits,
            requests: limits
                .requests_per_minute
                .and_then(|n| per_minute(u64::from(n))),
            tokens: limits.tokens_per_minute.and_then(per_minute),
        });
        let mut map = self.members.write();
        match map.get(member) {
            Some(l) if l.limits == limits => l.clone(),
            _ => {
                map.insert(member.clone(), fresh.clone());
                fresh
            }
        }
    }

    /// Forgets a member (revoked or removed), so memory does not grow with churn.
    pub fn forget(&self, member: &str) {
        self.members.write().remove(member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_minute() {
        let rl = RateLimits::default();
        let alice: Arc<str> = "alice".into();
        let limits = Limits {
            requests_per_minute: Some(3),
            tokens_per_minute: None,
        };
        for _ in 0..3 {
            rl.check(&alice, limits, 10).unwrap();
        }
        match rl.check(&alice, limits, 10) {
            Err(GatewayError::RateLimited {
                retry_after_secs,
                what,
            }) => {
                assert_eq!(what, "requests per minute");
                assert!((1..=60).contains(&retry_after_secs));
            }
            other => panic!("{other:?}"),
        }
        // Another member is not affected; no limits means no limiter at all.
        rl.check(&"bob".into(), limits, 10).unwrap();
        rl.check(&alice, Limits::default(), 10).unwrap();
    }

    #[test]
    fn tokens_per_minute_counts_the_worst_case() {
        let rl = RateLimits::default();
        let m: Arc<str> = "m".into();
        let limits = Limits {
            requests_per_minute: None,
            tokens_per_minute: Some(1000),
        };
        rl.check(&m, limits, 600).unwrap();
        assert!(rl.check(&m, limits, 600).is_err());
    }
}
