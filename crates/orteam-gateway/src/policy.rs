//! Stage 3: the member's tier decides which model serves the request.
//!
//! Allowlist entries are exact model ids or prefixes ending in `*` (`"anthropic/*"`).

use orteam_ledger::{ModelAccess, OnDisallowed, Tier};

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelDecision {
    /// Serve the requested model.
    Allowed,
    /// Serve this model instead (reported to the client in `x-orteam-model`).
    Downgraded(String),
    /// Refuse with 403, naming what the tier allows.
    Denied { allowed: Vec<String> },
}

/// Whether `tier` lets a member use `model`.
pub fn allows(tier: &Tier, model: &str) -> bool {
    match &tier.models {
        ModelAccess::All => true,
        ModelAccess::Allow(list) => list.iter().any(|pattern| matches(pattern, model)),
    }
}

/// Applies the tier's allowlist and on-disallowed rule to a requested model.
pub fn decide(tier: &Tier, requested: &str) -> ModelDecision {
    if allows(tier, requested) {
        return ModelDecision::Allowed;
    }
    match (&tier.on_disallowed, &tier.models) {
        (OnDisallowed::Downgrade(target), _) => ModelDecision::Downgraded(target.clone()),
        (OnDisallowed::Deny, ModelAccess::Allow(list)) => ModelDecision::Denied {
            allowed: list.clone(),
        },
        (OnDisallowed::Deny, ModelAccess::All) => ModelDecision::Allowed,
    }
}

fn matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(list: &[&str], downgrade: Option<&str>) -> Tier {
        Tier {
            id: "basic".into(),
            name: "basic".into(),
            models: ModelAccess::Allow(list.iter().map(|s| s.to_string()).collect()),
            on_disallowed: match downgrade {
                Some(m) => OnDisallowed::Downgrade(m.into()),
                None => OnDisallowed::Deny,
            },
            ..Tier::default()
        }
    }

    #[test]
    fn allowlist_deny_and_downgrade() {
        let basic = tier(&["openai/gpt-4o-mini", "meta-llama/*"], None);
        assert_eq!(decide(&basic, "openai/gpt-4o-mini"), ModelDecision::Allowed);
        assert_eq!(
            decide(&basic, "meta-llama/llama-3.1-8b-instruct"),
            ModelDecision::Allowed
        );
        assert!(
            matches!(decide(&basic, "openai/gpt-4o"), ModelDecision::Denied { allowed } if allowed.len() == 2)
        );
        let down = tier(&["openai/gpt-4o-mini"], Some("openai/gpt-4o-mini"));
        assert_eq!(
            decide(&down, "anthropic/claude-3.5-sonnet"),
            ModelDecision::Downgraded("openai/gpt-4o-mini".into())
        );
    }
}
