//! Task functions and helpers shared by the root crate's integration tests. Waiting on
//! conditions is ember-test-support's.
//!
//! The test files declare this module `pub mod common;` (and `cluster_support` includes it
//! so): its items are public items of each test crate, of which each file uses a part.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use ember_test_support::{wait_for, wait_until, DEADLINE};

use ember::{TaskContext, TaskError, TaskRegistry};

/// Tasks of `sleep_until_killed` running now.
pub static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Tasks of `sleep_until_killed` that saw their kill.
pub static KILLED_SEEN: AtomicUsize = AtomicUsize::new(0);
/// Tasks of `measure_concurrency` running now, and the most at once.
pub static CONCURRENT: AtomicUsize = AtomicUsize::new(0);
/// The most `measure_concurrency` tasks seen at once.
pub static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Resets the concurrency counters.
pub fn reset_concurrency() {
    CONCURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
}

fn square(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    Ok(x * x)
}

fn panic_on_three(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    assert!(x != 3, "three!");
    Ok(x)
}

fn fail_three_times(ctx: &TaskContext, x: u32) -> Result<u32, TaskError> {
    if ctx.attempt_number() < 3 {
        return Err(TaskError::msg(format!(
            "attempt {} fails",
            ctx.attempt_number()
        )));
    }
    Ok(x)
}

/// Sleeps up to `millis`, checking for a kill every millisecond.
fn sleep_until_killed(ctx: &TaskContext, millis: u64) -> Result<u32, TaskError> {
    RUNNING.fetch_add(1, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_millis(millis);
    let outcome = loop {
        if let Err(e) = ctx.check_interrupted() {
            KILLED_SEEN.fetch_add(1, Ordering::SeqCst);
            break Err(e);
        }
        if Instant::now() >= until {
            break Ok(ctx.partition());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    outcome
}

/// Runs for `millis`, recording how many of its kind run at once.
fn measure_concurrency(_: &TaskContext, millis: u64) -> Result<u32, TaskError> {
    let now = CONCURRENT.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(millis));
    CONCURRENT.fetch_sub(1, Ordering::SeqCst);
    Ok(0)
}

/// The tests' task functions.
pub fn test_tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry
        .register("square", square)
        .register("panic_on_three", panic_on_three)
        .register("fail_three_times", fail_three_times)
        .register("sleep_until_killed", sleep_until_killed)
        .register("measure_concurrency", measure_concurrency);
    registry
}
