//! Who may see and do what: the one authorization rule every surface asks ([`authorize`]),
//! so the admin API, the dashboard, `orteam top` (which reads the admin API) and the MCP team
//! tools can never disagree.
//!
//! - `admin`: everything.
//! - `team_lead` of named teams: sees those teams (their members, keys, budgets, spend); raises
//!   budgets of those teams and their members up to the token's `max_raise`; rotates and
//!   revokes within them. Nothing org-wide, nothing of another team.
//! - `viewer`: reads everything, changes nothing.
//! - `member`: only themselves (their own budgets and spend).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Money;

/// A role an admin token (or a signed-in person) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    TeamLead,
    Viewer,
    Member,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::TeamLead, Role::Viewer, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::TeamLead => "team_lead",
            Role::Viewer => "viewer",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "team_lead" | "team-lead" => Ok(Role::TeamLead),
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            other => Err(format!(
                "unknown role {other:?}: use admin, team_lead, viewer or member"
            )),
        }
    }
}

/// Who is asking, as the authentication of a surface established it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// What the audit log records: a token's name, `bootstrap`, or `member:<id>`.
    pub name: String,
    pub role: Role,
    /// The teams of a `team_lead`; empty otherwise.
    pub teams: Vec<String>,
    /// A `member`'s own id.
    pub member: Option<String>,
    /// The largest raise a `team_lead` may grant (`None`: none).
    pub max_raise: Option<Money>,
}

impl Principal {
    /// The `ORTEAM_ADMIN_TOKEN` bootstrap admin.
    pub fn bootstrap() -> Principal {
        Principal {
            name: "bootstrap".into(),
            role: Role::Admin,
            teams: Vec::new(),
            member: None,
            max_raise: None,
        }
    }

    /// A member acting with their own key.
    pub fn member(id: &str) -> Principal {
        Principal {
            name: format!("member:{id}"),
            role: Role::Member,
            teams: Vec::new(),
            member: Some(id.to_owned()),
            max_raise: None,
        }
    }

    /// Whether this principal may see `team`'s data at all.
    pub fn sees_team(&self, team: &str) -> bool {
        match self.role {
            Role::Admin | Role::Viewer => true,
            Role::TeamLead => self.teams.iter().any(|t| t == team),
            Role::Member => false,
        }
    }

    /// Whether this principal may see `member` (of `team`).
    pub fn sees_member(&self, member: &str, team: &str) -> bool {
        self.sees_team(team) || self.member.as_deref() == Some(member)
    }

    /// Whether this principal sees every team (org-wide figures included).
    pub fn sees_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Viewer)
    }
}

