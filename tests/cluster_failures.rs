//! Failures on a test cluster, on purpose: an application killed from the master, an
//! executor killed by its worker or from outside, a worker lost, executors that cannot
//! start. Ports what applies of MasterSuite and DistributedSuite.

pub mod cluster_support;

use ember::testing::ExecutorProcess;
use ember_deploy::messages::{
    ExecutorState, MasterAsk, WorkerMessage, WorkerProtocol, WORKER_ENDPOINT_NAME,
};
use ember_deploy::AppId;

use cluster_support::{app_now, cluster, stop_and_check, tasks, wait_gone, wait_until, DEADLINE};

ember::executor_entry!(tasks);

/// The worker (index) that launched `process`.
fn worker_of(cluster: &ember::testing::TestCluster, process: &ExecutorProcess) -> usize {
    (0..2)
        .find(|&i| {
            cluster
                .worker(i)
                .is_some_and(|w| Some(w.url()) == process.worker_url)
        })
        .expect("one of the workers launched it")
}

#[test]
fn an_app_killed_from_the_master_fails_its_jobs_and_refuses_new_ones() {
    let cluster = cluster(2, 1, &[]);
    let ctx = cluster.context("doomed").expect("registers");
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors");
    let executors = cluster.executor_processes();
    assert_eq!(executors.len(), 2);
    let handle = ctx
        .submit_job::<u64, u32>("sleep_ms", vec![30_000, 30_000])
        .expect("submitted");

    let killed = cluster
        .master()
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestKillApplication {
            app_id: AppId(ctx.app_id().to_string()),
            reply,
        })
        .expect("the master answers");
    assert!(killed, "the master knew the application");

    let expected = "Application has been killed. Reason: Master removed our application: KILLED";
    let error = handle
        .wait_timeout(DEADLINE)
        .expect("the running job ends")
        .expect_err("the running job fails");
    assert!(error.to_string().contains(expected), "{error}");
    let error = ctx
        .run_job::<u64, u64>("square", vec![2])
        .expect_err("new jobs are refused");
    assert!(error.to_string().contains(expected), "{error}");

    let state = cluster.state().expect("the master answers");
    assert!(state.active_apps.is_empty(), "{state:?}");
    assert_eq!(app_now(&cluster, ctx.app_id()).state, "KILLED");
    // Its executors were killed by their workers.
    wait_gone(&executors);
    // Killing it again: the master no longer knows it as active.
    let again = cluster
        .master()
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestKillApplication {
            app_id: AppId(ctx.app_id().to_string()),
            reply,
        })
        .expect("the master answers");
    assert!(!again);
    stop_and_check(&cluster, &executors);
}

#[test]
fn a_worker_asked_to_kill_an_executor_kills_its_process_and_everyone_learns_it() {
    let cluster = cluster(2, 1, &[]);
    let ctx = cluster.context("victim").expect("registers");
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors");
    let before = cluster.executor_processes();
    let victim = before
        .iter()
        .find(|p| p.executor_id == "0")
        .cloned()
        .expect("executor 0 runs");
    let worker = cluster
        .worker(worker_of(&cluster, &victim))
        .expect("its worker runs");

    // From the master's own env: a worker takes orders only from the master it registered
    // with.
    let worker_address = worker
        .worker_ref()
        .rpc_address()
        .cloned()
        .expect("the worker has an address");
    cluster
        .master()
        .env()
        .endpoint_ref_at::<WorkerProtocol>(&worker_address, WORKER_ENDPOINT_NAME)
        .send(WorkerMessage::KillExecutor {
            master_url: cluster.master_url(),
            app_id: AppId(ctx.app_id().to_string()),
            exec_id: 0,
        })
        .expect("sent");

    wait_gone(std::slice::from_ref(&victim));
    // The worker reports it KILLED to the master, which tells the driver...
    wait_until("the worker lists executor 0 as killed", DEADLINE, || {
        worker.state().is_ok_and(|s| {
            s.finished_executors
                .iter()
                .any(|e| e.exec_id == 0 && e.state == ExecutorState::Killed)
        })
    });
    wait_until("the driver has dropped executor 0", DEADLINE, || {
        cluster.driver_has_executor(&ctx, "0") == Ok(false)
    });
    // ... and gives the application a new executor on the freed core.
    wait_until("a replacement executor runs", DEADLINE, || {
        cluster
            .executor_processes()
            .iter()
            .any(|p| p.worker_url == victim.worker_url && p.executor_id != "0")
    });
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors again");
    let ran_on: Vec<(String, u32)> = ctx.run_job("whoami", vec![0u32; 20]).expect("succeeds");
    assert!(ran_on.iter().all(|(id, _)| id != "0"), "{ran_on:?}");
    let all = cluster.executor_processes();
    stop_and_check(&cluster, &all);
}

