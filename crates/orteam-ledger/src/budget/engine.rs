//! The in-memory budget engine.
//!
//! One mutex-protected map of budget *cells*: one cell per (scope, scope id, window, window
//! start). A reservation checks and holds every cell that applies to the member (member, team,
//! org × each window with a limit) under one lock acquisition, so the check-and-hold is atomic
//! with respect to every other reservation in the process.
//!
//! Two modes, chosen by the backend:
//! - [`Mode::Owned`] (SQLite): this process owns the whole budget. A cell is `limit, spent, held`
//!   and a reservation fits when `spent + held + amount <= limit`.
//! - [`Mode::Leased`] (PostgreSQL): the database grants each instance a *lease* (a slice of
//!   `limit - spent - leased`, see `postgres::lease`). A reservation fits when the local
//!   unconsumed lease covers it: `held + amount <= lease`. Since the sum of all leases never
//!   exceeds what the database row allows, no instance can overspend. When the lease is short,
//!   [`BudgetEngine::try_reserve`] returns the shortfall and the caller asks the database.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use orteam_core::{Money, Window};
use parking_lot::Mutex;

use crate::error::{BudgetExceeded, LedgerError};
use crate::model::{BudgetScope, BudgetStatus, MemberState, TightestBudget};

pub type Id = Arc<str>;

/// Fx hashing (`rustc-hash`): the keys are directory ids chosen by admins (not attacker input),
/// and SipHash was a third of the reserve + release time.
pub(crate) type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// One window instance of one scope's spend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub scope: BudgetScope,
    pub id: Id,
    pub window: Window,
    pub start: NaiveDate,
}

impl CellKey {
    pub fn new(scope: BudgetScope, id: Id, window: Window, at: DateTime<Utc>) -> Self {
        CellKey {
            scope,
            id,
            window,
            start: window.start_date(at.date_naive()),
        }
    }

    /// The nine keys (3 scopes × 3 windows) a member's spend at `at` counts against.
    pub fn all_for(member: &Id, team: &Id, org: &Id, at: DateTime<Utc>) -> Vec<CellKey> {
        let mut out = Vec::with_capacity(9);
        for (scope, id) in [
            (BudgetScope::Member, member),
            (BudgetScope::Team, team),
            (BudgetScope::Org, org),
        ] {
            for w in Window::ALL {
                out.push(CellKey::new(scope, id.clone(), w, at));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Owned,
    Leased,
}

#[derive(Debug, Default, Clone)]
struct Cell {
    /// Owned: authoritative spend in this window (durable + settled, not yet flushed).
    /// Leased: spend as last read from the database plus local settles since.
    spent: Money,
    /// Held by this process's in-flight reservations.
    held: Money,
    /// Leased: this instance's unconsumed lease (includes `held`).
    lease: Money,
    /// Leased: `limit - spent - leased` as the database last reported it.
    global_free: Money,
    /// Leased: the `budget_windows.id` of this cell.
    db_id: Option<i64>,
    last_active: Option<DateTime<Utc>>,
}

/// Limits of one scope: base limit per window and active raises.
#[derive(Debug, Default, Clone)]
pub struct ScopeLimits {
    pub limits: [Option<Money>; 3],
    pub raises: [Vec<(Money, DateTime<Utc>)>; 3],
}

fn widx(w: Window) -> usize {
    match w {
        Window::Daily => 0,
        Window::Weekly => 1,
        Window::Monthly => 2,
    }
}

fn sidx(s: BudgetScope) -> usize {
    match s {
        BudgetScope::Member => 0,
        BudgetScope::Team => 1,
        BudgetScope::Org => 2,
    }
}

impl ScopeLimits {
    /// `(base, raised)` at `now`, if a limit is set for `w`.
    fn limit(&self, w: Window, now: DateTime<Utc>) -> Option<(Money, Money)> {
        let base = self.limits[widx(w)]?;
        let raised: Money = self.raises[widx(w)]
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(a, _)| *a)
            .sum();
        Some((base, raised))
    }
}

/// A member as the engine sees it.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub id: Id,
    pub team: Id,
    pub org: Id,
    pub state: MemberState,
}

#[derive(Debug)]
struct Hold {
    cells: Vec<CellKey>,
    amount: Money,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    cells: FastMap<CellKey, Cell>,
    members: FastMap<Id, MemberInfo>,
    limits: [FastMap<Id, ScopeLimits>; 3],
    holds: FastMap<u64, Hold>,
    next_id: u64,
}

/// A cell the local lease cannot cover: the caller must obtain `need` more from the database.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub key: CellKey,
    pub db_id: Option<i64>,
    pub need: Money,
}

