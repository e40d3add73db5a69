//! Exact money.
//!
//! Every amount orteam handles (prices per token, `usage.cost`, budgets, spend) is a [`Money`]:
//! a `rust_decimal::Decimal` of US dollars. Decimal holds 28 significant digits, which covers any
//! price string OpenRouter publishes (e.g. `"0.0000000375"`) times any token count, exactly.
//! There is no `f64` on any path where money flows; the only float ever accepted is a JSON number
//! from a non-JSON-aware deserializer, converted through its shortest round-trip text (exact for
//! every decimal of up to 15 significant digits). JSON wire fields use [`json_number`], which
//! reads the number's source text and is lossless for any length.

use std::fmt;
use std::iter::Sum;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact amount of US dollars (1 OpenRouter credit = 1 USD).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why an amount could not be parsed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The text is not a decimal number.
    #[error("not a decimal amount: {0:?}")]
    Parse(String),
    /// The result does not fit in 28 significant digits.
    #[error("amount overflow")]
    Overflow,
    /// A negative amount where only zero or more makes sense (a budget, a price).
    #[error("amount must not be negative: {0}")]
    Negative(Money),
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Wraps a decimal number of dollars.
    pub const fn from_decimal(d: Decimal) -> Self {
        Money(d)
    }

    /// The amount as a decimal number of dollars.
    pub const fn as_decimal(self) -> Decimal {
        self.0
    }

    /// Whole dollars plus cents, e.g. `Money::from_cents(1234)` is $12.34.
    pub fn from_cents(cents: i64) -> Self {
        Money(Decimal::new(cents, 2))
    }

    /// `mantissa × 10^-scale` dollars, e.g. `Money::new(15, 8)` is $0.00000015.
    pub fn new(mantissa: i64, scale: u32) -> Self {
        Money(Decimal::new(mantissa, scale.min(28)))
    }

    /// Parses a decimal string such as `"0.00003"`, `"12"`, `"-1.5"` or `"1.4e-5"` exactly.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(MoneyError::Parse(s.to_owned()));
        }
        let parsed = if t.contains(['e', 'E']) {
            Decimal::from_scientific(t)
        } else {
            Decimal::from_str_exact(t)
        };
        parsed
            .map(|d| Money(d.normalize()))
            .map_err(|_| MoneyError::Parse(s.to_owned()))
    }

    /// Parses an amount that must be zero or more (budgets, limits, prices).
    pub fn parse_non_negative(s: &str) -> Result<Self, MoneyError> {
        let m = Self::parse(s)?;
        if m.is_negative() {
            return Err(MoneyError::Negative(m));
        }
        Ok(m)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// `self × count`, e.g. a per-token price times a token count.
    pub fn checked_mul_u64(self, count: u64) -> Option<Money> {
        self.0.checked_mul(Decimal::from(count)).map(Money)
    }

    /// `self × count` or [`MoneyError::Overflow`].
    pub fn times(self, count: u64) -> Result<Money, MoneyError> {
        self.checked_mul_u64(count).ok_or(MoneyError::Overflow)
    }

    /// `self + other` or [`MoneyError::Overflow`].
    pub fn plus(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_add(other).ok_or(MoneyError::Overflow)
    }

    /// `self - other` or [`MoneyError::Overflow`].
    pub fn minus(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_sub(other).ok_or(MoneyError::Overflow)
    }

    /// `max(self - other, 0)`.
    pub fn saturating_sub_floor_zero(self, other: Money) -> Money {
        match self.checked_sub(other) {
            Some(m) if !m.is_negative() => m,
            _ => Money::ZERO,
        }
    }

    /// How many whole units of `unit_price` fit in `self` (0 when the price is zero or negative
    /// amounts are involved; callers treat a zero price as "unlimited" themselves).
    pub fn whole_units_of(self, unit_price: Money) -> u64 {
        if unit_price.0 <= Decimal::ZERO || self.0 <= Decimal::ZERO {
            return 0;
        }
        (self.0 / unit_price.0).floor().to_u64().unwrap_or(u64::MAX)
    }

    pub fn min(self, other: Money) -> Money {
        if self <= other { self } else { other }
    }

    pub fn max(self, other: Money) -> Money {
        if self >= other { self } else { other }
    }

    /// The canonical text: full precision, no trailing zeros (`"0.00014"`, `"12"`).
    pub fn to_canonical_string(self) -> String {
        self.0.normalize().to_string()
    }

    /// Fixed decimal places for tables (`round half away from zero`), e.g. `"12.35"`.
    /// Display only: stored and compared amounts are never rounded.
    pub fn to_fixed(self, places: u32) -> String {
        let r = self
            .0
            .round_dp_with_strategy(places, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        format!("{:.*}", places as usize, r)
    }

    /// The one way orteam shows an amount to people (CLI, `top`, the dashboard, MCP, the demo):
    /// `$` and cents (`$12.35`, `$0.02`); below a dollar, as many more places as it takes to show
    /// up to three significant digits of the exact amount (`$0.0342`, `$0.000396`,
    /// `$0.0000000375`, `$0.0001`), so a non-zero amount never shows as zero. Rounded half away from zero; the places depend on the amount
    /// only, so two views of the same figure always agree. Machine output (JSON, CSV) carries the
    /// exact [`Money::to_canonical_string`] instead.
    pub fn usd(self) -> String {
        self.to_usd(self.display_places())
    }

    /// This amount as a share of `limit` in whole percent, the way every budget's use is shown
    /// (`"42%"`; `"-"` for a zero limit). Rounded half away from zero, so 0.4 % shows `"0%"`
    /// and 99.5 % shows `"100%"`.
    pub fn percent_of(self, limit: Money) -> String {
        if limit.is_zero() {
            return "-".into();
        }
        let p = (self.0 * Decimal::ONE_HUNDRED) / limit.0;
        format!(
            "{}%",
            p.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        )
    }

    /// The decimal places [`Money::usd`] shows for this amount.
    pub fn display_places(self) -> u32 {
        let abs = self.0.abs();
        if abs.is_zero() || abs >= Decimal::ONE {
            return 2;
        }
        // Position of the first significant digit after the point (0.0342 → 2); no more places
        // than the exact amount has (0.0001 stays `$0.0001`).
        let mut first = 1u32;
        let mut x = abs * Decimal::TEN;
        while x < Decimal::ONE && first < 28 {
            x *= Decimal::TEN;
            first += 1;
        }
        (first + 2).min(self.0.normalize().scale()).max(2)
    }

    /// `"$12.35"` style with fixed places; prefer [`Money::usd`] for anything people read.
    pub fn to_usd(self, places: u32) -> String {
        if self.is_negative() {
            format!("-${}", Money(-self.0).to_fixed(places))
        } else {
            format!("${}", self.to_fixed(places))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({})", self.0.normalize())
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl From<Decimal> for Money {
    fn from(d: Decimal) -> Self {
        Money(d)
    }
}

impl Sum for Money {
    /// Panics never: overflow saturates to the largest decimal, which no real spend reaches.
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |acc, m| {
            acc.checked_add(m).unwrap_or(Money(Decimal::MAX))
        })
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// Money serializes as its canonical string, so JSON consumers never see a float.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.normalize())
    }
}

/// Accepts a decimal string, an integer, or (from formats without number text) a float through
/// its shortest round-trip representation.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal amount as a string or number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        Ok(Money(Decimal::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        Ok(Money(Decimal::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        // `{}` prints the shortest text that round-trips, which is the source text for any
        // decimal of up to 15 significant digits. JSON wire fields avoid this path entirely.
        if !v.is_finite() {
            return Err(E::custom("amount is not finite"));
        }
        Money::parse(&format!("{v}")).map_err(E::custom)
    }
}

