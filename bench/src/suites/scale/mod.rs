//! The `scale` suite (Ember issue 15): how the driver's and the master's costs grow with the
//! size of the cluster, measured on one machine by simulation.
//!
//! **Driver under many executors** ([`driver`]): the real driver endpoint and task
//! scheduler with E simulated executors of 4 cores each (E = 10, 100, 1,000) that finish
//! every task the moment it launches, running jobs of T = 10^4, 10^5 and 10^6 tasks, without
//! and with preferred locations (three hosts a task, spread over the executors' hosts; delay
//! scheduling on, Spark's 3 s wait). Metrics:
//!
//! - `scale.driver_us_per_task_<E>x<T>`, `scale.driver_local_us_per_task_<E>x<T>`: a job's
//!   wall time from submission to its end over its tasks, in µs, without and with
//!   preferred locations (the median of three jobs; one under `--quick`);
//! - `scale.driver_growth`, `scale.driver_local_growth`: the cost per task at E = 1,000,
//!   T = 10^6 over the cost at E = 10, T = 10^4 (goal ≤ 1.3);
//! - `scale.driver_bytes_per_pending_task`, `scale.driver_local_bytes_per_pending_task`:
//!   the driver's resident memory grown by a submitted job of 10^6 tasks that cannot launch
//!   (no executor), over its tasks (goal ≤ 200 bytes);
//! - `scale.driver_first_launch_ms`, `scale.driver_local_first_launch_ms`: from the
//!   submission of a job of 10^6 tasks on 1,000 executors to its first launch, without and
//!   with preferred locations (goal ≤ 50 ms).
//! - `scale.driver_fair_us_per_task`: 100 jobs of 1,000 tasks submitted at once in 10 FAIR
//!   pools on 100 executors (100 of 100 on 10 under `--quick`), from the first submission to
//!   the last job's end, per task.
//!
//! **Master under many workers** ([`master`], [`fleet`]): a real master in a child process
//! and N simulated workers (N = 100, 1,000, 10,000) in this one, each its own connection;
//! `scale.master_{register_s,place_ms,cpu_pct,rss_mib,json_ms}_<N>` (see [`master`]).
//!
//! `--plot DIR` writes PNG charts of cost against size there ([`plot`]).
//!
//! `--quick` (CI) runs the smallest sizes only and says on stderr which it skips. For
//! profiling, `EMBER_BENCH_SCALE_PART=driver|fair|master` runs one part, and
//! `EMBER_BENCH_SCALE_WORKERS=10000`, `EMBER_BENCH_SCALE_EXECUTORS=1000` and
//! `EMBER_BENCH_SCALE_TASKS=1000000` (comma-separated lists) pick the sizes.

mod driver;
mod fleet;
mod master;
mod plot;
mod png;

pub(crate) use master::{serve_master, MASTER_MODE};

use std::time::Duration;

use crate::cli::Options;
use crate::error::BenchError;
use crate::report::Metric;

use driver::SimDriver;

/// Executors the driver is measured with.
const EXECUTORS: [usize; 3] = [10, 100, 1_000];
/// Tasks per job the driver is measured with.
const TASKS: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Under `--quick`: the executors and tasks measured.
const QUICK_EXECUTORS: [usize; 2] = [10, 100];
/// Under `--quick`: the tasks per job measured.
const QUICK_TASKS: [usize; 1] = [10_000];
/// Workers the master is measured with.
const WORKERS: [usize; 3] = [100, 1_000, 10_000];
/// Under `--quick`: the workers measured.
const QUICK_WORKERS: [usize; 1] = [100];
/// The steady-heartbeat window: two heartbeat intervals, so every worker beats twice.
const CPU_WINDOW: Duration = Duration::from_secs(30);
/// Under `--quick`: a short window (a fifth of the workers beat; the figure is noisier).
const QUICK_CPU_WINDOW: Duration = Duration::from_secs(3);
/// Runs one part only, for profiling: `driver`, `fair` (its FAIR-pools job) or `master`
/// (unset: all).
const PART_ENV: &str = "EMBER_BENCH_SCALE_PART";
/// For profiling: the fleet sizes the master is measured with instead, comma-separated.
const WORKERS_ENV: &str = "EMBER_BENCH_SCALE_WORKERS";
/// For profiling: the driver's executor counts instead, comma-separated.
const EXECUTORS_ENV: &str = "EMBER_BENCH_SCALE_EXECUTORS";
/// For profiling: the driver's job sizes instead, comma-separated.
const TASKS_ENV: &str = "EMBER_BENCH_SCALE_TASKS";
/// A job run first on each new driver, so the timed ones find the allocator and the
/// caches warm.
const WARM_UP_TASKS: usize = 2_000;

