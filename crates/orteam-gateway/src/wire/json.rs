//! Reading and writing request bodies without building a JSON tree.
//!
//! A body is split into its top-level members, each kept as raw JSON text borrowed from the
//! request bytes; adapters decode only the members the gateway acts on. The upstream body is
//! written back member by member with the few rewritten values, so everything the client sent
//! that the gateway does not touch passes through byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::value::RawValue;

/// A client error in the request body, with the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub message: String,
    /// The request parameter at fault, if any (`"model"`, `"max_tokens"` …).
    pub param: Option<&'static str>,
}

impl RequestError {
    pub(crate) fn new(message: impl Into<String>, param: Option<&'static str>) -> Self {
        RequestError {
            message: message.into(),
            param,
        }
    }
}

/// The top-level members of a JSON object body, in order, values as raw JSON.
#[derive(Debug, Default)]
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

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

impl<'a> Members<'a> {
    /// Splits a body that must be a JSON object. A member given twice is refused: JSON
    /// parsers disagree on which copy wins, so the gateway could check one copy while
    /// upstream reads another.
    pub fn parse(body: &'a [u8]) -> Result<Self, RequestError> {
        let members: Members<'a> = serde_json::from_slice(body).map_err(|e| {
            let what = if e.is_data() {
                "the request body must be a JSON object"
            } else {
                "the request body is not valid JSON"
            };
            RequestError::new(format!("{what}: {e}"), None)
        })?;
        let m = &members.0;
        for (i, (key, _)) in m.iter().enumerate() {
            if m[..i].iter().any(|(k, _)| k == key) {
                return Err(RequestError::new(
                    format!("the member `{key}` appears more than once"),
                    None,
                ));
            }
        }
        Ok(members)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// Writes the object back with `rewrite` applied.
    pub fn rewritten(&self, rewrite: &Rewrite) -> Vec<u8> {
        let extra: Vec<(&str, &[u8])> = rewrite
            .set
            .iter()
            .map(|(k, v)| (*k, v.as_slice()))
            .collect();
        self.write(&rewrite.replaced, &extra)
    }

    /// Writes the object back: every member except those named in `replaced`, then `extra`
    /// (already JSON-encoded values) in order.
    pub fn write(&self, replaced: &[&str], extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + extra
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + 2,
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
        for (key, raw) in &self.0 {
            if !replaced.contains(&key.as_ref()) {
                push(&mut out, key, raw.get().as_bytes());
            }
        }
        for (key, value) in extra {
            push(&mut out, key, value);
        }
        out.push(b'}');
        out
    }
}

/// The members the gateway replaces or removes in a body it forwards.
#[derive(Debug, Default)]
pub struct Rewrite {
    replaced: Vec<&'static str>,
    set: Vec<(&'static str, Vec<u8>)>,
}

impl Rewrite {
    /// Replaces (or adds) `key` with a JSON-encoded value.
    pub fn set(&mut self, key: &'static str, json: impl Into<Vec<u8>>) -> &mut Self {
        self.remove(key);
        self.set.push((key, json.into()));
        self
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &'static str) -> &mut Self {
        if !self.replaced.contains(&key) {
            self.replaced.push(key);
        }
        self.set.retain(|(k, _)| *k != key);
        self
    }
}

/// A required, non-empty string member (`model`).
pub fn non_empty_string(raw: &RawValue, name: &'static str) -> Result<String, RequestError> {
    let s: String = serde_json::from_str(raw.get())
        .map_err(|_| RequestError::new(format!("`{name}` must be a string"), Some(name)))?;
    if s.trim().is_empty() {
        return Err(RequestError::new(
            format!("`{name}` must not be empty"),
            Some(name),
        ));
    }
    Ok(s)
}

/// `true`, `false` or `null` (false).
pub fn boolean(raw: &RawValue, name: &'static str) -> Result<bool, RequestError> {
    match raw.get() {
        "true" => Ok(true),
        "false" | "null" => Ok(false),
        _ => Err(RequestError::new(
            format!("`{name}` must be a boolean"),
            Some(name),
        )),
    }
}

/// A positive token count, or `null`.
pub fn token_count(raw: &RawValue, name: &'static str) -> Result<Option<u64>, RequestError> {
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

/// Decodes a member into `T`, naming the member when it does not fit.
pub fn decode<T: DeserializeOwned>(
    raw: &RawValue,
    name: &'static str,
    expected: &str,
) -> Result<T, RequestError> {
    serde_json::from_str(raw.get())
        .map_err(|_| RequestError::new(format!("`{name}` must be {expected}"), Some(name)))
}

/// Decodes a member into `T` borrowing from the body, naming the member when it does not fit.
pub fn decode_borrowed<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    name: &'static str,
    expected: &str,
) -> Result<T, RequestError> {
    serde_json::from_str(raw.get())
        .map_err(|_| RequestError::new(format!("`{name}` must be {expected}"), Some(name)))
}

/// A non-empty JSON array whose items are objects (`messages`).
pub fn object_array(raw: &RawValue, name: &'static str) -> Result<(), RequestError> {
    let arr: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| RequestError::new(format!("`{name}` must be an array"), Some(name)))?;
    if arr.is_empty() {
        return Err(RequestError::new(
            format!("`{name}` must contain at least one message"),
            Some(name),
        ));
    }
    if arr.iter().any(|m| !m.get().trim_start().starts_with('{')) {
        return Err(RequestError::new(
            "each message must be an object with `role` and `content`",
            Some(name),
        ));
    }
    Ok(())
}

/// A string or an array (`input`, `prompt`): what each item holds is upstream's to judge.
pub fn string_or_array(
    raw: &RawValue,
    name: &'static str,
    expected: &str,
) -> Result<(), RequestError> {
    let text = raw.get().trim_start();
    if text.starts_with('"') || text.starts_with('[') {
        Ok(())
    } else {
        Err(RequestError::new(
            format!("`{name}` must be {expected}"),
            Some(name),
        ))
    }
}

/// A JSON string literal.
pub fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_json_str(&mut out, s);
    out
}

pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The `contains` test used to skip decoding SSE events that cannot matter.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
