//! What every page shares: the shell (title, style sheet, header), tables, and how sizes,
//! dates and durations read (Spark's `UIUtils` formats).

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// The one style sheet, served at [`STYLE_PATH`] (no inline style: the CSP forbids it).
pub(crate) const STYLE_SHEET: &str = "\
body{font-family:sans-serif;margin:0 2em 2em;color:#222}\
h1{font-size:1.5em;border-bottom:1px solid #ccc;padding:.5em 0}\
h2{font-size:1.15em;margin-top:1.6em}\
ul.summary{list-style:none;padding:0}ul.summary li{margin:.2em 0}\
table{border-collapse:collapse;width:100%;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}tr:nth-child(even){background:#fafafa}\
pre.log{background:#f8f8f8;border:1px solid #ddd;padding:.5em;white-space:pre-wrap}\
form.inline{display:inline}button.kill{color:#a00;border:none;background:none;\
cursor:pointer;padding:0;font-size:.9em}\
.nav a{margin-right:1em}";

/// Where the style sheet is served.
pub(crate) const STYLE_PATH: &str = "/static/ember.css";

/// A whole page: `title` as the title and heading, then `body`.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                h1 { (title) }
                (body)
            }
        }
    }
}

/// A titled table: `heading (N)`, the header row, the rows.
pub(crate) fn table(anchor: &str, heading: &str, headers: &[&str], rows: Vec<Markup>) -> Markup {
    html! {
        h2 id=(anchor) { (heading) " (" (rows.len()) ")" }
        table {
            thead { tr { @for h in headers { th { (h) } } } }
            tbody { @for row in rows { (row) } }
        }
    }
}

/// MiB as Spark shows them: `512.0 MiB`, `4.0 GiB` (the larger unit from twice its size).
pub(crate) fn mebibytes(mib: u32) -> String {
    let mib = f64::from(mib);
    if mib >= 2.0 * 1024.0 * 1024.0 {
        format!("{:.1} TiB", mib / (1024.0 * 1024.0))
    } else if mib >= 2.0 * 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// Milliseconds since the Unix epoch as `yyyy/MM/dd HH:mm:ss` (UTC).
pub(crate) fn date(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or_else(String::new, |t| t.format("%Y/%m/%d %H:%M:%S").to_string())
}

/// A duration as Spark shows it: `850 ms`, `4.2 s`, `3.5 min`, `2.1 h`.
pub(crate) fn duration(ms: u64) -> String {
    let secs = ms as f64 / 1000.0;
    if ms < 1000 {
        format!("{ms} ms")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_dates_and_durations_read_as_sparks() {
        assert_eq!(mebibytes(512), "512.0 MiB");
        assert_eq!(mebibytes(1024), "1024.0 MiB");
        assert_eq!(mebibytes(4096), "4.0 GiB");
        assert_eq!(mebibytes(3 * 1024 * 1024), "3.0 TiB");
        assert_eq!(date(0), "1970/01/01 00:00:00");
        assert_eq!(date(1_700_000_000_000), "2023/11/14 22:13:20");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4_200), "4.2 s");
        assert_eq!(duration(210_000), "3.5 min");
        assert_eq!(duration(7_560_000), "2.1 h");
    }
}
