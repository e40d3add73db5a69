//! `GET /v1/key` (also `/api/v1/key`): a member asks about their own key with that key, no
//! admin credentials. The answer is OpenRouter's current-key shape (`{"data": {...}}`), so
//! OpenRouter clients that show "credits left" work through orteam unchanged, extended under
//! `data.orteam` with every budget that applies to the member (member, team and org × daily,
//! weekly, monthly: limit, raise, spent, held, remaining, reset time), the tier's models and
//! rate limits, and this month's spend by day and by model.
//!
//! How orteam fills OpenRouter's fields: `limit`, `limit_remaining` and `limit_reset` describe
//! the budget that binds first (the least room left), `budgets` lists every budget in
//! OpenRouter's key-budget shape, and `usage*` is the member's spend (all their keys: budgets
//! count members, not keys). OpenRouter's money fields are JSON numbers written from the exact
//! decimal text; orteam's own fields under `orteam` are decimal strings.

use axum::body::Body;
use chrono::{DateTime, NaiveDate, Utc};
use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;
use orteam_core::{Money, Window, money::json_number};
use orteam_ledger::{
    AuthContext, BudgetStatus, GroupBy, Ledger, ModelAccess, OnDisallowed, UsageQuery,
};
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::wire::ErrorShape;

/// Whether `path` is the current-key route.
pub(crate) fn is_route(path: &str) -> bool {
    matches!(path, "/v1/key" | "/api/v1/key")
}

/// Answers the current-key route.
pub(crate) async fn serve(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return GatewayError::MethodNotAllowed("GET").to_response_as(ErrorShape::OpenAi);
    }
    match current_key(gw, req.headers()).await {
        Ok(view) => {
            let mut resp = axum::response::IntoResponse::into_response(axum::Json(view));
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => e.to_response_as(ErrorShape::OpenAi),
    }
}

async fn current_key(gw: &Gateway, headers: &HeaderMap) -> Result<CurrentKey, GatewayError> {
    let auth = crate::auth::authenticate(&gw.ledger, headers)?;
    let now = gw.clock.now();
    let data = key_info(&gw.ledger, &auth, now).await?;
    Ok(CurrentKey { data })
}

fn internal(e: orteam_ledger::LedgerError) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

/// Everything `/v1/key` says about the member behind `auth`, as of `now`.
pub async fn key_info(
    ledger: &Ledger,
    auth: &AuthContext,
    now: DateTime<Utc>,
) -> Result<KeyInfo, GatewayError> {
    let budgets = ledger
        .member_budget_view(&auth.member_id)
        .await
        .map_err(internal)?;
    let usage = member_usage(ledger, &auth.member_id, now).await?;
    let effective = effective_budget(&budgets);
    let or_budgets: Vec<KeyBudget> = budgets.iter().map(KeyBudget::of).collect();
    let tier = &auth.tier;
    Ok(KeyInfo {
        label: format!("{}{}…", orteam_ledger::KEY_PREFIX, auth.key_id),
        limit: effective.map(|b| b.limit),
        limit_remaining: effective.map(|b| b.remaining),
        limit_reset: effective.map(|b| b.window),
        include_byok_in_limit: false,
        usage: usage.total,
        usage_daily: usage.daily,
        usage_weekly: usage.weekly,
        usage_monthly: usage.monthly,
        byok_usage: Money::ZERO,
        byok_usage_daily: Money::ZERO,
        byok_usage_weekly: Money::ZERO,
        byok_usage_monthly: Money::ZERO,
        is_free_tier: false,
        is_management_key: false,
        is_provisioning_key: false,
        creator_user_id: None,
        expires_at: auth.key_expires_at,
        rate_limit: LegacyRateLimit {
            requests: tier.requests_per_minute.map_or(-1, i64::from),
            interval: "1m".into(),
            note: "orteam: the tier's requests per minute (-1: no limit)".into(),
        },
        allowed_data_regions: vec!["global".into()],
        effective_budget: effective.map(KeyBudget::of),
        budgets: or_budgets,
        free_model_daily_requests: FreeModelDailyRequests::default(),
        organization_id: Some(auth.org_id.clone()),
        workspace_id: Some(auth.team_id.clone()),
        orteam: MemberView {
            member: auth.member_id.clone(),
            member_name: auth.member_name.clone(),
            team: auth.team_id.clone(),
            org: auth.org_id.clone(),
            key: KeyRef {
                id: auth.key_id.clone(),
                name: auth.key_name.clone(),
                expires_at: auth.key_expires_at,
            },
            tier: TierView {
                id: tier.id.clone(),
                models: match &tier.models {
                    ModelAccess::All => AllowedModels::All,
                    ModelAccess::Allow(list) => AllowedModels::Only(list.clone()),
                },
                downgrade_to: match &tier.on_disallowed {
                    OnDisallowed::Deny => None,
                    OnDisallowed::Downgrade(m) => Some(m.clone()),
                },
                requests_per_minute: tier.requests_per_minute,
                tokens_per_minute: tier.tokens_per_minute,
            },
            budgets,
            usage: UsageTotals {
                total: usage.total,
                daily: usage.daily,
                weekly: usage.weekly,
                monthly: usage.monthly,
            },
            month_by_day: usage.month_by_day,
            month_by_model: usage.month_by_model,
        },
    })
}

