//! Enforcement of guardrails on completions.
//!
//! Following the docs: a key is covered by its own guardrail and by its creator member's
//! guardrail; allowlists intersect, ZDR is OR-ed, a key guardrail's budget limits the key's
//! spend and a member guardrail's budget limits the member's spend across their keys.

use chrono::NaiveDate;
use orteam_core::{Money, Window};

use super::Guardrail;
use crate::error::ApiError;
use crate::models::{EndpointDef, Model};
use crate::state::{KeyRecord, State as SimState};

/// The guardrails covering `key`: its own, then its creator member's.
fn covering<'a>(st: &'a SimState, key: &KeyRecord) -> [Option<&'a Guardrail>; 2] {
    if st.key_assign.is_empty() && st.member_assign.is_empty() {
        return [None, None];
    }
    let own = st
        .key_assign
        .get(&key.hash)
        .and_then(|a| st.guardrails.get(&a.guardrail_id));
    let member = key
        .creator_user_id
        .as_deref()
        .and_then(|u| st.member_assign.get(u))
        .and_then(|a| st.guardrails.get(&a.guardrail_id));
    [own, member]
}

fn blocked(msg: String, g: &Guardrail) -> ApiError {
    ApiError::forbidden(msg)
        .with_metadata(serde_json::json!({"guardrail_id": g.id, "error_type": "permission_denied"}))
}

fn list_has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value))
}

/// The endpoint (index into `model.endpoints`) a request may use, or 403 when the guardrails
/// exclude the model or every provider serving it.
pub(crate) fn route(st: &SimState, key: &KeyRecord, model: &Model) -> Result<usize, ApiError> {
    let gs = covering(st, key);
    if gs.iter().all(Option::is_none) {
        return Ok(0);
    }
    let model_in =
        |list: &[String]| list_has(list, &model.canonical_slug) || list_has(list, &model.id);
    for g in gs.iter().flatten() {
        if let Some(allowed) = &g.allowed_models
            && !model_in(allowed)
        {
            return Err(blocked(
                format!(
                    "Request blocked: model {} is not in the allowed models of guardrail \"{}\"",
                    model.id, g.name
                ),
                g,
            ));
        }
        if let Some(ignored) = &g.ignored_models
            && model_in(ignored)
        {
            return Err(blocked(
                format!(
                    "Request blocked: model {} is excluded by guardrail \"{}\"",
                    model.id, g.name
                ),
                g,
            ));
        }
    }
    let ok = |e: &EndpointDef| {
        gs.iter().flatten().all(|g| {
            g.allowed_providers
                .as_ref()
                .is_none_or(|l| list_has(l, &e.provider_name))
                && !g
                    .ignored_providers
                    .as_ref()
                    .is_some_and(|l| list_has(l, &e.provider_name))
                && (g.enforce_zdr != Some(true) || e.zdr)
        })
    };
    match model.endpoints.iter().position(ok) {
        Some(i) => Ok(i),
        None => {
            let g = gs.iter().flatten().next().copied();
            let name = g.map(|g| g.name.as_str()).unwrap_or_default();
            let err = ApiError::forbidden(format!(
                "Request blocked: no provider of {} satisfies the provider and data policy restrictions of guardrail \"{name}\"",
                model.id
            ));
            Err(match g {
                Some(g) => blocked(err.message.into_owned(), g),
                None => err,
            })
        }
    }
}

/// Budget checks of the guardrails covering `key`.
pub(crate) fn check_budgets(
    st: &SimState,
    key: &KeyRecord,
    today: NaiveDate,
) -> Result<(), ApiError> {
    let [own, member] = covering(st, key);
    let exhausted = |g: &Guardrail, limit: Money, whose: &str| {
        let period = g.reset_interval.map_or("total", Window::as_str);
        blocked(
            format!(
                "Request blocked: {whose} budget of ${limit} ({period}) set by guardrail \"{}\" is exhausted",
                g.name
            ),
            g,
        )
    };
    if let Some(g) = own
        && let Some(limit) = g.limit_usd
        && key.period_usage(g.reset_interval, today).0 >= limit
    {
        return Err(exhausted(g, limit, "key"));
    }
    if let (Some(g), Some(user)) = (member, key.creator_user_id.as_deref())
        && let Some(limit) = g.limit_usd
        && st.member_period_usage(user, g.reset_interval, today) >= limit
    {
        return Err(exhausted(g, limit, "member"));
    }
    Ok(())
}

/// One budget that applies to a key, as `GET /key` reports it in `budgets`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct KeyBudget {
    pub budget_id: Option<String>,
    pub guardrail_id: Option<String>,
    pub include_byok: bool,
    #[serde(with = "orteam_core::money::json_number")]
    pub limit_usd: Money,
    #[serde(with = "orteam_core::money::json_number")]
    pub remaining_usd: Money,
    pub reset_interval: Option<Window>,
    pub resets_at: Option<String>,
    pub scope: &'static str,
    #[serde(with = "orteam_core::money::json_number")]
    pub spend_usd: Money,
}

impl KeyBudget {
    fn new(
        scope: &'static str,
        guardrail_id: Option<&str>,
        limit: Money,
        spend: Money,
        reset: Option<Window>,
        include_byok: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        KeyBudget {
            budget_id: None,
            guardrail_id: guardrail_id.map(str::to_owned),
            include_byok,
            limit_usd: limit,
            remaining_usd: limit.saturating_sub_floor_zero(spend),
            reset_interval: reset,
            resets_at: reset.map(|w| crate::keys::fmt_ts(w.reset_at(now))),
            scope,
            spend_usd: spend,
        }
    }
}

/// Every budget limiting `key` (its own limit, its guardrail's, its creator member's
/// guardrail's) and the effective one: the one with the least left.
pub(crate) fn key_budgets(
    st: &SimState,
    key: &KeyRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<KeyBudget>, Option<usize>) {
    let today = now.date_naive();
    let mut out = Vec::new();
    if let Some(limit) = key.limit {
        let (usage, byok) = key.period_usage(key.limit_reset, today);
        let spend = if key.include_byok_in_limit {
            usage.checked_add(byok).unwrap_or(usage)
        } else {
            usage
        };
        out.push(KeyBudget::new(
            "key_limit",
            None,
            limit,
            spend,
            key.limit_reset,
            key.include_byok_in_limit,
            now,
        ));
    }
    let [own, member] = covering(st, key);
    if let Some(g) = own
        && let Some(limit) = g.limit_usd
    {
        let spend = key.period_usage(g.reset_interval, today).0;
        out.push(KeyBudget::new(
            "api_key",
            Some(&g.id),
            limit,
            spend,
            g.reset_interval,
            g.include_byok_in_budgets,
            now,
        ));
    }
    if let (Some(g), Some(user)) = (member, key.creator_user_id.as_deref())
        && let Some(limit) = g.limit_usd
    {
        let spend = st.member_period_usage(user, g.reset_interval, today);
        out.push(KeyBudget::new(
            "member",
            Some(&g.id),
            limit,
            spend,
            g.reset_interval,
            g.include_byok_in_budgets,
            now,
        ));
    }
    let effective = out
        .iter()
        .enumerate()
        .min_by_key(|(_, b)| b.remaining_usd)
        .map(|(i, _)| i);
    (out, effective)
}
