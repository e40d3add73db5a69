//! The team file (`team.toml`): what a team lead writes, and its validation into a
//! [`ResolvedTeam`] where every member's effective tier, team, budgets and key settings are
//! explicit (inheritance applied).
//!
//! Inheritance, most specific first:
//! - member budget: `members[].budget`, else the team's `member_budget`, else the tier's
//!   `member_budget`, else `[defaults].budget`, else none (only team/org budgets apply);
//! - member team and tier: `members[].team` / `.tier`, else `[defaults]`;
//! - member key settings: each field of `members[].key`, else `[defaults].key`, else built-ins
//!   (gateway mode, shared upstream, no rotation, 24 h grace).
//!
//! Errors point at the line: `team.toml:12:8: unknown tier "pro" (known: basic, enterprise)`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orteam_core::access::Role;
use orteam_core::{Money, Window};
use orteam_ledger::RoutingPolicy;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A team file that could not be read or is invalid, with the position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location(path, *line, *column))]
pub struct TeamFileError {
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    pub message: String,
}

fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: ", path.display()),
        (Some(l), None) => format!("{}:{l}: ", path.display()),
        _ => format!("{}: ", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    org: RawOrg,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    tiers: BTreeMap<String, Spanned<RawTier>>,
    #[serde(default)]
    teams: BTreeMap<String, Spanned<RawTeam>>,
    #[serde(default)]
    members: Vec<Spanned<RawMember>>,
    #[serde(default)]
    alerts: Option<AlertsSpec>,
    #[serde(default)]
    access: RawAccess,
}

/// `[access]`: admin tokens the file declares and what the identity provider's groups grant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    tokens: BTreeMap<String, Spanned<RawToken>>,
    /// Group → `"admin"`, `"viewer"`, `"team_lead:TEAM[,TEAM…]"` or a table like a token's.
    #[serde(default)]
    groups: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    role: Spanned<String>,
    #[serde(default)]
    teams: Vec<Spanned<String>>,
    max_raise: Option<Spanned<Amount>>,
    expires_in: Option<DurationSpec>,
}

/// A group's grant written as a table (no spans inside: it is read from a `toml::Value`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupTable {
    role: String,
    #[serde(default)]
    teams: Vec<String>,
    max_raise: Option<Amount>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    name: Spanned<String>,
    #[serde(default)]
    budget: BudgetSpec,
    /// OpenRouter keys (names or hashes) that belong to no member but are not strays, e.g. the
    /// team's shared key the gateway forwards with.
    #[serde(default)]
    keep_keys: Vec<String>,
    #[serde(default)]
    openrouter: OpenRouterSpec,
}

/// `[org.openrouter]`: OpenRouter as a second line of defence behind orteam's own checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRouterSpec {
    /// Push each tier's model allowlist down as an OpenRouter guardrail
    /// (`orteam:<org>:tier:<tier>`) assigned to the tier's members' OpenRouter keys.
    #[serde(default)]
    pub guardrails: bool,
    /// The shared key the gateway forwards with (its name or hash). Naming it hands its limit to
    /// orteam: the org budget when `backstop` is on, no limit otherwise.
    #[serde(default)]
    pub shared_key: Option<String>,
    /// Set the org budget (its longest window) as the shared key's limit, with that window as
    /// `limit_reset`, so OpenRouter refuses before orteam's own budgets could be overrun.
    #[serde(default)]
    pub backstop: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    team: Option<Spanned<String>>,
    tier: Option<Spanned<String>>,
    budget: Option<BudgetSpec>,
    #[serde(default)]
    key: RawKey,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    models: ModelsSpec,
    #[serde(default)]
    on_disallowed: OnDisallowed,
    downgrade_to: Option<Spanned<String>>,
    member_budget: Option<BudgetSpec>,
    #[serde(default)]
    rate_limit: RateLimitSpec,
    #[serde(default)]
    routing: RoutingPolicy,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: Option<String>,
    #[serde(default)]
    budget: BudgetSpec,
    member_budget: Option<BudgetSpec>,
    /// The OpenRouter workspace (slug) the team's OpenRouter keys live in; created if missing.
    workspace: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    id: Spanned<String>,
    name: Option<String>,
    email: Option<String>,
    team: Option<Spanned<String>>,
    tier: Option<Spanned<String>>,
    budget: Option<BudgetSpec>,
    #[serde(default)]
    key: RawKey,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    mode: Option<KeyMode>,
    upstream: Option<UpstreamMode>,
    rotate_every: Option<DurationSpec>,
    grace: Option<DurationSpec>,
    limit: Option<Amount>,
    limit_reset: Option<Window>,
    expires_in: Option<DurationSpec>,
    include_byok_in_limit: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Value types shared by the raw and resolved forms.
// ---------------------------------------------------------------------------------------------

