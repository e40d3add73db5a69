//! Report periods: `today`, `week`, `month`, `last-7d`, `last-30d`, or explicit bounds.
//!
//! Every range is half-open, `[from, to)`, in UTC:
//! - `today`: from 00:00 today to 00:00 tomorrow;
//! - `week`: the current week, Monday 00:00 to next Monday 00:00 (as budgets and OpenRouter's
//!   `usage_weekly`);
//! - `month`: the 1st 00:00 to the next 1st;
//! - `last-7d` / `last-30d`: the 7 / 30 *completed* days before today (today excluded), which is
//!   exactly what OpenRouter's `/activity` covers for `last-30d`;
//! - `--since` / `--until`: a date `YYYY-MM-DD` (since: from its start; until: **inclusive**, to
//!   the end of that day) or an RFC 3339 instant (used as is).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use orteam_core::Window;
use orteam_core::window::midnight;
use serde::{Deserialize, Serialize};

use crate::error::InsightError;

/// A named period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    Today,
    Week,
    Month,
    #[serde(rename = "last-7d")]
    Last7d,
    #[serde(rename = "last-30d")]
    Last30d,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "week",
            Period::Month => "month",
            Period::Last7d => "last-7d",
            Period::Last30d => "last-30d",
        }
    }

    /// The period's range at `now`.
    pub fn range(self, now: DateTime<Utc>) -> Range {
        let today = now.date_naive();
        let (from, to) = match self {
            Period::Today => (today, today + Days::new(1)),
            Period::Week => (
                Window::Weekly.start_date(today),
                Window::Weekly.next_start_date(today),
            ),
            Period::Month => (
                Window::Monthly.start_date(today),
                Window::Monthly.next_start_date(today),
            ),
            Period::Last7d => (today - Days::new(7), today),
            Period::Last30d => (today - Days::new(30), today),
        };
        Range {
            from: midnight(from),
            to: midnight(to),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = InsightError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "today" => Period::Today,
            "week" => Period::Week,
            "month" => Period::Month,
            "last-7d" => Period::Last7d,
            "last-30d" => Period::Last30d,
            other => {
                return Err(InsightError::Invalid(format!(
                    "unknown period {other:?} (today, week, month, last-7d, last-30d)"
                )));
            }
        })
    }
}

/// A half-open UTC range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Range {
    /// From `--since` / `--until` text (see the module docs); a missing `since` is 30 days
    /// before today, a missing `until` is the end of today.
    pub fn from_bounds(
        since: Option<&str>,
        until: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Range, InsightError> {
        let today = now.date_naive();
        let from = match since {
            Some(s) => parse_bound(s, false)?,
            None => midnight(today - Days::new(30)),
        };
        let to = match until {
            Some(s) => parse_bound(s, true)?,
            None => midnight(today + Days::new(1)),
        };
        if to <= from {
            return Err(InsightError::Invalid(format!(
                "the range is empty: {} is not before {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        Ok(Range { from, to })
    }

    /// The UTC days the range touches, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        let first = self.from.date_naive();
        let last = (self.to - chrono::TimeDelta::nanoseconds(1)).date_naive();
        let mut out = Vec::new();
        let mut d = first;
        while d <= last {
            out.push(d);
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        out
    }

    /// Whether a whole UTC day lies inside the range.
    pub fn covers_day(&self, day: NaiveDate) -> bool {
        let start = midnight(day);
        start >= self.from && start + Days::new(1) <= self.to
    }

    /// Whether an instant lies inside the range.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.from && t < self.to
    }
}

/// A date (`YYYY-MM-DD`) or an RFC 3339 instant. A date as an upper bound means the end of
/// that day.
pub fn parse_bound(text: &str, upper: bool) -> Result<DateTime<Utc>, InsightError> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let d = if upper {
            d.succ_opt()
                .ok_or_else(|| InsightError::Invalid(format!("date {t:?} is out of range")))?
        } else {
            d
        };
        return Ok(midnight(d));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|x| x.with_timezone(&Utc))
        .map_err(|_| {
            InsightError::Invalid(format!(
                "{t:?} is neither a date (2026-05-01) nor an RFC 3339 time (2026-05-01T12:00:00Z)"
            ))
        })
}

/// The first day of `day`'s ISO week (Monday).
pub fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods() {
        let now = at("2026-05-06T15:00:00Z"); // a Wednesday
        let r = Period::Week.range(now);
        assert_eq!(r.from, at("2026-05-04T00:00:00Z"));
        assert_eq!(r.to, at("2026-05-11T00:00:00Z"));
        let r = Period::Last7d.range(now);
        assert_eq!(r.from, at("2026-04-29T00:00:00Z"));
        assert_eq!(r.to, at("2026-05-06T00:00:00Z"));
        assert_eq!(r.days().len(), 7);
        let r = Period::Month.range(now);
        assert_eq!(r.from, at("2026-05-01T00:00:00Z"));
        assert_eq!(r.to, at("2026-06-01T00:00:00Z"));
        let r = Range::from_bounds(Some("2026-05-01"), Some("2026-05-02"), now).unwrap();
        assert_eq!(r.days().len(), 2);
        assert!(Range::from_bounds(Some("2026-05-03"), Some("2026-05-02"), now).is_err());
        assert_eq!(monday_of(now.date_naive()).to_string(), "2026-05-04");
    }
}
