//! The team tools, present when a ledger is configured (`ORTEAM_DATABASE_URL`): team_spend,
//! team_budget_status, team_anomalies, team_plan (read) and team_apply, team_rotate_key,
//! team_revoke_member (write).
//!
//! Results are JSON without `null` fields; money is shown as the CLI shows it (`Money::usd`:
//! `$12.35`, `$0.000396`) and every budget with the percent of it used. New secrets (apply, rotate) are
//! in the result once; the provisioning key never is.

use std::path::Path;

use chrono::NaiveDate;
use orteam_core::access::{Action, Principal, authorize};
use orteam_core::{ApiRoute, Money};
use orteam_insight::report::{ReportOptions, build_report, group_name};
use orteam_insight::{AnomalyQuery, NoProgress, Period, Range, Upstream, anomalies_endpoint};
use orteam_ledger::{BudgetScope, GroupBy, Ledger, NewAuditEntry, SecretKey};
use orteam_openrouter::Client;
use orteam_team::apply::{self, ApplyContext, CollectSecrets, NewSecret, SecretKind};
use orteam_team::plan::{self, Plan, PlanOptions};
use orteam_team::{file, revoke_member, rotate_member};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Args, ToolResult, Usd, required};

/// Default `unused_days` of team_plan / team_apply (as `orteam team plan`).
const UNUSED_DAYS: u32 = 30;

/// State of the team tools: the ledger (opened as admin) and an uncached OpenRouter client
/// with the management key.
#[derive(Clone)]
pub struct TeamTools {
    ledger: Ledger,
    client: Client,
    /// Who the tools act as; every tool asks `orteam_core::access::authorize`.
    principal: Principal,
}

impl std::fmt::Debug for TeamTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamTools")
            .field("ledger", &self.ledger.backend())
            .finish_non_exhaustive()
    }
}

impl TeamTools {
    /// Team tools on `ledger`; `client` must use the management key (apply, rotate, revoke and
    /// plan list and create keys with it).
    pub fn new(ledger: Ledger, client: Client) -> Self {
        TeamTools {
            ledger,
            client,
            principal: Principal {
                name: "mcp".into(),
                ..Principal::bootstrap()
            },
        }
    }

    /// Acts as `principal` (a named token's role) instead of an admin.
    pub fn acting_as(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// The tool's error when the rule refuses.
    fn allow(&self, tool: &str, action: &Action<'_>) -> Result<(), String> {
        authorize(&self.principal, action).map_err(|d| format!("{tool}: refused: {d}"))
    }

    /// The team of a member, or the tool's error.
    fn team_of(&self, tool: &str, member: &str) -> Result<String, String> {
        self.ledger
            .directory()
            .members
            .get(member)
            .map(|m| m.team_id.clone())
            .ok_or_else(|| format!("{tool}: unknown member {member:?}"))
    }

    /// Records a change made through a tool in the audit log.
    async fn record(&self, action: &str, target: String, after: Option<Value>) {
        let entry = NewAuditEntry {
            actor: self.principal.name.clone(),
            action: action.to_owned(),
            target,
            before: None,
            after: after.map(|v| v.to_string()),
            source: Some("mcp".into()),
        };
        if let Err(e) = self.ledger.audit(entry).await {
            tracing::error!(error = %e, action, "could not record an MCP action in the audit log");
        }
    }

    /// The read tools (team_spend, team_budget_status, team_anomalies, team_plan).
    pub fn read_router() -> rmcp::handler::server::router::tool::ToolRouter<TeamTools> {
        Self::team_read_router()
    }

    /// The write tools (team_apply, team_rotate_key, team_revoke_member).
    pub fn write_router() -> rmcp::handler::server::router::tool::ToolRouter<TeamTools> {
        Self::team_write_router()
    }

    async fn make_plan(
        &self,
        tool: &str,
        path: &str,
        prune: bool,
        unused_days: u32,
    ) -> Result<Plan, String> {
        let path = required(tool, "path", path)?;
        let team = file::load(Path::new(path)).map_err(|e| format!("{tool}: {e}"))?;
        plan::check_models(&team, &self.client)
            .await
            .map_err(|e| format!("{tool}: {e}"))?;
        let obs = plan::observe(&self.ledger, &self.client)
            .await
            .map_err(|e| format!("{tool}: {e}"))?;
        Ok(plan::plan(
            &team,
            &obs,
            &PlanOptions {
                now: self.ledger.now(),
                prune,
                unused_days,
            },
        ))
    }
}

/// Names of the 5 team read tools.
pub const TEAM_READ_TOOLS: [&str; 5] = [
    "team_spend",
    "team_budget_status",
    "team_anomalies",
    "team_audit",
    "team_plan",
];

/// Names of the 3 team write tools.
pub const TEAM_WRITE_TOOLS: [&str; 3] = ["team_apply", "team_rotate_key", "team_revoke_member"];

/// A grouping dimension of team_spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Dimension {
    Member,
    Team,
    Model,
    Day,
    Provider,
    Key,
    /// The gateway API route (chat, messages, responses, embeddings, completions).
    Route,
}

