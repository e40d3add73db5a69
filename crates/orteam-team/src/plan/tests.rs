//! The planner on plain data: a team file's text, an observed state built by hand (the ledger's
//! directory and OpenRouter's keys) and a fixed time. No HTTP, no database.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use orteam_ledger::directory::DirectoryData;
use orteam_ledger::{Directory, Member, MemberState, Org, Team};
use orteam_openrouter::types::keys::Key;

use super::planner::ledger_tier;
use super::{Action, Observed, Op, Plan, PlanOptions, Resource, plan};
use crate::file::{ResolvedTeam, parse};
use crate::naming::KeyLabel;

const TEAM: &str = r#"
[org]
name = "acme"

[tiers.basic]
models = "*"
[tiers.pro]
models = "*"

[teams.backend]

[[members]]
id = "alice"
team = "backend"
tier = "basic"
"#;

fn team(text: &str) -> ResolvedTeam {
    parse(Path::new("team.toml"), text).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 12, 0, 0).unwrap()
}

fn opts(prune: bool) -> PlanOptions {
    PlanOptions {
        now: now(),
        prune,
        unused_days: 30,
    }
}

fn observed(data: DirectoryData, keys: Vec<Key>) -> Observed {
    Observed {
        dir: Arc::new(Directory::build(data, None)),
        keys,
        workspaces: Vec::new(),
        guardrails: Vec::new(),
        key_assignments: Vec::new(),
        tokens: Vec::new(),
    }
}

/// An OpenRouter key as `GET /keys` lists it.
fn key(hash_char: char, name: &str) -> Key {
    serde_json::from_value(serde_json::json!({
        "hash": hash_char.to_string().repeat(64),
        "name": name,
        "created_at": "2026-05-01T00:00:00Z",
    }))
    .unwrap()
}

fn member(id: &str, tier: &str) -> Member {
    Member {
        id: id.into(),
        display_name: id.into(),
        team_id: "backend".into(),
        tier_id: tier.into(),
        state: MemberState::Active,
        created_at: now(),
        removed_at: None,
    }
}

/// The ledger after the org, the tiers and the team of `t` were applied, with `members`.
fn ledger_with(t: &ResolvedTeam, members: Vec<Member>) -> DirectoryData {
    DirectoryData {
        orgs: vec![Org {
            id: "acme".into(),
            name: "acme".into(),
            created_at: now(),
        }],
        tiers: t.tiers.values().map(ledger_tier).collect(),
        teams: vec![Team {
            id: "backend".into(),
            org_id: "acme".into(),
            name: "backend".into(),
            created_at: now(),
        }],
        members,
        ..DirectoryData::default()
    }
}

/// (action, resource, id) of every change, in order.
fn summary(p: &Plan) -> Vec<(Action, Resource, String)> {
    p.changes
        .iter()
        .map(|c| (c.action, c.resource, c.id.clone()))
        .collect()
}

fn of(p: &Plan, resource: Resource) -> Vec<(Action, Resource, String)> {
    summary(p)
        .into_iter()
        .filter(|(_, r, _)| *r == resource)
        .collect()
}

#[test]
fn an_empty_world_creates_org_tiers_team_and_member_in_order() {
    let t = team(TEAM);
    let p = plan(
        &t,
        &observed(DirectoryData::default(), vec![]),
        &opts(false),
    );
    let s = summary(&p);
    assert_eq!(
        s[..5],
        [
            (Action::Create, Resource::Org, "acme".to_owned()),
            (Action::Create, Resource::Tier, "basic".to_owned()),
            (Action::Create, Resource::Tier, "pro".to_owned()),
            (Action::Create, Resource::Team, "backend".to_owned()),
            (Action::Create, Resource::Member, "alice".to_owned()),
        ]
    );
    assert!(s.iter().all(|(a, _, _)| *a == Action::Create), "{s:?}");
    assert!(p.strays.is_empty());
}

