//! Legacy text completions (`POST /v1/completions`): `prompt` instead of `messages`, otherwise
//! chat's rules (`max_tokens`, `n`, `stream_options`, the usage chunk, `[DONE]`), so the
//! rewrite, the answer and the stream are chat's.

use super::json::{self, Members, RequestError};
use super::routing::Routing;
use super::{Wire, WireRequest};

pub fn parse(body: &[u8]) -> Result<WireRequest<'_>, RequestError> {
    let members = Members::parse(body)?;
    let mut routing = Routing::default();
    let mut model = None;
    let mut stream = false;
    let mut max_tokens = None;
    let mut wants_usage = false;
    let mut has_prompt = false;
    let mut choices = 1;
    let mut best_of = 1;
    for (key, raw) in members.iter() {
        match key {
            "model" => model = Some(json::non_empty_string(raw, "model")?),
            "prompt" => {
                json::string_or_array(raw, "prompt", "a string, an array of strings or token ids")?;
                has_prompt = true;
            }
            "stream" => stream = json::boolean(raw, "stream")?,
            "max_tokens" => max_tokens = json::token_count(raw, "max_tokens")?,
            "n" => choices = json::token_count(raw, "n")?.unwrap_or(1),
            "best_of" => best_of = json::token_count(raw, "best_of")?.unwrap_or(1),
            "stream_options" => wants_usage = super::chat::stream_usage_requested(raw)?,
            _ => routing.inspect(key, raw)?,
        }
    }
    let model = model.ok_or_else(|| RequestError::new("`model` is required", Some("model")))?;
    if !has_prompt {
        return Err(RequestError::new("`prompt` is required", Some("prompt")));
    }
    Ok(WireRequest {
        wire: Wire::Completions,
        members,
        model,
        stream,
        max_output: max_tokens,
        prompt_bound: body.len() as u64,
        // best_of candidates are generated (and billed) even though n are returned.
        choices: choices.max(best_of),
        generates: true,
        client_wants_stream_usage: wants_usage,
        thinking_budget: None,
        routing,
        media: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites_like_chat() {
        let body = br#"{"model":"openai/gpt-3.5-turbo-instruct","prompt":"Once","max_tokens":30,"n":2,"stream":true}"#;
        let r = parse(body).unwrap();
        assert_eq!((r.max_output, r.choices), (Some(30), 2));
        let v: serde_json::Value = serde_json::from_slice(&r.upstream_body_in_tests(
            "openai/gpt-3.5-turbo-instruct",
            10,
            "c",
        ))
        .unwrap();
        assert_eq!(v["max_tokens"], 10);
        assert_eq!(v["prompt"], "Once");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(
            parse(br#"{"model":"a/b"}"#).unwrap_err().param,
            Some("prompt")
        );
    }
}
