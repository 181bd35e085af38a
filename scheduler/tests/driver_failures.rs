//! The driver endpoint when things go wrong: tasks too large to send, executors whose
//! connection drops or that are removed, kills, cancelled and aborted jobs. Over a real
//! loopback env with fake executors; a CoarseGrainedSchedulerBackendSuite number is the
//! test's place in that suite.

pub mod util;

use bytes::Bytes;
use ember_scheduler::{DriverControl, ExecutorId, ExecutorLossReason, JobError, JobId, TaskId};
use rpc_env::{keys, RpcConf};
use util::{
    echoed, job, job_of, outcome, wait_until, Driver, DriverSetup, FakeExecutor, Seen, DEADLINE,
};

/// CGSB #1 "serialized task larger than max RPC message size": with
/// `ember.rpc.message.maxSize = 1` (MiB), a task with a 2 MiB input fails its job with
/// Spark's message (Ember's key names); the executor never sees it, and a small job then
/// still runs.
#[test]
fn a_task_over_the_message_limit_fails_its_job() {
    let d = Driver::start(DriverSetup {
        rpc: RpcConf::new().with(keys::MESSAGE_MAX_SIZE, "1"),
        ..DriverSetup::default()
    });
    let executor = FakeExecutor::start_finishing(&d.addr(), "1", "host1", 2);
    wait_until("executor 1 counts", DEADLINE, || {
        d.executor_count() == (1, 2)
    });
    let big = Bytes::from(vec![7u8; 2 << 20]);
    let job0 = d.submit(job_of(0, vec![big], |_| Vec::new()));
    let Err(JobError::Failed { message }) = outcome(&job0) else {
        panic!("the job must fail");
    };
    assert!(message.starts_with("Serialized task 0:0 was "), "{message}");
    assert!(
        message.contains(
            " bytes, which exceeds max allowed: ember.rpc.message.maxSize (1048576 bytes). \
             Consider increasing ember.rpc.message.maxSize"
        ),
        "{message}"
    );
    let job1 = d.submit(job(1, 4));
    assert_eq!(outcome(&job1), Ok(echoed(1, 4)));
    let launched = executor.launches();
    assert_eq!(launched.len(), 4, "only the small job's tasks were sent");
    assert!(launched.iter().all(|t| t.job_id == JobId(1)));
}

/// CGSB #1 with the size in the job's properties instead of the input (Spark counts the
/// whole encoded `TaskDescription`, properties included): the job fails with the
/// message-size error instead of its task being lost.
#[test]
fn large_properties_count_towards_the_message_limit() {
    let d = Driver::start(DriverSetup {
        rpc: RpcConf::new().with(keys::MESSAGE_MAX_SIZE, "1"),
        ..DriverSetup::default()
    });
    let executor = FakeExecutor::start_finishing(&d.addr(), "1", "host1", 1);
    wait_until("executor 1 counts", DEADLINE, || {
        d.executor_count() == (1, 1)
    });
    let mut set = job(0, 1);
    set.properties
        .insert("user.note".into(), "x".repeat(3 << 19));
    let job0 = d.submit(set);
    let Err(JobError::Failed { message }) = outcome(&job0) else {
        panic!("the job must fail");
    };
    assert!(
        message.contains("exceeds max allowed: ember.rpc.message.maxSize (1048576 bytes)"),
        "{message}"
    );
    assert!(executor.launches().is_empty());
}

/// Ember's own (CGSB #1's limit is per task, as Spark sends one `LaunchTask` per task):
/// tasks each under `ember.rpc.message.maxSize` run, even when one offer round launches
/// several of them on one executor and together they are over the limit.
#[test]
fn tasks_under_the_limit_run_even_if_together_they_are_over_it() {
    let d = Driver::start(DriverSetup {
        rpc: RpcConf::new().with(keys::MESSAGE_MAX_SIZE, "1"),
        ..DriverSetup::default()
    });
    let executor = FakeExecutor::start_finishing(&d.addr(), "1", "host1", 2);
    wait_until("executor 1 counts", DEADLINE, || {
        d.executor_count() == (1, 2)
    });
    let input = Bytes::from(vec![7u8; 600 << 10]);
    let job0 = d.submit(job_of(0, vec![input.clone(), input.clone()], |_| {
        Vec::new()
    }));
    assert_eq!(outcome(&job0), Ok(vec![input.clone(), input]));
    assert_eq!(executor.launches().len(), 2);
}

