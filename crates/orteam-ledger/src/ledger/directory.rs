//! The directory: orgs, teams, tiers, members, budget limits and raises; every change goes
//! through the store and is visible to this process before it returns.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use orteam_core::{Money, Window};

use super::{Ledger, not_found, valid_id};
use crate::directory::{Directory, DirectoryChange};
use crate::error::LedgerError;
use crate::model::*;
use crate::store::DirectoryStore;

impl Ledger {
    /// The current directory snapshot.
    pub fn directory(&self) -> Arc<Directory> {
        self.inner.dir.read().clone()
    }

    /// Reloads the directory if another process changed it.
    pub async fn refresh_if_changed(&self) -> Result<bool, LedgerError> {
        let seq = self.inner.store.change_seq().await?;
        if seq == self.inner.dir.read().seq {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Reloads the directory now (explicit auth-cache invalidation).
    pub async fn reload(&self) -> Result<(), LedgerError> {
        let _g = self.inner.reload_lock.lock().await;
        let data = self.inner.store.load_directory().await?;
        let dir = Directory::build(data, self.inner.secret_key.as_ref());
        let (members, limits) = dir.engine_tables();
        self.inner.engine.set_directory(members, limits);
        *self.inner.dir.write() = Arc::new(dir);
        Ok(())
    }

    pub(super) async fn change(&self, change: DirectoryChange) -> Result<(), LedgerError> {
        self.inner.store.apply(change, self.now()).await?;
        // Our own change is visible to us before we return: revocation is immediate here.
        self.reload().await
    }

    pub async fn put_org(&self, id: &str, name: &str) -> Result<Org, LedgerError> {
        valid_id(id)?;
        let org = Org {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: self
                .directory()
                .orgs
                .get(id)
                .map(|o| o.created_at)
                .unwrap_or_else(|| self.now()),
        };
        self.change(DirectoryChange::PutOrg(org.clone())).await?;
        Ok(org)
    }

    pub async fn put_team(&self, id: &str, org_id: &str, name: &str) -> Result<Team, LedgerError> {
        valid_id(id)?;
        let dir = self.directory();
        if !dir.orgs.contains_key(org_id) {
            return Err(not_found("org", org_id));
        }
        let team = Team {
            id: id.to_owned(),
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            created_at: dir
                .teams
                .get(id)
                .map(|t| t.created_at)
                .unwrap_or_else(|| self.now()),
        };
        self.change(DirectoryChange::PutTeam(team.clone())).await?;
        Ok(team)
    }

    pub async fn put_tier(&self, tier: Tier) -> Result<(), LedgerError> {
        valid_id(&tier.id)?;
        self.change(DirectoryChange::PutTier(tier)).await
    }

    /// Creates or updates a member (a removed member put again becomes active).
    pub async fn put_member(&self, m: NewMember) -> Result<Member, LedgerError> {
        valid_id(&m.id)?;
        let dir = self.directory();
        if !dir.teams.contains_key(&m.team_id) {
            return Err(not_found("team", &m.team_id));
        }
        if !dir.tiers.contains_key(&m.tier_id) {
            return Err(not_found("tier", &m.tier_id));
        }
        let member = Member {
            id: m.id.clone(),
            display_name: m.display_name,
            team_id: m.team_id,
            tier_id: m.tier_id,
            state: MemberState::Active,
            created_at: dir
                .members
                .get(&m.id)
                .map(|x| x.created_at)
                .unwrap_or_else(|| self.now()),
            removed_at: None,
        };
        self.change(DirectoryChange::PutMember(member.clone()))
            .await?;
        Ok(member)
    }

    /// Marks a member removed: their keys stop authenticating and they cannot reserve.
    /// History is kept.
    pub async fn remove_member(&self, id: &str) -> Result<(), LedgerError> {
        let mut m = self
            .directory()
            .members
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("member", id))?;
        m.state = MemberState::Removed;
        m.removed_at = Some(self.now());
        self.change(DirectoryChange::PutMember(m)).await
    }

    /// Sets a budget limit for a scope and window (windows are UTC calendar windows; weeks start
    /// on Monday).
    pub async fn set_budget(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
        limit: Money,
    ) -> Result<(), LedgerError> {
        if limit.is_negative() {
            return Err(LedgerError::Invalid(
                "a budget limit cannot be negative".into(),
            ));
        }
        self.check_scope(scope, scope_id)?;
        self.change(DirectoryChange::SetBudget(Budget {
            scope,
            scope_id: scope_id.to_owned(),
            window,
            limit,
        }))
        .await
    }

    pub async fn clear_budget(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
    ) -> Result<(), LedgerError> {
        self.change(DirectoryChange::ClearBudget {
            scope,
            scope_id: scope_id.to_owned(),
            window,
        })
        .await
    }

    /// Adds `amount` to a budget's limit until `until`, after which it is gone by itself.
    pub async fn add_raise(
        &self,
        scope: BudgetScope,
        scope_id: &str,
        window: Window,
        amount: Money,
        until: DateTime<Utc>,
        reason: &str,
    ) -> Result<BudgetRaise, LedgerError> {
        if amount.is_negative() || amount.is_zero() {
            return Err(LedgerError::Invalid("a raise must be positive".into()));
        }
        self.check_scope(scope, scope_id)?;
        let raise = BudgetRaise {
            id: uuid::Uuid::new_v4().to_string(),
            scope,
            scope_id: scope_id.to_owned(),
            window,
            amount,
            until,
            reason: reason.to_owned(),
            created_at: self.now(),
        };
        self.change(DirectoryChange::AddRaise(raise.clone()))
            .await?;
        Ok(raise)
    }

    pub async fn remove_raise(&self, id: &str) -> Result<(), LedgerError> {
        self.change(DirectoryChange::RemoveRaise(id.to_owned()))
            .await
    }

    pub(super) fn check_scope(&self, scope: BudgetScope, id: &str) -> Result<(), LedgerError> {
        let dir = self.directory();
        let ok = match scope {
            BudgetScope::Member => dir.members.contains_key(id),
            BudgetScope::Team => dir.teams.contains_key(id),
            BudgetScope::Org => dir.orgs.contains_key(id),
        };
        if ok {
            Ok(())
        } else {
            Err(not_found(scope.as_str(), id))
        }
    }
}
