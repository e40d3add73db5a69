//! Turning client errors into tool error texts an assistant can act on.

use orteam_openrouter::{ClientError, ErrorKind};

/// Replaced for any occurrence of the provisioning key.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Explains management vs inference keys (for a 403 "Only management keys…").
pub(crate) const MANAGEMENT_KEY_HINT: &str = "OPENROUTER_PROVISIONING_KEY holds an inference (API) \
key, but this server needs a management key (formerly called a provisioning key). Management keys \
are created at https://openrouter.ai/settings/provisioning-keys and can list, create and limit API \
keys, read credits and activity and manage guardrails, but cannot make completions; inference keys \
(https://openrouter.ai/settings/keys) make completions but cannot manage the account. Set \
OPENROUTER_PROVISIONING_KEY to a management key and restart the server.";

/// A one-paragraph description of `err` for the `tool` that hit it. Never contains the key
/// (the client scrubs upstream text; callers scrub again with [`scrub`]).
pub(crate) fn describe(tool: &str, err: &ClientError) -> String {
    let retries = match err.retries() {
        0 => String::new(),
        1 => format!(
            " (gave up after 1 retry in {:.1}s)",
            err.elapsed().as_secs_f64()
        ),
        n => format!(
            " (gave up after {n} retries in {:.1}s)",
            err.elapsed().as_secs_f64()
        ),
    };
    let body = match err.kind() {
        ErrorKind::Api(api) => {
            let ep = &api.endpoint;
            let msg = api.message.trim();
            match api.status {
                401 => format!(
                    "OpenRouter rejected the provisioning key (401 Unauthorized on {ep}: {msg}). \
                     Check that OPENROUTER_PROVISIONING_KEY holds a valid, enabled management key \
                     (https://openrouter.ai/settings/provisioning-keys)."
                ),
                403 if err.is_management_key_required() => {
                    format!("OpenRouter 403 on {ep}: {msg}. {MANAGEMENT_KEY_HINT}")
                }
                403 => format!(
                    "OpenRouter refused the operation (403 Forbidden on {ep}): {msg}. The \
                     management key may lack the permission, or the account may not allow it."
                ),
                404 => format!("Not found (404 on {ep}): {msg}."),
                429 => {
                    let wait = err
                        .retry_after()
                        .map(|d| format!(" OpenRouter asks to retry after {}s.", d.as_secs()))
                        .unwrap_or_default();
                    format!("Rate limited by OpenRouter (429 on {ep}): {msg}.{wait}")
                }
                400 | 422 => format!(
                    "OpenRouter rejected the request as invalid ({} on {ep}): {msg}. Check the \
                     arguments.",
                    api.status
                ),
                s if s >= 500 => format!(
                    "OpenRouter server error ({s} on {ep}): {msg}. This is usually transient; try \
                     again shortly."
                ),
                s => format!("OpenRouter {s} on {ep}: {msg}."),
            }
        }
        ErrorKind::Transport {
            endpoint, message, ..
        } => format!(
            "Could not reach OpenRouter ({endpoint}): {message}. Check OPENROUTER_BASE_URL and \
             the network."
        ),
        ErrorKind::Decode { endpoint, message } => {
            format!("OpenRouter sent a response this server cannot read ({endpoint}): {message}.")
        }
        _ => err.to_string(),
    };
    format!("{tool} failed: {body}{retries}")
}

/// True when `err` is an upstream 404.
pub(crate) fn is_not_found(err: &ClientError) -> bool {
    err.status() == Some(404)
}

/// `text` with every occurrence of `secret` replaced by `[REDACTED]`.
pub(crate) fn scrub(text: &str, secret: &str) -> Option<String> {
    if secret.len() >= 8 && text.contains(secret) {
        Some(text.replace(secret, REDACTED))
    } else {
        None
    }
}
