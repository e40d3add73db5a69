//! Stage 1: read a chat request without building a JSON tree.
//!
//! The body is split into its top-level members, each kept as raw JSON text; only the fields
//! the gateway acts on (`model`, `messages`, `stream`, `max_tokens`, `max_completion_tokens`,
//! `user`, `stream_options`) are decoded. The upstream body is written back member by member with
//! the few rewritten values, so everything the client sent that we do not touch passes through
//! byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A client error in the request body, reported OpenAI-style with the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: String,
    /// The request parameter at fault, if any (`"model"`, `"max_tokens"` …).
    pub param: Option<&'static str>,
}

impl RequestError {
    fn new(message: impl Into<String>, param: Option<&'static str>) -> Self {
        RequestError {
            message: message.into(),
            param,
        }
    }
}

/// A parsed chat completion request, borrowing from the body bytes.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub model: String,
    pub stream: bool,
    /// `max_tokens` or `max_completion_tokens`, whichever the client set (the latter wins when
    /// both are given, as in OpenAI's API).
    pub max_tokens: Option<u64>,
    /// Whether the client itself asked for the final usage chunk of a stream.
    pub client_wants_stream_usage: bool,
    /// Bytes of the raw `messages` array: an upper bound for the prompt's token count (every
    /// token covers at least one byte, and the JSON syntax around each message outweighs the
    /// chat template's special tokens).
    pub messages_bytes: usize,
}

struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> ChatRequest<'a> {
    /// Parses and validates a chat completion body.
    pub fn parse(body: &'a [u8]) -> Result<Self, RequestError> {
        let Members(members) = serde_json::from_slice(body).map_err(|e| {
            let what = if e.is_data() {
                "the request body must be a JSON object"
            } else {
                "the request body is not valid JSON"
            };
            RequestError::new(format!("{what}: {e}"), None)
        })?;
        let mut model = None;
        let mut stream = false;
        let mut max_tokens = None;
        let mut max_completion_tokens = None;
        let mut wants_usage = false;
        let mut messages_bytes = None;
        for (key, raw) in &members {
            match key.as_ref() {
                "model" => {
                    let m: String = serde_json::from_str(raw.get()).map_err(|_| {
                        RequestError::new("`model` must be a string", Some("model"))
                    })?;
                    if m.trim().is_empty() {
                        return Err(RequestError::new(
                            "`model` must not be empty",
                            Some("model"),
                        ));
                    }
                    model = Some(m);
                }
                "messages" => {
                    let arr: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
                        RequestError::new("`messages` must be an array", Some("messages"))
                    })?;
                    if arr.is_empty() {
                        return Err(RequestError::new(
                            "`messages` must contain at least one message",
                            Some("messages"),
                        ));
                    }
                    for m in arr {
                        if !m.get().trim_start().starts_with('{') {
                            return Err(RequestError::new(
                                "each message must be an object with `role` and `content`",
                                Some("messages"),
                            ));
                        }
                    }
                    messages_bytes = Some(raw.get().len());
                }
                "stream" => {
                    stream = match raw.get() {
                        "true" => true,
                        "false" | "null" => false,
                        _ => {
                            return Err(RequestError::new(
                                "`stream` must be a boolean",
                                Some("stream"),
                            ));
                        }
                    }
                }
                "max_tokens" => max_tokens = parse_token_count(raw, "max_tokens")?,
                "max_completion_tokens" => {
                    max_completion_tokens = parse_token_count(raw, "max_completion_tokens")?
                }
                "stream_options" => {
                    #[derive(Deserialize)]
                    struct StreamOptions {
                        #[serde(default)]
                        include_usage: Option<bool>,
                    }
                    let o: Option<StreamOptions> =
                        serde_json::from_str(raw.get()).map_err(|_| {
                            RequestError::new(
                                "`stream_options` must be an object",
                                Some("stream_options"),
                            )
                        })?;
                    wants_usage = o.and_then(|o| o.include_usage).unwrap_or(false);
                }
                _ => {}
            }
        }
        let model = model.ok_or_else(|| RequestError::new("`model` is required", Some("model")))?;
        let messages_bytes = messages_bytes
            .ok_or_else(|| RequestError::new("`messages` is required", Some("messages")))?;
        Ok(ChatRequest {
            members,
            model,
            stream,
            max_tokens: max_completion_tokens.or(max_tokens),
            client_wants_stream_usage: wants_usage,
            messages_bytes,
        })
    }

    /// Writes the body to send upstream: the client's members untouched except `model`,
    /// `max_tokens`/`max_completion_tokens` (set to `max_tokens`), `user` (the member id, for
    /// attribution) and `stream_options.include_usage` (always on for streams, so the final
    /// chunk carries the cost).
    pub fn upstream_body(&self, model: &str, max_tokens: u64, user: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.members
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 96,
        );
        out.push(b'{');
        let mut first = true;
        let mut push = |out: &mut Vec<u8>, key: &str, value: &[u8]| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json_str(out, key);
            out.push(b':');
            out.extend_from_slice(value);
        };
        for (key, raw) in &self.members {
            match key.as_ref() {
                "model" | "max_tokens" | "max_completion_tokens" | "user" | "stream_options" => {}
                k => push(&mut out, k, raw.get().as_bytes()),
            }
        }
        let mut model_json = Vec::with_capacity(model.len() + 2);
        write_json_str(&mut model_json, model);
        push(&mut out, "model", &model_json);
        push(&mut out, "max_tokens", max_tokens.to_string().as_bytes());
        let mut user_json = Vec::with_capacity(user.len() + 2);
        write_json_str(&mut user_json, user);
        push(&mut out, "user", &user_json);
        if self.stream {
            push(&mut out, "stream_options", br#"{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }
}

fn parse_token_count(raw: &RawValue, name: &'static str) -> Result<Option<u64>, RequestError> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) => Err(RequestError::new(
            format!("`{name}` must be at least 1"),
            Some(name),
        )),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(RequestError::new(
            format!("`{name}` must be a positive integer, got {text}"),
            Some(name),
        )),
    }
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_we_need() {
        let body = br#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"temperature":0.2,"stream":true}"#;
        let r = ChatRequest::parse(body).unwrap();
        assert_eq!(r.model, "openai/gpt-4o");
        assert!(r.stream);
        assert_eq!(r.max_tokens, Some(50));
        assert!(!r.client_wants_stream_usage);
        assert_eq!(
            r.messages_bytes,
            r#"[{"role":"user","content":"hi"}]"#.len()
        );
    }

    #[test]
    fn rewrites_only_what_it_must() {
        let body = br#"{"model":"a/b","messages":[{"role":"user","content":"hi \"x\""}],"max_completion_tokens":500,"temperature":0.2,"user":"spoofed","stream":true}"#;
        let r = ChatRequest::parse(body).unwrap();
        let out = r.upstream_body("a/c", 40, "alice");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "a/c");
        assert_eq!(v["max_tokens"], 40);
        assert!(v.get("max_completion_tokens").is_none());
        assert_eq!(v["user"], "alice");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["messages"][0]["content"], "hi \"x\"");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn bad_bodies_are_named() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"not json", None),
            (b"[1,2]", None),
            (
                br#"{"messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
            ),
            (br#"{"model":"a/b"}"#, Some("messages")),
            (br#"{"model":"a/b","messages":[]}"#, Some("messages")),
            (br#"{"model":"a/b","messages":"hi"}"#, Some("messages")),
            (br#"{"model":7,"messages":[{}]}"#, Some("model")),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":-1}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":1.5}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"max_tokens":0}"#,
                Some("max_tokens"),
            ),
            (
                br#"{"model":"a/b","messages":[{}],"stream":"yes"}"#,
                Some("stream"),
            ),
        ];
        for (body, param) in cases {
            let e = ChatRequest::parse(body).unwrap_err();
            assert_eq!(e.param, *param, "{}", String::from_utf8_lossy(body));
        }
    }
}
