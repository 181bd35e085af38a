//! `scale --plot DIR`: charts of cost against size, one PNG each, and `charts.txt` saying
//! what each shows (axes, series and their colours, the values), since the charts' only
//! text is their tick labels.
//!
//! - `driver_us_per_task.png`: µs per task against tasks per job (log scale), one curve per
//!   executor count, solid without and dotted with preferred locations;
//! - `master_<metric>.png`: each master metric against workers (log scale).

use std::fmt::Write as _;
use std::path::Path;

use crate::error::BenchError;
use crate::report::Metric;

use super::png::{Canvas, Rgb};

const WIDTH: usize = 640;
const HEIGHT: usize = 400;
/// Margins: left and bottom hold the tick labels.
const LEFT: i64 = 70;
const RIGHT: i64 = 50;
const TOP: i64 = 20;
const BOTTOM: i64 = 40;
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [210, 210, 210];
/// Series colours, in order, and their names for `charts.txt`.
const COLORS: [(Rgb, &str); 3] = [
    ([31, 119, 180], "blue"),
    ([214, 39, 40], "red"),
    ([44, 160, 44], "green"),
];

/// One curve: a name, a colour index, dotted or solid, and its points (x > 0).
struct Series {
    name: String,
    color: usize,
    dotted: bool,
    points: Vec<(f64, f64)>,
}

/// Writes the charts of `metrics` into `dir` (created if missing).
pub(crate) fn write(dir: &Path, metrics: &[Metric]) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
    let mut about = String::new();
    let mut driver = Vec::new();
    for (local, prefix) in [
        (false, "scale.driver_us_per_task_"),
        (true, "scale.driver_local_us_per_task_"),
    ] {
        let mut by_executors: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
        for m in metrics {
            let Some((e, t)) = m.name.strip_prefix(prefix).and_then(|s| s.split_once('x')) else {
                continue;
            };
            let (Ok(e), Ok(t)) = (e.parse::<usize>(), t.parse::<f64>()) else {
                continue;
            };
            match by_executors.iter_mut().find(|(n, _)| *n == e) {
                Some((_, points)) => points.push((t, m.value)),
                None => by_executors.push((e, vec![(t, m.value)])),
            }
        }
        for (i, (e, points)) in by_executors.into_iter().enumerate() {
            driver.push(Series {
                name: format!(
                    "{e} executors{}",
                    if local { ", preferred locations" } else { "" }
                ),
                color: i % COLORS.len(),
                dotted: local,
                points,
            });
        }
    }
    if !driver.is_empty() {
        chart(
            dir,
            "driver_us_per_task",
            "tasks per job",
            "us per task",
            &driver,
            &mut about,
        )?;
    }
    for metric in ["register_s", "place_ms", "cpu_pct", "rss_mib", "json_ms"] {
        let prefix = format!("scale.master_{metric}_");
        let points: Vec<(f64, f64)> = metrics
            .iter()
            .filter_map(|m| {
                let n = m.name.strip_prefix(prefix.as_str())?.parse::<f64>().ok()?;
                Some((n, m.value))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let series = [Series {
            name: format!("scale.master_{metric}"),
            color: 0,
            dotted: false,
            points,
        }];
        chart(
            dir,
            &format!("master_{metric}"),
            "workers",
            metric,
            &series,
            &mut about,
        )?;
    }
    let path = dir.join("charts.txt");
    std::fs::write(&path, about)
        .map_err(|e| BenchError::io(format!("writing {}", path.display()), e))
}

/// One chart, `<dir>/<name>.png`, x on a log scale; what it shows goes into `about`.
fn chart(
    dir: &Path,
    name: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    about: &mut String,
) -> Result<(), BenchError> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let (lx_min, lx_max) = (
        x_min.max(1.0).log10().floor(),
        x_max.max(1.0).log10().ceil(),
    );
    let lx_span = (lx_max - lx_min).max(1.0);
    let (w, h) = (WIDTH as i64 - LEFT - RIGHT, HEIGHT as i64 - TOP - BOTTOM);
    let px = |x: f64| LEFT + ((x.max(1.0).log10() - lx_min) / lx_span * w as f64).round() as i64;
    let py = |y: f64| TOP + h - (y / y_max * h as f64).round() as i64;

    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    // Grid and tick labels: decades on x, quarters of the range on y.
    let mut decade = lx_min;
    while decade <= lx_max {
        let x = px(10f64.powf(decade));
        canvas.line((x, TOP), (x, TOP + h), 1, GREY);
        let label = format!("{:.0}", 10f64.powf(decade));
        canvas.text(
            x - Canvas::text_width(&label, 2) / 2,
            TOP + h + 10,
            &label,
            2,
            BLACK,
        );
        decade += 1.0;
    }
    for quarter in 0..=4 {
        let value = y_max * f64::from(quarter) / 4.0;
        let y = py(value);
        canvas.line((LEFT, y), (LEFT + w, y), 1, GREY);
        let label = if y_max >= 10.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.1}")
        };
        canvas.text(
            LEFT - 8 - Canvas::text_width(&label, 2),
            y - 5,
            &label,
            2,
            BLACK,
        );
    }
    canvas.line((LEFT, TOP), (LEFT, TOP + h), 2, BLACK);
    canvas.line((LEFT, TOP + h), (LEFT + w, TOP + h), 2, BLACK);

    let _ = writeln!(
        about,
        "{name}.png: {y_label} (y, linear) against {x_label} (x, log)"
    );
    for s in series {
        let color = COLORS[s.color].0;
        let mut points = s.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in points.windows(2) {
            let (a, b) = (
                (px(pair[0].0), py(pair[0].1)),
                (px(pair[1].0), py(pair[1].1)),
            );
            if s.dotted {
                dotted(&mut canvas, a, b, color);
            } else {
                canvas.line(a, b, 3, color);
            }
        }
        for &(x, y) in &points {
            canvas.dot(px(x), py(y), 4, color);
        }
        let values: Vec<String> = points.iter().map(|(x, y)| format!("{x}: {y:.2}")).collect();
        let _ = writeln!(
            about,
            "  {} ({}, {}): {}",
            s.name,
            COLORS[s.color].1,
            if s.dotted { "dotted" } else { "solid" },
            values.join(", ")
        );
    }
    canvas.save(&dir.join(format!("{name}.png")))
}

/// A dotted line: dots every 8 pixels along it.
fn dotted(canvas: &mut Canvas, a: (i64, i64), b: (i64, i64), color: Rgb) {
    let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
    let steps = (dx.hypot(dy) / 8.0).ceil().max(1.0) as i64;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let x = a.0 + (dx * t).round() as i64;
        let y = a.1 + (dy * t).round() as i64;
        canvas.dot(x, y, 1, color);
    }
}
