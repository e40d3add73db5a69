//! OpenRouter's fields that choose or add models, providers or paid work, on every route, and
//! what the gateway does with each. The tier's [`RoutingPolicy`] decides (defaults first; the
//! team file's `[tiers.X.routing]`), so no request reaches a model the tier forbids or costs
//! more than its hold:
//!
//! | field | routes | policy |
//! |---|---|---|
//! | `models` (fallback list), `fallbacks` (`[{model}]`) | chat, messages, responses, completions | `check`: every model must be allowed by the tier outright (a model the tier would downgrade is refused) and the worst case is priced at the dearest; `strip`; `refuse` |
//! | `provider`, `route` | all | `check`: passed, with `provider.max_price` capped at the quoted prices (the member's own lower caps kept), so no dearer endpoint can serve; `strip`; `refuse` |
//! | `plugins` | chat, messages, responses, completions | free ones (`context-compression`, `response-healing`) pass; paid ones (web search, fetch, file parsing, the routers) `refuse` or `strip` |
//! | server tools in `tools` (`web_search…`, `web_fetch…`, `openrouter:*`) | messages, responses, chat | `strip` (named in `x-orteam-removed`; Codex sends `web_search` by default and keeps working without it) or `refuse` |
//! | `preset`, a model `@preset/…` | all | always refused: a preset chooses the model and its fields upstream, out of the quote's sight |
//! | `speed` other than `standard`, `service_tier` `priority`/`fast`/`scale` | messages, responses, chat | always refused: priced above the catalog |
//!
//! Whatever the fields, a model upstream serves outside the tier is flagged when the request
//! settles ([`crate::settle`]).

use orteam_core::Money;
use orteam_ledger::{PaidRule, RouteRule, RoutingPolicy};
use serde_json::value::RawValue;

use super::json::{self, RequestError};
use crate::pricing::ModelPrice;

/// What the routing fields of one request ask for.
#[derive(Debug, Default)]
pub struct Routing<'a> {
    /// Models upstream may serve besides `model`.
    pub fallback_models: Vec<String>,
    /// Which fallback members the body has (`models`, `fallbacks`).
    fallback_fields: Vec<&'static str>,
    /// The client's `provider` object.
    provider: Option<&'a RawValue>,
    /// Whether the body has `route`.
    route: bool,
    /// A field refused whatever the tier says, and why.
    pub refused: Option<(&'static str, String)>,
    /// Paid plugins asked for (ids), and the free ones to keep if they are removed.
    paid_plugins: Vec<String>,
    free_plugins: Vec<&'a RawValue>,
    /// Priced server tools asked for (their types), and the other tools.
    server_tools: Vec<String>,
    other_tools: Vec<&'a RawValue>,
}

