//! Tasks that crash their executor process every time, on `local-cluster[N,1,1024]`:
//! DistributedSuite's "repeatedly failing task that crashes JVM".
//! Each loss is the application's fault, so it counts towards the task's 4 failures and
//! the job fails, while the master replaces the executors and the application lives on.
//!
//! A file of its own: while a job crashes executors, the master relaunches them as fast as
//! they die, which should not slow the tests of other files down.

pub mod cluster_support;

use std::time::Duration;

use ember::testing::{executor_processes_of, EXECUTOR_ENTRY_ARGS};
use ember::{Context, RpcConf};

use cluster_support::{tasks, DEADLINE};

ember::executor_entry!(tasks);

/// How long a crashing job may take; it takes about a second when all goes well.
const JOB_DEADLINE: Duration = Duration::from_secs(15);

/// Runs `exit_with` over `inputs` on `local-cluster[workers,1,1024]`, at most
/// [`JOB_DEADLINE`], then stops the context whatever happened (so a hang leaves nothing
/// behind) and returns the job's error text, `None` if the job did not end in time.
fn crash_job(workers: u32, inputs: Vec<(i32, u64)>) -> Option<String> {
    let _ = env_logger::try_init();
    let conf = RpcConf::new()
        .with(ember::MASTER, format!("local-cluster[{workers},1,1024]"))
        .with(ember::APP_NAME, "crash-test")
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS);
    let ctx = Context::new(conf, tasks()).expect("the cluster starts");
    ctx.wait_for_executors(workers, DEADLINE)
        .expect("the executors register");
    let handle = ctx
        .submit_job::<(i32, u64), u32>("exit_with", inputs)
        .expect("submitted");
    let text = handle.wait_timeout(JOB_DEADLINE).ok().map(|o| match o {
        Ok(out) => format!("unexpected success: {out:?}"),
        Err(e) => e.to_string(),
    });
    if text.is_some() {
        // The application lives on: the master replaced the crashed executors.
        let out: Vec<u64> = ctx
            .run_job("square", (1..=10u64).collect())
            .expect("the application was not removed");
        assert_eq!(out.iter().sum::<u64>(), 385);
    }
    ctx.stop();
    assert!(executor_processes_of(&ctx).is_empty());
    text
}

#[track_caller]
fn assert_failed_four_times(text: Option<String>) {
    let text = text.expect("the job ends within the deadline");
    assert!(
        text.contains("Task 1 in stage 0.0 failed 4 times") && text.contains("ExecutorLostFailure"),
        "{text}"
    );
}

#[test]
fn a_task_that_always_crashes_its_executor_fails_the_job_after_four_attempts() {
    // Exit code 42 as soon as the task starts, as in Spark's test.
    assert_failed_four_times(crash_job(2, vec![(-1, 0), (42, 0)]));
}

#[test]
fn a_task_that_exits_its_executor_with_code_zero_fails_the_job_not_the_app() {
    // SPARK-16925: exit code 0 too is a crash; the master does not count it against the
    // application, which stays usable.
    assert_failed_four_times(crash_job(1, vec![(-1, 0), (0, 0)]));
}

#[test]
fn a_task_that_runs_a_while_then_crashes_its_executor_fails_the_job_after_four_attempts() {
    // The same once each attempt's RUNNING has reached the driver: the executor holds that
    // report back up to 10 ms, to send it with the result.
    assert_failed_four_times(crash_job(2, vec![(-1, 0), (42, 300)]));
}

#[test]
fn a_task_that_runs_a_while_then_exits_with_code_zero_fails_the_job_not_the_app() {
    assert_failed_four_times(crash_job(1, vec![(-1, 0), (0, 300)]));
}