#[test]
fn what_the_ledger_already_has_is_not_planned_again() {
    let t = team(TEAM);
    let obs = observed(ledger_with(&t, vec![member("alice", "basic")]), vec![]);
    let p = plan(&t, &obs, &opts(false));
    for r in [
        Resource::Org,
        Resource::Tier,
        Resource::Team,
        Resource::Member,
    ] {
        assert_eq!(of(&p, r), [], "{r:?}");
    }
}

#[test]
fn a_member_moved_to_another_tier_is_updated() {
    let t = team(TEAM);
    let obs = observed(ledger_with(&t, vec![member("alice", "pro")]), vec![]);
    let p = plan(&t, &obs, &opts(false));
    assert_eq!(
        of(&p, Resource::Member),
        [(Action::Update, Resource::Member, "alice".to_owned())]
    );
    let change = p
        .changes
        .iter()
        .find(|c| c.resource == Resource::Member)
        .unwrap();
    assert_eq!(change.fields.len(), 1);
    assert_eq!(change.fields[0].field, "tier");
    assert_eq!(change.fields[0].old.as_deref(), Some("pro"));
    assert_eq!(change.fields[0].new.as_deref(), Some("basic"));
}

#[test]
fn a_member_gone_from_the_file_is_removed() {
    let t = team(TEAM);
    let obs = observed(
        ledger_with(&t, vec![member("alice", "basic"), member("bob", "basic")]),
        vec![],
    );
    let p = plan(&t, &obs, &opts(false));
    assert_eq!(
        of(&p, Resource::Member),
        [(Action::Delete, Resource::Member, "bob".to_owned())]
    );
    let change = p.changes.iter().find(|c| c.id == "bob").unwrap();
    assert!(matches!(change.ops[..], [Op::RemoveMember(ref id)] if id == "bob"));
}

#[test]
fn strays_are_listed_and_deleted_only_with_prune() {
    let t = team(TEAM);
    let obs = || {
        observed(
            ledger_with(&t, vec![member("alice", "basic")]),
            vec![key('a', "laptop")],
        )
    };
    let p = plan(&t, &obs(), &opts(false));
    assert_eq!(p.strays.len(), 1);
    assert_eq!(p.strays[0].name, "laptop");
    assert_eq!(of(&p, Resource::StrayKey), []);

    let p = plan(&t, &obs(), &opts(true));
    let deletes = of(&p, Resource::StrayKey);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].0, Action::Delete);
}

#[test]
fn kept_keys_are_not_strays() {
    let t = team(&TEAM.replace(
        "name = \"acme\"",
        "name = \"acme\"\nkeep_keys = [\"laptop\"]",
    ));
    let obs = observed(
        ledger_with(&t, vec![member("alice", "basic")]),
        vec![key('a', "laptop")],
    );
    let p = plan(&t, &obs, &opts(true));
    assert!(p.strays.is_empty());
    assert_eq!(of(&p, Resource::StrayKey), []);
}

#[test]
fn an_unrecorded_key_named_for_this_org_is_an_orphan_and_deleted() {
    let t = team(TEAM);
    let ours = KeyLabel::new("acme", "alice", 1).name();
    let theirs = KeyLabel::new("other-org", "alice", 1).name();
    let obs = observed(
        ledger_with(&t, vec![member("alice", "basic")]),
        vec![key('b', &ours), key('c', &theirs)],
    );
    let p = plan(&t, &obs, &opts(false));
    let orphans: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.reason.as_deref().is_some_and(|r| r.starts_with("orphan")))
        .collect();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].action, Action::Delete);
    assert_eq!(orphans[0].resource, Resource::UpstreamKey);
    assert!(orphans[0].id.starts_with(&ours), "{}", orphans[0].id);
    // Neither is a stray: both carry orteam's naming.
    assert!(p.strays.is_empty());
}

#[test]
fn the_same_inputs_give_the_same_plan() {
    let t = team(TEAM);
    let obs = observed(
        ledger_with(&t, vec![member("alice", "pro"), member("bob", "basic")]),
        vec![key('a', "laptop")],
    );
    let a = plan(&t, &obs, &opts(true));
    let b = plan(&t, &obs, &opts(true));
    assert_eq!(summary(&a), summary(&b));
}

