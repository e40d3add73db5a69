//! Stage 2: the member's tier decides which model serves the request.

/// A tier's model rule, as the gateway applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPolicy {
    /// `None`: every model. Otherwise exact ids or prefixes ending in `*` (`"anthropic/*"`).
    pub allowed: Option<Vec<String>>,
    /// Serve disallowed requests with this model instead of refusing them.
    pub downgrade_to: Option<String>,
}

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

impl TierPolicy {
    pub fn allow_all() -> Self {
        TierPolicy {
            allowed: None,
            downgrade_to: None,
        }
    }

    pub fn allows(&self, model: &str) -> bool {
        match &self.allowed {
            None => true,
            Some(list) => list.iter().any(|pattern| matches(pattern, model)),
        }
    }

    pub fn decide(&self, requested: &str) -> ModelDecision {
        if self.allows(requested) {
            return ModelDecision::Allowed;
        }
        match &self.downgrade_to {
            Some(target) => ModelDecision::Downgraded(target.clone()),
            None => ModelDecision::Denied {
                allowed: self.allowed.clone().unwrap_or_default(),
            },
        }
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

    fn tier(list: &[&str], downgrade: Option<&str>) -> TierPolicy {
        TierPolicy {
            allowed: Some(list.iter().map(|s| s.to_string()).collect()),
            downgrade_to: downgrade.map(str::to_owned),
        }
    }

    #[test]
    fn allowlist_deny_and_downgrade() {
        let basic = tier(&["openai/gpt-4o-mini", "meta-llama/*"], None);
        assert_eq!(basic.decide("openai/gpt-4o-mini"), ModelDecision::Allowed);
        assert_eq!(
            basic.decide("meta-llama/llama-3.1-8b-instruct"),
            ModelDecision::Allowed
        );
        assert!(
            matches!(basic.decide("openai/gpt-4o"), ModelDecision::Denied { allowed } if allowed.len() == 2)
        );
        let down = tier(&["openai/gpt-4o-mini"], Some("openai/gpt-4o-mini"));
        assert_eq!(
            down.decide("anthropic/claude-3.5-sonnet"),
            ModelDecision::Downgraded("openai/gpt-4o-mini".into())
        );
        assert_eq!(
            TierPolicy::allow_all().decide("x/y"),
            ModelDecision::Allowed
        );
    }
}
