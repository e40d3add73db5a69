//! Fault injection: rules that make matching requests fail, slow down, or break their stream.
//!
//! Status and latency faults are applied by the router middleware to every `/api/v1` request
//! they match; stream faults are consulted only by streaming chat completions. Each matching
//! application decrements `times`, and a rule is dropped when it reaches zero.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// An inference route, for rules that target one route by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// `POST /api/v1/chat/completions`
    Chat,
    /// `POST /api/v1/messages` (Anthropic Messages)
    Messages,
    /// `POST /api/v1/responses` (OpenAI Responses)
    Responses,
    /// `POST /api/v1/completions` (legacy text completions)
    Completions,
    /// `POST /api/v1/embeddings`
    Embeddings,
}

impl Route {
    /// The route's path (what a rule's `path_prefix` becomes).
    pub fn path(self) -> &'static str {
        match self {
            Route::Chat => "/api/v1/chat/completions",
            Route::Messages => "/api/v1/messages",
            Route::Responses => "/api/v1/responses",
            Route::Completions => "/api/v1/completions",
            Route::Embeddings => "/api/v1/embeddings",
        }
    }
}

impl FromStr for Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "chat" | "chat_completions" => Route::Chat,
            "messages" => Route::Messages,
            "responses" => Route::Responses,
            "completions" => Route::Completions,
            "embeddings" => Route::Embeddings,
            other => {
                return Err(format!(
                    "unknown route {other:?}: expected chat, messages, responses, completions or embeddings"
                ));
            }
        })
    }
}

/// The JSON form of a rule: a FaultRule plus an optional `route` name (`chat`, `messages`,
/// `responses`, `completions`, `embeddings`), which sets `method` POST (unless given) and
/// `path_prefix` to the route's path.
#[derive(Deserialize)]
struct FaultRuleIn {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    times: Option<u32>,
    fault: Fault,
}

impl TryFrom<FaultRuleIn> for FaultRule {
    type Error = String;

    fn try_from(r: FaultRuleIn) -> Result<Self, String> {
        let mut rule = FaultRule {
            method: r.method,
            path_prefix: r.path_prefix,
            times: r.times,
            fault: r.fault,
        };
        if let Some(route) = r.route {
            if rule.path_prefix.is_some() {
                return Err("give either route or path_prefix, not both".into());
            }
            rule = rule.on_route(route.parse()?);
        }
        Ok(rule)
    }
}

