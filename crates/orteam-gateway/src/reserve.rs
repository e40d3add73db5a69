//! Stages: rate limits, the budget-aware output cap, and the reservation.
//!
//! The cap reads the budgets from memory ([`orteam_ledger::Ledger::tightest_remaining`]); if a
//! concurrent request takes the room between that quote and the reservation, the reservation
//! is refused and the quote is redone against the fresh figures (twice at most), so the output
//! cap is clamped to what is really left rather than refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orteam_ledger::{AuthContext, LedgerError, Reservation};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::pricing::{self, ModelPrice, Quote};
use crate::ratelimit::Limits;
use crate::wire::WireRequest;

/// Checks the member's rate limits, fits the request to the tightest budget and holds its
/// worst case against every budget that applies, then records the hold durably as in flight
/// (`in_flight` describes the request) before anything is forwarded: if the process dies
/// before the settle, the next start charges it (see `orteam_ledger`'s `inflight`).
pub async fn reserve(
    gw: &Gateway,
    auth: &AuthContext,
    price: &ModelPrice,
    request: &WireRequest<'_>,
    in_flight: orteam_ledger::Usage,
) -> Result<(Quote, Reservation), GatewayError> {
    let price = price
        .for_answers(request.choices)
        .ok_or_else(|| GatewayError::BadRequest {
            message: format!("`n` = {} is more than any budget can hold", request.choices),
            param: Some("n"),
        })?;
    let limits = Limits {
        requests_per_minute: auth.tier.requests_per_minute,
        tokens_per_minute: auth.tier.tokens_per_minute,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let quote = quote(gw, auth, &price, request)?;
        if attempt == 1 {
            let member: Arc<str> = Arc::from(auth.member_id.as_str());
            gw.rate_limits.check(
                &member,
                limits,
                request
                    .prompt_bound
                    .saturating_add(quote.max_tokens.saturating_mul(request.choices)),
            )?;
        }
        match gw.ledger.reserve(&auth.member_id, quote.worst_case).await {
            Ok(mut r) => {
                // A failure drops the reservation, which releases the hold.
                r.record_in_flight(in_flight).await.map_err(ledger_error)?;
                return Ok((quote, r));
            }
            Err(e) if attempt < 3 && e.budget_exceeded().is_some() => continue,
            Err(e) => return Err(ledger_error(e)),
        }
    }
}

/// Fits the request to the tightest budget (see [`pricing::quote`]).
fn quote(
    gw: &Gateway,
    auth: &AuthContext,
    price: &ModelPrice,
    request: &WireRequest<'_>,
) -> Result<Quote, GatewayError> {
    let tightest = gw
        .ledger
        .tightest_remaining(&auth.member_id)
        .map_err(ledger_error)?;
    let remaining = tightest.as_ref().map(|t| t.remaining);
    let quoted = if request.generates {
        pricing::quote(
            price,
            request.prompt_bound,
            request.max_output,
            remaining,
            gw.config.min_answer_tokens,
            gw.config.default_max_tokens,
        )
    } else {
        pricing::quote_input(price, request.prompt_bound, remaining)
    };
    quoted.map_err(|e| match &tightest {
        Some(t) => GatewayError::BudgetExhausted {
            scope: format!("{} {:?}", t.scope.as_str(), t.scope_id),
            window: t.window.to_string(),
            detail: format!(
                "{} remains, a minimal answer costs {}",
                e.remaining.usd(),
                e.minimum.usd()
            ),
            reset_at: t.reset_at,
        },
        None => GatewayError::Internal("quote refused without a budget".into()),
    })
}

/// A ledger refusal as the member sees it.
pub fn ledger_error(e: LedgerError) -> GatewayError {
    if let Some(b) = e.budget_exceeded() {
        return GatewayError::BudgetExhausted {
            scope: format!("{} {:?}", b.scope.as_str(), b.scope_id),
            window: b.window.to_string(),
            detail: format!(
                "limit {}, spent {}, held by requests in flight {}",
                b.limit.usd(),
                b.spent.usd(),
                b.held.usd()
            ),
            reset_at: b.reset_at,
        };
    }
    match e {
        LedgerError::Closed => GatewayError::ShuttingDown,
        storage @ LedgerError::Storage { .. } => ledger_unavailable(&storage),
        other => GatewayError::Internal(other.to_string()),
    }
}

/// Seconds a member is asked to wait when the ledger cannot record: long enough for a
/// database restart or a failover to finish, short enough that tools retry promptly.
const LEDGER_RETRY_AFTER_SECS: u64 = 2;

/// The ledger could not make a record durable: 503 with `Retry-After`, one log line, a metric.
pub fn ledger_unavailable(e: &LedgerError) -> GatewayError {
    // One line per 10 s, not one per refused request.
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(error = %e, "ledger unavailable: refusing requests before forwarding them (503, Retry-After)");
    }
    GatewayError::LedgerUnavailable {
        retry_after_secs: LEDGER_RETRY_AFTER_SECS,
    }
}