/// Budget limits per UTC window. Amounts are decimal strings (`"5.00"`) or integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Amount>,
}

impl BudgetSpec {
    /// The configured `(window, limit)` pairs, daily first.
    pub fn limits(&self) -> Vec<(Window, Money)> {
        [
            (Window::Daily, self.daily),
            (Window::Weekly, self.weekly),
            (Window::Monthly, self.monthly),
        ]
        .into_iter()
        .filter_map(|(w, a)| a.map(|a| (w, a.0)))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.daily.is_none() && self.weekly.is_none() && self.monthly.is_none()
    }
}

/// A non-negative exact amount of dollars as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(pub Money);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount of dollars as a decimal string, e.g. \"5.00\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                match Money::parse(v) {
                    Ok(m) if m.is_negative() => {
                        Err(E::custom(format!("amount must not be negative: {v:?}")))
                    }
                    Ok(m) => Ok(Amount(m)),
                    Err(_) => Err(E::custom(format!(
                        "{v:?} is not a decimal amount (write e.g. \"5.00\")"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                if v < 0 {
                    return Err(E::custom(format!("amount must not be negative: {v}")));
                }
                Ok(Amount(Money::from_cents(v.saturating_mul(100))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Err(E::custom(format!(
                    "write amounts as decimal strings so no precision is lost: \"{v}\" instead of {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration written like `"30d"`, `"12h"`, `"90 days"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DurationSpec(#[serde(serialize_with = "ser_duration")] pub Duration);

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(DurationSpec)
            .map_err(de::Error::custom)
    }
}

/// Parses `"30d"`, `"12h"`, `"1h 30m"`, `"2w"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like \"30d\" or \"12h\": {e}"))?;
    if d.is_zero() {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    Ok(d)
}

/// Which models a tier may use: `"*"` for all, or a list of model ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ModelsSpec {
    All,
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for ModelsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        match Raw::deserialize(d).map_err(|_| {
            de::Error::custom("models must be \"*\" (all models) or a list of model ids")
        })? {
            Raw::One(s) if s == "*" => Ok(ModelsSpec::All),
            Raw::One(s) => Err(de::Error::custom(format!(
                "models must be \"*\" or a list; did you mean [\"{s}\"]?"
            ))),
            Raw::Many(list) if list.is_empty() => Err(de::Error::custom(
                "models list is empty: no model could ever be used (use \"*\" for all)",
            )),
            Raw::Many(list) => Ok(ModelsSpec::List(list)),
        }
    }
}

/// What the gateway does with a model the tier does not allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDisallowed {
    /// Refuse the request with 403 naming the allowed models.
    #[default]
    Deny,
    /// Serve it with the tier's `downgrade_to` model instead.
    Downgrade,
}

/// Per-member rate limits enforced by the gateway (none by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

/// How a member reaches OpenRouter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// An `ot-…` key for the orteam gateway, which enforces budgets before spending.
    #[default]
    Gateway,
    /// The member's own OpenRouter key, provisioned with a limit OpenRouter enforces.
    Direct,
}

/// Which OpenRouter key a gateway-mode member's requests are forwarded with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamMode {
    /// The team's shared key.
    #[default]
    Shared,
    /// A per-member provisioned key that only the gateway holds, so OpenRouter's own limit
    /// backs orteam's.
    Own,
}

/// Webhook alerts (budget thresholds and anomalies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSpec {
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Percent of a budget window at which to alert (default 50, 80, 100).
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<u32>,
}

fn default_thresholds() -> Vec<u32> {
    vec![50, 80, 100]
}

// ---------------------------------------------------------------------------------------------
// The resolved team.
// ---------------------------------------------------------------------------------------------

/// The default grace period during which a rotated-out key still works.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedTeam {
    pub org: OrgSpec,
    pub tiers: BTreeMap<String, TierSpec>,
    pub teams: BTreeMap<String, TeamSpec>,
    /// In file order.
    pub members: Vec<MemberSpec>,
    pub alerts: Option<AlertsSpec>,
    /// `[access]`: declared admin tokens and the roles the identity provider's groups grant.
    pub access: AccessSpec,
    /// Where the file names each model, for messages (empty for a team not read from a file).
    #[serde(skip)]
    pub model_sites: ModelSites,
}

/// The file a team was read from and the 1-based (line, column) where each model id is first
/// written in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSites {
    pub path: PathBuf,
    pub sites: BTreeMap<String, (usize, usize)>,
}

impl ModelSites {
    /// An error at the place `model` is written (the file alone when it is not found).
    pub fn error_at(&self, model: &str, message: String) -> TeamFileError {
        let site = self.sites.get(model);
        TeamFileError {
            path: self.path.clone(),
            line: site.map(|s| s.0),
            column: site.map(|s| s.1),
            message,
        }
    }
}

