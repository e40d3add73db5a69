//! How a request's latency is shown to people (the dashboard's recent requests, and anything
//! else that shows one): to the precision it was measured with, never "0 ms" for a
//! sub-millisecond hop.

use std::time::Duration;

/// `412 µs` below a millisecond; `3.41 ms` and `34.1 ms` below 100 ms; `412 ms`; `1.25 s` from
/// a second. Digits are cut, not rounded, so a figure never reads larger than measured.
pub fn show(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..10_000 => format!("{}.{:02} ms", us / 1_000, (us % 1_000) / 10),
        10_000..100_000 => format!("{}.{} ms", us / 1_000, (us % 1_000) / 100),
        100_000..1_000_000 => format!("{} ms", us / 1_000),
        _ => format!("{}.{:02} s", us / 1_000_000, (us % 1_000_000) / 10_000),
    }
}

/// A latency recorded in microseconds (`us`, 0 when not recorded) or only in milliseconds
/// (`ms`, events recorded before microseconds were), shown with [`show`] or as whole
/// milliseconds.
pub fn show_recorded(us: u64, ms: u64) -> String {
    if us > 0 {
        show(Duration::from_micros(us))
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_their_precision() {
        let us = |n: u64| show(Duration::from_micros(n));
        assert_eq!(us(0), "0 µs");
        assert_eq!(us(412), "412 µs");
        assert_eq!(us(999), "999 µs");
        assert_eq!(us(1_000), "1.00 ms");
        assert_eq!(us(3_419), "3.41 ms");
        assert_eq!(us(34_199), "34.1 ms");
        assert_eq!(us(412_999), "412 ms");
        assert_eq!(us(1_259_000), "1.25 s");
        assert_eq!(show_recorded(0, 7), "7 ms");
        assert_eq!(show_recorded(412, 0), "412 µs");
    }
}
