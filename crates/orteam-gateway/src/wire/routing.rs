//! OpenRouter's fields that choose or add models, providers or paid work, on every route, and
//! the gateway's policy for each (so no request reaches a model the tier forbids or costs more
//! than its hold):
//!
//! | field | routes | policy |
//! |---|---|---|
//! | `models` (fallback list), `fallbacks` (`[{model}]`) | chat, messages, responses, completions | every model must be allowed by the tier outright (a model the tier would downgrade is refused); the worst case is priced at the dearest of them |
//! | `preset`, a model `@preset/…` | all | refused: a preset chooses the model and its fields upstream, out of the quote's sight |
//! | `plugins` | chat, messages, responses, completions | refused unless every plugin is free (`context-compression`, `response-healing`): web search, fetch, file parsing and the routers add charges or choose models |
//! | `speed` other than `standard`, `service_tier` `priority`/`fast`/`scale` | messages, responses, chat | refused: priced above the catalog |
//! | server tools in `tools` (`web_search…`, `web_fetch…`, `openrouter:*`) | messages, responses, chat | removed (named in `x-orteam-removed`): OpenRouter bills each call; Codex sends `web_search` by default and keeps working without it |
//! | `route`, `provider` | all | passed: they order endpoints of the models above |

use serde_json::value::RawValue;

use super::json::{self, RequestError};

/// What the routing fields of one request ask for.
#[derive(Debug, Default)]
pub struct Routing<'a> {
    /// Models upstream may serve besides `model`.
    pub fallback_models: Vec<String>,
    /// A field the policy refuses, and why.
    pub refused: Option<(&'static str, String)>,
    /// `tools` without the priced server tools, when any were removed.
    pub kept_tools: Option<Vec<&'a RawValue>>,
    /// Names of what was removed (for `x-orteam-removed`).
    pub removed: Vec<String>,
}

const FREE_PLUGINS: [&str; 2] = ["context-compression", "response-healing"];

impl<'a> Routing<'a> {
    /// Looks at one top-level member; members that are not routing fields are ignored.
    pub fn inspect(&mut self, key: &str, raw: &'a RawValue) -> Result<(), RequestError> {
        match key {
            "models" => {
                let models: Option<Vec<String>> =
                    json::decode(raw, "models", "an array of model ids")?;
                self.fallback_models.extend(models.unwrap_or_default());
            }
            "fallbacks" => {
                #[derive(serde::Deserialize)]
                struct Fallback {
                    model: String,
                }
                let f: Option<Vec<Fallback>> =
                    json::decode(raw, "fallbacks", "an array of {\"model\": …} objects")?;
                self.fallback_models
                    .extend(f.unwrap_or_default().into_iter().map(|f| f.model));
            }
            "preset" if raw.get() != "null" => self.refuse(
                "preset",
                "a preset chooses the model upstream, where the budget cannot price it",
            ),
            "plugins" => {
                #[derive(serde::Deserialize)]
                struct Plugin {
                    id: String,
                }
                let plugins: Option<Vec<Plugin>> =
                    json::decode(raw, "plugins", "an array of {\"id\": …} objects")?;
                if let Some(paid) = plugins
                    .unwrap_or_default()
                    .into_iter()
                    .find(|p| !FREE_PLUGINS.contains(&p.id.as_str()))
                {
                    self.refuse(
                        "plugins",
                        format!(
                            "the plugin {:?} adds charges or chooses models the budget cannot price (allowed: {})",
                            paid.id,
                            FREE_PLUGINS.join(", ")
                        ),
                    );
                }
            }
            "speed" => {
                let speed: Option<String> = json::decode(raw, "speed", "a string")?;
                if speed.is_some_and(|s| s != "standard") {
                    self.refuse("speed", "a fast variant is priced above the catalog");
                }
            }
            "service_tier" => {
                let tier: Option<String> = json::decode(raw, "service_tier", "a string")?;
                if tier.is_some_and(|t| matches!(t.as_str(), "priority" | "fast" | "scale")) {
                    self.refuse(
                        "service_tier",
                        "priority tiers are priced above the catalog",
                    );
                }
            }
            "tools" => {
                let tools: Option<Vec<&'a RawValue>> =
                    json::decode_borrowed(raw, "tools", "an array of tools")?;
                let tools = tools.unwrap_or_default();
                let mut kept = Vec::with_capacity(tools.len());
                for t in tools {
                    match priced_server_tool(t) {
                        Some(name) => self.removed.push(format!("tools.{name}")),
                        None => kept.push(t),
                    }
                }
                if !self.removed.is_empty() {
                    self.kept_tools = Some(kept);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn refuse(&mut self, field: &'static str, why: impl Into<String>) {
        self.refused.get_or_insert((field, why.into()));
    }

    /// The `tools` member to send instead of the client's, if any tool was removed.
    pub fn tools_json(&self) -> Option<Vec<u8>> {
        let kept = self.kept_tools.as_ref()?;
        let mut out = Vec::with_capacity(kept.iter().map(|t| t.get().len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, t) in kept.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(t.get().as_bytes());
        }
        out.push(b']');
        Some(out)
    }
}

/// The type of a tool OpenRouter runs and bills per call, if `tool` is one.
fn priced_server_tool(tool: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Tool {
        #[serde(rename = "type", default)]
        kind: Option<String>,
    }
    let kind = serde_json::from_str::<Tool>(tool.get()).ok()?.kind?;
    let priced = kind.starts_with("web_search")
        || kind.starts_with("web_fetch")
        || (kind.starts_with("openrouter:") && kind != "openrouter:datetime");
    priced.then_some(kind)
}

/// A model id that names a preset.
pub fn is_preset(model: &str) -> bool {
    model.contains("@preset/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(key: &str, value: &'static str) -> Routing<'static> {
        let raw: &'static RawValue = serde_json::from_str(value).unwrap();
        let mut r = Routing::default();
        r.inspect(key, raw).unwrap();
        r
    }

    #[test]
    fn fields_that_choose_models_or_add_charges() {
        assert_eq!(
            inspect("models", r#"["a/b","c/d"]"#).fallback_models,
            ["a/b", "c/d"]
        );
        assert_eq!(
            inspect("fallbacks", r#"[{"model":"e/f"}]"#).fallback_models,
            ["e/f"]
        );
        assert_eq!(
            inspect("plugins", r#"[{"id":"web"}]"#).refused.unwrap().0,
            "plugins"
        );
        assert!(
            inspect("plugins", r#"[{"id":"context-compression"}]"#)
                .refused
                .is_none()
        );
        assert_eq!(inspect("preset", r#""team""#).refused.unwrap().0, "preset");
        assert_eq!(inspect("speed", r#""fast""#).refused.unwrap().0, "speed");
        assert!(inspect("service_tier", r#""auto""#).refused.is_none());
        assert!(
            inspect("provider", r#"{"order":["openai"]}"#)
                .refused
                .is_none()
        );
        let r = inspect(
            "tools",
            r#"[{"type":"function","name":"x"},{"type":"web_search"},{"name":"y","input_schema":{}},{"type":"openrouter:web_fetch"}]"#,
        );
        assert_eq!(
            r.removed,
            ["tools.web_search", "tools.openrouter:web_fetch"]
        );
        let kept: serde_json::Value = serde_json::from_slice(&r.tools_json().unwrap()).unwrap();
        assert_eq!(kept.as_array().unwrap().len(), 2);
        assert!(
            inspect("tools", r#"[{"type":"function","name":"x"}]"#)
                .tools_json()
                .is_none()
        );
    }
}