impl From<Dimension> for GroupBy {
    fn from(d: Dimension) -> GroupBy {
        match d {
            Dimension::Member => GroupBy::Member,
            Dimension::Team => GroupBy::Team,
            Dimension::Model => GroupBy::Model,
            Dimension::Day => GroupBy::Day,
            Dimension::Provider => GroupBy::Provider,
            Dimension::Key => GroupBy::Key,
            Dimension::Route => GroupBy::Route,
        }
    }
}

/// A gateway API route, as team_spend's `route` filter takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RouteArg {
    /// OpenAI chat completions.
    Chat,
    /// Anthropic Messages.
    Messages,
    /// OpenAI Responses.
    Responses,
    Embeddings,
    /// Legacy text completions.
    Completions,
}

impl From<RouteArg> for ApiRoute {
    fn from(r: RouteArg) -> ApiRoute {
        match r {
            RouteArg::Chat => ApiRoute::Chat,
            RouteArg::Messages => ApiRoute::Messages,
            RouteArg::Responses => ApiRoute::Responses,
            RouteArg::Embeddings => ApiRoute::Embeddings,
            RouteArg::Completions => ApiRoute::Completions,
        }
    }
}

/// A period, as `orteam report --period` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PeriodArg {
    /// Today (UTC).
    Today,
    /// This week, from Monday.
    Week,
    /// This calendar month.
    Month,
    /// The 7 completed days before today.
    #[serde(rename = "last-7d")]
    Last7d,
    /// The 30 completed days before today.
    #[serde(rename = "last-30d")]
    Last30d,
}

impl From<PeriodArg> for Period {
    fn from(p: PeriodArg) -> Period {
        match p {
            PeriodArg::Today => Period::Today,
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
            PeriodArg::Last7d => Period::Last7d,
            PeriodArg::Last30d => Period::Last30d,
        }
    }
}

/// Which requests team_spend counts, as `orteam report --outcome`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OutcomeArg {
    /// Served requests: spend, requests, tokens (and refusals summed under `refused`).
    #[default]
    Served,
    /// Refused requests only: who was blocked, how often, by what.
    Refused,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpendArgs {
    /// The period, as `orteam report --period`: today, week, month, last-7d, last-30d.
    /// Default (with neither since nor until): month.
    #[serde(default)]
    period: Option<PeriodArg>,
    /// Start of the period (inclusive): a date YYYY-MM-DD (00:00 UTC) or an ISO-8601 timestamp.
    /// Replaces `period`.
    #[serde(default)]
    since: Option<String>,
    /// End of the period (exclusive for timestamps; a date includes that whole day).
    /// Default with `since`: the end of today (UTC).
    #[serde(default)]
    until: Option<String>,
    /// Dimensions to group by, as `orteam report --by`: e.g. ["member"], ["member","model"],
    /// ["day"], ["route"]. Default (as the CLI): none, one total row per source (gateway,
    /// direct keys). (`group_by` is accepted too.)
    #[serde(default, alias = "group_by")]
    by: Option<Vec<Dimension>>,
    /// served (default) or refused, as `orteam report --outcome`.
    #[serde(default)]
    outcome: Option<OutcomeArg>,
    /// Only requests of this gateway API route. Members' direct OpenRouter keys are then left
    /// out (OpenRouter does not say which API their requests used).
    #[serde(default)]
    route: Option<RouteArg>,
}

/// A budget scope filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ScopeArg {
    Member,
    Team,
    Org,
}

