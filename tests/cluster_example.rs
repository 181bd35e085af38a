//! How a user tests their application on a real cluster: two workers in this process, two
//! executor processes running this very test binary, a job, and nothing left behind.

use std::time::Duration;

use ember::{TaskContext, TaskError, TaskRegistry};

/// The application's task: counts the words of a line.
fn count_words(_: &TaskContext, line: String) -> Result<u64, TaskError> {
    Ok(line.split_whitespace().count() as u64)
}

/// Which process ran a task: the executors are processes of their own.
fn process_id(_: &TaskContext, _: u32) -> Result<u32, TaskError> {
    Ok(std::process::id())
}

/// Every task function of the application, for the driver and the executors alike.
fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry
        .register("count_words", count_words)
        .register("process_id", process_id);
    registry
}

// This test binary is also the executors' program.
ember::executor_entry!(tasks);

#[test]
fn words_are_counted_on_a_two_worker_cluster() -> Result<(), ember::Error> {
    let cluster = test_cluster()
        .workers(2)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .start()?;
    let ctx = cluster.context("word-count")?;
    cluster.wait_for_executors(&ctx, 2, Duration::from_secs(30))?;

    let lines = vec![
        "to be or not to be".to_string(),
        "that is the question".to_string(),
        String::new(),
    ];
    let counts: Vec<u64> = ctx.run_job("count_words", lines)?;
    assert_eq!(counts, vec![6, 4, 0]);

    // The tasks ran in the executor processes, not in this one.
    let executors = cluster.executor_pids();
    assert_eq!(executors.len(), 2, "one executor per worker");
    let pids: Vec<u32> = ctx.run_job("process_id", (0..8u32).collect())?;
    assert!(pids.iter().all(|pid| executors.contains(pid)), "{pids:?}");

    cluster.stop()?;
    assert!(
        cluster.executor_pids().is_empty(),
        "no executor process is left behind"
    );
    Ok(())
}
