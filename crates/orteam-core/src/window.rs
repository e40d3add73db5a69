//! UTC calendar windows. Budgets and OpenRouter key limits reset at 00:00 UTC: daily every day,
//! weekly on **Monday** (ISO weeks, as OpenRouter's `usage_weekly`), monthly on the 1st.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A budget or limit window on UTC calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Daily,
    Weekly,
    Monthly,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Daily, Window::Weekly, Window::Monthly];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Daily => "daily",
            Window::Weekly => "weekly",
            Window::Monthly => "monthly",
        }
    }

    /// The first date of the window containing `day`.
    pub fn start_date(self, day: NaiveDate) -> NaiveDate {
        match self {
            Window::Daily => day,
            Window::Weekly => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Window::Monthly => day.with_day(1).unwrap_or(day),
        }
    }

    /// The first date of the next window after the one containing `day`.
    pub fn next_start_date(self, day: NaiveDate) -> NaiveDate {
        let start = self.start_date(day);
        match self {
            Window::Daily => start + Days::new(1),
            Window::Weekly => start + Days::new(7),
            Window::Monthly => start + Months::new(1),
        }
    }

    /// The instant the window containing `now` began.
    pub fn start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        midnight(self.start_date(now.date_naive()))
    }

    /// The instant the window containing `now` ends, i.e. when it resets.
    pub fn reset_at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        midnight(self.next_start_date(now.date_naive()))
    }
}

/// 00:00:00 UTC on `day`.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" | "day" => Ok(Window::Daily),
            "weekly" | "week" => Ok(Window::Weekly),
            "monthly" | "month" => Ok(Window::Monthly),
            other => Err(format!(
                "unknown window {other:?}: expected daily, weekly or monthly"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn week_starts_on_monday() {
        // 2026-11-23 is a Monday.
        assert_eq!(Window::Weekly.start_date(d(2026, 11, 23)), d(2026, 11, 23));
        assert_eq!(Window::Weekly.start_date(d(2026, 11, 29)), d(2026, 11, 23));
        assert_eq!(
            Window::Weekly.next_start_date(d(2026, 11, 29)),
            d(2026, 11, 30)
        );
    }

    #[test]
    fn month_and_day_boundaries() {
        assert_eq!(Window::Monthly.start_date(d(2026, 2, 28)), d(2026, 2, 1));
        assert_eq!(
            Window::Monthly.next_start_date(d(2026, 12, 31)),
            d(2027, 1, 1)
        );
        assert_eq!(
            Window::Daily.next_start_date(d(2026, 12, 31)),
            d(2027, 1, 1)
        );
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 59).unwrap();
        assert_eq!(
            Window::Monthly.reset_at(now),
            Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
        );
    }
}