/// The offset of the first `"model"` or `'model'` in `text[range]`, else in the whole text.
fn find_quoted(text: &str, range: std::ops::Range<usize>, model: &str) -> Option<usize> {
    let needles = [format!("\"{model}\""), format!("'{model}'")];
    let first_in = |hay: &str| needles.iter().filter_map(|n| hay.find(n.as_str())).min();
    text.get(range.clone())
        .and_then(first_in)
        .map(|o| o + range.start)
        .or_else(|| first_in(text))
}

/// `[access]` of the team file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessSpec {
    /// `[access.tokens.NAME]`: admin tokens `team apply` creates, updates and revokes.
    pub tokens: BTreeMap<String, TokenSpec>,
    /// `[access.groups]`: what each group of the identity provider grants at sign-in.
    pub groups: BTreeMap<String, Grant>,
}

/// A role with its scope: what a token or a group grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub role: Role,
    /// The teams of a `team_lead` (teams of this file); empty otherwise.
    pub teams: Vec<String>,
    /// The largest raise a `team_lead` may grant (`None`: no raises).
    pub max_raise: Option<Money>,
}

/// An admin token the file declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenSpec {
    pub name: String,
    pub grant: Grant,
    /// The token expires this long after its creation.
    pub expires_in: Option<DurationSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSpec {
    /// Also the org's id in the ledger and in key names.
    pub name: String,
    pub budget: BudgetSpec,
    /// Names or hashes of OpenRouter keys that are not strays although no member owns them.
    pub keep_keys: Vec<String>,
    pub openrouter: OpenRouterSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierSpec {
    pub name: String,
    pub models: ModelsSpec,
    pub on_disallowed: OnDisallowed,
    pub downgrade_to: Option<String>,
    pub rate_limit: RateLimitSpec,
    /// What the gateway does with OpenRouter's routing fields (`[tiers.X.routing]`).
    pub routing: RoutingPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamSpec {
    pub id: String,
    pub display_name: String,
    pub budget: BudgetSpec,
    /// The OpenRouter workspace slug of the team's keys.
    pub workspace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberSpec {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub team: String,
    pub tier: String,
    pub budget: BudgetSpec,
    pub key: KeySpec,
    /// 1-based line of the member's entry, for messages.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySpec {
    pub mode: KeyMode,
    pub upstream: UpstreamMode,
    pub rotate_every: Option<DurationSpec>,
    pub grace: DurationSpec,
    /// Direct mode: the OpenRouter key limit.
    pub limit: Option<Amount>,
    pub limit_reset: Option<Window>,
    pub expires_in: Option<DurationSpec>,
    pub include_byok_in_limit: bool,
}

impl ResolvedTeam {
    /// Every model id named anywhere (allowlists and downgrade targets), to check against the
    /// catalog.
    pub fn named_models(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for tier in self.tiers.values() {
            if let ModelsSpec::List(list) = &tier.models {
                out.extend(list.iter().map(String::as_str));
            }
            if let Some(m) = &tier.downgrade_to {
                out.insert(m.as_str());
            }
        }
        out
    }

    pub fn member(&self, id: &str) -> Option<&MemberSpec> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// Reads and validates a team file.
pub fn load(path: &Path) -> Result<ResolvedTeam, TeamFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| TeamFileError {
        path: path.to_owned(),
        line: None,
        column: None,
        message: format!("cannot read the team file: {e}"),
    })?;
    parse(path, &text)
}

/// Validates a team file's text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<ResolvedTeam, TeamFileError> {
    let at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        TeamFileError {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile =
        toml::from_str(text).map_err(|e| at(e.span(), e.message().trim().to_owned()))?;

    if raw.org.name.get_ref().trim().is_empty() {
        return Err(at(
            Some(raw.org.name.span()),
            "org.name must not be empty".into(),
        ));
    }
    check_id(raw.org.name.get_ref())
        .map_err(|m| at(Some(raw.org.name.span()), format!("org.name: {m}")))?;

    let mut tiers = BTreeMap::new();
    for (name, spanned) in &raw.tiers {
        let span = spanned.span();
        let t = spanned.get_ref();
        check_id(name).map_err(|m| at(Some(span.clone()), format!("tier {name:?}: {m}")))?;
        let downgrade_to = t.downgrade_to.as_ref().map(|d| d.get_ref().clone());
        match (t.on_disallowed, &downgrade_to) {
            (OnDisallowed::Downgrade, None) => {
                return Err(at(
                    Some(span),
                    format!(
                        "tier {name:?} has on_disallowed = \"downgrade\" but no downgrade_to model"
                    ),
                ));
            }
            (OnDisallowed::Downgrade, Some(target)) => {
                if let ModelsSpec::List(list) = &t.models
                    && !list.contains(target)
                {
                    let s = t.downgrade_to.as_ref().map(|d| d.span());
                    return Err(at(
                        s,
                        format!(
                            "tier {name:?}: downgrade_to {target:?} is not in the tier's own models list"
                        ),
                    ));
                }
            }
            _ => {}
        }
        tiers.insert(
            name.clone(),
            TierSpec {
                name: name.clone(),
                models: t.models.clone(),
                on_disallowed: t.on_disallowed,
                downgrade_to,
                rate_limit: t.rate_limit,
                routing: t.routing,
            },
        );
    }

    let mut teams = BTreeMap::new();
    for (id, spanned) in &raw.teams {
        check_id(id).map_err(|m| at(Some(spanned.span()), format!("team {id:?}: {m}")))?;
        let t = spanned.get_ref();
        if let Some(w) = &t.workspace {
            check_slug(w.get_ref())
                .map_err(|m| at(Some(w.span()), format!("team {id:?}: workspace: {m}")))?;
        }
        teams.insert(
            id.clone(),
            TeamSpec {
                id: id.clone(),
                display_name: t.name.clone().unwrap_or_else(|| id.clone()),
                budget: t.budget,
                workspace: t.workspace.as_ref().map(|w| w.get_ref().clone()),
            },
        );
    }

    let check_ref = |kind: &str,
                     value: &Spanned<String>,
                     map_has: bool,
                     known: String|
     -> Result<(), TeamFileError> {
        if map_has {
            Ok(())
        } else {
            let hint = if known.is_empty() {
                format!("no [{kind}s.*] is defined")
            } else {
                format!("known: {known}")
            };
            Err(at(
                Some(value.span()),
                format!("unknown {kind} {:?} ({hint})", value.get_ref()),
            ))
        }
    };
    if let Some(t) = &raw.defaults.tier {
        check_ref("tier", t, tiers.contains_key(t.get_ref()), known(&tiers))?;
    }
    if let Some(t) = &raw.defaults.team {
        check_ref("team", t, teams.contains_key(t.get_ref()), known(&teams))?;
    }

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut members = Vec::with_capacity(raw.members.len());
    for spanned in &raw.members {
        let m = spanned.get_ref();
        let (line, _) = line_col(text, spanned.span().start);
        let id = m.id.get_ref().clone();
        check_id(&id).map_err(|msg| at(Some(m.id.span()), format!("member {id:?}: {msg}")))?;
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(at(
                Some(m.id.span()),
                format!("duplicate member {id:?} (first defined on line {first})"),
            ));
        }
        let team_ref = m
            .team
            .as_ref()
            .or(raw.defaults.team.as_ref())
            .ok_or_else(|| {
                at(
                    Some(spanned.span()),
                    format!("member {id:?} has no team (set team = \"…\" or [defaults].team)"),
                )
            })?;
        check_ref(
            "team",
            team_ref,
            teams.contains_key(team_ref.get_ref()),
            known(&teams),
        )?;
        let tier_ref = m
            .tier
            .as_ref()
            .or(raw.defaults.tier.as_ref())
            .ok_or_else(|| {
                at(
                    Some(spanned.span()),
                    format!("member {id:?} has no tier (set tier = \"…\" or [defaults].tier)"),
                )
            })?;
        check_ref(
            "tier",
            tier_ref,
            tiers.contains_key(tier_ref.get_ref()),
            known(&tiers),
        )?;
        let team_id = team_ref.get_ref().clone();
        let tier_id = tier_ref.get_ref().clone();

        let budget = m
            .budget
            .or_else(|| {
                raw.teams
                    .get(&team_id)
                    .and_then(|t| t.get_ref().member_budget)
            })
            .or_else(|| {
                raw.tiers
                    .get(&tier_id)
                    .and_then(|t| t.get_ref().member_budget)
            })
            .or(raw.defaults.budget)
            .unwrap_or_default();

        let d = &raw.defaults.key;
        let k = &m.key;
        let key = KeySpec {
            mode: k.mode.or(d.mode).unwrap_or_default(),
            upstream: k.upstream.or(d.upstream).unwrap_or_default(),
            rotate_every: k.rotate_every.or(d.rotate_every),
            grace: k
                .grace
                .or(d.grace)
                .unwrap_or(DurationSpec(DEFAULT_ROTATION_GRACE)),
            limit: k.limit.or(d.limit),
            limit_reset: k.limit_reset.or(d.limit_reset),
            expires_in: k.expires_in.or(d.expires_in),
            include_byok_in_limit: k
                .include_byok_in_limit
                .or(d.include_byok_in_limit)
                .unwrap_or(false),
        };
        if key.mode == KeyMode::Gateway && key.limit_reset.is_some() && key.limit.is_none() {
            return Err(at(
                Some(spanned.span()),
                format!("member {id:?}: key.limit_reset is set but key.limit is not"),
            ));
        }
        if key.mode == KeyMode::Direct && key.upstream == UpstreamMode::Own {
            return Err(at(
                Some(spanned.span()),
                format!(
                    "member {id:?}: upstream = \"own\" only applies to gateway mode (a direct key is always the member's own)"
                ),
            ));
        }
        members.push(MemberSpec {
            display_name: m.name.clone().unwrap_or_else(|| id.clone()),
            email: m.email.clone(),
            id,
            team: team_id,
            tier: tier_id,
            budget,
            key,
            line,
        });
    }

    if let Some(alerts) = &raw.alerts {
        for t in &alerts.thresholds {
            if *t == 0 || *t > 1000 {
                return Err(at(
                    None,
                    format!("alerts.thresholds: {t} is not a percent between 1 and 1000"),
                ));
            }
        }
        for url in &alerts.webhooks {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at(
                    None,
                    format!("alerts.webhooks: {url:?} is not an http(s) URL"),
                ));
            }
        }
    }

    let access = resolve_access(&raw.access, &teams, &at)?;

    let mut model_sites = ModelSites {
        path: path.to_owned(),
        sites: BTreeMap::new(),
    };
    for spanned in raw.tiers.values() {
        let t = spanned.get_ref();
        let mut named: Vec<(&str, Option<usize>)> = Vec::new();
        if let ModelsSpec::List(list) = &t.models {
            named.extend(list.iter().map(|m| (m.as_str(), None)));
        }
        if let Some(d) = &t.downgrade_to {
            named.push((d.get_ref().as_str(), Some(d.span().start)));
        }
        for (model, exact) in named {
            if model_sites.sites.contains_key(model) {
                continue;
            }
            if let Some(offset) = exact.or_else(|| find_quoted(text, spanned.span(), model)) {
                model_sites
                    .sites
                    .insert(model.to_owned(), line_col(text, offset));
            }
        }
    }

    Ok(ResolvedTeam {
        org: OrgSpec {
            name: raw.org.name.get_ref().clone(),
            budget: raw.org.budget,
            keep_keys: raw.org.keep_keys,
            openrouter: raw.org.openrouter,
        },
        tiers,
        teams,
        members,
        alerts: raw.alerts,
        access,
        model_sites,
    })
}