/// Ember's own (Spark's `onDisconnected` → `removeExecutor`): when an executor's connection
/// drops, it is removed and its running task is resubmitted to another executor.
#[test]
fn a_disconnected_executors_tasks_run_elsewhere() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    wait_until("executor a counts", DEADLINE, || {
        d.executor_count() == (1, 1)
    });
    let job = d.submit(job(0, 1));
    let on_a = a.wait_launches(1);
    let b = FakeExecutor::start_finishing(&d.addr(), "b", "hostB", 1);
    wait_until("executor b counts", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    assert!(b.launches().is_empty(), "nothing is pending yet");
    a.disconnect();
    assert_eq!(outcome(&job), Ok(echoed(0, 1)));
    let on_b = b.launches();
    assert_eq!(on_b.len(), 1);
    assert_eq!((on_b[0].index, on_b[0].attempt_number), (0, 1));
    assert_ne!(on_b[0].task_id, on_a[0].task_id);
    assert!(!d.is_alive("a"));
    assert!(d.is_alive("b"));
    assert_eq!(d.executor_count(), (1, 1));
}

/// Ember's own (Spark's `RemoveExecutor`): removing an executor fails its running attempts
/// (counted when the loss is the application's and the attempt was running: with
/// `maxFailures = 1` the job fails with the loss reason) and forgets it.
#[test]
fn a_removed_executors_running_task_fails_its_job() {
    let d = Driver::start(DriverSetup {
        max_failures: 1,
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 1));
    let on_a = a.wait_launches(1);
    a.report(&on_a[0], ember_scheduler::TaskStatus::Running);
    let reason = ExecutorLossReason::ProcessLost {
        message: "Worker lost".into(),
        worker_host: None,
        caused_by_app: true,
    };
    // The RUNNING update is handled before this ask, which follows it on a's connection.
    a.barrier();
    assert!(d.is_alive("a"));
    d.send(DriverControl::RemoveExecutor {
        executor_id: ExecutorId::new("a"),
        reason,
    });
    let Err(JobError::Failed { message }) = outcome(&job) else {
        panic!("the job must fail");
    };
    assert_eq!(
        message,
        "Task 0 in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
         (executor a exited caused by one of the running tasks) Reason: Worker lost"
    );
    assert!(!d.is_alive("a"));
    assert_eq!(d.executor_count(), (0, 0));
}

/// TSI #13 "tasks are not re-scheduled while executor loss reason is pending", end to end:
/// `RemoveExecutor` with `Pending` stops offers to the executor but keeps its running
/// attempt; when the real reason follows, the attempt is resubmitted elsewhere.
#[test]
fn a_pending_loss_reason_holds_tasks_until_the_real_one() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 1));
    let on_a = a.wait_launches(1);
    let b = FakeExecutor::start_finishing(&d.addr(), "b", "hostB", 1);
    wait_until("executor b counts", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    d.send(DriverControl::RemoveExecutor {
        executor_id: ExecutorId::new("a"),
        reason: ExecutorLossReason::Pending,
    });
    d.send(DriverControl::ReviveOffers);
    assert!(d.stop_executors());
    b.wait_stops(1);
    assert!(
        b.launches().is_empty(),
        "not resubmitted while the reason is pending"
    );
    d.send(DriverControl::RemoveExecutor {
        executor_id: ExecutorId::new("a"),
        reason: ExecutorLossReason::ProcessLost {
            message: "oops".into(),
            worker_host: None,
            caused_by_app: true,
        },
    });
    assert_eq!(outcome(&job), Ok(echoed(0, 1)));
    let on_b = b.launches();
    assert_eq!((on_b[0].index, on_b[0].attempt_number), (on_a[0].index, 1));
}