/// One injected fault and the requests it applies to.
///
/// In JSON a rule may name a `route` instead of a `path_prefix` (see [`Route`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultRuleIn")]
pub struct FaultRule {
    /// HTTP method to match (case-insensitive); `None` matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/api/v1/chat/completions`; `None` matches any API path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// How many more requests this rule applies to; `None` means forever.
    #[serde(default)]
    pub times: Option<u32>,
    pub fault: Fault,
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and an OpenRouter error body instead of handling the request.
    Status {
        status: u16,
        /// Raw `Retry-After` header value (seconds or an HTTP date).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Wait this long, then handle the request normally.
    Latency { ms: u64 },
    /// Close a streaming completion abruptly after this many content chunks (billed partially).
    StreamCut { after_chunks: u32 },
    /// Send OpenRouter's mid-stream error chunk after this many content chunks, then end.
    StreamError {
        after_chunks: u32,
        #[serde(default = "default_stream_error_code")]
        code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

fn default_stream_error_code() -> u16 {
    502
}

impl Fault {
    fn is_stream(&self) -> bool {
        matches!(self, Fault::StreamCut { .. } | Fault::StreamError { .. })
    }
}

impl FaultRule {
    /// A rule applying `fault` to every request, forever.
    pub fn always(fault: Fault) -> Self {
        FaultRule {
            method: None,
            path_prefix: None,
            times: None,
            fault,
        }
    }

    /// Restricts the rule to `method` requests under `path_prefix`.
    pub fn on(mut self, method: &str, path_prefix: &str) -> Self {
        self.method = Some(method.to_owned());
        self.path_prefix = Some(path_prefix.to_owned());
        self
    }

    /// Restricts the rule to one inference route (POST on its path).
    pub fn on_route(mut self, route: Route) -> Self {
        if self.method.is_none() {
            self.method = Some("POST".to_owned());
        }
        self.path_prefix = Some(route.path().to_owned());
        self
    }

    /// Limits the rule to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self.times != Some(0)
    }
}

/// Parses the compact CLI form: `KIND:ARG[:opt=value]...`.
///
/// - `status:429[:retry_after=1][:message=Slow down]`
/// - `latency:50`
/// - `stream_cut:3`
/// - `stream_error:2[:code=502][:message=Provider returned error]`
///
/// Every kind also takes `times=N`, `method=POST`, `path=/api/v1/chat/completions` and
/// `route=chat|messages|responses|completions|embeddings` (POST on that route's path). A segment
/// without `=` continues the previous value, so HTTP dates and messages may contain colons.
impl FromStr for FaultRule {
    type Err = SimError;

    fn from_str(input: &str) -> Result<Self, SimError> {
        let fail = |reason: String| SimError::FaultParse {
            input: input.to_owned(),
            reason,
        };
        let mut parts = input.split(':');
        let kind = parts.next().unwrap_or_default().trim();
        let arg = parts
            .next()
            .ok_or_else(|| fail(format!("{kind} needs an argument, e.g. {kind}:N")))?
            .trim();
        let mut opts: Vec<(String, String)> = Vec::new();
        for seg in parts {
            match (seg.split_once('='), opts.last_mut()) {
                (Some((k, v)), _) if !k.contains(' ') && !k.is_empty() => {
                    opts.push((k.trim().to_owned(), v.to_owned()))
                }
                (_, Some(last)) => {
                    last.1.push(':');
                    last.1.push_str(seg);
                }
                (_, None) => return Err(fail(format!("expected key=value, got {seg:?}"))),
            }
        }
        let num = |name: &str, v: &str| -> Result<u64, SimError> {
            v.trim()
                .parse::<u64>()
                .map_err(|_| fail(format!("{name} must be a non-negative integer, got {v:?}")))
        };
        let mut rule = FaultRule::always(Fault::Latency { ms: 0 });
        let mut retry_after = None;
        let mut message = None;
        let mut code = None;
        let mut route = None;
        for (k, v) in opts {
            match k.as_str() {
                "times" => rule.times = Some(num("times", &v)? as u32),
                "method" => rule.method = Some(v.trim().to_uppercase()),
                "path" | "path_prefix" => rule.path_prefix = Some(v.trim().to_owned()),
                "retry_after" => retry_after = Some(v.trim().to_owned()),
                "message" => message = Some(v),
                "code" => code = Some(num("code", &v)? as u16),
                "route" => route = Some(v.parse::<Route>().map_err(fail)?),
                other => return Err(fail(format!("unknown option {other:?}"))),
            }
        }
        rule.fault = match kind {
            "status" => {
                let status = num("status", arg)?;
                if !(400..=599).contains(&status) {
                    return Err(fail("status must be between 400 and 599".into()));
                }
                Fault::Status {
                    status: status as u16,
                    retry_after,
                    message,
                }
            }
            "latency" => Fault::Latency {
                ms: num("latency", arg)?,
            },
            "stream_cut" => Fault::StreamCut {
                after_chunks: num("after_chunks", arg)? as u32,
            },
            "stream_error" => Fault::StreamError {
                after_chunks: num("after_chunks", arg)? as u32,
                code: code.unwrap_or(502),
                message,
            },
            other => {
                return Err(fail(format!(
                    "unknown fault kind {other:?}: expected status, latency, stream_cut or stream_error"
                )));
            }
        };
        if let Some(route) = route {
            rule = rule.on_route(route);
        }
        Ok(rule)
    }
}

/// The live rule set. An atomic flag keeps the no-fault hot path lock-free.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    active: AtomicBool,
}

/// What the middleware must do for one request.
#[derive(Debug, Default)]
pub(crate) struct HttpFaults {
    pub latency_ms: u64,
    pub status: Option<Fault>,
}

impl Faults {
    pub fn new(rules: Vec<FaultRule>) -> Self {
        let f = Faults::default();
        f.set(rules);
        f
    }

