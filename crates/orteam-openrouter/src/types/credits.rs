//! `GET /credits` (management key).

use orteam_core::Money;
use orteam_core::money::json_number;

use super::wire_object;

wire_object! {
    /// Credits bought and used by the account (1 credit = 1 USD).
    pub struct Credits {
        #[serde(with = "json_number")]
        pub total_credits: Money,
        #[serde(with = "json_number")]
        pub total_usage: Money,
    }
}

impl Credits {
    /// `total_credits - total_usage` (may be negative).
    pub fn balance(&self) -> Money {
        self.total_credits
            .checked_sub(self.total_usage)
            .unwrap_or(Money::ZERO)
    }
}