impl From<ScopeArg> for BudgetScope {
    fn from(s: ScopeArg) -> BudgetScope {
        match s {
            ScopeArg::Member => BudgetScope::Member,
            ScopeArg::Team => BudgetScope::Team,
            ScopeArg::Org => BudgetScope::Org,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetStatusArgs {
    /// Only budgets of this scope (member, team or org). Default: all.
    #[serde(default)]
    scope: Option<ScopeArg>,
    /// Only budgets of this member, team or org id (e.g. "alice", "core", "acme").
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomaliesArgs {
    /// The UTC day to evaluate, YYYY-MM-DD. Default: today.
    #[serde(default)]
    day: Option<String>,
    /// Also list subjects that are not flagged (with their baselines). Default false.
    #[serde(default)]
    all: Option<bool>,
    /// Ignore days below this spend in USD (overrides the rule's minimum).
    #[serde(default)]
    min_spend: Option<Usd>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanArgs {
    /// Path of the team file (TOML) on the machine running the server.
    path: String,
    /// Also plan deleting stray OpenRouter keys (keys no member owns). Default false.
    #[serde(default)]
    prune: Option<bool>,
    /// Report keys unused for at least this many days (default 30).
    #[serde(default)]
    #[schemars(range(min = 1))]
    unused_days: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateArgs {
    /// The member id (as in the team file / ledger), e.g. "alice".
    member: String,
    /// How long the old key keeps working, e.g. "24h" or "30m". Default: the key's own grace
    /// period from the team file.
    #[serde(default)]
    grace: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditArgs {
    /// Only entries by this actor (a token name, `bootstrap`, `cli:<user>`, `mcp`).
    #[serde(default)]
    actor: Option<String>,
    /// Only this action (`raise`, `revoke_member`, `token_create`, `apply`…).
    #[serde(default)]
    action: Option<String>,
    /// Only entries since, as `orteam audit list --since`: a duration back from now ("7d",
    /// "12h") or an RFC 3339 time. Default: all.
    #[serde(default)]
    since: Option<String>,
    /// Keep the newest this many entries (default 50).
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeArgs {
    /// The member id to remove, e.g. "alice".
    member: String,
}

fn parse_day(tool: &str, arg: &str, s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{tool}: `{arg}` must be a date YYYY-MM-DD, got {s:?}"))
}

/// `since` of team_audit, as the CLI's `--since`: RFC 3339, or a duration back from now.
fn parse_since(
    tool: &str,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let bad = || {
        format!(
            "{tool}: `since` {text:?} is neither an RFC 3339 time (2026-05-01T18:00:00Z) nor a \
             duration (7d)"
        )
    };
    let d = file::parse_duration(text).map_err(|_| bad())?;
    Ok(now - chrono::TimeDelta::from_std(d).map_err(|_| bad())?)
}

/// Runs a future that is not `Send` (team apply and rotation hold `&mut dyn FnMut`) to
/// completion on a blocking thread of the current runtime.
async fn run_unsendable<F, Fut, T>(tool: &str, f: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f()))
        .await
        .map_err(|e| format!("{tool}: the operation did not finish: {e}"))
}

/// Fields of the team tools' results that hold an amount of money.
const MONEY_FIELDS: &[&str] = &[
    "amount",
    "base_limit",
    "baseline_mad",
    "baseline_median",
    "cost",
    "floor",
    "held",
    "limit",
    "min_spend",
    "new_subject_min_spend",
    "raised",
    "remaining",
    "spend",
    "spent",
    "threshold",
    "usage",
];

/// A result as people (and the model reading it for them) see the CLI's: every amount in
/// [`orteam_core::Money::usd`]'s format (`$12.35`, `$0.000396`), and no `null` fields.
fn for_people(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for (k, x) in m.iter_mut() {
                if MONEY_FIELDS.contains(&k.as_str())
                    && let Some(money) = x.as_str().and_then(|s| Money::parse(s).ok())
                {
                    *x = Value::String(money.usd());
                } else {
                    for_people(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(for_people),
        _ => {}
    }
}

fn pretty(tool: &str, v: &Value) -> ToolResult {
    let mut v = v.clone();
    for_people(&mut v);
    serde_json::to_string_pretty(&v).map_err(|e| format!("{tool}: cannot encode the result: {e}"))
}

fn to_value<T: serde::Serialize>(tool: &str, v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("{tool}: cannot encode the result: {e}"))
}

fn plan_json(tool: &str, plan: &Plan, unused_days: u32) -> Result<Value, String> {
    let (create, update, delete) = plan.counts();
    Ok(json!({
        "org": plan.org,
        "summary": { "create": create, "update": update, "delete": delete },
        "changes": to_value(tool, &plan.changes)?,
        "strays": to_value(tool, &plan.strays)?,
        "unused": to_value(tool, &plan.unused)?,
        "unused_days": unused_days,
        "raises": to_value(tool, &plan.raises)?,
        "rotations": to_value(tool, &plan.rotations)?,
    }))
}

fn secrets_json(secrets: &[NewSecret]) -> Value {
    Value::Array(
        secrets
            .iter()
            .map(|s| {
                // An admin token belongs to no member: its entry names the token instead.
                let owner = match s.kind {
                    SecretKind::AdminToken => "token",
                    _ => "member",
                };
                json!({
                    owner: s.member,
                    "kind": s.kind,
                    "key": s.reference,
                    "secret": s.secret.expose_secret(),
                })
            })
            .collect(),
    )
}

const SECRETS_NOTE: &str = "Each secret is shown here once and cannot be retrieved again: hand \
                            it to its member now.";

#[tool_router(router = team_read_router, vis = "pub(crate)")]
impl TeamTools {
    #[tool(
        name = "team_spend",
        description = "Who spent what in the team over a period, from orteam's ledger: spend \
                       (USD as the CLI shows it, e.g. $12.35), requests and tokens grouped by member, team, model, \
                       day, provider, key or API route (chat, messages, responses, embeddings, \
                       completions; any combination), plus totals; `route` keeps one API route. \
                       Covers traffic through the orteam gateway and members' direct OpenRouter \
                       keys. Use it for \"who burned the budget this week?\", \"spend per model \
                       per day\" or \"how much goes through the Messages API?\". \
                       Also says who was refused (budget 402, tier 403, rate limit 429, bad key, \
                       bad input), how often and by what; `outcome: \"refused\"` returns only \
                       that. Arguments as `orteam report`: period (default month) or \
                       since/until, by, route, outcome.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn team_spend(&self, Parameters(Args(args)): Parameters<Args<SpendArgs>>) -> ToolResult {
        const TOOL: &str = "team_spend";
        self.allow(TOOL, &Action::View { team: None })?;
        let now = self.ledger.now();
        let range = match (&args.since, &args.until, args.period) {
            (None, None, p) => Period::from(p.unwrap_or(PeriodArg::Month)).range(now),
            (_, _, Some(_)) => {
                return Err(format!(
                    "{TOOL}: give either `period` or `since`/`until`, not both"
                ));
            }
            (since, until, None) => Range::from_bounds(since.as_deref(), until.as_deref(), now)
                .map_err(|e| format!("{TOOL}: {e}"))?,
        };
        // As `orteam report`: without `by`, one total row per source (gateway, direct keys).
        let dims = args.by.unwrap_or_default();
        let mut group_by: Vec<GroupBy> = Vec::new();
        for d in dims {
            let g = GroupBy::from(d);
            if !group_by.contains(&g) {
                group_by.push(g);
            }
        }
        let upstream = Upstream::from_clients(Some(self.client.clone()), None);
        let report = build_report(
            &self.ledger,
            &upstream,
            &ReportOptions {
                range,
                group_by: group_by.clone(),
                route: args.route.map(ApiRoute::from),
                direct: true,
                anomalies: None,
            },
            &NoProgress,
        )
        .await
        .map_err(|e| format!("{TOOL}: {e}"))?;
        let refused: Vec<Value> = report
            .refusals
            .iter()
            .map(|r| {
                json!({
                    "member": r.member_id,
                    "reason": r.reason,
                    "refused_by": r.detail,
                    "count": r.count,
                    "last": r.last,
                    "text": r.describe(),
                })
            })
            .collect();
        let refused_total: u64 = report.refusals.iter().map(|r| r.count).sum();
        if args.outcome.unwrap_or_default() == OutcomeArg::Refused {
            return pretty(
                TOOL,
                &json!({
                    "from": report.from,
                    "to": report.to,
                    "outcome": "refused",
                    "total": refused_total,
                    "refused": refused,
                }),
            );
        }
        let mut v = to_value(TOOL, &report)?;
        if let Value::Object(m) = &mut v {
            m.remove("refusals");
            m.insert(
                "group_by".to_owned(),
                json!(group_by.iter().map(|g| group_name(*g)).collect::<Vec<_>>()),
            );
            m.insert("currency".to_owned(), json!("USD"));
            m.insert(
                "refused".to_owned(),
                json!({ "total": refused_total, "by": refused }),
            );
        }
        pretty(TOOL, &v)
    }

    #[tool(
        name = "team_budget_status",
        description = "Budget status of every member, team and org budget window (daily, weekly, \
                       monthly) in orteam's ledger: limit (with temporary raises), spent, held by \
                       in-flight requests, remaining, percent used and when the window resets. \
                       Money as the CLI shows it (e.g. $12.35). Use it for \"who is close to their budget?\". \
                       Filter with scope and/or id.",
        annotations(read_only_hint = true)
    )]
    async fn team_budget_status(
        &self,
        Parameters(Args(args)): Parameters<Args<BudgetStatusArgs>>,
    ) -> ToolResult {
        const TOOL: &str = "team_budget_status";
        let id = match args.id.as_deref() {
            Some(id) => Some(required(TOOL, "id", id)?.to_owned()),
            None => None,
        };
        let scope = args.scope.map(BudgetScope::from);
        let all = self
            .ledger
            .all_budget_status()
            .await
            .map_err(|e| format!("{TOOL}: reading budgets: {e}"))?;
        let dir = self.ledger.directory();
        let p = &self.principal;
        let visible = |b: &&orteam_ledger::BudgetStatus| match b.scope {
            BudgetScope::Member => dir
                .members
                .get(&b.scope_id)
                .is_some_and(|m| p.sees_member(&m.id, &m.team_id)),
            BudgetScope::Team => p.sees_team(&b.scope_id),
            BudgetScope::Org => p.sees_everything(),
        };
        if p.member.is_some() {
            self.allow(TOOL, &Action::View { team: None })?;
        }
        let rows: Vec<Value> = all
            .iter()
            .filter(visible)
            .filter(|b| scope.is_none_or(|s| b.scope == s))
            .filter(|b| id.as_deref().is_none_or(|i| b.scope_id == i))
            .map(|b| {
                json!({
                    "scope": b.scope.as_str(),
                    "id": b.scope_id,
                    "window": b.window.as_str(),
                    "window_start": b.window_start,
                    "resets_at": b.reset_at,
                    "base_limit": b.base_limit,
                    "raised": b.raised,
                    "limit": b.limit,
                    "spent": b.spent,
                    "held": b.held,
                    "remaining": b.remaining,
                    "used_percent": b.spent.percent_of(b.limit),
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(match (&scope, &id) {
                (None, None) => "No budgets are set in the ledger.".to_owned(),
                _ => "No budgets match the filter.".to_owned(),
            });
        }
        pretty(TOOL, &json!({ "currency": "USD", "budgets": rows }))
    }

    #[tool(
        name = "team_anomalies",
        description = "Unusual spend on a day: each member, key and model's spend that day \
                       against its own trailing baseline (median + k·MAD, with floors), from \
                       orteam's ledger. Returns the flagged subjects with spend, baseline and \
                       threshold (USD as the CLI shows it) and a sentence each. Use it for \"did anyone \
                       spend unusually today?\". Default day: today (UTC).",
        annotations(read_only_hint = true)
    )]
    async fn team_anomalies(
        &self,
        Parameters(Args(args)): Parameters<Args<AnomaliesArgs>>,
    ) -> ToolResult {
        const TOOL: &str = "team_anomalies";
        self.allow(TOOL, &Action::View { team: None })?;
        let day = match args.day.as_deref() {
            Some(d) => Some(parse_day(TOOL, "day", d)?),
            None => None,
        };
        let report = anomalies_endpoint(
            &self.ledger,
            AnomalyQuery {
                day,
                all: args.all.unwrap_or(false),
                min_spend: args.min_spend.map(|u| u.0),
            },
        )
        .await
        .map_err(|e| format!("{TOOL}: {e}"))?;
        let mut v = to_value(TOOL, &report)?;
        if let Value::Object(m) = &mut v {
            m.insert(
                "summary".to_owned(),
                json!(
                    report
                        .flagged
                        .iter()
                        .map(|a| a.describe())
                        .collect::<Vec<_>>()
                ),
            );
        }
        pretty(TOOL, &v)
    }

    #[tool(
        name = "team_audit",
        description = "orteam's tamper-evident audit log: every admin action (apply, raise, \
                       rotate, revoke, token create/revoke, failed sign-ins) with who, what, \
                       before → after, when and from where, and whether the hash chain is intact \
                       (`verify`: any edited, deleted or reordered row is named). Filter by \
                       actor, action or `since` (as `orteam audit list`); `limit` keeps the newest entries \
                       (default 50).",
        annotations(read_only_hint = true)
    )]
    async fn team_audit(&self, Parameters(Args(args)): Parameters<Args<AuditArgs>>) -> ToolResult {
        const TOOL: &str = "team_audit";
        self.allow(TOOL, &Action::ReadAudit)?;
        let mut entries = self
            .ledger
            .audit_entries()
            .await
            .map_err(|e| format!("{TOOL}: reading the audit log: {e}"))?;
        let since = match args.since.as_deref() {
            Some(text) => Some(parse_since(TOOL, text, self.ledger.now())?),
            None => None,
        };
        let report = orteam_ledger::audit::verify(&entries);
        entries.retain(|e| {
            args.actor.as_ref().is_none_or(|a| &e.actor == a)
                && args.action.as_ref().is_none_or(|a| &e.action == a)
                && since.is_none_or(|s| e.at >= s)
        });
        let limit = args.limit.unwrap_or(50);
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
        pretty(
            TOOL,
            &json!({
                "chain_intact": report.is_valid(),
                "problems": to_value(TOOL, &report.problems)?,
                "total_entries": report.entries,
                "entries": to_value(TOOL, &entries)?,
            }),
        )
    }

    #[tool(
        name = "team_plan",
        description = "Dry run of a team file (team as code, TOML): what `team_apply` would \
                       create, update, rotate or revoke in orteam's ledger and at OpenRouter to \
                       match the file, plus stray OpenRouter keys, keys unused for a while, active \
                       temporary raises and upcoming rotations. Changes nothing. `path` is a file \
                       path on the machine running this server.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn team_plan(&self, Parameters(Args(args)): Parameters<Args<PlanArgs>>) -> ToolResult {
        const TOOL: &str = "team_plan";
        self.allow(TOOL, &Action::Apply)?;
        let unused_days = args.unused_days.unwrap_or(UNUSED_DAYS);
        let plan = self
            .make_plan(TOOL, &args.path, args.prune.unwrap_or(false), unused_days)
            .await?;
        let mut v = plan_json(TOOL, &plan, unused_days)?;
        if let Value::Object(m) = &mut v {
            m.insert(
                "message".to_owned(),
                json!(if plan.is_empty() {
                    "No changes: the ledger and OpenRouter match the team file."
                } else {
                    "Changes pending: call team_apply with the same path to make them."
                }),
            );
        }
        pretty(TOOL, &v)
    }
}

#[tool_router(router = team_write_router, vis = "pub(crate)")]
impl TeamTools {
    #[tool(
        name = "team_apply",
        description = "Applies a team file (TOML, a path on the machine running this server): \
                       makes orteam's ledger and OpenRouter match it (members, teams, budgets, \
                       keys). Call team_plan first and show the user the changes. New member keys \
                       are returned ONCE in the result (field `secrets`); they cannot be read \
                       again.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn team_apply(&self, Parameters(Args(args)): Parameters<Args<PlanArgs>>) -> ToolResult {
        const TOOL: &str = "team_apply";
        self.allow(TOOL, &Action::Apply)?;
        let unused_days = args.unused_days.unwrap_or(UNUSED_DAYS);
        let plan = self
            .make_plan(TOOL, &args.path, args.prune.unwrap_or(false), unused_days)
            .await?;
        let mut v = plan_json(TOOL, &plan, unused_days)?;
        if plan.is_empty() {
            if let Value::Object(m) = &mut v {
                m.insert(
                    "message".to_owned(),
                    json!("No changes: the ledger and OpenRouter already match the team file."),
                );
            }
            return pretty(TOOL, &v);
        }
        let have_key = SecretKey::from_env()
            .map_err(|e| format!("{TOOL}: {e}"))?
            .is_some();
        apply::preflight(&plan, have_key).map_err(|e| format!("{TOOL}: {e}"))?;
        let ledger = self.ledger.clone();
        let client = self.client.clone();
        let actor = self.principal.name.clone();
        let (result, new_secrets, applied) = run_unsendable(TOOL, move || async move {
            let mut sink = CollectSecrets::default();
            let mut applied: Vec<String> = Vec::new();
            let result = {
                let mut progress = |line: &str| applied.push(line.to_owned());
                let mut cx = ApplyContext {
                    ledger: &ledger,
                    client: &client,
                    now: ledger.now(),
                    sink: &mut sink,
                    actor,
                    progress: &mut progress,
                };
                apply::apply(&plan, &mut cx).await
            };
            (result, sink.0, applied)
        })
        .await?;
        let secrets = secrets_json(&new_secrets);
        let report = match result {
            Ok(r) => r,
            Err(e) if new_secrets.is_empty() => return Err(format!("{TOOL}: {e}")),
            // Keys made before the failure are live: their secrets must not be lost.
            Err(e) => {
                return Err(pretty(
                    TOOL,
                    &json!({
                        "error": format!("{TOOL}: {e}"),
                        "applied": applied,
                        "secrets": secrets,
                        "note": SECRETS_NOTE,
                    }),
                )
                .unwrap_or_else(|e| e));
            }
        };
        self.record(
            "apply",
            format!("org:{}", v["org"].as_str().unwrap_or_default()),
            Some(json!({ "applied": applied })),
        )
        .await;
        if let Value::Object(m) = &mut v {
            m.insert("applied".to_owned(), json!(applied));
            m.insert("changes_applied".to_owned(), json!(report.changes_applied));
            m.insert("warnings".to_owned(), json!(report.warnings));
            if !new_secrets.is_empty() {
                m.insert("secrets".to_owned(), secrets);
                m.insert("note".to_owned(), json!(SECRETS_NOTE));
            }
        }
        pretty(TOOL, &v)
    }

    #[tool(
        name = "team_rotate_key",
        description = "Rotates a team member's key now (their orteam gateway key, or their own \
                       OpenRouter key in direct mode): issues a new key and lets the old one work \
                       for a grace period. The new secret is returned ONCE in the result; hand it \
                       to the member.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn team_rotate_key(
        &self,
        Parameters(Args(args)): Parameters<Args<RotateArgs>>,
    ) -> ToolResult {
        const TOOL: &str = "team_rotate_key";
        let member = required(TOOL, "member", &args.member)?;
        let team = self.team_of(TOOL, member)?;
        self.allow(TOOL, &Action::Rotate { team: &team })?;
        let grace = match args.grace.as_deref() {
            Some(g) => Some(file::parse_duration(g).map_err(|e| format!("{TOOL}: `grace`: {e}"))?),
            None => None,
        };
        let ledger = self.ledger.clone();
        let client = self.client.clone();
        let member = member.to_owned();
        let (rotated, sink) = run_unsendable(TOOL, move || async move {
            let mut sink = CollectSecrets::default();
            let now = ledger.now();
            let r = rotate_member(&ledger, Some(&client), &member, grace, now, &mut sink).await;
            (r, sink)
        })
        .await?;
        let rotated = rotated.map_err(|e| format!("{TOOL}: {e}"))?;
        self.record("rotate_key", format!("member:{}", args.member.trim()), None)
            .await;
        let mut v = to_value(TOOL, &rotated)?;
        if let Value::Object(m) = &mut v {
            m.insert("secrets".to_owned(), secrets_json(&sink.0));
            m.insert("note".to_owned(), json!(SECRETS_NOTE));
        }
        pretty(TOOL, &v)
    }

    #[tool(
        name = "team_revoke_member",
        description = "Removes a member from the team in orteam's ledger and kills every key they \
                       have (gateway keys revoked, their OpenRouter keys deleted). For someone \
                       leaving or a leaked key. Cannot be undone; re-adding them needs \
                       team_apply.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn team_revoke_member(
        &self,
        Parameters(Args(args)): Parameters<Args<RevokeArgs>>,
    ) -> ToolResult {
        const TOOL: &str = "team_revoke_member";
        let member = required(TOOL, "member", &args.member)?;
        let team = self.team_of(TOOL, member)?;
        self.allow(TOOL, &Action::Revoke { team: &team })?;
        let revoked = revoke_member(&self.ledger, Some(&self.client), member, self.ledger.now())
            .await
            .map_err(|e| format!("{TOOL}: {e}"))?;
        self.record(
            "revoke_member",
            format!("member:{member}"),
            Some(to_value(TOOL, &revoked)?),
        )
        .await;
        pretty(TOOL, &to_value(TOOL, &revoked)?)
    }
}
