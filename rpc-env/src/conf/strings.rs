//! Spark's value syntaxes: time strings (`120s`, `100ms`, `2min`) and byte strings
//! (`512b`, `64k`, `128m`), parsed exactly, with the reasons a bad value is refused.

use std::num::{IntErrorKind, ParseIntError};
use std::time::Duration;

/// The reason given for a time string in no known format.
const TIME_FORMAT: &str = "time must be given as microseconds (us), milliseconds (ms), \
     seconds (s), minutes (m or min), hours (h) or days (d), e.g. 50s, 100ms or 250us";
/// The reason given for a byte string in no known format.
const SIZE_FORMAT: &str = "size must be given as bytes (b), kibibytes (k), mebibytes (m), \
     gibibytes (g), tebibytes (t) or pebibytes (p), e.g. 50b, 100k or 250m";

/// The unit of a time string that has no suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// A bare number is microseconds.
    Microseconds,
    /// A bare number is milliseconds.
    Milliseconds,
    /// A bare number is seconds.
    Seconds,
}

/// The unit of a byte string that has no suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeUnit {
    /// A bare number is bytes.
    Bytes,
    /// A bare number is kibibytes (1024 bytes).
    KiB,
    /// A bare number is mebibytes (1024 KiB).
    MiB,
}

/// The reason a non-negative integer did not parse.
pub(super) fn int_reason(e: ParseIntError) -> String {
    match e.kind() {
        IntErrorKind::PosOverflow => "number is too large".to_owned(),
        _ => "expected a non-negative integer".to_owned(),
    }
}

/// Splits a number-with-suffix (trimmed, any case) into its value and lower-case suffix;
/// `format` is the reason given when there is no leading number.
fn split_number(text: &str, format: &str) -> Result<(u64, String), String> {
    let s = text.trim().to_ascii_lowercase();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.is_empty() {
        let negative = s.starts_with('-');
        let reason = if negative {
            "must not be negative"
        } else {
            format
        };
        return Err(reason.to_owned());
    }
    Ok((digits.parse().map_err(int_reason)?, suffix.to_owned()))
}

/// Parses Spark's time strings into an exact `Duration`.
pub(super) fn parse_time(text: &str, bare_unit: TimeUnit) -> Result<Duration, String> {
    let (n, suffix) = split_number(text, TIME_FORMAT)?;
    let secs = |mult: u64| {
        n.checked_mul(mult)
            .map(Duration::from_secs)
            .ok_or_else(|| "number is too large".to_owned())
    };
    match suffix.as_str() {
        "" => match bare_unit {
            TimeUnit::Microseconds => Ok(Duration::from_micros(n)),
            TimeUnit::Milliseconds => Ok(Duration::from_millis(n)),
            TimeUnit::Seconds => Ok(Duration::from_secs(n)),
        },
        "us" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => Err(TIME_FORMAT.to_owned()),
    }
}

/// Parses Spark's byte strings (powers of 1024) into bytes.
pub(super) fn parse_size(text: &str, bare_unit: SizeUnit) -> Result<u64, String> {
    let (n, suffix) = split_number(text, SIZE_FORMAT)?;
    let shift = match suffix.as_str() {
        "" => match bare_unit {
            SizeUnit::Bytes => 0,
            SizeUnit::KiB => 10,
            SizeUnit::MiB => 20,
        },
        "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        "p" | "pb" => 50,
        // Spark names this case instead of the general format message.
        s if s.starts_with('.') => return Err("fractional values are not supported".to_owned()),
        _ => return Err(SIZE_FORMAT.to_owned()),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| "number is too large".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{k, reason, MS, SECS};
    use super::*;
    use crate::conf::ConfError;

    fn time(v: &str, unit: TimeUnit) -> Result<Duration, ConfError> {
        k(v).get_duration("k", Duration::ZERO, unit)
    }

    fn size(v: &str, unit: SizeUnit) -> Result<u64, ConfError> {
        k(v).get_size_bytes("k", 0, unit)
    }

    #[test]
    fn time_strings() {
        let texts = [
            "120s", "100ms", "2min", "2m", "1h", "1d", "  30S ", "5MS", "007s",
        ];
        let want_ms = [
            120_000, 100, 120_000, 120_000, 3_600_000, 86_400_000, 30_000, 5, 7000,
        ];
        for (text, ms) in texts.into_iter().zip(want_ms) {
            assert_eq!(time(text, SECS).unwrap(), MS(ms), "{text}");
        }
        assert_eq!(time("250us", SECS).unwrap(), Duration::from_micros(250));
        assert_eq!(time("0s", SECS).unwrap(), Duration::ZERO);
        assert_eq!(time("42", SECS).unwrap(), Duration::from_secs(42));
        assert_eq!(time("42", TimeUnit::Milliseconds).unwrap(), MS(42));
        assert_eq!(time("42s", TimeUnit::Milliseconds).unwrap(), MS(42_000));
    }

    #[test]
    fn bad_time_strings_name_the_key() {
        let (huge, days) = ("99999999999999999999s", "18446744073709551615d");
        let bad = [
            "", " ", "s", "abc", "10 s", "1.5s", "10x", "10sec", "+5s", "-1s", "-1",
        ];
        let odd = ["1s2", "５s", "5µs", "\u{0}", huge, days];
        for text in bad.into_iter().chain(odd) {
            let e = time(text, SECS).unwrap_err();
            assert_eq!((e.key(), e.value()), ("k", text));
            let prefix = format!("Invalid value '{text}' for k: ");
            assert!(e.to_string().starts_with(&prefix), "{e}");
        }
        assert_eq!(reason(time("-1s", SECS)), "must not be negative");
        assert_eq!(reason(time("10x", SECS)), TIME_FORMAT);
        assert_eq!(reason(time(huge, SECS)), "number is too large");
        assert_eq!(reason(time(days, SECS)), "number is too large");
    }

    #[test]
    fn byte_strings() {
        let texts = [
            "512b", "1k", "1KB", "2m", "2mb", " 1g ", "1Gb", "1t", "1tb", "1p",
        ];
        let factors = [512, 1, 1, 2, 2, 1, 1, 1, 1, 1];
        let shifts = [0, 10, 10, 20, 20, 30, 30, 40, 40, 50];
        for (i, text) in texts.into_iter().enumerate() {
            let want = factors[i] << shifts[i];
            assert_eq!(size(text, SizeUnit::Bytes).unwrap(), want, "{text}");
        }
        assert_eq!(size("3", SizeUnit::Bytes).unwrap(), 3);
        assert_eq!(size("3", SizeUnit::KiB).unwrap(), 3 << 10);
        assert_eq!(size("3", SizeUnit::MiB).unwrap(), 3 << 20);
        let fractional = reason(size("1.5g", SizeUnit::Bytes));
        assert_eq!(fractional, "fractional values are not supported");
        let too_large = reason(size("16384p", SizeUnit::Bytes));
        assert_eq!(too_large, "number is too large");
        for text in ["", "g", "1 g", "1x", "1kib", "-1k", "1e3"] {
            assert!(size(text, SizeUnit::Bytes).is_err(), "{text}");
        }
    }
}