/// What to forward, once the tier's policy has been applied.
#[derive(Debug, Default)]
pub struct RoutingPlan {
    /// Models upstream may serve besides `model` (each allowed by the tier).
    pub fallback_models: Vec<String>,
    /// Top-level members to drop.
    pub strip: Vec<&'static str>,
    /// Replacement members: `tools` and `plugins` without what was removed.
    pub replace: Vec<(&'static str, Vec<u8>)>,
    /// What was removed, for `x-orteam-removed`.
    pub removed: Vec<String>,
    /// The client's `provider` object, when it is passed (with `max_price` capped).
    pub provider: Option<String>,
}

/// A field the tier's policy refuses.
#[derive(Debug)]
pub struct FieldRefused {
    pub field: &'static str,
    pub reason: String,
}

const FREE_PLUGINS: [&str; 2] = ["context-compression", "response-healing"];

impl<'a> Routing<'a> {
    /// Looks at one top-level member; members that are not routing fields are ignored.
    pub fn inspect(&mut self, key: &str, raw: &'a RawValue) -> Result<(), RequestError> {
        match key {
            "models" => {
                let models: Option<Vec<String>> =
                    json::decode(raw, "models", "an array of model ids")?;
                if let Some(models) = models {
                    self.fallback_fields.push("models");
                    self.fallback_models.extend(models);
                }
            }
            "fallbacks" => {
                #[derive(serde::Deserialize)]
                struct Fallback {
                    model: String,
                }
                let f: Option<Vec<Fallback>> =
                    json::decode(raw, "fallbacks", "an array of {\"model\": …} objects")?;
                if let Some(f) = f {
                    self.fallback_fields.push("fallbacks");
                    self.fallback_models.extend(f.into_iter().map(|f| f.model));
                }
            }
            "provider" if raw.get() != "null" => {
                let _: serde_json::Map<String, serde_json::Value> =
                    json::decode::<Option<_>>(raw, "provider", "an object")?.unwrap_or_default();
                self.provider = Some(raw);
            }
            "route" if raw.get() != "null" => self.route = true,
            "preset" if raw.get() != "null" => self.refuse(
                "preset",
                "a preset chooses the model upstream, where the budget cannot price it",
            ),
            "plugins" => {
                #[derive(serde::Deserialize)]
                struct Plugin {
                    id: String,
                }
                let plugins: Option<Vec<&'a RawValue>> =
                    json::decode_borrowed(raw, "plugins", "an array of {\"id\": …} objects")?;
                for p in plugins.unwrap_or_default() {
                    let plugin: Plugin = serde_json::from_str(p.get()).map_err(|_| {
                        RequestError::new(
                            "`plugins` must be an array of {\"id\": …} objects",
                            Some("plugins"),
                        )
                    })?;
                    if FREE_PLUGINS.contains(&plugin.id.as_str()) {
                        self.free_plugins.push(p);
                    } else {
                        self.paid_plugins.push(plugin.id);
                    }
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
                for t in tools.unwrap_or_default() {
                    match priced_server_tool(t) {
                        Some(name) => self.server_tools.push(name),
                        None => self.other_tools.push(t),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn refuse(&mut self, field: &'static str, why: impl Into<String>) {
        self.refused.get_or_insert((field, why.into()));
    }

    /// Applies the tier's policy: what to forward, or the first field it refuses.
    pub fn apply(&self, policy: &RoutingPolicy) -> Result<RoutingPlan, FieldRefused> {
        if let Some((field, reason)) = &self.refused {
            return Err(FieldRefused {
                field,
                reason: reason.clone(),
            });
        }
        let refused = |field: &'static str, what: &str| FieldRefused {
            field,
            reason: format!("{what} is not allowed for your tier"),
        };
        let mut plan = RoutingPlan::default();
        match policy.fallbacks {
            RouteRule::Check => plan.fallback_models = self.fallback_models.clone(),
            RouteRule::Strip => {
                plan.strip.extend(&self.fallback_fields);
                plan.removed
                    .extend(self.fallback_fields.iter().map(|f| (*f).to_owned()));
            }
            RouteRule::Refuse => {
                if let Some(field) = self.fallback_fields.first() {
                    return Err(refused(field, "a fallback model list"));
                }
            }
        }
        let provider_fields = self
            .provider
            .map(|_| "provider")
            .into_iter()
            .chain(self.route.then_some("route"));
        match policy.provider {
            RouteRule::Check => plan.provider = self.provider.map(|p| p.get().to_owned()),
            RouteRule::Strip => {
                for f in provider_fields {
                    plan.strip.push(f);
                    plan.removed.push(f.to_owned());
                }
            }
            RouteRule::Refuse => {
                if let Some(field) = provider_fields.into_iter().next() {
                    return Err(refused(field, "choosing providers"));
                }
            }
        }
        if let Some(paid) = self.paid_plugins.first() {
            match policy.plugins {
                PaidRule::Refuse => {
                    return Err(FieldRefused {
                        field: "plugins",
                        reason: format!(
                            "the plugin {paid:?} adds charges or chooses models the budget cannot price (allowed: {})",
                            FREE_PLUGINS.join(", ")
                        ),
                    });
                }
                PaidRule::Strip => {
                    plan.replace
                        .push(("plugins", json_array(&self.free_plugins)));
                    plan.removed
                        .extend(self.paid_plugins.iter().map(|p| format!("plugins.{p}")));
                }
            }
        }
        if let Some(tool) = self.server_tools.first() {
            match policy.server_tools {
                PaidRule::Refuse => {
                    return Err(FieldRefused {
                        field: "tools",
                        reason: format!(
                            "the server tool {tool:?} is billed per call by OpenRouter, which the budget cannot price"
                        ),
                    });
                }
                PaidRule::Strip => {
                    plan.replace.push(("tools", json_array(&self.other_tools)));
                    plan.removed
                        .extend(self.server_tools.iter().map(|t| format!("tools.{t}")));
                }
            }
        }
        Ok(plan)
    }
}

fn json_array(items: &[&RawValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|t| t.get().len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(t.get().as_bytes());
    }
    out.push(b']');
    out
}

/// The `provider` member to send: the client's preferences (if passed) with `max_price` no
/// higher than `price`, the rates the hold was quoted at (in OpenRouter's units: USD per
/// million tokens, per request, per image), so upstream cannot route to an endpoint dearer
/// than the quote. A lower cap of the client's own is kept.
pub fn provider_json(client: Option<&str>, price: &ModelPrice, media_parts: u64) -> Vec<u8> {
    use serde_json::{Map, Value};
    let mut provider: Map<String, Value> = client
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let mut caps = match provider.remove("max_price") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let per_million = |m: Money| m.checked_mul_u64(1_000_000);
    let mut ours: Vec<(&str, Option<Money>)> = vec![
        ("prompt", per_million(price.prompt)),
        ("completion", per_million(price.completion)),
        ("request", Some(price.request)),
    ];
    if media_parts > 0 {
        ours.push(("image", Some(price.media)));
    }
    for (field, cap) in ours {
        let Some(cap) = cap else { continue };
        let theirs = caps.get(field).and_then(money_of);
        let keep = theirs.is_some_and(|t| t <= cap);
        if !keep {
            caps.insert(field.to_owned(), Value::String(cap.to_canonical_string()));
        }
    }
    provider.insert("max_price".to_owned(), Value::Object(caps));
    serde_json::to_vec(&Value::Object(provider)).unwrap_or_else(|_| b"{}".to_vec())
}

fn money_of(v: &serde_json::Value) -> Option<Money> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
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

    fn refused_field(
        key: &str,
        value: &'static str,
        policy: RoutingPolicy,
    ) -> Option<&'static str> {
        inspect(key, value).apply(&policy).err().map(|e| e.field)
    }

    #[test]
    fn the_default_policy() {
        let d = RoutingPolicy::default();
        let plan = inspect("models", r#"["a/b","c/d"]"#).apply(&d).unwrap();
        assert_eq!(plan.fallback_models, ["a/b", "c/d"]);
        assert_eq!(
            inspect("fallbacks", r#"[{"model":"e/f"}]"#)
                .apply(&d)
                .unwrap()
                .fallback_models,
            ["e/f"]
        );
        assert_eq!(
            refused_field("plugins", r#"[{"id":"web"}]"#, d),
            Some("plugins")
        );
        assert_eq!(
            refused_field("plugins", r#"[{"id":"context-compression"}]"#, d),
            None
        );
        assert_eq!(refused_field("preset", r#""team""#, d), Some("preset"));
        assert_eq!(refused_field("speed", r#""fast""#, d), Some("speed"));
        assert_eq!(refused_field("service_tier", r#""auto""#, d), None);
        let plan = inspect("provider", r#"{"order":["openai"]}"#)
            .apply(&d)
            .unwrap();
        assert_eq!(plan.provider.as_deref(), Some(r#"{"order":["openai"]}"#));
        let plan = inspect(
            "tools",
            r#"[{"type":"function","name":"x"},{"type":"web_search"},{"name":"y","input_schema":{}},{"type":"openrouter:web_fetch"}]"#,
        )
        .apply(&d)
        .unwrap();
        assert_eq!(
            plan.removed,
            ["tools.web_search", "tools.openrouter:web_fetch"]
        );
        let kept: serde_json::Value = serde_json::from_slice(&plan.replace[0].1).unwrap();
        assert_eq!(kept.as_array().unwrap().len(), 2);
        assert!(
            inspect("tools", r#"[{"type":"function","name":"x"}]"#)
                .apply(&d)
                .unwrap()
                .replace
                .is_empty()
        );
    }

    #[test]
    fn a_tier_can_strip_or_refuse_each_field() {
        let strict = RoutingPolicy {
            fallbacks: RouteRule::Refuse,
            provider: RouteRule::Refuse,
            plugins: PaidRule::Refuse,
            server_tools: PaidRule::Refuse,
        };
        assert_eq!(
            refused_field("models", r#"["a/b"]"#, strict),
            Some("models")
        );
        assert_eq!(
            refused_field("provider", r#"{"sort":"price"}"#, strict),
            Some("provider")
        );
        assert_eq!(
            refused_field("route", r#""fallback""#, strict),
            Some("route")
        );
        assert_eq!(
            refused_field("tools", r#"[{"type":"web_search"}]"#, strict),
            Some("tools")
        );
        let strip = RoutingPolicy {
            fallbacks: RouteRule::Strip,
            provider: RouteRule::Strip,
            plugins: PaidRule::Strip,
            server_tools: PaidRule::Strip,
        };
        let plan = inspect("models", r#"["a/b"]"#).apply(&strip).unwrap();
        assert!(plan.fallback_models.is_empty());
        assert_eq!(plan.strip, ["models"]);
        let plan = inspect("provider", r#"{"sort":"price"}"#)
            .apply(&strip)
            .unwrap();
        assert_eq!((plan.strip, plan.provider), (vec!["provider"], None));
        let plan = inspect("plugins", r#"[{"id":"web"},{"id":"response-healing"}]"#)
            .apply(&strip)
            .unwrap();
        assert_eq!(plan.removed, ["plugins.web"]);
        assert_eq!(plan.replace[0].0, "plugins");
        assert_eq!(
            String::from_utf8(plan.replace[0].1.clone()).unwrap(),
            r#"[{"id":"response-healing"}]"#
        );
    }

    #[test]
    fn provider_max_price_is_capped_at_the_quote() {
        let price = ModelPrice {
            prompt: "0.00000015".parse().unwrap(),
            completion: "0.0000006".parse().unwrap(),
            request: Money::ZERO,
            media: "0.000217".parse().unwrap(),
            max_completion_tokens: None,
            context_length: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&provider_json(None, &price, 0)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"max_price": {"prompt": "0.15", "completion": "0.6", "request": "0"}})
        );
        // The client's lower cap stays, a higher one is lowered, other preferences pass.
        let client = r#"{"order":["openai"],"max_price":{"prompt":0.1,"completion":"5"}}"#;
        let v: serde_json::Value =
            serde_json::from_slice(&provider_json(Some(client), &price, 1)).unwrap();
        assert_eq!(v["order"], serde_json::json!(["openai"]));
        assert_eq!(v["max_price"]["prompt"], serde_json::json!(0.1));
        assert_eq!(v["max_price"]["completion"], "0.6");
        assert_eq!(v["max_price"]["image"], "0.000217");
    }
}