/// What a principal asks to do. `team` is the team the subject belongs to (`None` for an
/// org-wide subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read a team's (or, with `None`, the whole org's) members, keys, budgets and spend.
    View { team: Option<&'a str> },
    /// Read one member's own budgets and spend.
    ViewMember { member: &'a str, team: &'a str },
    /// Raise a budget by `amount` (a team or member budget of `team`, or the org's).
    Raise {
        team: Option<&'a str>,
        amount: Money,
    },
    /// Rotate a key of a member of `team`.
    Rotate { team: &'a str },
    /// Revoke a member of `team` or one of their keys.
    Revoke { team: &'a str },
    /// Apply a team file (changes every team).
    Apply,
    /// Create, list or revoke admin tokens.
    ManageTokens,
    /// Read the audit log.
    ReadAudit,
}

impl Action<'_> {
    fn describe(&self) -> String {
        match self {
            Action::View { team: Some(t) } => format!("view team {t:?}"),
            Action::View { team: None } => "view org-wide data".into(),
            Action::ViewMember { member, .. } => format!("view member {member:?}"),
            Action::Raise { team: Some(t), .. } => format!("raise a budget of team {t:?}"),
            Action::Raise { team: None, .. } => "raise the org's budget".into(),
            Action::Rotate { team } => format!("rotate keys of team {team:?}"),
            Action::Revoke { team } => format!("revoke in team {team:?}"),
            Action::Apply => "apply a team file".into(),
            Action::ManageTokens => "manage admin tokens".into(),
            Action::ReadAudit => "read the audit log".into(),
        }
    }
}

/// Why an action was refused (the caller answers 403 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{principal} ({role}) may not {action}: {why}")]
pub struct Denied {
    pub principal: String,
    pub role: Role,
    pub action: String,
    pub why: String,
}

/// The one authorization rule (see the module docs).
pub fn authorize(p: &Principal, action: &Action<'_>) -> Result<(), Denied> {
    let deny = |why: &str| {
        Err(Denied {
            principal: p.name.clone(),
            role: p.role,
            action: action.describe(),
            why: why.to_owned(),
        })
    };
    match (p.role, action) {
        (Role::Admin, _) => Ok(()),
        (Role::Viewer, Action::View { .. } | Action::ViewMember { .. } | Action::ReadAudit) => {
            Ok(())
        }
        (Role::Viewer, _) => deny("the viewer role is read-only"),
        (Role::TeamLead, Action::View { team: Some(t) } | Action::ViewMember { team: t, .. })
        | (Role::TeamLead, Action::Rotate { team: t } | Action::Revoke { team: t }) => {
            if p.sees_team(t) {
                Ok(())
            } else {
                deny(&format!("a team lead of {} only", p.teams.join(", ")))
            }
        }
        (
            Role::TeamLead,
            Action::Raise {
                team: Some(t),
                amount,
            },
        ) => {
            if !p.sees_team(t) {
                return deny(&format!("a team lead of {} only", p.teams.join(", ")));
            }
            match p.max_raise {
                Some(cap) if *amount <= cap => Ok(()),
                Some(cap) => deny(&format!(
                    "the raise {} is above this token's max_raise {}",
                    amount.to_canonical_string(),
                    cap.to_canonical_string()
                )),
                None => deny("this token has no max_raise, so it may not raise budgets"),
            }
        }
        (Role::TeamLead, _) => deny("org-wide actions need the admin role"),
        (Role::Member, Action::ViewMember { member, .. })
            if p.member.as_deref() == Some(*member) =>
        {
            Ok(())
        }
        (Role::Member, _) => deny("a member may only see themselves"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(max: Option<&str>) -> Principal {
        Principal {
            name: "lead".into(),
            role: Role::TeamLead,
            teams: vec!["core".into()],
            member: None,
            max_raise: max.map(|m| Money::parse(m).unwrap()),
        }
    }

    #[test]
    fn team_leads_stay_in_their_teams_and_under_their_cap() {
        let p = lead(Some("10"));
        assert!(authorize(&p, &Action::View { team: Some("core") }).is_ok());
        assert!(authorize(&p, &Action::View { team: Some("web") }).is_err());
        assert!(authorize(&p, &Action::View { team: None }).is_err());
        let raise = |team, amount: &str| Action::Raise {
            team,
            amount: Money::parse(amount).unwrap(),
        };
        assert!(authorize(&p, &raise(Some("core"), "10")).is_ok());
        let e = authorize(&p, &raise(Some("core"), "10.01")).unwrap_err();
        assert!(
            e.to_string().contains("above this token's max_raise 10"),
            "{e}"
        );
        assert!(authorize(&p, &raise(Some("web"), "1")).is_err());
        assert!(authorize(&p, &raise(None, "1")).is_err());
        assert!(authorize(&lead(None), &raise(Some("core"), "1")).is_err());
        assert!(authorize(&p, &Action::ManageTokens).is_err());
    }

    #[test]
    fn members_see_only_themselves() {
        let p = Principal::member("alice");
        let me = Action::ViewMember {
            member: "alice",
            team: "core",
        };
        let bob = Action::ViewMember {
            member: "bob",
            team: "core",
        };
        assert!(authorize(&p, &me).is_ok());
        let e = authorize(&p, &bob).unwrap_err();
        assert_eq!(
            e.to_string(),
            "member:alice (member) may not view member \"bob\": a member may only see themselves"
        );
        assert!(authorize(&p, &Action::View { team: Some("core") }).is_err());
    }
}