type At<'a> = &'a dyn Fn(Option<std::ops::Range<usize>>, String) -> TeamFileError;

/// Validates `[access]`: roles, teams of this file, and that only a team lead has teams or a
/// max_raise.
fn resolve_access(
    raw: &RawAccess,
    teams: &BTreeMap<String, TeamSpec>,
    at: At<'_>,
) -> Result<AccessSpec, TeamFileError> {
    let mut out = AccessSpec::default();
    for (name, spanned) in &raw.tokens {
        let what = format!("access.tokens.{name}");
        check_id(name).map_err(|m| at(Some(spanned.span()), format!("{what}: {m}")))?;
        let t = spanned.get_ref();
        let role = parse_role(t.role.get_ref())
            .map_err(|m| at(Some(t.role.span()), format!("{what}: {m}")))?;
        for team in &t.teams {
            check_team(team.get_ref(), teams)
                .map_err(|m| at(Some(team.span()), format!("{what}: {m}")))?;
        }
        let grant = Grant {
            role,
            teams: dedup(t.teams.iter().map(|s| s.get_ref().clone())),
            max_raise: t.max_raise.as_ref().map(|a| a.get_ref().0),
        };
        check_scope(&grant).map_err(|m| at(Some(spanned.span()), format!("{what}: {m}")))?;
        out.tokens.insert(
            name.clone(),
            TokenSpec {
                name: name.clone(),
                grant,
                expires_in: t.expires_in,
            },
        );
    }
    for (group, spanned) in &raw.groups {
        let what = format!("access.groups.{group:?}");
        let fail = |m: String| at(Some(spanned.span()), format!("{what}: {m}"));
        let grant = match spanned.get_ref() {
            toml::Value::String(s) => parse_group_string(s).map_err(fail)?,
            toml::Value::Table(t) => {
                let raw: RawGroupTable = toml::Value::Table(t.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| fail(e.message().trim().to_owned()))?;
                Grant {
                    role: parse_role(&raw.role).map_err(fail)?,
                    teams: dedup(raw.teams.into_iter()),
                    max_raise: raw.max_raise.map(|a| a.0),
                }
            }
            _ => {
                return Err(fail(
                    "write \"admin\", \"viewer\", \"team_lead:TEAM[,TEAM…]\" or a table \
                     { role = \"team_lead\", teams = [\"…\"], max_raise = \"50.00\" }"
                        .into(),
                ));
            }
        };
        for team in &grant.teams {
            check_team(team, teams).map_err(fail)?;
        }
        check_scope(&grant).map_err(fail)?;
        out.groups.insert(group.clone(), grant);
    }
    Ok(out)
}