/// Ember's own (Spark's `KillTask` → `executorData.executorEndpoint.send(KillTask(..))`):
/// a kill goes to the executor running the attempt, and only there.
#[test]
fn kill_task_goes_to_the_attempts_executor() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let b = FakeExecutor::start(&d.addr(), "b", "hostB", 1);
    wait_until("both executors count", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    let job = d.submit(job(0, 2));
    let on_a = a.wait_launches(1);
    let on_b = b.wait_launches(1);
    d.send(DriverControl::KillTask {
        task_id: on_b[0].task_id,
        reason: "because".into(),
    });
    d.send(DriverControl::KillTask {
        task_id: TaskId(999),
        reason: "nobody runs this".into(),
    });
    assert!(d.stop_executors());
    a.wait_stops(1);
    b.wait_stops(1);
    assert_eq!(a.seen(), [Seen::Launch(on_a[0].clone()), Seen::Stop]);
    assert_eq!(b.kills(), [(on_b[0].task_id, "because".to_string())]);
    // The killed attempt (reported KILLED by b) does not count: it runs again, on b.
    let again = b.wait_launches(2);
    assert_eq!(
        (again[1].index, again[1].attempt_number),
        (on_b[0].index, 1)
    );
    a.finish(&on_a[0], &format!("0:{}", on_a[0].index));
    b.finish(&again[1], &format!("0:{}", again[1].index));
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
}

/// TSI #57 "killAllTaskAttempts shall kill all the running tasks", end to end: cancelling a
/// job kills its running attempts with `Stage cancelled: <reason>` and ends the job as
/// cancelled; other jobs go on.
#[test]
fn cancel_job_kills_its_running_attempts() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 2);
    let job0 = d.submit(job(0, 4));
    let running = a.wait_launches(2);
    d.send(DriverControl::CancelJob {
        job_id: JobId(0),
        reason: "user asked".into(),
    });
    assert_eq!(
        outcome(&job0),
        Err(JobError::Cancelled {
            reason: "user asked".into()
        })
    );
    wait_until("both attempts are killed", DEADLINE, || {
        a.kills().len() == 2
    });
    let mut kills = a.kills();
    kills.sort();
    let expected: Vec<(TaskId, String)> = running
        .iter()
        .map(|t| (t.task_id, "Stage cancelled: user asked".to_string()))
        .collect();
    assert_eq!(kills, expected);
    a.auto_finish(true);
    let job1 = d.submit(job(1, 3));
    assert_eq!(outcome(&job1), Ok(echoed(1, 3)));
    assert!(
        a.launches()
            .iter()
            .all(|t| t.job_id == JobId(1) || t.index < 2),
        "the cancelled job launched nothing more"
    );
}

/// Ember's own (Spark's `scheduler.error` on a dead application): `AbortAll` fails every
/// job with its message.
#[test]
fn abort_all_fails_every_job() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job0 = d.submit(job(0, 1));
    a.wait_launches(1);
    let job1 = d.submit(job(1, 1));
    d.send(DriverControl::AbortAll {
        message: "Master removed our application: KILLED".into(),
    });
    for job in [&job0, &job1] {
        assert_eq!(
            outcome(job),
            Err(JobError::Failed {
                message: "Master removed our application: KILLED".into()
            })
        );
    }
}

/// Ember's own: stopping the driver ends its running jobs as cancelled.
#[test]
fn stopping_the_driver_cancels_running_jobs() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 2));
    a.wait_launches(1);
    d.env.stop_now();
    assert_eq!(
        outcome(&job),
        Err(JobError::Cancelled {
            reason: "the driver stopped".into()
        })
    );
}
