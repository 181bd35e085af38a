//! Jobs on `local[N]`: tasks on threads of the driver's process, no network, no encoding of
//! messages. Ports what applies of DistributedSuite and SparkContextSchedulerCreationSuite
//! to local masters.

pub mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ember::{Context, Error, RpcConf, TaskContext, TaskError, TaskRegistry};

use common::{test_tasks, wait_until, DEADLINE};

fn context(master: &str) -> Context {
    let conf = RpcConf::new()
        .with(ember::MASTER, master)
        .with(ember::APP_NAME, "local-mode-test");
    Context::new(conf, test_tasks()).expect("the context starts")
}

#[test]
fn results_come_back_in_partition_order() {
    let ctx = context("local[2]");
    let inputs: Vec<u64> = (0..100).collect();
    let out: Vec<u64> = ctx.run_job("square", inputs).expect("the job succeeds");
    assert_eq!(out, (0..100).map(|x| x * x).collect::<Vec<u64>>());
    // Many small jobs one after another on the same context.
    for i in 0..50u64 {
        let out: Vec<u64> = ctx.run_job("square", vec![i]).expect("succeeds");
        assert_eq!(out, vec![i * i]);
    }
    ctx.stop();
}

#[test]
fn an_empty_job_succeeds_at_once() {
    let ctx = context("local");
    assert_eq!(ctx.executor_ids().expect("answered"), ["driver"]);
    let out: Vec<u64> = ctx.run_job("square", Vec::<u64>::new()).expect("succeeds");
    assert!(out.is_empty());
    ctx.stop();
}

#[test]
fn a_panicking_task_fails_the_job_in_local_mode_and_the_executor_lives_on() {
    let ctx = context("local[2]");
    let error = ctx
        .run_job::<u64, u64>("panic_on_three", vec![1, 2, 3, 4])
        .expect_err("partition 2 panics");
    let text = error.to_string();
    assert!(
        text.contains(
            "Task 2 in stage 0.0 failed 1 times, most recent failure: task panicked: three!"
        ),
        "{text}"
    );
    // The executor's threads survived the panic.
    let out: Vec<u64> = ctx.run_job("square", vec![7u64]).expect("succeeds");
    assert_eq!(out, vec![49]);
    ctx.stop();
}

#[test]
fn local_n_m_retries_a_task_up_to_m_times() {
    let ctx = context("local[2,4]");
    // Fails on attempts 0, 1 and 2, succeeds on attempt 3.
    let out: Vec<u32> = ctx
        .run_job("fail_three_times", vec![10u32, 20])
        .expect("the fourth attempt succeeds");
    assert_eq!(out, vec![10, 20]);
    ctx.stop();

    let ctx = context("local[2,3]");
    let error = ctx
        .run_job::<u32, u32>("fail_three_times", vec![10])
        .expect_err("three attempts are not enough");
    assert!(
        error
            .to_string()
            .contains("failed 3 times, most recent failure: attempt 2 fails"),
        "{error}"
    );
    ctx.stop();
}

#[test]
fn a_cancelled_job_fails_and_its_running_tasks_are_killed() {
    let ctx = context("local[2]");
    common::KILLED_SEEN.store(0, Ordering::SeqCst);
    let handle = ctx
        .submit_job::<u64, u32>("sleep_until_killed", vec![60_000, 60_000])
        .expect("submitted");
    wait_until("both tasks run", DEADLINE, || {
        common::RUNNING.load(Ordering::SeqCst) >= 2
    });
    assert_eq!(handle.progress(), (0, 2));
    handle.cancel("the test cancels it");
    let outcome = handle
        .wait_timeout(Duration::from_secs(30))
        .expect("the cancelled job ends");
    assert_eq!(
        outcome.expect_err("cancelled").to_string(),
        "Job cancelled: the test cancels it"
    );
    wait_until("both tasks saw the kill", DEADLINE, || {
        common::KILLED_SEEN.load(Ordering::SeqCst) >= 2
    });
    ctx.stop();
}

