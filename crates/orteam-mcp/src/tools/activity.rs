//! Usage analytics: or_activity (rows and aggregations) and the or_overview dashboard.

use std::collections::HashMap;

use chrono::NaiveDate;
use futures::StreamExt;
use orteam_core::{Money, Window};
use orteam_openrouter::types::activity::{ActivityParams, ActivityRow};
use orteam_openrouter::types::keys::Key;
use orteam_openrouter::{Client, ClientError};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Args, NoArgs, ToolResult};
use crate::OrteamMcp;
use crate::format::{d10, day, m2, m4, pad_end, tokens};

/// Concurrent `/activity` requests for `aggregate=by_key`.
const BY_KEY_CONCURRENCY: usize = 4;

/// How to summarise activity rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Aggregate {
    /// One line per (date, model, endpoint) row, most expensive first.
    #[default]
    None,
    /// Totals per model.
    ByModel,
    /// Totals per UTC day, oldest first (all days).
    ByDay,
    /// Totals per provider.
    ByProvider,
    /// Totals per API key (one /activity request per key).
    ByKey,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivityArgs {
    /// Only this UTC day, YYYY-MM-DD (must be one of the last 30 completed days).
    #[serde(default)]
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}$"))]
    date: Option<String>,
    /// Only the activity of this API key (its hash, from or_keys_list).
    #[serde(default)]
    api_key_hash: Option<String>,
    /// Only the activity of this organization member (user id, from or_org_members).
    #[serde(default)]
    user_id: Option<String>,
    /// none (rows), by_model, by_day, by_provider or by_key. Default none.
    #[serde(default)]
    aggregate: Option<Aggregate>,
    /// Maximum rows or groups shown (default 50; by_day always shows every day).
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u32>,
}

/// One aggregated group.
struct Group {
    key: String,
    usage: Money,
    requests: u64,
    rows: u64,
    note: Option<String>,
}

fn sum_usage<'a>(rows: impl IntoIterator<Item = &'a ActivityRow>) -> Money {
    rows.into_iter()
        .map(|r| r.usage)
        .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap_or(a))
}

fn group_by(rows: &[ActivityRow], key: impl Fn(&ActivityRow) -> String) -> Vec<Group> {
    let mut map: HashMap<String, Group> = HashMap::new();
    for r in rows {
        let k = key(r);
        let g = map.entry(k.clone()).or_insert_with(|| Group {
            key: k,
            usage: Money::ZERO,
            requests: 0,
            rows: 0,
            note: None,
        });
        g.usage = g.usage.checked_add(r.usage).unwrap_or(g.usage);
        g.requests = g.requests.saturating_add(r.requests);
        g.rows += 1;
    }
    map.into_values().collect()
}

/// Most expensive first; ties by key.
fn sort_by_usage(groups: &mut [Group]) {
    groups.sort_by(|a, b| b.usage.cmp(&a.usage).then_with(|| a.key.cmp(&b.key)));
}

fn group_section(title: &str, mut groups: Vec<Group>, width: usize, limit: usize) -> String {
    sort_by_usage(&mut groups);
    groups.truncate(limit);
    let mut out = format!("{title} (top {}):", groups.len());
    for g in &groups {
        out.push_str(&format!(
            "\n- {} {} | {} req | {} rows",
            pad_end(&g.key, width),
            m4(g.usage),
            g.requests,
            g.rows
        ));
        if let Some(n) = &g.note {
            out.push_str(&format!(" | {n}"));
        }
    }
    out
}

fn row_line(r: &ActivityRow) -> String {
    let mut s = format!(
        "- {} | {} | {} | {} req",
        d10(&r.date),
        pad_end(&r.model, 40),
        m4(r.usage),
        r.requests
    );
    if r.prompt_tokens > 0 || r.completion_tokens > 0 || r.reasoning_tokens > 0 {
        s.push_str(&format!(
            " | tok in/out/reason: {}/{}/{}",
            tokens(r.prompt_tokens),
            tokens(r.completion_tokens),
            tokens(r.reasoning_tokens)
        ));
    }
    if let Some(p) = r.provider_name.as_deref().filter(|p| !p.is_empty()) {
        s.push_str(&format!(" | via {p}"));
    }
    if !r.byok_usage_inference.is_zero() {
        s.push_str(&format!(" | byok {}", m4(r.byok_usage_inference)));
    }
    s
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let shape_ok = s.len() == 10
        && s.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let parsed = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    match (shape_ok, parsed) {
        (true, Some(d)) => Ok(d),
        _ => Err(format!(
            "or_activity: `date` must be a UTC day written YYYY-MM-DD (e.g. 2026-04-24), got {s:?}"
        )),
    }
}

