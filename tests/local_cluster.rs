//! `local-cluster[N,C,M]` through `Context::new`: a master and N workers in this process,
//! executors as child processes (this test binary, entered through `executor_entry!`).
//! Ports what applies of DistributedSuite and LocalSparkCluster.

pub mod cluster_support;

use std::collections::BTreeSet;

use ember::testing::{executor_processes_of, EXECUTOR_ENTRY_ARGS};
use ember::{Context, RpcConf};

use cluster_support::{tasks, wait_gone, DEADLINE};

ember::executor_entry!(tasks);

fn context(master: &str) -> Result<Context, ember::Error> {
    let _ = env_logger::try_init();
    let conf = RpcConf::new()
        .with(ember::MASTER, master)
        .with(ember::APP_NAME, "local-cluster-test")
        .with(ember::EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS);
    Context::new(conf, tasks())
}

#[test]
fn executors_are_child_processes_that_end_with_the_context() {
    let ctx = context("local-cluster[2,1,1024]").expect("the cluster starts");
    ctx.wait_for_executors(2, DEADLINE)
        .expect("one executor per worker");
    let executors = executor_processes_of(&ctx);
    assert_eq!(executors.len(), 2, "{executors:?}");
    let pids: BTreeSet<u32> = executors.iter().map(|p| p.pid).collect();
    assert_eq!(pids.len(), 2);
    assert!(!pids.contains(&std::process::id()));
    assert!(executors.iter().all(|p| p.app_id == ctx.app_id()));
    let workers: BTreeSet<_> = executors.iter().map(|p| p.worker_url.clone()).collect();
    assert_eq!(workers.len(), 2, "each worker launched one");

    let ran_on: Vec<(String, u32)> = ctx.run_job("whoami", vec![0u32; 20]).expect("succeeds");
    assert!(
        ran_on.iter().all(|(_, pid)| pids.contains(pid)),
        "{ran_on:?}"
    );
    let squares: Vec<u64> = ctx
        .run_job("square", (0..50u64).collect())
        .expect("succeeds");
    assert_eq!(squares, (0..50u64).map(|x| x * x).collect::<Vec<_>>());

    ctx.stop();
    // Stopping the context stopped the cluster, which reaped every executor.
    for process in &executors {
        assert!(!process.is_running(), "{process:?} outlived the context");
    }
    assert!(executor_processes_of(&ctx).is_empty());
}

#[test]
fn executors_bigger_than_a_worker_are_refused_up_front() {
    let error = context("local-cluster[1,1,512]").expect_err("1 GiB executors, 512 MiB workers");
    assert_eq!(
        error.to_string(),
        "Asked to launch cluster with 512 MiB/worker but requested 1024 MiB/executor"
    );
    let cluster = test_cluster()
        .workers(1)
        .memory_mib_per_worker(512)
        .start()
        .expect("starts");
    let error = cluster
        .context("too-big")
        .expect_err("refused the same way");
    assert_eq!(
        error.to_string(),
        "Asked to launch cluster with 512 MiB/worker but requested 1024 MiB/executor"
    );
    let ctx = cluster
        .context_with("small", &[("ember.executor.memory", "512m")])
        .expect("fits");
    let out: Vec<u64> = ctx.run_job("square", vec![4u64]).expect("succeeds");
    assert_eq!(out, vec![16]);
    cluster.stop().expect("nothing left");
}

#[test]
fn a_task_that_kills_its_executor_is_rerun_on_another() {
    // DistributedSuite "recover from node failures".
    let ctx = context("local-cluster[2,1,1024]").expect("the cluster starts");
    ctx.wait_for_executors(2, DEADLINE).expect("two executors");
    let before = executor_processes_of(&ctx);
    let out: Vec<u32> = ctx
        .run_job("exit_on_first_attempt", (0..6u32).collect())
        .expect("the lost tasks are rerun");
    assert_eq!(out, (0..6u32).collect::<Vec<_>>());
    let died: Vec<_> = before.iter().filter(|p| !p.is_running()).collect();
    assert_eq!(
        died.len(),
        1,
        "partition 0's first attempt ended its executor"
    );
    // The master replaced it.
    ctx.wait_for_executors(2, DEADLINE)
        .expect("two executors again");
    ctx.stop();
    wait_gone(&before);
}

/// A task function the executor entry of this file does not register.
fn unknown_to_the_executors(_: &ember::TaskContext, x: u64) -> Result<u64, ember::TaskError> {
    Ok(x)
}

#[test]
fn drivers_with_other_tasks_than_the_executor_entry_are_refused_at_start() {
    let error = test_cluster()
        .tasks(|| {
            let mut registry = tasks();
            registry.register("extra", unknown_to_the_executors);
            registry
        })
        .start()
        .expect_err("the drivers know a function the executors do not")
        .to_string();
    assert!(
        error.contains("Only the drivers have: [extra: u64 -> u64]; only the executors have: []"),
        "{error}"
    );
}