#[test]
fn an_executor_killed_from_outside_is_replaced_and_jobs_go_on() {
    let cluster = cluster(2, 1, &[]);
    let ctx = cluster.context("kill-9").expect("registers");
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors");
    let killed = cluster
        .kill_executor(ctx.app_id(), "1")
        .expect("executor 1 is killed");
    wait_gone(std::slice::from_ref(&killed));
    wait_until("the driver has dropped executor 1", DEADLINE, || {
        cluster.driver_has_executor(&ctx, "1") == Ok(false)
    });
    let worker = cluster
        .worker(worker_of(&cluster, &killed))
        .expect("its worker runs");
    // A process that died by itself EXITED (where one the worker killed is KILLED).
    wait_until("the worker lists executor 1 as exited", DEADLINE, || {
        worker.state().is_ok_and(|s| {
            s.finished_executors
                .iter()
                .any(|e| e.exec_id == 1 && e.state == ExecutorState::Exited)
        })
    });
    let out: Vec<u64> = ctx
        .run_job("square", (0..10u64).collect())
        .expect("jobs go on");
    assert_eq!(out, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    match cluster.kill_executor(ctx.app_id(), "1") {
        Err(ember::Error::Process(message)) => {
            assert!(
                message.contains("No running process of executor 1"),
                "{message}"
            )
        }
        other => panic!("the executor is gone: {other:?}"),
    }
    let all = cluster.executor_processes();
    stop_and_check(&cluster, &all);
}

#[test]
fn a_lost_worker_takes_its_executors_and_jobs_finish_on_the_others() {
    let cluster = cluster(2, 1, &[]);
    let ctx = cluster.context("lost-worker").expect("registers");
    cluster
        .wait_for_executors(&ctx, 2, DEADLINE)
        .expect("two executors");
    let before = cluster.executor_processes();
    let worker_url = cluster.worker(0).expect("worker 0").url();
    let on_lost: Vec<ExecutorProcess> = before
        .iter()
        .filter(|p| p.worker_url.as_deref() == Some(worker_url.as_str()))
        .cloned()
        .collect();
    assert_eq!(on_lost.len(), 1, "{before:?}");

    assert!(cluster.kill_worker(0));
    assert!(!cluster.kill_worker(0), "killed once");
    // The worker killed its executors before it went.
    assert!(!on_lost[0].is_running());
    wait_until("the master has lost the worker", DEADLINE, || {
        cluster
            .state()
            .is_ok_and(|s| s.workers.iter().filter(|w| w.state == "ALIVE").count() == 1)
    });
    wait_until("the driver has dropped the executor", DEADLINE, || {
        cluster.driver_has_executor(&ctx, &on_lost[0].executor_id) == Ok(false)
    });
    let out: Vec<(String, u32)> = ctx.run_job("whoami", vec![0u32; 6]).expect("succeeds");
    assert!(out.iter().all(|(id, _)| *id != on_lost[0].executor_id));
    stop_and_check(&cluster, &before);
}

#[test]
fn an_executor_that_cannot_start_fails_its_app_after_the_retry_budget() {
    let cluster = cluster(1, 1, &[("ember.deploy.maxExecutorRetries", "3")]);
    // A first app holds the only core, so the doomed one registers and waits: its context
    // starts for sure (were its executors launched at once, it could be dead before
    // `Context::new` returns, which then fails with the reason).
    let blocker = cluster.context("blocker").expect("registers");
    cluster
        .wait_for_executors(&blocker, 1, DEADLINE)
        .expect("the blocker holds the core");
    let ctx = cluster
        .context_with(
            "cannot-start",
            &[("ember.executor.program", "/nonexistent/ember-executor")],
        )
        .expect("registers");
    let pending = ctx
        .submit_job::<u64, u64>("square", vec![1])
        .expect("submitted");
    blocker.stop();
    wait_until("the master fails the application", DEADLINE, || {
        cluster.state().is_ok_and(|s| {
            cluster_support::app(&s, ctx.app_id()).is_some_and(|a| a.state == "FAILED")
        })
    });
    // Exactly the budget's worth of launches (RecoverySuite counts them too).
    let worker = cluster.worker(0).expect("the worker runs");
    let finished: Vec<_> = worker
        .state()
        .expect("the worker answers")
        .finished_executors
        .into_iter()
        .filter(|e| e.app_id.0 == ctx.app_id())
        .collect();
    let ids: Vec<u32> = finished.iter().map(|e| e.exec_id).collect();
    assert_eq!(ids, vec![0, 1, 2], "{finished:?}");
    assert!(finished.iter().all(|e| e.state == ExecutorState::Failed));
    // The driver was told: its waiting job fails, and new jobs are refused.
    let expected = "Application has been killed. Reason: Master removed our application: FAILED";
    let error = pending
        .wait_timeout(DEADLINE)
        .expect("the waiting job ends")
        .expect_err("the application is dead");
    assert!(error.to_string().contains(expected), "{error}");
    let error = ctx
        .run_job::<u64, u64>("square", vec![1])
        .expect_err("the application is dead");
    assert!(error.to_string().contains(expected), "{error}");
    stop_and_check(&cluster, &[]);
}

/// Ember's own: an executor that exits at once, before it ever registers with its driver,
/// counts against the budget although its worker reported it RUNNING (Spark resets the
/// budget on that RUNNING and relaunches it for ever).
#[test]
fn an_executor_that_exits_before_registering_counts_against_the_budget() {
    let cluster = cluster(1, 1, &[("ember.deploy.maxExecutorRetries", "3")]);
    let ctx = cluster
        .context_with("exits-at-once", &[("ember.executor.program", "/bin/false")])
        .expect("registers");
    wait_until("the master fails the application", DEADLINE, || {
        cluster.state().is_ok_and(|s| {
            cluster_support::app(&s, ctx.app_id()).is_some_and(|a| a.state == "FAILED")
        })
    });
    let worker = cluster.worker(0).expect("the worker runs");
    let ids: Vec<u32> = worker
        .state()
        .expect("the worker answers")
        .finished_executors
        .into_iter()
        .filter(|e| e.app_id.0 == ctx.app_id())
        .map(|e| e.exec_id)
        .collect();
    assert_eq!(ids, vec![0, 1, 2], "exactly the budget's worth of launches");
    stop_and_check(&cluster, &[]);
}