/// A metric name made at run time (sizes in it). The report keeps `&'static str` names, as
/// every other suite's are fixed; a run makes a few dozen of these once, so leaking them is
/// bounded.
fn name(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Runs the suite.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let mut metrics = Vec::new();
    let part = std::env::var(PART_ENV).unwrap_or_default();
    if part == "fair" {
        fair_metrics(opts, &mut metrics)?;
    } else if part != "master" {
        driver_metrics(opts, &mut metrics)?;
        fair_metrics(opts, &mut metrics)?;
    }
    if part != "driver" && part != "fair" {
        master_metrics(opts, &mut metrics)?;
    }
    if let Some(dir) = opts.plot {
        plot::write(dir, &metrics)?;
        eprintln!(
            "[scale] charts written to {} (see charts.txt there)",
            dir.display()
        );
    }
    Ok(metrics)
}

/// Runs the job `repeats` times; the median cost per task and time to first launch.
fn median_run(
    sim: &mut SimDriver,
    tasks: usize,
    local: bool,
    repeats: usize,
) -> Result<driver::JobRun, BenchError> {
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        runs.push(sim.run_job(tasks, local)?);
    }
    let median = |mut v: Vec<f64>| {
        crate::stats::sort_samples(&mut v);
        crate::stats::percentile(&v, 50.0)
    };
    Ok(driver::JobRun {
        us_per_task: median(runs.iter().map(|r| r.us_per_task).collect()),
        first_launch_ms: median(runs.iter().map(|r| r.first_launch_ms).collect()),
    })
}

/// The sizes listed in the environment variable `var` (comma-separated), else `default`.
fn sizes_from(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|_| default.to_vec())
}

/// The per-task cost measured at `(executors, tasks)`, if it was.
fn cost_at(costs: &[(usize, usize, f64)], executors: usize, tasks: usize) -> Option<f64> {
    costs
        .iter()
        .find(|(e, t, _)| *e == executors && *t == tasks)
        .map(|(_, _, c)| *c)
}

