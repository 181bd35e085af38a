//! Built-in task functions of the stock `ember-executor` binary, for tests and benchmarks.

use std::time::{Duration, Instant};

use crate::registry::{TaskContext, TaskError, TaskRegistry};

/// `noop(n) = n`: returns its input.
pub const NOOP: &str = "noop";
/// `sleep(ms)`: sleeps `ms` milliseconds, stopping early when killed; returns the partition.
pub const SLEEP: &str = "sleep";
/// `fail(message)`: fails with `message`.
pub const FAIL: &str = "fail";

fn noop(_ctx: &TaskContext, n: u64) -> Result<u64, TaskError> {
    Ok(n)
}

fn sleep(ctx: &TaskContext, millis: u64) -> Result<u32, TaskError> {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until {
        ctx.check_interrupted()?;
        std::thread::sleep(
            Duration::from_millis(1).min(until.saturating_duration_since(Instant::now())),
        );
    }
    Ok(ctx.partition())
}

fn fail(_ctx: &TaskContext, message: String) -> Result<u64, TaskError> {
    Err(TaskError::msg(message))
}

/// Adds the built-in tasks to `registry`.
pub fn register(registry: &mut TaskRegistry) -> &mut TaskRegistry {
    registry
        .register(NOOP, noop)
        .register(SLEEP, sleep)
        .register(FAIL, fail)
}
