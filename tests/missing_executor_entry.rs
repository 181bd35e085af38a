//! A test file that forgets `ember::executor_entry!`. Starting a test cluster says so at once.
//! And should the workers start such a binary as executors anyway (here: told to run a test
//! that does not exist), it runs no test and exits 0, again and again: the master stops
//! relaunching after `ember.deploy.maxExecutorRetries` of them and says why, and the job
//! fails with a message that names what is probably missing, instead of waiting for ever.
//!
//! (This file must not use `executor_entry!`: that is the point.)

use std::time::{Duration, Instant};

use ember::testing::TestCluster;
use ember::{TaskContext, TaskError, TaskRegistry};

fn double(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    Ok(2 * x)
}

fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("double", double);
    registry
}

#[test]
fn starting_a_cluster_fails_at_once_naming_the_missing_executor_entry() {
    let error = TestCluster::builder()
        .workers(1)
        .tasks(tasks)
        .start()
        .expect_err("this binary has no executor entry")
        .to_string();
    assert!(error.contains("has no executor entry"), "{error}");
    assert!(error.contains("ember::executor_entry!(tasks);"), "{error}");
}

#[test]
fn a_job_fails_naming_the_missing_executor_entry_and_the_relaunching_stops() {
    let cluster = TestCluster::builder()
        .workers(1)
        .tasks(tasks)
        .conf("ember.deploy.maxExecutorRetries", "3")
        // Executors run a test this binary does not have: each exits 0 at once.
        .conf(
            "ember.executor.programArgs",
            "no_such_test --exact --nocapture --test-threads=1 --",
        )
        .start()
        .expect("the cluster starts");
    let ctx = cluster.context("forgot-the-entry").expect("a context");
    let started = Instant::now();
    let outcome: Result<Vec<u64>, ember::Error> = ctx.run_job("double", vec![1u64, 2, 3]);
    let error = outcome.expect_err("no executor ever registers").to_string();
    assert!(
        error.contains("3 executors in a row exited (status 0) before registering"),
        "{error}"
    );
    assert!(error.contains("ember::executor_entry!(tasks);"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it failed at once, not after a timeout: {:?}",
        started.elapsed()
    );
    let state = cluster.state().expect("the master's state");
    let app = state
        .completed_apps
        .iter()
        .find(|a| a.id.0 == ctx.app_id())
        .expect("the application is among the completed ones");
    assert_eq!(app.state, "FAILED");
    assert!(
        state.active_apps.is_empty(),
        "nothing is relaunched any more"
    );
    cluster.stop().expect("no executor outlived the cluster");
}