#[test]
fn unknown_task_names_and_wrong_types_are_refused_before_anything_runs() {
    let ctx = context("local");
    let error = ctx
        .run_job::<u64, u64>("no_such_task", vec![1])
        .expect_err("unknown");
    assert!(
        matches!(&error, Error::Task(m) if m.contains("Unknown task function 'no_such_task'")),
        "{error}"
    );
    let error = ctx
        .run_job::<String, u64>("square", vec!["x".to_string()])
        .expect_err("wrong input type");
    assert!(error.to_string().contains("takes u64"), "{error}");
    ctx.stop();
}

#[test]
fn a_stopped_context_refuses_jobs_and_stop_is_idempotent() {
    let ctx = context("local[2]");
    ctx.stop();
    ctx.stop();
    let error = ctx
        .run_job::<u64, u64>("square", vec![1])
        .expect_err("stopped");
    assert_eq!(error, Error::Stopped);
}

#[test]
fn missing_settings_are_named() {
    let no_master = Context::new(
        RpcConf::new().with(ember::APP_NAME, "x"),
        TaskRegistry::new(),
    );
    assert!(no_master
        .unwrap_err()
        .to_string()
        .contains("A master URL must be set"));
    let no_name = Context::new(
        RpcConf::new().with(ember::MASTER, "local"),
        TaskRegistry::new(),
    );
    assert!(no_name
        .unwrap_err()
        .to_string()
        .contains("An application name must be set"));
    let cpus = Context::new(
        RpcConf::new()
            .with(ember::MASTER, "local[2]")
            .with(ember::APP_NAME, "x")
            .with("ember.task.cpus", "3"),
        TaskRegistry::new(),
    );
    assert!(
        cpus.unwrap_err()
            .to_string()
            .contains("has to be >= the number of cpus per task = 3"),
        "task cpus over the local cores"
    );
}

#[test]
fn tasks_run_in_parallel_on_n_threads() {
    let ctx = context("local[2]");
    common::reset_concurrency();
    let out: Vec<u32> = ctx
        .run_job("measure_concurrency", vec![50u64; 8])
        .expect("succeeds");
    assert_eq!(out.len(), 8);
    let seen = common::PEAK.load(Ordering::SeqCst);
    assert_eq!(seen, 2, "two threads, so two tasks at once, never more");
    ctx.stop();
}

/// FAIR scheduling with an allocation file that cannot be read fails the context's start
/// with an error naming the setting, the path and why (not a panic, not FIFO pools).
#[test]
fn an_unreadable_allocation_file_fails_the_start_naming_it() {
    let dir = ember_test_support::TempDir::new("local-mode-allocation");
    let missing = dir.path().join("no-such-fairscheduler.xml");
    let missing = missing.to_str().expect("a UTF-8 temp path");
    let conf = RpcConf::new()
        .with(ember::MASTER, "local[2]")
        .with(ember::APP_NAME, "local-mode-test")
        .with("ember.scheduler.mode", "FAIR")
        .with("ember.scheduler.allocation.file", missing);
    let error = match Context::new(conf, test_tasks()) {
        Ok(_) => panic!("a context started without its allocation file"),
        Err(error) => error,
    };
    let not_found = std::fs::read_to_string(missing).expect_err("no such file");
    assert!(matches!(error, Error::Conf(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("Cannot read ember.scheduler.allocation.file '{missing}': {not_found}")
    );
}

/// A compile-time check: a task function written against the root crate's re-exports
/// (`ember::TaskContext`, `ember::TaskError`) registers in `ember::TaskRegistry`, for a
/// number, a tuple input and a byte-string output. A re-export of another type, or a change to
/// the task signature `register` takes, fails the build here.
const _TASK_SIGNATURES: fn(&mut TaskRegistry) = |registry| {
    fn number(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
        Ok(x)
    }
    fn pair(ctx: &TaskContext, (a, b): (u32, String)) -> Result<Vec<u8>, TaskError> {
        let _ = ctx.partition();
        Err(TaskError::msg(format!("{a}{b}")))
    }
    registry.register("number", number).register("pair", pair);
};