/// The budget that refuses first: one already exhausted, else the least room left.
fn effective_budget(budgets: &[BudgetStatus]) -> Option<&BudgetStatus> {
    budgets.iter().min_by_key(|b| b.remaining)
}

struct MemberUsage {
    total: Money,
    daily: Money,
    weekly: Money,
    monthly: Money,
    month_by_day: Vec<DaySpend>,
    month_by_model: Vec<ModelSpend>,
}

async fn member_usage(
    ledger: &Ledger,
    member: &str,
    now: DateTime<Utc>,
) -> Result<MemberUsage, GatewayError> {
    let total: Money = ledger
        .usage(&UsageQuery {
            member: Some(member.to_owned()),
            ..UsageQuery::default()
        })
        .await
        .map_err(internal)?
        .iter()
        .map(|g| g.cost)
        .sum();
    // One pass over the days since the earlier of this week's and this month's start.
    let today = now.date_naive();
    let week_start = Window::Weekly.start_date(today);
    let month_start = Window::Monthly.start_date(today);
    let since = week_start.min(month_start);
    let groups = ledger
        .usage(&UsageQuery {
            from: Some(orteam_core::window::midnight(since)),
            member: Some(member.to_owned()),
            group_by: vec![GroupBy::Day, GroupBy::Model],
            ..UsageQuery::default()
        })
        .await
        .map_err(internal)?;
    let sum_since = |start: NaiveDate| -> Money {
        groups
            .iter()
            .filter(|g| g.day.is_some_and(|d| d >= start))
            .map(|g| g.cost)
            .sum()
    };
    let mut by_day: std::collections::BTreeMap<NaiveDate, (Money, u64)> = Default::default();
    let mut by_model: std::collections::BTreeMap<String, (Money, u64)> = Default::default();
    for g in groups
        .iter()
        .filter(|g| g.day.is_some_and(|d| d >= month_start))
    {
        if let Some(day) = g.day {
            let e = by_day.entry(day).or_default();
            e.0 = e.0.checked_add(g.cost).unwrap_or(e.0);
            e.1 += g.requests;
        }
        let model = g.model.clone().unwrap_or_else(|| "(unknown)".into());
        let e = by_model.entry(model).or_default();
        e.0 = e.0.checked_add(g.cost).unwrap_or(e.0);
        e.1 += g.requests;
    }
    let mut month_by_model: Vec<ModelSpend> = by_model
        .into_iter()
        .map(|(model, (cost, requests))| ModelSpend {
            model,
            cost,
            requests,
        })
        .collect();
    month_by_model.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.model.cmp(&b.model)));
    Ok(MemberUsage {
        total,
        daily: sum_since(today),
        weekly: sum_since(week_start),
        monthly: sum_since(month_start),
        month_by_day: by_day
            .into_iter()
            .map(|(day, (cost, requests))| DaySpend {
                day,
                cost,
                requests,
            })
            .collect(),
        month_by_model,
    })
}

/// `GET /v1/key`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentKey {
    pub data: KeyInfo,
}