#[derive(Debug)]
pub enum TryReserve {
    Held {
        id: u64,
        member: MemberInfo,
    },
    /// Leased mode only.
    Short(Vec<Shortfall>),
}

/// Lease consumed by a settle, per `budget_windows.id` (Leased mode).
pub type LeaseTakes = Vec<(i64, Money)>;

#[derive(Debug)]
pub struct BudgetEngine {
    mode: Mode,
    ttl: chrono::TimeDelta,
    state: Mutex<State>,
}

impl BudgetEngine {
    pub fn new(mode: Mode, ttl: chrono::TimeDelta) -> Self {
        BudgetEngine {
            mode,
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Replaces the member and limit tables (after a directory reload). Cells keep their spend
    /// and holds.
    pub fn set_directory(
        &self,
        members: HashMap<Id, MemberInfo>,
        limits: [HashMap<Id, ScopeLimits>; 3],
    ) {
        let mut st = self.state.lock();
        st.members = members.into_iter().collect();
        let [a, b, c] = limits;
        st.limits = [
            a.into_iter().collect(),
            b.into_iter().collect(),
            c.into_iter().collect(),
        ];
    }

    /// Owned mode: loads durable spend at startup.
    pub fn load_spent(&self, rows: impl IntoIterator<Item = (CellKey, Money)>) {
        let mut st = self.state.lock();
        for (k, spent) in rows {
            st.cells.entry(k).or_default().spent = spent;
        }
    }

    pub fn member(&self, member: &str) -> Option<MemberInfo> {
        self.state.lock().members.get(member).cloned()
    }

    /// Checks every budget that applies to `member` and, if all have room, holds `amount` in
    /// each. All under one lock: atomic with respect to every other reservation here.
    pub fn try_reserve(
        &self,
        member: &str,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<TryReserve, LedgerError> {
        if amount.is_negative() {
            return Err(LedgerError::Invalid(
                "reservation amount is negative".into(),
            ));
        }
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let info = st
            .members
            .get(member)
            .ok_or_else(|| LedgerError::UnknownMember(member.to_owned()))?
            .clone();
        if info.state == MemberState::Removed {
            return Err(LedgerError::MemberRemoved(member.to_owned()));
        }
        let today = now.date_naive();
        let mut targets: Vec<CellKey> = Vec::with_capacity(9);
        let mut short: Vec<Shortfall> = Vec::new();
        for (scope, id) in [
            (BudgetScope::Member, &info.id),
            (BudgetScope::Team, &info.team),
            (BudgetScope::Org, &info.org),
        ] {
            let Some(sl) = st.limits[sidx(scope)].get(id) else {
                continue;
            };
            for w in Window::ALL {
                let Some((base, raised)) = sl.limit(w, now) else {
                    continue;
                };
                let key = CellKey {
                    scope,
                    id: id.clone(),
                    window: w,
                    start: w.start_date(today),
                };
                if !st.cells.contains_key(&key) {
                    st.cells.insert(key.clone(), Cell::default());
                }
                let Some(cell) = st.cells.get(&key) else {
                    continue;
                };
                match self.mode {
                    Mode::Owned => {
                        let limit = base.plus(raised).map_err(money_err)?;
                        let after = cell
                            .spent
                            .plus(cell.held)
                            .and_then(|x| x.plus(amount))
                            .map_err(money_err)?;
                        if after > limit {
                            return Err(LedgerError::BudgetExceeded(Box::new(BudgetExceeded {
                                scope,
                                scope_id: id.to_string(),
                                window: w,
                                limit,
                                spent: cell.spent,
                                held: cell.held,
                                requested: amount,
                                reset_at: w.reset_at(now),
                            })));
                        }
                    }
                    Mode::Leased => {
                        let free = cell.lease.saturating_sub_floor_zero(cell.held);
                        if free < amount {
                            short.push(Shortfall {
                                key: key.clone(),
                                db_id: cell.db_id,
                                need: amount.minus(free).map_err(money_err)?,
                            });
                        }
                    }
                }
                targets.push(key);
            }
        }
        if !short.is_empty() {
            return Ok(TryReserve::Short(short));
        }
        for k in &targets {
            if let Some(cell) = st.cells.get_mut(k) {
                cell.held = cell.held.plus(amount).map_err(money_err)?;
                cell.last_active = Some(now);
            }
        }
        st.next_id += 1;
        let id = st.next_id;
        st.holds.insert(
            id,
            Hold {
                cells: targets,
                amount,
                expires_at: now + self.ttl,
            },
        );
        Ok(TryReserve::Held { id, member: info })
    }

    /// Frees a hold. Idempotent (a hold reclaimed by TTL is simply gone).
    pub fn release(&self, id: u64) {
        let mut st = self.state.lock();
        if let Some(hold) = st.holds.remove(&id) {
            unhold(&mut st, &hold);
        }
    }

    /// Turns a hold into spend of exactly `cost` (which may exceed the hold if the caller
    /// under-reserved: money is never dropped). `keys` are the nine windows of the reservation
    /// instant. Returns the lease consumed per database window (Leased mode).
    pub fn settle(&self, id: u64, keys: &[CellKey], cost: Money, now: DateTime<Utc>) -> LeaseTakes {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if let Some(hold) = st.holds.remove(&id) {
            unhold(st, &hold);
        }
        let mut takes = Vec::new();
        for k in keys {
            match self.mode {
                Mode::Owned => {
                    let cell = st.cells.entry(k.clone()).or_default();
                    cell.spent = cell.spent.checked_add(cost).unwrap_or(cell.spent);
                    cell.last_active = Some(now);
                }
                Mode::Leased => {
                    // Only budgeted cells exist locally; the database tracks every window.
                    if let Some(cell) = st.cells.get_mut(k) {
                        cell.spent = cell.spent.checked_add(cost).unwrap_or(cell.spent);
                        cell.last_active = Some(now);
                        let free = cell.lease.saturating_sub_floor_zero(cell.held);
                        let take = cost.min(free);
                        if let (Some(db), false) = (cell.db_id, take.is_zero()) {
                            cell.lease = cell.lease.saturating_sub_floor_zero(take);
                            takes.push((db, take));
                        }
                    }
                }
            }
        }
        takes
    }

    /// Leased: consumes up to `amount` of this instance's free lease (lease not held by a
    /// reservation) in each of `keys`, for a cost correction that raised spend, and returns what
    /// the writer must debit from the lease rows, so the money a correction adds is not granted
    /// again from a lease taken before it. Owned: nothing (the engine's spend is the budget).
    pub fn take_lease(&self, keys: &[CellKey], amount: Money) -> LeaseTakes {
        let mut takes = Vec::new();
        if self.mode != Mode::Leased || amount.is_zero() || amount.is_negative() {
            return takes;
        }
        let mut st = self.state.lock();
        for k in keys {
            if let Some(cell) = st.cells.get_mut(k) {
                let free = cell.lease.saturating_sub_floor_zero(cell.held);
                let take = amount.min(free);
                if let (Some(db), false) = (cell.db_id, take.is_zero()) {
                    cell.lease = cell.lease.saturating_sub_floor_zero(take);
                    takes.push((db, take));
                }
            }
        }
        takes
    }

    /// Undoes a settle whose event turned out to be a duplicate request id.
    pub fn refund(&self, keys: &[CellKey], cost: Money, takes: &LeaseTakes) {
        let mut st = self.state.lock();
        for k in keys {
            if let Some(cell) = st.cells.get_mut(k) {
                cell.spent = cell.spent.saturating_sub_floor_zero(cost);
            }
        }
        for (db, take) in takes {
            if let Some(cell) = st.cells.values_mut().find(|c| c.db_id == Some(*db)) {
                cell.lease = cell.lease.checked_add(*take).unwrap_or(cell.lease);
            }
        }
    }

    /// Adds `delta` (positive or negative) to the spend of `keys` (cost corrections).
    pub fn adjust_spent(&self, keys: &[CellKey], delta: Money) {
        let mut st = self.state.lock();
        for k in keys {
            let cell = match self.mode {
                Mode::Owned => st.cells.entry(k.clone()).or_default(),
                Mode::Leased => match st.cells.get_mut(k) {
                    Some(c) => c,
                    None => continue,
                },
            };
            cell.spent = cell
                .spent
                .checked_add(delta)
                .map(|s| s.max(Money::ZERO))
                .unwrap_or(cell.spent);
        }
    }

    /// Reclaims holds older than the reservation TTL (a caller leaked a reservation).
    pub fn expire_holds(&self, now: DateTime<Utc>) -> usize {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let expired: Vec<u64> = st
            .holds
            .iter()
            .filter(|(_, h)| h.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(h) = st.holds.remove(id) {
                unhold(st, &h);
            }
        }
        expired.len()
    }

    pub fn holds_len(&self) -> usize {
        self.state.lock().holds.len()
    }

    /// Drops cells of windows that have ended and hold nothing.
    pub fn gc(&self, now: DateTime<Utc>) {
        let today = now.date_naive();
        self.state.lock().cells.retain(|k, c| {
            k.start >= k.window.start_date(today) || !c.held.is_zero() || !c.lease.is_zero()
        });
    }

    // ---- Leased mode ----

    /// Records a lease granted by the database.
    pub fn add_lease(
        &self,
        key: &CellKey,
        db_id: i64,
        granted: Money,
        global_free: Money,
        spent: Money,
    ) {
        let mut st = self.state.lock();
        let cell = st.cells.entry(key.clone()).or_default();
        cell.db_id = Some(db_id);
        cell.lease = cell.lease.checked_add(granted).unwrap_or(cell.lease);
        cell.global_free = global_free;
        cell.spent = spent;
    }

    /// Records what the database said when it refused a lease, and the row id.
    pub fn observe(&self, key: &CellKey, db_id: i64, global_free: Money, spent: Money) {
        let mut st = self.state.lock();
        let cell = st.cells.entry(key.clone()).or_default();
        cell.db_id = Some(db_id);
        cell.global_free = global_free;
        cell.spent = spent;
    }

    /// The database no longer has our lease on `db_id` (it was reclaimed while we looked dead).
    pub fn lease_lost(&self, db_id: i64) {
        let mut st = self.state.lock();
        for c in st.cells.values_mut().filter(|c| c.db_id == Some(db_id)) {
            c.lease = Money::ZERO;
        }
    }

    /// Takes the unconsumed lease of cells idle since `idle_before` (or of windows that have
    /// ended, or all when `all`) and holding nothing, to return it to the database.
    pub fn take_idle_leases(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
        all: bool,
    ) -> Vec<(i64, Money)> {
        let today = now.date_naive();
        let mut st = self.state.lock();
        let mut out = Vec::new();
        for (k, c) in st.cells.iter_mut() {
            let ended = k.start < k.window.start_date(today);
            let idle = c.last_active.is_none_or(|t| t < idle_before);
            if c.lease.is_zero() || !c.held.is_zero() {
                continue;
            }
            if (all || ended || idle)
                && let Some(db) = c.db_id
            {
                out.push((db, c.lease));
                c.lease = Money::ZERO;
            }
        }
        out
    }

    /// Puts back a lease that could not be returned.
    pub fn restore_lease(&self, db_id: i64, amount: Money) {
        let mut st = self.state.lock();
        if let Some(c) = st.cells.values_mut().find(|c| c.db_id == Some(db_id)) {
            c.lease = c.lease.checked_add(amount).unwrap_or(c.lease);
        }
    }

    pub fn total_lease(&self) -> Money {
        self.state.lock().cells.values().map(|c| c.lease).sum()
    }

    // ---- status ----

    /// Every budget window that applies to `member` now.
    pub fn status(
        &self,
        member: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BudgetStatus>, LedgerError> {
        let st = self.state.lock();
        let info = st
            .members
            .get(member)
            .ok_or_else(|| LedgerError::UnknownMember(member.to_owned()))?;
        let mut out = Vec::new();
        for (scope, id) in [
            (BudgetScope::Member, &info.id),
            (BudgetScope::Team, &info.team),
            (BudgetScope::Org, &info.org),
        ] {
            out.extend(self.scope_status(&st, scope, id, now));
        }
        Ok(out)
    }

    /// Every budget window of every scope with a limit.
    pub fn all_status(&self, now: DateTime<Utc>) -> Vec<BudgetStatus> {
        let st = self.state.lock();
        let mut out = Vec::new();
        for scope in BudgetScope::ALL {
            let mut ids: Vec<&Id> = st.limits[sidx(scope)].keys().collect();
            ids.sort();
            for id in ids {
                out.extend(self.scope_status(&st, scope, id, now));
            }
        }
        out
    }

    fn scope_status(
        &self,
        st: &State,
        scope: BudgetScope,
        id: &Id,
        now: DateTime<Utc>,
    ) -> Vec<BudgetStatus> {
        let Some(sl) = st.limits[sidx(scope)].get(id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for w in Window::ALL {
            let Some((base, raised)) = sl.limit(w, now) else {
                continue;
            };
            let key = CellKey::new(scope, id.clone(), w, now);
            let cell = st.cells.get(&key).cloned().unwrap_or_default();
            let limit = base.checked_add(raised).unwrap_or(base);
            let remaining = match self.mode {
                Mode::Owned => limit
                    .saturating_sub_floor_zero(cell.spent)
                    .saturating_sub_floor_zero(cell.held),
                // A window this instance has never synced with the database: the limit less
                // local spend is the best estimate (the reservation itself is authoritative).
                Mode::Leased if cell.db_id.is_none() => limit
                    .saturating_sub_floor_zero(cell.spent)
                    .saturating_sub_floor_zero(cell.held),
                Mode::Leased => cell
                    .lease
                    .saturating_sub_floor_zero(cell.held)
                    .checked_add(cell.global_free)
                    .unwrap_or(cell.global_free),
            };
            out.push(BudgetStatus {
                scope,
                scope_id: id.to_string(),
                window: w,
                window_start: key.start,
                reset_at: w.reset_at(now),
                base_limit: base,
                raised,
                limit,
                spent: cell.spent,
                held: cell.held,
                remaining,
            });
        }
        out
    }

    /// The budget with the least room for `member` (None when no budget applies). In Leased
    /// mode this is this instance's view: its free lease plus the database's free amount as
    /// last seen.
    pub fn tightest(
        &self,
        member: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TightestBudget>, LedgerError> {
        Ok(self
            .status(member, now)?
            .into_iter()
            .min_by(|a, b| a.remaining.cmp(&b.remaining))
            .map(|s| TightestBudget {
                scope: s.scope,
                scope_id: s.scope_id,
                window: s.window,
                remaining: s.remaining,
                reset_at: s.reset_at,
            }))
    }
}

fn unhold(st: &mut State, hold: &Hold) {
    for k in &hold.cells {
        if let Some(c) = st.cells.get_mut(k) {
            c.held = c.held.saturating_sub_floor_zero(hold.amount);
        }
    }
}

fn money_err(_: orteam_core::MoneyError) -> LedgerError {
    LedgerError::Invalid("amount overflow".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn engine_with_budget(limit: &str) -> BudgetEngine {
        let e = BudgetEngine::new(Mode::Owned, chrono::TimeDelta::minutes(10));
        let m: Id = Arc::from("alice");
        let mut members = HashMap::new();
        members.insert(
            m.clone(),
            MemberInfo {
                id: m.clone(),
                team: Arc::from("t"),
                org: Arc::from("o"),
                state: MemberState::Active,
            },
        );
        let mut limits: [HashMap<Id, ScopeLimits>; 3] = Default::default();
        let mut sl = ScopeLimits::default();
        sl.limits[0] = Some(Money::parse(limit).unwrap());
        limits[0].insert(m, sl);
        e.set_directory(members, limits);
        e
    }

    #[test]
    fn hold_settle_release() {
        let e = engine_with_budget("1");
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let TryReserve::Held { id, member } = e
            .try_reserve("alice", Money::parse("0.6").unwrap(), now)
            .unwrap()
        else {
            panic!()
        };
        let err = e
            .try_reserve("alice", Money::parse("0.5").unwrap(), now)
            .unwrap_err();
        let b = err.budget_exceeded().unwrap();
        assert_eq!(b.held, Money::parse("0.6").unwrap());
        let keys = CellKey::all_for(&member.id, &member.team, &member.org, now);
        e.settle(id, &keys, Money::parse("0.1").unwrap(), now);
        assert!(
            e.try_reserve("alice", Money::parse("0.9").unwrap(), now)
                .is_ok()
        );
        assert_eq!(e.holds_len(), 1);
        assert_eq!(e.expire_holds(now + chrono::TimeDelta::hours(1)), 1);
        let t = e.tightest("alice", now).unwrap().unwrap();
        assert_eq!(t.remaining, Money::parse("0.9").unwrap());
    }
}