fn driver_metrics(opts: &Options, metrics: &mut Vec<Metric>) -> Result<(), BenchError> {
    let (executors, tasks): (&[usize], &[usize]) = if opts.quick {
        eprintln!(
            "[scale] --quick: the driver at {QUICK_EXECUTORS:?} executors x {QUICK_TASKS:?} \
             tasks only; skipped: {EXECUTORS:?} x {TASKS:?} beyond those, \
             scale.driver_growth (needs 1000x1000000), scale.driver_[local_]first_launch_ms \
             (needs 1000000 tasks); pending-task memory measured at 100000 tasks"
        );
        (&QUICK_EXECUTORS, &QUICK_TASKS)
    } else {
        (&EXECUTORS, &TASKS)
    };
    let executors = sizes_from(EXECUTORS_ENV, executors);
    let tasks = sizes_from(TASKS_ENV, tasks);
    let (executors, tasks) = (&executors[..], &tasks[..]);
    // Memory first, while the allocator has no freed memory to hand back out.
    let pending = if opts.quick { 100_000 } else { 1_000_000 };
    for (local, metric) in [
        (0, "scale.driver_bytes_per_pending_task"),
        (100, "scale.driver_local_bytes_per_pending_task"),
    ] {
        eprintln!("[scale] driver memory of a pending job of {pending} tasks ({metric}) ...");
        let bytes = driver::bytes_per_pending_task(pending, local)?;
        metrics.push(Metric::new(metric, bytes.round(), "bytes"));
    }

    // The machine is shared: the median of three runs of each size steadies the curves.
    let repeats = if opts.quick { 1 } else { 3 };
    let mut first_launch = Vec::new();
    for local in [false, true] {
        let mut costs = Vec::new();
        for &e in executors {
            let mut sim = SimDriver::start(e)?;
            sim.run_job(WARM_UP_TASKS, local)?;
            for &t in tasks {
                let run = median_run(&mut sim, t, local, repeats)?;
                eprintln!(
                    "[scale] driver: {e} executors, {t} tasks{}: {:.2} us/task, first launch \
                     after {:.1} ms",
                    if local { ", preferred locations" } else { "" },
                    run.us_per_task,
                    run.first_launch_ms
                );
                let kind = if local { "driver_local" } else { "driver" };
                metrics.push(Metric::new(
                    name(format!("scale.{kind}_us_per_task_{e}x{t}")),
                    run.us_per_task,
                    "us",
                ));
                costs.push((e, t, run.us_per_task));
                if e == 1_000 && t == 1_000_000 {
                    let metric = if local {
                        "scale.driver_local_first_launch_ms"
                    } else {
                        "scale.driver_first_launch_ms"
                    };
                    first_launch.push(Metric::new(metric, run.first_launch_ms, "ms"));
                }
            }
        }
        if let (Some(big), Some(small)) = (
            cost_at(&costs, 1_000, 1_000_000),
            cost_at(&costs, 10, 10_000),
        ) {
            let metric = if local {
                "scale.driver_local_growth"
            } else {
                "scale.driver_growth"
            };
            metrics.push(Metric::new(metric, big / small, "x"));
        }
    }
    metrics.extend(first_launch);
    Ok(())
}

/// `scale.driver_fair_us_per_task`: 100 jobs at once in 10 FAIR pools, what concurrent
/// jobs and pool sorting add.
fn fair_metrics(opts: &Options, metrics: &mut Vec<Metric>) -> Result<(), BenchError> {
    let (fair_executors, fair_tasks) = if opts.quick { (10, 100) } else { (100, 1_000) };
    let fair = driver::fair_us_per_task(fair_executors, FAIR_JOBS, fair_tasks, FAIR_POOLS)?;
    eprintln!(
        "[scale] driver: {FAIR_JOBS} concurrent jobs of {fair_tasks} tasks in {FAIR_POOLS} FAIR \
         pools on {fair_executors} executors: {fair:.2} us/task"
    );
    metrics.push(Metric::new("scale.driver_fair_us_per_task", fair, "us"));
    Ok(())
}

/// Jobs submitted at once for `scale.driver_fair_us_per_task`.
const FAIR_JOBS: usize = 100;
/// The FAIR pools they are spread over.
const FAIR_POOLS: usize = 10;

fn master_metrics(opts: &Options, metrics: &mut Vec<Metric>) -> Result<(), BenchError> {
    let (workers, window): (&[usize], Duration) = if opts.quick {
        eprintln!(
            "[scale] --quick: the master with {QUICK_WORKERS:?} workers only, heartbeats \
             watched {QUICK_CPU_WINDOW:?}; skipped: {WORKERS:?} beyond those"
        );
        (&QUICK_WORKERS, QUICK_CPU_WINDOW)
    } else {
        (&WORKERS, CPU_WINDOW)
    };
    for n in sizes_from(WORKERS_ENV, workers) {
        eprintln!("[scale] master with {n} simulated workers ...");
        let run = master::measure(n, window)?;
        for (metric, value, unit) in [
            ("register_s", run.register_s, "s"),
            ("place_ms", run.place_ms, "ms"),
            ("cpu_pct", run.cpu_pct, "%"),
            ("rss_mib", run.rss_mib, "MiB"),
            ("json_ms", run.json_ms, "ms"),
        ] {
            metrics.push(Metric::new(
                name(format!("scale.master_{metric}_{n}")),
                value,
                unit,
            ));
        }
    }
    Ok(())
}