/// `/activity` for each key (owned values, bounded concurrency), in `keys` order.
async fn activity_per_key(
    client: Client,
    base: ActivityParams,
    keys: Vec<(String, String)>,
) -> Result<Vec<(String, String, Vec<ActivityRow>)>, ClientError> {
    let mut results: Vec<(usize, String, String, Vec<ActivityRow>)> =
        futures::stream::iter(keys.into_iter().enumerate())
            .map(|(i, (hash, name))| {
                let client = client.clone();
                let params = ActivityParams {
                    api_key_hash: Some(hash.clone()),
                    ..base.clone()
                };
                async move {
                    client
                        .activity(&params)
                        .await
                        .map(|rows| (i, hash, name, rows))
                }
            })
            .buffer_unordered(BY_KEY_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
    results.sort_by_key(|(i, ..)| *i);
    Ok(results
        .into_iter()
        .map(|(_, hash, name, rows)| (hash, name, rows))
        .collect())
}

/// The usage of `k` in the period its limit resets on (total usage for a cumulative limit).
fn period_usage(k: &Key) -> Money {
    match k.limit_reset {
        Some(Window::Daily) => k.usage_daily,
        Some(Window::Weekly) => k.usage_weekly,
        Some(Window::Monthly) => k.usage_monthly,
        None => k.usage,
    }
}

#[tool_router(router = activity_router, vis = "pub(crate)")]
impl OrteamMcp {
    #[tool(
        name = "or_activity",
        description = "Spend and request counts for the last 30 completed UTC days (today is not \
                       included), from GET /activity. Filter by date, api_key_hash or user_id; \
                       aggregate=none lists (date, model, endpoint) rows with tokens and provider, \
                       by_model / by_provider / by_key give totals per group (top `limit`), \
                       by_day gives daily totals. Use it for \"what burned my credits?\" \
                       questions. by_key makes one request per key.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_activity(
        &self,
        Parameters(Args(args)): Parameters<Args<ActivityArgs>>,
    ) -> ToolResult {
        let date = match non_empty(args.date) {
            Some(d) => Some(parse_date(&d)?),
            None => None,
        };
        let limit = args.limit.unwrap_or(50);
        if limit == 0 {
            return Err("or_activity: `limit` must be at least 1".to_owned());
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let params = ActivityParams {
            date,
            api_key_hash: non_empty(args.api_key_hash),
            user_id: non_empty(args.user_id),
            workspace_id: None,
        };
        let rows = self
            .client()
            .activity(&params)
            .await
            .map_err(|e| self.upstream_error("or_activity", &e))?;
        if rows.is_empty() {
            return Ok("No activity in the requested window.".to_owned());
        }
        let total = sum_usage(&rows);
        let requests: u64 = rows.iter().map(|r| r.requests).sum();
        let header = format!(
            "Activity: {} rows | total {} | {} req",
            rows.len(),
            m4(total),
            requests
        );
        let body = match args.aggregate.unwrap_or_default() {
            Aggregate::None => {
                let mut sorted: Vec<&ActivityRow> = rows.iter().collect();
                sorted.sort_by(|a, b| {
                    b.usage
                        .cmp(&a.usage)
                        .then_with(|| b.date.cmp(&a.date))
                        .then_with(|| a.model.cmp(&b.model))
                });
                let mut lines: Vec<String> =
                    sorted.iter().take(limit).map(|r| row_line(r)).collect();
                if sorted.len() > limit {
                    lines.push(format!(
                        "\n…{} more rows (use limit= to see more or \
                         aggregate=by_model/by_day/by_provider).",
                        sorted.len() - limit
                    ));
                }
                lines.join("\n")
            }
            Aggregate::ByModel => group_section(
                "By model",
                group_by(&rows, |r| {
                    if r.model.is_empty() {
                        "(unknown)".to_owned()
                    } else {
                        r.model.clone()
                    }
                }),
                40,
                limit,
            ),
            Aggregate::ByProvider => group_section(
                "By provider",
                group_by(&rows, |r| {
                    r.provider_name
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "(unknown)".to_owned())
                }),
                30,
                limit,
            ),
            Aggregate::ByDay => {
                let mut groups = group_by(&rows, |r| d10(&r.date).to_owned());
                groups.sort_by(|a, b| a.key.cmp(&b.key));
                let mut out = "By day:".to_owned();
                for g in &groups {
                    out.push_str(&format!(
                        "\n- {} {} | {} req",
                        g.key,
                        m4(g.usage),
                        g.requests
                    ));
                }
                out
            }
            Aggregate::ByKey => {
                let keys: Vec<(String, String)> = match &params.api_key_hash {
                    Some(h) => vec![(h.clone(), String::new())],
                    None => self
                        .client()
                        .list_all_keys(Some(true))
                        .await
                        .map_err(|e| self.upstream_error("or_activity", &e))?
                        .into_iter()
                        .map(|k| (k.hash, k.name))
                        .collect(),
                };
                let per_key = activity_per_key(self.client().clone(), params.clone(), keys)
                    .await
                    .map_err(|e| self.upstream_error("or_activity", &e))?;
                let mut groups = Vec::new();
                let mut attributed = Money::ZERO;
                let mut attributed_requests: u64 = 0;
                for (hash, name, key_rows) in per_key {
                    if key_rows.is_empty() {
                        continue;
                    }
                    let usage = sum_usage(&key_rows);
                    let reqs: u64 = key_rows.iter().map(|r| r.requests).sum();
                    attributed = attributed.checked_add(usage).unwrap_or(attributed);
                    attributed_requests = attributed_requests.saturating_add(reqs);
                    groups.push(Group {
                        key: hash,
                        usage,
                        requests: reqs,
                        rows: u64::try_from(key_rows.len()).unwrap_or(u64::MAX),
                        note: (!name.is_empty()).then(|| format!("key: {name}")),
                    });
                }
                let rest = total.checked_sub(attributed).unwrap_or(Money::ZERO);
                let rest_requests = requests.saturating_sub(attributed_requests);
                let mut section = group_section("By api_key_hash", groups, 64, limit);
                if rest > Money::ZERO || rest_requests > 0 {
                    section.push_str(&format!(
                        "\n- {} {} | {} req | keys no longer listed (deleted)",
                        pad_end("(unattributed)", 64),
                        m4(rest),
                        rest_requests
                    ));
                }
                section
            }
        };
        Ok(format!("{header}\n\n{body}"))
    }

    #[tool(
        name = "or_overview",
        description = "One-shot account dashboard: credits remaining/purchased/used, every active \
                       key with its spend against its limit for the limit's period (or total \
                       usage when unlimited) and expiry, today's spend so far (sum of key daily \
                       usage), and the most recent completed UTC day's spend with its top 5 \
                       models. Start here for a general question about the account.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn or_overview(&self, _args: Parameters<Args<NoArgs>>) -> ToolResult {
        let client = self.client();
        let activity_params = ActivityParams::default();
        let (credits, keys, activity) = tokio::join!(
            client.credits(),
            client.list_all_keys(Some(true)),
            client.activity(&activity_params)
        );
        let credits = credits.map_err(|e| self.upstream_error("or_overview", &e))?;
        let keys = keys.map_err(|e| self.upstream_error("or_overview", &e))?;
        let mut out = format!(
            "Account: {} remaining of {} purchased (used {})\n\n",
            m2(credits.balance()),
            m2(credits.total_credits),
            m2(credits.total_usage)
        );
        let (active, disabled): (Vec<&Key>, Vec<&Key>) = keys.iter().partition(|k| !k.disabled);
        out.push_str(&format!("Keys ({} active", active.len()));
        if !disabled.is_empty() {
            out.push_str(&format!(", {} disabled", disabled.len()));
        }
        out.push_str("):");
        for k in &active {
            match k.limit {
                Some(limit) => out.push_str(&format!(
                    "\n  - {}: {}/{} {}",
                    k.name,
                    m2(period_usage(k)),
                    m2(limit),
                    k.limit_reset.map_or("total", Window::as_str)
                )),
                None => out.push_str(&format!(
                    "\n  - {}: {} used (no limit)",
                    k.name,
                    m2(k.usage)
                )),
            }
            if let Some(e) = &k.expires_at {
                out.push_str(&format!(" | expires {}", day(e)));
            }
        }
        let today = keys
            .iter()
            .map(|k| k.usage_daily)
            .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap_or(a));
        out.push_str(&format!(
            "\n\nToday so far (UTC, sum of key usage_daily): {}",
            m4(today)
        ));
        match activity {
            Ok(rows) => {
                let latest = rows.iter().map(|r| d10(&r.date)).max().map(str::to_owned);
                match latest {
                    None => out.push_str(
                        "\nLast completed UTC day: no activity in the last 30 completed days",
                    ),
                    Some(latest) => {
                        let day_rows: Vec<ActivityRow> = rows
                            .into_iter()
                            .filter(|r| d10(&r.date) == latest)
                            .collect();
                        let reqs: u64 = day_rows.iter().map(|r| r.requests).sum();
                        out.push_str(&format!(
                            "\nLast completed UTC day ({latest}): {}, {reqs} req",
                            m4(sum_usage(&day_rows))
                        ));
                        let mut groups = group_by(&day_rows, |r| r.model.clone());
                        sort_by_usage(&mut groups);
                        for g in groups.iter().take(5) {
                            out.push_str(&format!(
                                "\n  - {} {} | {} req",
                                pad_end(&g.key, 40),
                                m4(g.usage),
                                g.requests
                            ));
                        }
                    }
                }
            }
            Err(e) => out.push_str(&format!(
                "\nLast completed UTC day: activity unavailable ({})",
                self.upstream_error("or_overview", &e)
            )),
        }
        Ok(out)
    }
}