/// OpenRouter's current-key fields (money as JSON numbers), plus `orteam`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyInfo {
    pub label: String,
    #[serde(with = "json_number::option")]
    pub limit: Option<Money>,
    #[serde(with = "json_number::option")]
    pub limit_remaining: Option<Money>,
    pub limit_reset: Option<Window>,
    pub include_byok_in_limit: bool,
    #[serde(with = "json_number")]
    pub usage: Money,
    #[serde(with = "json_number")]
    pub usage_daily: Money,
    #[serde(with = "json_number")]
    pub usage_weekly: Money,
    #[serde(with = "json_number")]
    pub usage_monthly: Money,
    #[serde(with = "json_number")]
    pub byok_usage: Money,
    #[serde(with = "json_number")]
    pub byok_usage_daily: Money,
    #[serde(with = "json_number")]
    pub byok_usage_weekly: Money,
    #[serde(with = "json_number")]
    pub byok_usage_monthly: Money,
    pub is_free_tier: bool,
    pub is_management_key: bool,
    pub is_provisioning_key: bool,
    pub creator_user_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit: LegacyRateLimit,
    pub allowed_data_regions: Vec<String>,
    pub budgets: Vec<KeyBudget>,
    pub effective_budget: Option<KeyBudget>,
    pub free_model_daily_requests: FreeModelDailyRequests,
    /// The member's org.
    pub organization_id: Option<String>,
    /// The member's team.
    pub workspace_id: Option<String>,
    pub orteam: MemberView,
}

/// OpenRouter's (deprecated) `rate_limit`; orteam puts the tier's requests per minute here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegacyRateLimit {
    pub requests: i64,
    pub interval: String,
    pub note: String,
}

/// orteam routes no `:free` models on its own account, so the quota reads zero.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FreeModelDailyRequests {
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
}

/// One budget in OpenRouter's key-budget shape. `scope` is `member`, `team` or `org`;
/// `budget_id` is `scope:id:window`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyBudget {
    pub budget_id: Option<String>,
    pub guardrail_id: Option<String>,
    pub include_byok: bool,
    #[serde(with = "json_number")]
    pub limit_usd: Money,
    /// What the member can still spend: limit − spent − held.
    #[serde(with = "json_number")]
    pub remaining_usd: Money,
    pub reset_interval: Option<Window>,
    pub resets_at: Option<DateTime<Utc>>,
    pub scope: String,
    #[serde(with = "json_number")]
    pub spend_usd: Money,
}

impl KeyBudget {
    fn of(b: &BudgetStatus) -> KeyBudget {
        KeyBudget {
            budget_id: Some(format!("{}:{}:{}", b.scope.as_str(), b.scope_id, b.window)),
            guardrail_id: None,
            include_byok: false,
            limit_usd: b.limit,
            remaining_usd: b.remaining,
            reset_interval: Some(b.window),
            resets_at: Some(b.reset_at),
            scope: b.scope.as_str().to_owned(),
            spend_usd: b.spent,
        }
    }
}

/// orteam's own view of the member (`data.orteam`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    pub member: String,
    pub member_name: String,
    pub team: String,
    pub org: String,
    pub key: KeyRef,
    pub tier: TierView,
    /// Every budget that applies: member, team, org × each window with a limit.
    pub budgets: Vec<BudgetStatus>,
    pub usage: UsageTotals,
    /// This UTC month's spend per day with spend.
    pub month_by_day: Vec<DaySpend>,
    /// This UTC month's spend per served model, dearest first.
    pub month_by_model: Vec<ModelSpend>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRef {
    pub id: String,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TierView {
    pub id: String,
    pub models: AllowedModels,
    /// Where a request for a model outside the list goes (`None`: it is refused).
    pub downgrade_to: Option<String>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

/// `"all"`, or the list of allowed model ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowedModels {
    #[serde(with = "all_models")]
    All,
    Only(Vec<String>),
}

mod all_models {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("all")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "all" {
            Ok(())
        } else {
            Err(serde::de::Error::custom("expected \"all\""))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageTotals {
    pub total: Money,
    pub daily: Money,
    pub weekly: Money,
    pub monthly: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaySpend {
    pub day: NaiveDate,
    pub cost: Money,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpend {
    pub model: String,
    pub cost: Money,
    pub requests: u64,
}
