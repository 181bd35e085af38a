//! How results are printed: the fixed output rules every suite shares.
//!
//! Default: one metric a line, `name value unit`. With `--json`: one JSON
//! object on one line mapping each name to `{"value": v, "unit": "u"}`.
//! Values are written the same way in both (see [`format_value`]) so the two
//! forms never disagree. The JSON is written by hand: it is one flat object,
//! and a serde dependency for that is not worth its build time.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::error::BenchError;

/// One measured result, e.g. `tcp.pingpong_p50_us = 57.3 us`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    /// Fixed dotted name that scripts key on, e.g. `rpc.send_msgs_per_s`.
    pub(crate) name: &'static str,
    /// The measured value (NaN when it could not be computed, e.g. no samples).
    pub(crate) value: f64,
    /// Unit, e.g. `us` or `msgs/s`.
    pub(crate) unit: &'static str,
}

impl Metric {
    /// A metric with the given name, value and unit.
    pub(crate) fn new(name: &'static str, value: f64, unit: &'static str) -> Self {
        Self { name, value, unit }
    }
}

/// A value as printed: without decimals when it is integral (`5123456`),
/// otherwise with one decimal (`57.3`). Non-finite values print as Rust does
/// (`NaN`, `inf`); JSON output turns those into `null` instead.
pub(crate) fn format_value(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The default output: one `name value unit` line per metric.
pub(crate) fn render_text(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for m in metrics {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "{} {} {}", m.name, format_value(m.value), m.unit);
    }
    out
}

/// The `--json` output: one object on one line (with its trailing newline),
/// e.g. `{"a.b_us": {"value": 1.5, "unit": "us"}}`. Metric names are expected
/// to be unique within one run; a duplicate would make a duplicate key.
pub(crate) fn render_json(metrics: &[Metric]) -> String {
    debug_assert!(
        metrics
            .iter()
            .enumerate()
            .all(|(i, m)| metrics[..i].iter().all(|o| o.name != m.name)),
        "metric names must be unique within a run"
    );
    let mut out = String::from("{");
    for (i, m) in metrics.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // JSON has no NaN or infinity; `null` says "no value" honestly.
        let value = if m.value.is_finite() {
            format_value(m.value)
        } else {
            "null".to_owned()
        };
        let _ = write!(
            out,
            "{}: {{\"value\": {}, \"unit\": {}}}",
            json_string(m.name),
            value,
            json_string(m.unit)
        );
    }
    out.push_str("}\n");
    out
}

/// `s` as a quoted JSON string literal, escaping quotes, backslashes and
/// control characters (RFC 8259 §7). Other characters, non-ASCII included,
/// are valid inside a JSON string as they are.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints the metrics to stdout, as JSON when `json` is set.
///
/// Stdout carries only results (progress goes to stderr), so a consumer can
/// pipe it straight into a file or parser. A write error (e.g. a closed pipe)
/// is reported rather than panicking as `print!` would.
pub(crate) fn print(metrics: &[Metric], json: bool) -> Result<(), BenchError> {
    let text = if json {
        render_json(metrics)
    } else {
        render_text(metrics)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| BenchError::io("writing results to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_values_have_no_decimals() {
        assert_eq!(format_value(5_123_456.0), "5123456");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(1e15), "1000000000000000");
    }

    #[test]
    fn fractional_values_have_one_decimal() {
        assert_eq!(format_value(57.3), "57.3");
        assert_eq!(format_value(57.34), "57.3");
        assert_eq!(format_value(57.04), "57.0");
        assert_eq!(format_value(0.25), "0.2");
    }

    #[test]
    fn text_is_one_line_per_metric() {
        let metrics = [
            Metric::new("rpc.send_msgs_per_s", 5_123_456.0, "msgs/s"),
            Metric::new("tcp.pingpong_p50_us", 57.3, "us"),
        ];
        assert_eq!(
            render_text(&metrics),
            "rpc.send_msgs_per_s 5123456 msgs/s\ntcp.pingpong_p50_us 57.3 us\n"
        );
    }

    #[test]
    fn json_is_one_object_on_one_line() {
        let metrics = [
            Metric::new("tcp.pingpong_p50_us", 57.3, "us"),
            Metric::new("rpc.send_msgs_per_s", 5_123_456.0, "msgs/s"),
        ];
        assert_eq!(
            render_json(&metrics),
            "{\"tcp.pingpong_p50_us\": {\"value\": 57.3, \"unit\": \"us\"}, \
             \"rpc.send_msgs_per_s\": {\"value\": 5123456, \"unit\": \"msgs/s\"}}\n"
        );
        assert_eq!(render_json(&[]), "{}\n");
    }

    #[test]
    fn json_non_finite_is_null() {
        let json = render_json(&[Metric::new("x", f64::NAN, "us")]);
        assert_eq!(json, "{\"x\": {\"value\": null, \"unit\": \"us\"}}\n");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), "\"plain\"");
        assert_eq!(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json_string("l1\nl2\tx\r"), "\"l1\\nl2\\tx\\r\"");
        assert_eq!(json_string("\u{01}\u{1f}"), "\"\\u0001\\u001f\"");
        assert_eq!(json_string("\u{08}\u{0c}"), "\"\\b\\f\"");
        assert_eq!(json_string("µs"), "\"µs\"");
    }
}
