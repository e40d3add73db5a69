//! The 26 OpenRouter tools, one file per domain, and the input types they share.

mod activity;
mod generation;
mod guardrails;
mod keys;
mod models;
mod organization;
pub(crate) mod team;

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};
use orteam_openrouter::{ClientError, Page, Pagination};
use rmcp::handler::server::router::tool::ToolRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::OrteamMcp;

/// Names of the 16 read tools.
pub const READ_TOOLS: [&str; 16] = [
    "or_overview",
    "or_credits",
    "or_current_key",
    "or_keys_list",
    "or_key_get",
    "or_activity",
    "or_generation",
    "or_models",
    "or_model_get",
    "or_model_endpoints",
    "or_models_user",
    "or_zdr_endpoints",
    "or_guardrails_list",
    "or_guardrail_get",
    "or_guardrails_assignments",
    "or_org_members",
];

/// Names of the 10 write tools (registered only when writes are enabled).
pub const WRITE_TOOLS: [&str; 10] = [
    "or_key_create",
    "or_key_update",
    "or_key_delete",
    "or_guardrail_create",
    "or_guardrail_update",
    "or_guardrail_delete",
    "or_guardrail_assign_keys",
    "or_guardrail_unassign_keys",
    "or_guardrail_assign_members",
    "or_guardrail_unassign_members",
];

/// Every read tool.
pub(crate) fn read_router() -> ToolRouter<OrteamMcp> {
    OrteamMcp::keys_router()
        + OrteamMcp::activity_router()
        + OrteamMcp::generation_router()
        + OrteamMcp::models_router()
        + OrteamMcp::guardrails_router()
        + OrteamMcp::organization_router()
}

/// Every write tool.
pub(crate) fn write_router() -> ToolRouter<OrteamMcp> {
    OrteamMcp::keys_write_router() + OrteamMcp::guardrails_write_router()
}

/// Tool result: the text, or an error text (sent with `isError: true`).
pub(crate) type ToolResult = Result<String, String>;

/// Tool arguments whose deserialization errors name the failing argument
/// (`argument `limit`: invalid type…`), which plain `Parameters<T>` does not.
#[derive(Debug)]
pub(crate) struct Args<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(d).map(Args).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                inner
            } else {
                serde::de::Error::custom(format!("argument `{path}`: {inner}"))
            }
        })
    }
}

impl<T: JsonSchema> JsonSchema for Args<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// Arguments of a tool that takes none (unknown arguments are rejected, so typos surface).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

impl JsonSchema for NoArgs {
    fn schema_name() -> Cow<'static, str> {
        "NoArgs".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "object", "properties": {}, "additionalProperties": false })
    }
}

/// A USD amount ≥ 0, read exactly (a JSON number or a decimal string; never a float in
/// arithmetic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usd(pub(crate) Money);

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Money::deserialize(d)?;
        if m.is_negative() {
            return Err(serde::de::Error::custom(format!(
                "amount must be >= 0 (USD), got {m}"
            )));
        }
        Ok(Usd(m))
    }
}

impl JsonSchema for Usd {
    fn schema_name() -> Cow<'static, str> {
        "Usd".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0 })
    }
}

/// When a limit or budget resets (00:00 UTC; weeks start on Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reset {
    Daily,
    Weekly,
    Monthly,
}

impl From<Reset> for Window {
    fn from(r: Reset) -> Window {
        match r {
            Reset::Daily => Window::Daily,
            Reset::Weekly => Window::Weekly,
            Reset::Monthly => Window::Monthly,
        }
    }
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or set.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A required id argument, trimmed; empty is an error naming the argument.
pub(crate) fn required<'a>(tool: &str, arg: &str, value: &'a str) -> Result<&'a str, String> {
    let v = value.trim();
    if v.is_empty() {
        Err(format!("{tool}: `{arg}` must not be empty"))
    } else {
        Ok(v)
    }
}

/// Parses an ISO-8601 timestamp (any offset, converted to UTC) or a bare `YYYY-MM-DD`
/// (00:00 UTC that day).
pub(crate) fn parse_timestamp(tool: &str, arg: &str, s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(dt.and_utc());
    }
    Err(format!(
        "{tool}: `{arg}` must be an ISO-8601 UTC timestamp such as 2026-05-25T00:00:00Z (or a date \
         YYYY-MM-DD), got {t:?}"
    ))
}

/// Fetches every page of an offset/limit listing (100 per page).
pub(crate) async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ClientError>
where
    F: FnMut(Pagination) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, ClientError>>,
{
    const PAGE: u32 = 100;
    let mut all = Vec::new();
    let mut offset: u32 = 0;
    // A hard stop far beyond any real account, in case a server ignores `offset`.
    for _ in 0..1000 {
        let page = fetch(Pagination::new(offset, PAGE)).await?;
        let n = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
        all.extend(page.data);
        let seen = u64::try_from(all.len()).unwrap_or(u64::MAX);
        if n < PAGE || page.total_count.is_some_and(|total| seen >= total) {
            break;
        }
        offset = offset.saturating_add(n);
    }
    Ok(all)
}
