//! Task functions and helpers of the root crate's cluster tests (`local_cluster*.rs`,
//! `cluster_*.rs`, `app_client.rs`): what executors of a test cluster run, and how the tests
//! look at the master, the workers and the processes.
//!
//! The test files declare this module `pub mod cluster_support;`: its items are public items
//! of each test crate, of which each file uses a part.

use std::time::{Duration, Instant};

use ember::testing::{AppSummary, ExecutorProcess, MasterState, TestCluster};
use ember::{TaskContext, TaskError, TaskRegistry};

#[path = "../common/mod.rs"]
pub mod common;

pub use common::{wait_until, DEADLINE};

/// Which executor ran a task, and in which process.
fn whoami(ctx: &TaskContext, _: u32) -> Result<(String, u32), TaskError> {
    // Long enough that one executor cannot take every task of a small job.
    std::thread::sleep(Duration::from_millis(5));
    Ok((ctx.executor_id().to_string(), std::process::id()))
}

/// Kills its own executor process (exit code 1) on the first attempt of partition 0;
/// otherwise returns its input after a moment.
fn exit_on_first_attempt(ctx: &TaskContext, x: u32) -> Result<u32, TaskError> {
    if ctx.partition() == 0 && ctx.attempt_number() == 0 {
        std::process::exit(1);
    }
    std::thread::sleep(Duration::from_millis(20));
    Ok(x)
}

/// Ends its executor process with exit code `code` after running `millis` (DistributedSuite's
/// `failOnMarkedIdentity`); a negative `code` returns 0 instead.
fn exit_with(_: &TaskContext, (code, millis): (i32, u64)) -> Result<u32, TaskError> {
    if code < 0 {
        return Ok(0);
    }
    std::thread::sleep(Duration::from_millis(millis));
    std::process::exit(code);
}

/// Sleeps up to `millis`, stopping early when killed; returns the partition.
fn sleep_ms(ctx: &TaskContext, millis: u64) -> Result<u32, TaskError> {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until {
        ctx.check_interrupted()?;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(ctx.partition())
}

/// The tests' task functions, for the drivers and the executors.
pub fn tasks() -> TaskRegistry {
    let mut registry = common::test_tasks();
    registry
        .register("whoami", whoami)
        .register("exit_on_first_attempt", exit_on_first_attempt)
        .register("exit_with", exit_with)
        .register("sleep_ms", sleep_ms);
    registry
}

/// A cluster of `workers` workers of `cores` cores and 4096 MiB (room for 4 executors of the default 1 GiB), with `settings`.
pub fn cluster(workers: u32, cores: u32, settings: &[(&str, &str)]) -> TestCluster {
    let _ = env_logger::try_init();
    let mut builder = TestCluster::builder()
        .workers(workers)
        .cores_per_worker(cores)
        .memory_mib_per_worker(4096);
    for (key, value) in settings {
        builder = builder.conf(key, value);
    }
    builder
        .tasks(tasks)
        .start()
        .expect("the test cluster starts")
}

/// Application `app_id` as the master lists it, active or completed.
pub fn app<'a>(state: &'a MasterState, app_id: &str) -> Option<&'a AppSummary> {
    state
        .active_apps
        .iter()
        .chain(&state.completed_apps)
        .find(|a| a.id.0 == app_id)
}

/// Application `app_id` as the master lists it now; panics if it does not.
pub fn app_now(cluster: &TestCluster, app_id: &str) -> AppSummary {
    let state = cluster.state().expect("the master answers");
    app(&state, app_id)
        .cloned()
        .unwrap_or_else(|| panic!("the master does not know {app_id}: {state:?}"))
}

/// The cores each worker has in use, in worker start order, from the workers themselves.
pub fn cores_used_per_worker(cluster: &TestCluster, workers: usize) -> Vec<u32> {
    (0..workers)
        .map(|i| {
            cluster
                .worker(i)
                .expect("the worker runs")
                .state()
                .expect("the worker answers")
                .cores_used
        })
        .collect()
}

/// Stops the cluster and checks no executor process survived it: the cluster's own check,
/// and each of `seen` by pid.
pub fn stop_and_check(cluster: &TestCluster, seen: &[ExecutorProcess]) {
    cluster.stop().expect("no executor outlives the cluster");
    assert!(cluster.executor_pids().is_empty());
    for process in seen {
        assert!(
            !process.is_running(),
            "executor process {} outlived the cluster",
            process.pid
        );
    }
}

/// Waits until none of `processes` runs any more.
#[track_caller]
pub fn wait_gone(processes: &[ExecutorProcess]) {
    wait_until("the executor processes are gone", DEADLINE, || {
        processes.iter().all(|p| !p.is_running())
    });
}
