//! Bounded polling for what settles in the background (the ledger writer, streams settling,
//! webhook deliveries): one loop instead of one per test.

use std::future::Future;
use std::time::Duration;

use orteam_ledger::{EventFilter, Ledger, Outcome, UsageEvent};

/// Time between two looks.
pub const POLL_EVERY: Duration = Duration::from_millis(25);
/// Looks before giving up (10 s in all).
pub const POLL_ROUNDS: usize = 400;

/// Calls `probe` every [`POLL_EVERY`] until `done` holds for what it returns, at most
/// [`POLL_ROUNDS`] times: `Ok` with the value that passed, or `Err` with the last one seen (for
/// the caller's message).
pub async fn poll_until<T, F, Fut>(mut probe: F, done: impl Fn(&T) -> bool) -> Result<T, T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut last = probe().await;
    for _ in 1..POLL_ROUNDS {
        if done(&last) {
            return Ok(last);
        }
        tokio::time::sleep(POLL_EVERY).await;
        last = probe().await;
    }
    if done(&last) { Ok(last) } else { Err(last) }
}

/// Waits (bounded) until `ledger` holds at least `n` events and returns them; returns what it
/// holds when that never happens, for the caller's assertion to show.
pub async fn wait_for_events(ledger: &Ledger, n: usize) -> Vec<UsageEvent> {
    poll_until(|| events(ledger), |e| e.len() >= n)
        .await
        .unwrap_or_else(|last| last)
}

/// Waits (bounded) until `ledger` holds at least `n` events, none of them provisional; `Err`
/// with what it holds when that never happens.
pub async fn wait_for_settled_events(
    ledger: &Ledger,
    n: usize,
) -> Result<Vec<UsageEvent>, Vec<UsageEvent>> {
    poll_until(|| events(ledger), |e| e.len() >= n && all_settled(e)).await
}

/// No event is provisional.
pub fn all_settled(events: &[UsageEvent]) -> bool {
    events
        .iter()
        .all(|e| e.usage.outcome != Outcome::Provisional)
}

async fn events(ledger: &Ledger) -> Vec<UsageEvent> {
    ledger
        .events(EventFilter::default())
        .await
        .expect("ledger events")
}

/// Waits (bounded) until `ledger` holds the event of `request_id` (in a final outcome, not
/// provisional, when `settled`); `Err` with what it holds when that never happens.
pub async fn wait_for_event(
    ledger: &Ledger,
    request_id: &str,
    settled: bool,
) -> Result<UsageEvent, Option<UsageEvent>> {
    let found = poll_until(
        || async { ledger.event(request_id).await.expect("ledger event") },
        |e| {
            e.as_ref()
                .is_some_and(|e| !settled || e.usage.outcome != Outcome::Provisional)
        },
    )
    .await;
    match found {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(None),
        Err(last) => Err(last),
    }
}
