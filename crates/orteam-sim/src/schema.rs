//! Deterministic sample values for a JSON Schema: the arguments of a forced tool call and the
//! content of a `response_format` `json_schema` answer, so they validate against the schema the
//! caller sent (the subset models are asked for: objects, arrays, scalars, `enum`, `const`,
//! `anyOf`/`oneOf`, nullable type lists).

use serde_json::{Map, Value};

use crate::inference::content_word;

/// How deep nested schemas are followed before answering `null`.
const MAX_DEPTH: u32 = 8;

/// A value valid for `schema`, varied by `seed`.
pub(crate) fn sample(schema: &Value, seed: u64) -> Value {
    sample_at(schema, seed, 0)
}

fn sample_at(schema: &Value, seed: u64, depth: u32) -> Value {
    let Some(s) = schema.as_object() else {
        // `true` / `{}`-like schemas accept anything.
        return Value::String(content_word(seed, 0).to_owned());
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|v| v.first()) {
            return sample_at(first, seed, depth + 1);
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string","null"]`: the first non-null type.
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ if s.contains_key("items") => "array",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (i, (name, sub)) in props.iter().enumerate() {
                    let sub_seed = seed.wrapping_add((i as u64 + 1) << 12);
                    out.insert(name.clone(), sample_at(sub, sub_seed, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = s
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            let items = s.get("items").cloned().unwrap_or(Value::Bool(true));
            Value::Array(
                (0..min.min(16))
                    .map(|i| sample_at(&items, seed.wrapping_add(i << 4), depth + 1))
                    .collect(),
            )
        }
        "integer" => {
            let min = s.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let max = s
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(min.saturating_add(99));
            let span = max.saturating_sub(min).saturating_add(1).max(1) as u64;
            Value::from(min.saturating_add((seed % span) as i64))
        }
        "number" => {
            let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            Value::from(min + (seed % 100) as f64 / 4.0)
        }
        "boolean" => Value::Bool(seed.is_multiple_of(2)),
        "null" => Value::Null,
        _ => Value::String(content_word(seed, 0).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn samples_match_their_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "maybe": {"type": ["boolean", "null"]},
                "nested": {"properties": {"x": {"type": "number"}}}
            },
            "required": ["city", "days"]
        });
        let v = sample(&schema, 42);
        assert!(v["city"].is_string());
        let days = v["days"].as_i64().unwrap();
        assert!((1..=7).contains(&days), "{days}");
        assert_eq!(v["unit"], "celsius");
        assert!(
            v["tags"]
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0].is_string())
        );
        assert!(v["maybe"].is_boolean());
        assert!(v["nested"]["x"].is_number());
    }
}