    pub fn set(&self, rules: Vec<FaultRule>) {
        let mut g = self.rules.lock();
        *g = rules;
        self.active.store(!g.is_empty(), Ordering::Release);
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().clone()
    }

    fn take(&self, method: &str, path: &str, stream: bool, all_latency: bool) -> HttpFaults {
        let mut out = HttpFaults::default();
        if !self.active.load(Ordering::Acquire) {
            return out;
        }
        let mut rules = self.rules.lock();
        for rule in rules.iter_mut() {
            if rule.fault.is_stream() != stream || !rule.matches(method, path) {
                continue;
            }
            let applied = match &rule.fault {
                Fault::Latency { ms } if all_latency => {
                    out.latency_ms += ms;
                    true
                }
                _ if out.status.is_none() => {
                    out.status = Some(rule.fault.clone());
                    true
                }
                _ => false,
            };
            if applied && let Some(t) = rule.times.as_mut() {
                *t = t.saturating_sub(1);
            }
        }
        rules.retain(|r| r.times != Some(0));
        self.active.store(!rules.is_empty(), Ordering::Release);
        out
    }

    /// Latency (all matching rules add up) and the first matching status fault.
    pub fn take_http(&self, method: &str, path: &str) -> HttpFaults {
        self.take(method, path, false, true)
    }

    /// The first matching stream fault, for a streaming completion.
    pub fn take_stream(&self, method: &str, path: &str) -> Option<Fault> {
        self.take(method, path, true, false).status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_parse() {
        let r: FaultRule = "status:429:retry_after=1:times=2".parse().unwrap();
        assert_eq!(r.times, Some(2));
        assert_eq!(
            r.fault,
            Fault::Status {
                status: 429,
                retry_after: Some("1".into()),
                message: None
            }
        );
        let r: FaultRule = "latency:50".parse().unwrap();
        assert_eq!(r.fault, Fault::Latency { ms: 50 });
        let r: FaultRule = "stream_cut:3:path=/api/v1/chat/completions"
            .parse()
            .unwrap();
        assert_eq!(r.fault, Fault::StreamCut { after_chunks: 3 });
        assert_eq!(r.path_prefix.as_deref(), Some("/api/v1/chat/completions"));
        let r: FaultRule = "status:503:retry_after=Wed, 21 Oct 2015 07:28:00 GMT"
            .parse()
            .unwrap();
        assert!(
            matches!(r.fault, Fault::Status { retry_after: Some(ref v), .. } if v == "Wed, 21 Oct 2015 07:28:00 GMT")
        );
        let r: FaultRule = "stream_error:2:code=429:message=Rate limited: slow down"
            .parse()
            .unwrap();
        assert_eq!(
            r.fault,
            Fault::StreamError {
                after_chunks: 2,
                code: 429,
                message: Some("Rate limited: slow down".into())
            }
        );
        assert!("bogus:1".parse::<FaultRule>().is_err());
        assert!("status".parse::<FaultRule>().is_err());
        assert!("status:200".parse::<FaultRule>().is_err());
        assert!("latency:x".parse::<FaultRule>().is_err());
        let r: FaultRule = "stream_cut:2:route=messages".parse().unwrap();
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.path_prefix.as_deref(), Some("/api/v1/messages"));
        assert!("status:500:route=nope".parse::<FaultRule>().is_err());
        let j: FaultRule = serde_json::from_str(
            r#"{"route":"embeddings","fault":{"kind":"status","status":503}}"#,
        )
        .unwrap();
        assert_eq!(j.path_prefix.as_deref(), Some("/api/v1/embeddings"));
        assert!(
            serde_json::from_str::<FaultRule>(
                r#"{"route":"x","fault":{"kind":"status","status":503}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn times_counts_down_and_rule_disappears() {
        let f = Faults::new(vec!["status:500:times=2".parse().unwrap()]);
        assert!(f.take_http("GET", "/api/v1/credits").status.is_some());
        assert!(f.take_http("GET", "/api/v1/credits").status.is_some());
        assert!(f.take_http("GET", "/api/v1/credits").status.is_none());
        assert!(f.list().is_empty());
    }
}