fn dedup(teams: impl Iterator<Item = String>) -> Vec<String> {
    let set: BTreeSet<String> = teams.collect();
    set.into_iter().collect()
}

/// `admin`, `team_lead` or `viewer` (members need no token or group: their email is enough).
fn parse_role(text: &str) -> Result<Role, String> {
    match text.parse::<Role>() {
        Ok(Role::Member) | Err(_) => Err(format!(
            "unknown role {text:?}: use \"admin\", \"team_lead\" or \"viewer\" (members need \
             no token: their own key, or their email at sign-in, is enough)"
        )),
        Ok(role) => Ok(role),
    }
}

/// A group's grant written as a string: `admin`, `viewer`, `team_lead:core,web` (no raises).
fn parse_group_string(text: &str) -> Result<Grant, String> {
    let (role, teams) = match text.split_once(':') {
        Some((role, teams)) => (
            role,
            teams
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => (text, Vec::new()),
    };
    Ok(Grant {
        role: parse_role(role)?,
        teams: dedup(teams.into_iter()),
        max_raise: None,
    })
}

fn check_team(team: &str, teams: &BTreeMap<String, TeamSpec>) -> Result<(), String> {
    if teams.contains_key(team) {
        return Ok(());
    }
    let hint = if teams.is_empty() {
        "no [teams.*] is defined".to_owned()
    } else {
        format!("known: {}", known(teams))
    };
    Err(format!("unknown team {team:?} ({hint})"))
}

fn check_scope(g: &Grant) -> Result<(), String> {
    match g.role {
        Role::TeamLead if g.teams.is_empty() => {
            Err("a team_lead needs its teams (teams = [\"…\"], or \"team_lead:TEAM\")".into())
        }
        Role::Admin | Role::Viewer if !g.teams.is_empty() || g.max_raise.is_some() => Err(format!(
            "teams and max_raise are for team_lead; {} covers every team",
            g.role
        )),
        _ => Ok(()),
    }
}

fn known<V>(map: &BTreeMap<String, V>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// OpenRouter workspace slugs: lowercase letters, digits and dashes.
fn check_slug(slug: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{slug:?} is not a workspace slug (1-64 lowercase letters, digits or dashes)"
        ))
    }
}

