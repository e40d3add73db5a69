//! Embeddings (`POST /v1/embeddings`): no output tokens, no stream. The worst case is the
//! input's size at the model's prompt price; the answer's `usage.cost` settles it (the answer
//! shape is chat's: `id`, `model`, `usage`).

use super::json::{self, Members, RequestError};
use super::routing::Routing;
use super::{CompletionInfo, Wire, WireRequest};

pub fn parse(body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
    let members = Members::parse(body)?;
    let mut routing = Routing::default();
    let mut model = None;
    let mut has_input = false;
    for (key, raw) in members.iter() {
        match key {
            "model" => model = Some(json::non_empty_string(raw, "model")?),
            "input" => {
                json::string_or_array(
                    raw,
                    "input",
                    "a string, an array of strings or an array of token ids",
                )?;
                has_input = true;
            }
            "stream" if json::boolean(raw, "stream")? => {
                return Err(RequestError::new(
                    "embeddings are not streamed",
                    Some("stream"),
                ));
            }
            _ => routing.inspect(key, raw)?,
        }
    }
    let model = model.ok_or_else(|| RequestError::new("`model` is required", Some("model")))?;
    if !has_input {
        return Err(RequestError::new("`input` is required", Some("input")));
    }
    Ok(WireRequest {
        wire: Wire::Embeddings,
        members,
        model,
        stream: false,
        max_output: None,
        prompt_bound: body.len() as u64,
        choices: 1,
        generates: false,
        client_wants_stream_usage: false,
        thinking_budget: None,
        routing,
        media: Default::default(),
    })
}

pub fn read_answer(body: &[u8]) -> Option<CompletionInfo> {
    super::chat::read_answer(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites() {
        let body = br#"{"model":"openai/text-embedding-3-small","input":["a","b"],"dimensions":8}"#;
        let r = parse(body).unwrap();
        assert!(!r.generates);
        let v: serde_json::Value = serde_json::from_slice(&r.upstream_body_in_tests(
            "openai/text-embedding-3-small",
            0,
            "bob",
        ))
        .unwrap();
        assert_eq!(v["user"], "bob");
        assert_eq!(v["dimensions"], 8);
        for (body, param) in [
            (&br#"{"input":"x"}"#[..], "model"),
            (br#"{"model":"a/b"}"#, "input"),
            (br#"{"model":"a/b","input":{}}"#, "input"),
            (br#"{"model":"a/b","input":"x","stream":true}"#, "stream"),
        ] {
            assert_eq!(parse(body).unwrap_err().param, Some(param));
        }
    }
}