/// A live token in the ledger, created a day before `now()`.
fn admin_token(name: &str, managed: bool, max_raise: &str) -> orteam_ledger::AdminToken {
    let created = now() - chrono::TimeDelta::days(1);
    orteam_ledger::AdminToken {
        id: format!("id-{name}"),
        name: name.into(),
        role: orteam_core::access::Role::TeamLead,
        teams: vec!["backend".into()],
        max_raise: Some(orteam_core::Money::parse(max_raise).unwrap()),
        token_hash: String::new(),
        created_at: created,
        expires_at: Some(created + chrono::TimeDelta::days(90)),
        revoked_at: None,
        created_by: "cli:test".into(),
        file_org: managed.then(|| "acme".to_owned()),
    }
}

const TOKENS: &str = "\n[access.tokens.lead]\nrole = \"team_lead\"\nteams = [\"backend\"]\n\
                      max_raise = \"50.00\"\nexpires_in = \"90d\"\n";

fn token_plan(text: &str, tokens: Vec<orteam_ledger::AdminToken>) -> Plan {
    let t = team(text);
    let mut obs = observed(ledger_with(&t, vec![member("alice", "basic")]), vec![]);
    obs.tokens = tokens;
    plan(&t, &obs, &opts(false))
}

#[test]
fn declared_tokens_are_created_updated_replaced_and_revoked() {
    let text = format!("{TEAM}{TOKENS}");
    // Not there: created.
    let p = token_plan(&text, vec![]);
    assert_eq!(
        of(&p, Resource::AdminToken),
        [(Action::Create, Resource::AdminToken, "lead".to_owned())]
    );
    // There, unchanged: nothing to do.
    let p = token_plan(&text, vec![admin_token("lead", true, "50")]);
    assert_eq!(of(&p, Resource::AdminToken), []);
    // A changed max_raise: updated in place.
    let p = token_plan(&text, vec![admin_token("lead", true, "40")]);
    let c = p
        .changes
        .iter()
        .find(|c| c.resource == Resource::AdminToken)
        .unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields.len(), 1, "{:?}", c.fields);
    assert_eq!(c.fields[0].field, "max_raise");
    assert!(matches!(c.ops[..], [Op::UpdateAdminToken { .. }]));
    // Expired, or still carrying the pending-delivery expiry: a new secret.
    let mut expired = admin_token("lead", true, "50");
    expired.expires_at = Some(now() - chrono::TimeDelta::hours(1));
    let mut pending = admin_token("lead", true, "50");
    pending.expires_at = Some(pending.created_at + chrono::TimeDelta::minutes(10));
    for t in [expired, pending] {
        let p = token_plan(&text, vec![t]);
        let c = p
            .changes
            .iter()
            .find(|c| c.resource == Resource::AdminToken)
            .unwrap();
        assert_eq!(c.action, Action::Replace, "{:?}", c.reason);
        assert!(matches!(
            c.ops[..],
            [Op::RevokeAdminToken { .. }, Op::CreateAdminToken { .. }]
        ));
    }
    // Gone from the file: a file token is revoked; a CLI-made one, another org's file token or
    // a revoked one is not.
    let mut revoked = admin_token("old", true, "1");
    revoked.revoked_at = Some(now());
    let mut other_org = admin_token("theirs", true, "1");
    other_org.file_org = Some("other-org".into());
    let p = token_plan(
        TEAM,
        vec![
            admin_token("lead", true, "50"),
            admin_token("ci", false, "50"),
            revoked,
            other_org,
        ],
    );
    assert_eq!(
        of(&p, Resource::AdminToken),
        [(Action::Delete, Resource::AdminToken, "lead".to_owned())]
    );
    // A CLI-made token holding the declared name is never revoked by the plan.
    let p = token_plan(&text, vec![admin_token("lead", false, "50")]);
    let c = p
        .changes
        .iter()
        .find(|c| c.resource == Resource::AdminToken)
        .unwrap();
    assert_eq!(c.action, Action::Create);
    assert!(c.reason.as_deref().unwrap().contains("token revoke lead"));
    assert!(
        !c.ops
            .iter()
            .any(|o| matches!(o, Op::RevokeAdminToken { .. }))
    );
}