/// Ids become parts of key names and URLs: keep them simple.
fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err("ids must be 1-64 characters of letters, digits, '-', '_' or '.'".into())
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[org]
name = "acme"
budget = { monthly = "500.00" }

[tiers.basic]
models = ["openai/gpt-4o-mini", "meta-llama/llama-3.1-8b-instruct"]
on_disallowed = "downgrade"          # or "deny" (default)
downgrade_to = "openai/gpt-4o-mini"
[tiers.enterprise]
models = "*"

[teams.backend]
budget = { monthly = "200.00" }

[[members]]
id = "alice"
team = "backend"
tier = "enterprise"
budget = { daily = "5.00", monthly = "50.00" }
key = { mode = "gateway", rotate_every = "30d" }

[[members]]
id = "bob"
team = "backend"
tier = "basic"
key = { mode = "direct", limit = "25.00", limit_reset = "monthly", expires_in = "90d" }
"#;

    fn p(text: &str) -> Result<ResolvedTeam, TeamFileError> {
        parse(Path::new("team.toml"), text)
    }

    #[test]
    fn parses_the_issue_example() {
        let t = p(EXAMPLE).unwrap();
        assert_eq!(t.org.name, "acme");
        assert_eq!(t.members.len(), 2);
        let alice = t.member("alice").unwrap();
        assert_eq!(alice.budget.limits().len(), 2);
        assert_eq!(alice.key.mode, KeyMode::Gateway);
        assert_eq!(
            alice.key.rotate_every.unwrap().0,
            Duration::from_secs(30 * 86400)
        );
        let bob = t.member("bob").unwrap();
        assert_eq!(bob.key.mode, KeyMode::Direct);
        assert_eq!(bob.key.limit.unwrap().0, Money::parse("25").unwrap());
        assert_eq!(bob.key.limit_reset, Some(Window::Monthly));
        assert_eq!(bob.line, 23);
        assert!(t.named_models().contains("openai/gpt-4o-mini"));
    }

    #[test]
    fn a_tiers_routing_policy_is_read_and_checked() {
        let t = p(&EXAMPLE.replace(
            "[tiers.enterprise]",
            "routing = { fallbacks = \"refuse\", plugins = \"strip\" }\n[tiers.enterprise]",
        ))
        .unwrap();
        let basic = &t.tiers["basic"].routing;
        assert_eq!(basic.fallbacks, orteam_ledger::RouteRule::Refuse);
        assert_eq!(basic.plugins, orteam_ledger::PaidRule::Strip);
        assert_eq!(basic.provider, orteam_ledger::RouteRule::Check);
        assert_eq!(t.tiers["enterprise"].routing, RoutingPolicy::default());
        // Paid work cannot be "checked": it has no price before it runs.
        let e = p(&EXAMPLE.replace(
            "[tiers.enterprise]",
            "routing = { plugins = \"check\" }\n[tiers.enterprise]",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(
            e.message.contains("strip") && e.message.contains("refuse"),
            "{e}"
        );
        let e = p(&EXAMPLE.replace(
            "[tiers.enterprise]",
            "routing = { fallback = \"strip\" }\n[tiers.enterprise]",
        ))
        .unwrap_err();
        assert!(e.message.contains("fallback"), "{e}");
    }

    #[test]
    fn unknown_tier_points_at_the_line() {
        let text = EXAMPLE.replace("tier = \"basic\"", "tier = \"pro\"");
        let e = p(&text).unwrap_err();
        assert_eq!(e.line, Some(26));
        assert!(e.to_string().starts_with("team.toml:26:"), "{e}");
        assert!(e.message.contains("unknown tier \"pro\""), "{e}");
        assert!(e.message.contains("basic, enterprise"), "{e}");
    }

    #[test]
    fn duplicate_member_is_refused() {
        let text = format!(
            "{EXAMPLE}\n[[members]]\nid = \"alice\"\nteam = \"backend\"\ntier = \"basic\"\n"
        );
        let e = p(&text).unwrap_err();
        assert!(e.message.contains("duplicate member \"alice\""), "{e}");
    }

    #[test]
    fn bad_amounts_are_refused() {
        for (bad, needle) in [
            ("\"-5.00\"", "negative"),
            ("\"five\"", "not a decimal amount"),
            ("5.5", "decimal strings"),
        ] {
            let text = EXAMPLE.replace(
                "budget = { monthly = \"200.00\" }",
                &format!("budget = {{ monthly = {bad} }}"),
            );
            let e = p(&text).unwrap_err();
            assert!(e.message.contains(needle), "{bad}: {e}");
            assert_eq!(e.line, Some(14), "{bad}: {e}");
        }
    }

    #[test]
    fn inheritance_from_team_tier_and_defaults() {
        let text = r#"
[org]
name = "acme"
[defaults]
team = "core"
tier = "basic"
key = { rotate_every = "7d", grace = "1h" }
[tiers.basic]
models = "*"
member_budget = { daily = "1.00" }
[teams.core]
member_budget = { daily = "2.00" }
[teams.other]
[[members]]
id = "carol"
[[members]]
id = "dan"
team = "other"
key = { rotate_every = "30d" }
"#;
        let t = p(text).unwrap();
        let carol = t.member("carol").unwrap();
        assert_eq!(carol.budget.daily.unwrap().0, Money::parse("2").unwrap());
        assert_eq!(
            carol.key.rotate_every.unwrap().0,
            Duration::from_secs(7 * 86400)
        );
        let dan = t.member("dan").unwrap();
        assert_eq!(dan.budget.daily.unwrap().0, Money::parse("1").unwrap());
        assert_eq!(
            dan.key.rotate_every.unwrap().0,
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(dan.key.grace.0, Duration::from_secs(3600));
    }

    #[test]
    fn unknown_field_and_syntax_errors_have_lines() {
        let e = p("[org]\nname = \"a\"\nbudgte = {}\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = p("[org\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../docs/team-file.md");
        let start = doc.find("```toml\n").unwrap() + 8;
        let end = start + doc[start..].find("```").unwrap();
        let t = p(&doc[start..end]).unwrap();
        assert_eq!(t.members.len(), 2);
        assert_eq!(t.member("bob").unwrap().team, "backend");
        assert_eq!(t.alerts.as_ref().unwrap().thresholds, vec![50, 80, 100]);
    }

    const ACCESS: &str = r#"
[access.tokens.backend-lead]
role = "team_lead"
teams = ["backend"]
max_raise = "50.00"
expires_in = "90d"

[access.tokens.finance]
role = "viewer"

[access.groups]
"orteam-admins" = "admin"
"auditors" = "viewer"
"backend-leads" = { role = "team_lead", teams = ["backend"], max_raise = "20.00" }
"backend-helpers" = "team_lead:backend"
"#;

    #[test]
    fn access_tokens_and_groups_are_read() {
        let t = p(&format!("{EXAMPLE}{ACCESS}")).unwrap();
        let lead = &t.access.tokens["backend-lead"];
        assert_eq!(lead.grant.role, Role::TeamLead);
        assert_eq!(lead.grant.teams, vec!["backend".to_owned()]);
        assert_eq!(lead.grant.max_raise, Some(Money::parse("50").unwrap()));
        assert_eq!(lead.expires_in.unwrap().0, Duration::from_secs(90 * 86400));
        let fin = &t.access.tokens["finance"];
        assert_eq!(fin.grant.role, Role::Viewer);
        assert!(fin.grant.teams.is_empty() && fin.expires_in.is_none());
        let g = &t.access.groups;
        assert_eq!(g["orteam-admins"].role, Role::Admin);
        assert_eq!(g["auditors"].role, Role::Viewer);
        assert_eq!(
            g["backend-leads"].max_raise,
            Some(Money::parse("20").unwrap())
        );
        assert_eq!(g["backend-helpers"].role, Role::TeamLead);
        assert_eq!(g["backend-helpers"].max_raise, None);
        // No [access]: nothing declared.
        assert_eq!(p(EXAMPLE).unwrap().access, AccessSpec::default());
    }

    /// The 1-based (line, column) of the first `needle` in `text`.
    fn site(text: &str, needle: &str) -> (usize, usize) {
        line_col(text, text.find(needle).unwrap())
    }

    #[test]
    fn access_errors_point_at_the_place() {
        let base = format!("{EXAMPLE}{ACCESS}");
        // An unknown role, at the role's value.
        let text = base.replace("role = \"viewer\"", "role = \"auditor\"");
        let e = p(&text).unwrap_err();
        assert_eq!((e.line, e.column), {
            let (l, c) = site(&text, "\"auditor\"");
            (Some(l), Some(c))
        });
        assert!(e.to_string().starts_with("team.toml:"), "{e}");
        assert!(e.message.contains("unknown role \"auditor\""), "{e}");
        // "member" is no admin role.
        let e = p(&base.replace("role = \"viewer\"", "role = \"member\"")).unwrap_err();
        assert!(e.message.contains("unknown role \"member\""), "{e}");
        // An unknown team, at the team's name.
        let text = base.replace(
            "teams = [\"backend\"]\nmax_raise = \"50.00\"",
            "teams = [\"platform\"]\nmax_raise = \"50.00\"",
        );
        let e = p(&text).unwrap_err();
        let (l, c) = site(&text, "\"platform\"");
        assert_eq!((e.line, e.column), (Some(l), Some(c)), "{e}");
        assert!(
            e.message
                .contains("unknown team \"platform\" (known: backend)"),
            "{e}"
        );
        // A float amount, at the amount.
        let text = base.replace("max_raise = \"50.00\"", "max_raise = 50.5");
        let e = p(&text).unwrap_err();
        let (l, _) = site(&text, "max_raise = 50.5");
        assert_eq!(e.line, Some(l), "{e}");
        assert!(e.message.contains("decimal strings"), "{e}");
        // A group naming an unknown team or role, at the group's value.
        for (bad, needle) in [
            ("\"team_lead:platform\"", "unknown team \"platform\""),
            ("\"owner\"", "unknown role \"owner\""),
            (
                "{ role = \"team_lead\", teams = [\"backend\"], max_raise = 20.0 }",
                "decimal strings",
            ),
        ] {
            let text = base.replace("\"team_lead:backend\"", bad);
            let e = p(&text).unwrap_err();
            let (l, c) = site(&text, bad);
            assert_eq!((e.line, e.column), (Some(l), Some(c)), "{bad}: {e}");
            assert!(e.message.contains(needle), "{bad}: {e}");
            assert!(e.message.contains("backend-helpers"), "{bad}: {e}");
        }
        // Scope: a team lead needs teams; teams and max_raise are only for team leads.
        let e = p(&base.replace("teams = [\"backend\"]\nmax_raise", "max_raise")).unwrap_err();
        assert!(e.message.contains("needs its teams"), "{e}");
        let e = p(&base.replace(
            "role = \"viewer\"",
            "role = \"viewer\"\nmax_raise = \"1.00\"",
        ))
        .unwrap_err();
        assert!(e.message.contains("access.tokens.finance"), "{e}");
        assert!(
            e.message.contains("only for team_lead") || e.message.contains("for team_lead"),
            "{e}"
        );
        // Unknown fields are refused with their line.
        let text = format!(
            "{EXAMPLE}{}",
            ACCESS.replace("expires_in = \"90d\"", "expires = \"90d\"")
        );
        let e = p(&text).unwrap_err();
        assert_eq!(e.line, Some(site(&text, "expires = ").0), "{e}");
    }

    #[test]
    fn downgrade_needs_a_target_in_the_list() {
        let text = EXAMPLE.replace(
            "downgrade_to = \"openai/gpt-4o-mini\"",
            "downgrade_to = \"openai/gpt-4o\"",
        );
        let e = p(&text).unwrap_err();
        assert!(
            e.message.contains("not in the tier's own models list"),
            "{e}"
        );
    }
}
