//! One cancellation token for the whole process, cancelled on Ctrl-C or SIGTERM.

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    // The handlers are installed now, before this returns, so a signal that arrives from here
    // on is caught (a future would install them only when first polled).
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    // A detached task is fine here: it lives exactly as long as the process.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move {
        #[cfg(unix)]
        wait_for_signal(signals).await;
        #[cfg(not(unix))]
        wait_for_signal().await;
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal(
    signals: (
        Option<tokio::signal::unix::Signal>,
        Option<tokio::signal::unix::Signal>,
    ),
) {
    match signals {
        (Some(mut int), Some(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        (Some(mut int), None) => {
            let _ = int.recv().await;
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