/// Lossless (de)serialization of money as a JSON *number* (OpenRouter's `usage.cost`,
/// `total_credits`, `limit` …). Reads the number's source text through `RawValue`, so no digit
/// is lost however long it is; writes the exact decimal digits. Also accepts strings and null
/// via [`json_number::option`].
pub mod json_number {
    use super::*;
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        let text = m.to_canonical_string();
        match RawValue::from_string(text) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        parse_raw(raw.get()).map_err(de::Error::custom)
    }

    fn parse_raw(text: &str) -> Result<Money, MoneyError> {
        let t = text.trim();
        let unquoted = t
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(t);
        Money::parse(unquoted)
    }

    /// For `Option<Money>` fields where JSON `null` (or a missing field, with
    /// `#[serde(default)]`) means "none".
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
            match m {
                Some(m) => super::serialize(m, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
            let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
            match raw {
                None => Ok(None),
                Some(r) if r.get().trim() == "null" => Ok(None),
                Some(r) => parse_raw(r.get()).map(Some).map_err(de::Error::custom),
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn percent_of_a_limit_in_whole_percent() {
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(m("0.42").percent_of(m("1")), "42%");
        assert_eq!(m("0.004").percent_of(m("1")), "0%");
        assert_eq!(m("0.995").percent_of(m("1")), "100%");
        assert_eq!(m("3").percent_of(m("2")), "150%");
        assert_eq!(m("1").percent_of(Money::ZERO), "-");
    }

    #[test]
    fn usd_never_hides_an_amount_and_depends_on_the_amount_only() {
        let u = |s: &str| Money::parse(s).unwrap().usd();
        assert_eq!(u("0"), "$0.00");
        assert_eq!(u("12.345"), "$12.35");
        assert_eq!(u("1"), "$1.00");
        assert_eq!(u("0.5"), "$0.50");
        assert_eq!(u("0.02"), "$0.02");
        assert_eq!(u("0.123456"), "$0.123");
        assert_eq!(u("0.0342"), "$0.0342");
        assert_eq!(u("0.03425"), "$0.0343");
        assert_eq!(u("0.000396"), "$0.000396");
        assert_eq!(u("0.0003964"), "$0.000396");
        assert_eq!(u("0.0000000375"), "$0.0000000375");
        assert_eq!(u("0.0001"), "$0.0001");
        assert_eq!(u("0.000100"), "$0.0001");
        assert_eq!(u("-0.25"), "-$0.25");
        assert_eq!(u("-3"), "-$3.00");
        for s in ["0.0000000001", "0.00000000000000000001", "0.004999"] {
            assert_ne!(u(s).trim_start_matches("$0.").trim_matches('0'), "", "{s}");
        }
    }
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_price_strings_exactly() {
        assert_eq!(Money::parse("0.00003").unwrap().to_string(), "0.00003");
        assert_eq!(
            Money::parse("0.0000000375").unwrap().to_string(),
            "0.0000000375"
        );
        assert_eq!(Money::parse("1.4e-5").unwrap().to_string(), "0.000014");
        assert_eq!(Money::parse("12.50").unwrap().to_string(), "12.5");
        assert!(Money::parse("abc").is_err());
        assert!(Money::parse("").is_err());
        assert!(Money::parse_non_negative("-1").is_err());
    }

    #[test]
    fn tokens_times_price_is_exact() {
        let price = Money::parse("0.00000015").unwrap();
        let cost = price.times(1_234_567).unwrap();
        assert_eq!(cost.to_string(), "0.18518505");
    }

    #[test]
    fn json_number_is_lossless() {
        #[derive(Serialize, Deserialize)]
        struct W {
            #[serde(with = "json_number")]
            cost: Money,
        }
        let text = r#"{"cost":0.000123456789012345678901}"#;
        let w: W = serde_json::from_str(text).unwrap();
        assert_eq!(w.cost.to_string(), "0.000123456789012345678901");
        assert_eq!(serde_json::to_string(&w).unwrap(), text);
    }

    #[test]
    fn serializes_as_string() {
        let m = Money::parse("1.50").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"1.5\"");
        let back: Money = serde_json::from_str("\"1.5\"").unwrap();
        assert_eq!(back, m);
        let from_num: Money = serde_json::from_str("0.1").unwrap();
        assert_eq!(from_num.to_string(), "0.1");
    }

    #[test]
    fn fixed_and_usd_formatting() {
        let m = Money::parse("12.345").unwrap();
        assert_eq!(m.to_fixed(2), "12.35");
        assert_eq!(m.to_usd(2), "$12.35");
        assert_eq!(Money::parse("-0.5").unwrap().to_usd(2), "-$0.50");
        assert_eq!(Money::ZERO.to_fixed(4), "0.0000");
    }

    #[test]
    fn whole_units() {
        let budget = Money::parse("1.00").unwrap();
        let price = Money::parse("0.0003").unwrap();
        assert_eq!(budget.whole_units_of(price), 3333);
        assert_eq!(budget.whole_units_of(Money::ZERO), 0);
    }

    proptest! {
        #[test]
        fn canonical_text_round_trips(mantissa in -10_i64.pow(15)..10_i64.pow(15), scale in 0u32..18) {
            let m = Money::new(mantissa, scale);
            let back = Money::parse(&m.to_canonical_string()).unwrap();
            prop_assert_eq!(back, m);
            let json = serde_json::to_string(&m).unwrap();
            let from_json: Money = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(from_json, m);
        }

        #[test]
        fn addition_is_exact_and_associative(a in 0i64..10_i64.pow(12), b in 0i64..10_i64.pow(12), c in 0i64..10_i64.pow(12), s in 0u32..15) {
            let (a, b, c) = (Money::new(a, s), Money::new(b, s + 1), Money::new(c, s + 2));
            let left = a.plus(b).unwrap().plus(c).unwrap();
            let right = a.plus(b.plus(c).unwrap()).unwrap();
            prop_assert_eq!(left, right);
            prop_assert_eq!(left.minus(c).unwrap().minus(b).unwrap(), a);
        }

        #[test]
        fn price_times_tokens_sums_like_repeated_addition(p in 1i64..10_000_000, scale in 6u32..14, n in 0u64..2000) {
            let price = Money::new(p, scale);
            let product = price.times(n).unwrap();
            let summed: Money = std::iter::repeat_n(price, n as usize).sum();
            prop_assert_eq!(product, summed);
        }

        #[test]
        fn float_path_is_exact_up_to_15_digits(mantissa in 0i64..999_999_999_999_999, scale in 0u32..15) {
            let m = Money::new(mantissa, scale);
            let text = m.to_canonical_string();
            // A JSON number read by a float-only deserializer.
            let v: f64 = text.parse().unwrap();
            let via_float = MoneyVisitor.visit_f64::<serde::de::value::Error>(v).unwrap();
            prop_assert_eq!(via_float, m);
        }
    }
}
