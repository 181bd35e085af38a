//! The `tasks` suite: how fast Ember schedules and runs empty tasks.
//!
//! - `tasks.local_per_s`: a job of 100,000 no-op tasks on `local[2]`;
//! - `tasks.direct_per_s`: the same on two 1-core executor processes (the shape of
//!   `local-cluster[2,1,1024]`), started by the bench and registered with a driver that has
//!   no master;
//! - `tasks.job_p50_us`, `tasks.job_p99_us`: 1,000 sequential one-task jobs on those
//!   executors, each timed from submission to result.
//!
//! Each measurement follows a warm-up job. Settings in `EMBER_CONF` (one `key=value` a line,
//! as `ember-submit` hands them to a driver) apply to both drivers: with
//! `ember.eventLog.enabled=true`, the suite measures what the event log costs.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember::{Context, RpcConf};
use ember_executor::{builtin, run_executor, ExecutorArgs, TaskRegistry};

use crate::cli::{Options, SERVE_ARG};
use crate::error::BenchError;
use crate::report::Metric;
use crate::stats;

/// The child mode that runs an executor process.
pub(crate) const EXECUTOR_MODE: &str = "executor";

pub(crate) fn registry() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    builtin::register(&mut registry);
    registry
}

pub(crate) fn failed(context: &str) -> impl Fn(ember::Error) -> BenchError + '_ {
    move |e| BenchError::new(format!("{context}: {e}"))
}

/// The child side: an executor process with the built-in tasks.
pub(crate) fn serve_executor(args: &[String]) -> Result<(), BenchError> {
    let args = ExecutorArgs::parse(args.iter().map(Into::into))
        .map_err(|e| BenchError::new(format!("bad executor arguments: {e}")))?;
    let code = run_executor(&args, Arc::new(registry()));
    if code == 0 {
        Ok(())
    } else {
        Err(BenchError::new(format!("the executor exited with {code}")))
    }
}

/// Runs one job of `count` no-op tasks; returns tasks per second.
pub(crate) fn throughput(ctx: &Context, count: usize) -> Result<f64, BenchError> {
    let inputs: Vec<u64> = (0..count as u64).collect();
    let start = Instant::now();
    let out: Vec<u64> = ctx
        .run_job(builtin::NOOP, inputs)
        .map_err(failed("running the no-op job"))?;
    let took = start.elapsed();
    if out.len() != count || out.last().copied() != Some(count as u64 - 1) {
        return Err(BenchError::new("the no-op job returned the wrong results"));
    }
    Ok((count as f64 / took.as_secs_f64()).round())
}

/// Executor processes; killed and reaped when dropped.
struct Executors(Vec<Child>);

impl Drop for Executors {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_executors(ctx: &Context, count: u32) -> Result<Executors, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("finding ember-bench", e))?;
    let mut executors = Executors(Vec::new());
    for i in 0..count {
        let args = ctx
            .executor_args(&i.to_string(), 1)
            .ok_or_else(|| BenchError::new("the driver has no address"))?;
        let child = Command::new(&exe)
            .arg(SERVE_ARG)
            .arg(EXECUTOR_MODE)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::io("starting an executor process", e))?;
        executors.0.push(child);
    }
    ctx.wait_for_executors(count, Duration::from_secs(30))
        .map_err(failed("waiting for the executors"))?;
    Ok(executors)
}

/// `conf` with the settings of `EMBER_CONF` it does not have.
fn with_submitted(mut conf: RpcConf) -> Result<RpcConf, BenchError> {
    let Ok(text) = std::env::var(ember::CONF_ENV) else {
        return Ok(conf);
    };
    let submitted = RpcConf::from_properties(&text)
        .map_err(|e| BenchError::new(format!("bad {}: {e}", ember::CONF_ENV)))?;
    for (key, value) in submitted.iter() {
        if !conf.contains(key) {
            conf.set(key, value);
        }
    }
    Ok(conf)
}

/// Runs the suite.
pub(crate) fn run(opts: &Options) -> Result<Vec<Metric>, BenchError> {
    let count = opts.iterations(100_000, 10_000);
    let mut metrics = Vec::new();

    eprintln!("[tasks] measuring tasks.local_per_s ({count} tasks on local[2]) ...");
    let conf = with_submitted(
        RpcConf::new()
            .with(ember::MASTER, "local[2]")
            .with(ember::APP_NAME, "ember-bench-tasks"),
    )?;
    let ctx = Context::new(conf, registry()).map_err(failed("starting local[2]"))?;
    let local = throughput(&ctx, count / 10).and_then(|_| throughput(&ctx, count));
    ctx.stop();
    metrics.push(Metric::new("tasks.local_per_s", local?, "tasks/s"));

    eprintln!("[tasks] measuring tasks.direct_per_s ({count} tasks on 2 executor processes) ...");
    let conf = with_submitted(RpcConf::new().with(ember::APP_NAME, "ember-bench-tasks"))?;
    let ctx = Context::driver_only(conf, registry()).map_err(failed("starting the driver"))?;
    let result = (|| {
        let _executors = start_executors(&ctx, 2)?;
        let direct = throughput(&ctx, count / 10).and_then(|_| throughput(&ctx, count))?;
        metrics.push(Metric::new("tasks.direct_per_s", direct, "tasks/s"));

        let jobs = opts.iterations(1_000, 200);
        eprintln!("[tasks] measuring tasks.job latency ({jobs} one-task jobs) ...");
        let mut samples = Vec::with_capacity(jobs);
        for i in 0..(jobs + jobs / 10) {
            let start = Instant::now();
            let out: Vec<u64> = ctx
                .run_job(builtin::NOOP, vec![i as u64])
                .map_err(failed("running a one-task job"))?;
            let took = start.elapsed();
            if out != [i as u64] {
                return Err(BenchError::new("a one-task job returned the wrong result"));
            }
            if i >= jobs / 10 {
                samples.push(took.as_secs_f64() * 1e6);
            }
        }
        stats::sort_samples(&mut samples);
        metrics.push(Metric::new(
            "tasks.job_p50_us",
            stats::percentile(&samples, 50.0),
            "us",
        ));
        metrics.push(Metric::new(
            "tasks.job_p99_us",
            stats::percentile(&samples, 99.0),
            "us",
        ));
        Ok(())
    })();
    ctx.stop();
    result?;
    Ok(metrics)
}
