//! Refused requests in words: the one sentence every view (CLI, `top`, the dashboard, MCP, the
//! weekly report) shows for "who was refused, how often, by what". The counts themselves live in
//! the ledger (`refusals` table).

/// `carol refused 225× by the member "carol" daily budget`. `member` is empty for keys that
/// did not authenticate; `reason` is the gateway's error code; `detail` what refused them.
pub fn describe(member: &str, reason: &str, detail: &str, count: u64) -> String {
    let who = if member.is_empty() {
        "unknown keys"
    } else {
        member
    };
    let by = match (reason, detail) {
        ("budget_exceeded", d) if !d.is_empty() => format!("by the {d} budget"),
        ("budget_exceeded", _) => "by a budget".to_owned(),
        ("rate_limit_exceeded", d) if !d.is_empty() => format!("by the rate limit ({d})"),
        ("model_not_allowed", d) if !d.is_empty() => format!("by {d} (model not allowed)"),
        ("invalid_api_key", _) => "as not a valid key".to_owned(),
        (r, "") => format!("({})", r.replace('_', " ")),
        (r, d) => format!("({}: {d})", r.replace('_', " ")),
    };
    format!("{who} refused {count}× {by}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            describe("carol", "budget_exceeded", "member \"carol\" daily", 225),
            "carol refused 225× by the member \"carol\" daily budget"
        );
        assert_eq!(
            describe("", "invalid_api_key", "", 3),
            "unknown keys refused 3× as not a valid key"
        );
        assert_eq!(
            describe("bob", "model_not_found", "", 2),
            "bob refused 2× (model not found)"
        );
    }
}
