//! How the driver endpoint loses executors in standalone mode (Spark's
//! `StandaloneDriverEndpoint`: a dropped connection waits for the master's reason) and what
//! it does when none is left (`ember.scheduler.executorLossGrace`). Over a real loopback env
//! with fake executors.

pub mod util;

use std::time::Duration;

use ember_scheduler::{DriverControl, ExecutorId, ExecutorLossReason, JobError, SchedulerConf};
use util::{
    echoed, job, outcome, spark_cores, wait_until, Driver, DriverSetup, FakeExecutor, DEADLINE,
};

/// A disconnected executor takes no new tasks, but its running task waits for the master's
/// word on how it ended (here: killed by a signal, the application's fault) before it runs
/// again elsewhere, as a retry counted against `maxFailures`.
#[test]
fn a_disconnected_executor_waits_for_the_masters_reason() {
    let d = Driver::start(DriverSetup {
        // Far longer than the test: only the master's reason can release the task.
        disconnect_removal_delay: Some(Duration::from_secs(600)),
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 1));
    let on_a = a.wait_launches(1);
    let b = FakeExecutor::start_finishing(&d.addr(), "b", "hostB", 1);
    wait_until("executor b counts", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    a.disconnect();
    wait_until("executor a stops counting", DEADLINE, || {
        d.executor_count() == (1, 1)
    });
    assert_eq!(d.executor_ids(), ["a", "b"], "kept until its reason comes");
    d.send(DriverControl::ReviveOffers);
    assert!(d.stop_executors());
    b.wait_stops(1);
    assert!(b.launches().is_empty(), "not resubmitted before the reason");
    d.send(DriverControl::RemoveExecutor {
        executor_id: ExecutorId::new("a"),
        reason: ExecutorLossReason::Exited {
            exit_code: 137,
            exit_caused_by_app: true,
            reason: "Command exited with code 137".into(),
        },
    });
    assert_eq!(outcome(&job), Ok(echoed(0, 1)));
    let on_b = b.launches();
    assert_eq!((on_b[0].index, on_b[0].attempt_number), (on_a[0].index, 1));
    assert_eq!(d.executor_ids(), ["b"]);
}

/// When the master never says why (its message lost, or no master), the disconnected
/// executor is removed as disassociated once the delay passes, and its task runs elsewhere.
#[test]
fn a_disconnected_executor_is_removed_after_the_delay() {
    let d = Driver::start(DriverSetup {
        disconnect_removal_delay: Some(Duration::from_millis(200)),
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 1));
    a.wait_launches(1);
    let b = FakeExecutor::start_finishing(&d.addr(), "b", "hostB", 1);
    wait_until("executor b counts", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    a.disconnect();
    assert_eq!(outcome(&job), Ok(echoed(0, 1)));
    assert!(!d.is_alive("a"));
    assert_eq!(b.launches().len(), 1);
}

/// Once every executor is gone and none comes back within the grace period, running jobs
/// fail with an error that says so, rather than hang.
#[test]
fn jobs_fail_when_no_executor_comes_back() {
    let d = Driver::start(DriverSetup {
        scheduler: SchedulerConf {
            executor_loss_grace: Duration::from_millis(300),
            ..spark_cores()
        },
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let first = d.submit(job(0, 2));
    a.wait_launches(1);
    a.disconnect();
    let Err(JobError::Failed { message }) = outcome(&first) else {
        panic!("the job must fail");
    };
    assert_eq!(
        message,
        "every executor of the application was lost and none came back within 300 ms \
         (ember.scheduler.executorLossGrace)"
    );
    // A job submitted while there is still no executor fails the same way.
    let later = d.submit(job(1, 1));
    assert!(matches!(outcome(&later), Err(JobError::Failed { .. })));
}

/// An executor that registers within the grace period takes over the work: the job
/// finishes.
#[test]
fn a_replacement_within_the_grace_period_finishes_the_job() {
    let d = Driver::start(DriverSetup {
        scheduler: SchedulerConf {
            executor_loss_grace: Duration::from_secs(20),
            ..spark_cores()
        },
        ..DriverSetup::default()
    });
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 2));
    a.wait_launches(1);
    a.disconnect();
    wait_until("executor a is removed", DEADLINE, || !d.is_alive("a"));
    let _b = FakeExecutor::start_finishing(&d.addr(), "b", "hostB", 1);
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
}
