//! The seed server's text formatting, with exact decimals.
//!
//! - `m2`/`m4`/`m6`: `$` + the amount with 2/4/6 decimals (JavaScript `toFixed`, but rounded
//!   half away from zero on the exact decimal instead of on a binary float).
//! - `—` stands for a missing value.
//! - Integers use en-US digit grouping (`1,234,567`).

use chrono::{DateTime, SecondsFormat, Utc};
use orteam_core::Money;
use orteam_core::rust_decimal::Decimal;
use orteam_openrouter::types::models::Pricing;

/// Shown for a missing value.
pub(crate) const NONE: &str = "—";

/// `$` + `toFixed(2)`.
pub(crate) fn m2(m: Money) -> String {
    format!("${}", m.to_fixed(2))
}

/// `$` + `toFixed(4)`.
pub(crate) fn m4(m: Money) -> String {
    format!("${}", m.to_fixed(4))
}

/// `$` + `toFixed(6)`.
pub(crate) fn m6(m: Money) -> String {
    format!("${}", m.to_fixed(6))
}

/// [`m2`], or `—` when absent.
pub(crate) fn m2_opt(m: Option<Money>) -> String {
    m.map_or_else(|| NONE.to_owned(), m2)
}

/// The amount's exact digits, without trailing zeros (`0.5`, `12`): the seed's raw number.
pub(crate) fn raw(m: Money) -> String {
    m.to_canonical_string()
}

/// Pads `s` with spaces on the right to `width` characters (JavaScript `padEnd`).
pub(crate) fn pad_end(s: &str, width: usize) -> String {
    let len = s.chars().count();
    if len >= width {
        s.to_owned()
    } else {
        format!("{s}{}", " ".repeat(width - len))
    }
}

/// en-US grouping: `1234567` → `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A token count: grouped, with 0 shown as `—`.
pub(crate) fn tokens(n: u64) -> String {
    if n == 0 { NONE.to_owned() } else { group(n) }
}

/// An ISO-8601 UTC timestamp (`2026-05-25T00:00:00Z`).
pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// [`ts`], or `—`.
pub(crate) fn ts_opt(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| NONE.to_owned(), ts)
}

/// The first 10 characters of an ISO date (`YYYY-MM-DD`).
pub(crate) fn d10(s: &str) -> &str {
    match s.char_indices().nth(10) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The `YYYY-MM-DD` of a timestamp.
pub(crate) fn day(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// A context length in thousands, rounded like JavaScript's `Math.round(n / 1000)`: `128k`.
pub(crate) fn ctx_k(n: u64) -> String {
    format!("{}k", n.saturating_add(500) / 1000)
}

/// Milliseconds without a useless `.0` (`120`, `12.5`).
pub(crate) fn ms(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A per-token price as USD per million tokens: `toFixed(4)` below $0.01, else `toFixed(2)`.
pub(crate) fn per_million(price: Money) -> String {
    let scaled = price
        .as_decimal()
        .checked_mul(Decimal::from(1_000_000u32))
        .map(Money::from_decimal);
    match scaled {
        Some(m) if m.as_decimal() < Decimal::new(1, 2) => m.to_fixed(4),
        Some(m) => m.to_fixed(2),
        None => raw(price),
    }
}

/// The seed's price summary `P`:
/// `in $X/M · out $Y/M[ · per-request $r][ · image $i][ · search $w]`.
pub(crate) fn pricing(p: &Pricing) -> String {
    let (Some(prompt), Some(completion)) = (p.prompt, p.completion) else {
        return "—".to_owned();
    };
    let mut s = format!(
        "in ${}/M · out ${}/M",
        per_million(prompt),
        per_million(completion)
    );
    if let Some(r) = p.request {
        s.push_str(&format!(" · per-request ${}", raw(r)));
    }
    if let Some(i) = p.image {
        s.push_str(&format!(" · image ${}", raw(i)));
    }
    if let Some(w) = p.web_search {
        s.push_str(&format!(" · search ${}", raw(w)));
    }
    s
}

/// Items joined with `, `, or `(empty allowlist)` for an empty list.
pub(crate) fn list_or_empty(items: &[String]) -> String {
    if items.is_empty() {
        "(empty allowlist)".to_owned()
    } else {
        items.join(", ")
    }
}

/// A JSON value on one line: strings without quotes, the rest as compact JSON.
pub(crate) fn json_inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => NONE.to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn money_formats_are_exact() {
        assert_eq!(m2(m("12.345")), "$12.35");
        assert_eq!(m2(m("0.005")), "$0.01");
        assert_eq!(m4(m("0.00014")), "$0.0001");
        assert_eq!(m4(m("0.00015")), "$0.0002");
        assert_eq!(m6(m("0.0000015")), "$0.000002");
        assert_eq!(m2(Money::ZERO), "$0.00");
        assert_eq!(m4(m("100")), "$100.0000");
        // 1.005 is 1.00499999… as a float; the exact decimal rounds up.
        assert_eq!(m2(m("1.005")), "$1.01");
        assert_eq!(m2(m("-1.5")), "$-1.50");
        assert_eq!(m2_opt(None), "—");
        assert_eq!(raw(m("0.50")), "0.5");
    }

    #[test]
    fn grouping_and_padding() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(tokens(0), "—");
        assert_eq!(tokens(12345), "12,345");
        assert_eq!(pad_end("ab", 4), "ab  ");
        assert_eq!(pad_end("abcdef", 4), "abcdef");
        assert_eq!(pad_end("é", 3), "é  ");
    }

    #[test]
    fn prices_per_million() {
        assert_eq!(per_million(m("0.0000025")), "2.50");
        assert_eq!(per_million(m("0.00003")), "30.00");
        assert_eq!(per_million(m("0.000000001")), "0.0010");
        assert_eq!(per_million(Money::ZERO), "0.0000");
        let p: Pricing = serde_json::from_str(
            r#"{"prompt":"0.0000025","completion":"0.00001","request":"0","web_search":"0.01"}"#,
        )
        .unwrap();
        assert_eq!(
            pricing(&p),
            "in $2.50/M · out $10.00/M · per-request $0 · search $0.01"
        );
    }

    #[test]
    fn misc() {
        assert_eq!(d10("2026-01-02T03:04:05Z"), "2026-01-02");
        assert_eq!(d10("2026"), "2026");
        assert_eq!(ctx_k(128_000), "128k");
        assert_eq!(ctx_k(131_072), "131k");
        assert_eq!(ctx_k(1_500), "2k");
        assert_eq!(ms(120.0), "120");
        assert_eq!(ms(12.5), "12.5");
        assert_eq!(list_or_empty(&[]), "(empty allowlist)");
    }
}
