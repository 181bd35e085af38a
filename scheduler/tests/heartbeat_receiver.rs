//! The heartbeat receiver with the driver endpoint over a real loopback env: ports of Spark's
//! `HeartbeatReceiverSuite` where they apply.
//!
//! Not ported here: "task scheduler is set correctly" and "reregister if scheduler is not
//! ready yet" (Ember's receiver is built with its driver's ref, so there is no scheduler to
//! wait for); "expire dead hosts should kill executors with replacement (SPARK-8119)" needs a
//! cluster manager, and is tested end to end in the root crate's `tests/fault_injection.rs`
//! (`a_hung_executor_is_found_by_its_heartbeats_killed_and_replaced`); "SPARK-34273: Do not
//! reregister BlockManager when SparkContext is stopped" (Ember has no block manager); the
//! two "SPARK-44726" configuration checks (Ember does not check that
//! `ember.network.timeoutInterval` is at most `ember.network.timeout`).

pub mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ember_scheduler::{DriverControl, ExecutorId, ExecutorLossReason, HeartbeatResponse};
use util::{
    echoed, heartbeat_as, job, outcome, wait_until, Driver, DriverSetup, FakeExecutor, DEADLINE,
};

const KNOWN: HeartbeatResponse = HeartbeatResponse {
    unknown_executor: false,
};
const UNKNOWN: HeartbeatResponse = HeartbeatResponse {
    unknown_executor: true,
};

/// A driver with a heartbeat receiver: executors silent for `timeout` are lost, checked
/// every 10 ms.
fn driver_with_heartbeats(timeout: Duration) -> Driver {
    Driver::start(DriverSetup {
        heartbeat: Some((timeout, Duration::from_millis(10))),
        ..DriverSetup::default()
    })
}

/// HeartbeatReceiverSuite "normal heartbeat": registered executors' heartbeats are known.
#[test]
fn registered_executors_heartbeats_are_known() {
    let d = driver_with_heartbeats(Duration::from_secs(120));
    let one = FakeExecutor::start(&d.addr(), "1", "host1", 1);
    let (two, registered) = FakeExecutor::register(&d.addr(), "2", "host2", 1);
    assert_eq!(registered, Ok(true));
    assert_eq!(one.heartbeat(&d.addr()), KNOWN);
    assert_eq!(two.heartbeat(&d.addr()), KNOWN, "known once registered");
    assert_eq!(one.heartbeat(&d.addr()), KNOWN);
}

/// HeartbeatReceiverSuite "reregister if heartbeat from unregistered executor".
#[test]
fn an_unregistered_executors_heartbeat_is_unknown() {
    let d = driver_with_heartbeats(Duration::from_secs(120));
    let one = FakeExecutor::start(&d.addr(), "1", "host1", 1);
    assert_eq!(heartbeat_as(&one.env, &d.addr(), "ghost"), UNKNOWN);
    assert_eq!(one.heartbeat(&d.addr()), KNOWN);
}

/// HeartbeatReceiverSuite "reregister if heartbeat from removed executor".
#[test]
fn a_removed_executors_heartbeat_is_unknown() {
    let d = driver_with_heartbeats(Duration::from_secs(120));
    let one = FakeExecutor::start(&d.addr(), "1", "host1", 1);
    let two = FakeExecutor::start(&d.addr(), "2", "host2", 1);
    assert_eq!(two.heartbeat(&d.addr()), KNOWN);
    d.send(DriverControl::RemoveExecutor {
        executor_id: ExecutorId::new("2"),
        reason: ExecutorLossReason::Killed,
    });
    wait_until("executor 2's heartbeat is unknown", DEADLINE, || {
        two.heartbeat(&d.addr()) == UNKNOWN
    });
    assert_eq!(one.heartbeat(&d.addr()), KNOWN);
    assert!(!d.is_alive("2"));
    assert!(d.is_alive("1"));
}

/// Heartbeats as an executor every 20 ms from a thread of its own, until stopped.
struct Heartbeater {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<usize>,
}

impl Heartbeater {
    fn start(executor: &FakeExecutor, d: &Driver) -> Heartbeater {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let env = executor.env.0.clone();
            let addr = d.addr();
            let id = executor.id.as_str().to_string();
            thread::spawn(move || {
                let mut unknown = 0;
                while !stop.load(Ordering::SeqCst) {
                    if heartbeat_as(&env, &addr, &id) == UNKNOWN {
                        unknown += 1;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                unknown
            })
        };
        Heartbeater { stop, thread }
    }

    /// Stops it; how many heartbeats were answered "unknown".
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the heartbeat thread")
    }
}

/// HeartbeatReceiverSuite "expire dead hosts", end to end: an executor that keeps
/// heartbeating stays; one that goes silent longer than the timeout is removed from the
/// driver and told to stop, and its running task is resubmitted and the job completes.
#[test]
fn a_silent_executor_expires_and_its_task_runs_elsewhere() {
    let timeout = Duration::from_millis(1000);
    let d = driver_with_heartbeats(timeout);
    let live = FakeExecutor::start(&d.addr(), "live", "host1", 1);
    let beating = Heartbeater::start(&live, &d);
    let silent = FakeExecutor::start(&d.addr(), "silent", "host2", 1);
    wait_until("both executors count", DEADLINE, || {
        d.executor_count() == (2, 2)
    });
    let job = d.submit(job(0, 2));
    let on_live = live.wait_launches(1);
    let on_silent = silent.wait_launches(1);
    wait_until("the silent executor is removed", DEADLINE, || {
        !d.is_alive("silent")
    });
    assert!(d.is_alive("live"), "heartbeats keep an executor");
    // Still connected, perhaps hung: it is told to stop rather than left running unseen.
    silent.wait_stops(1);
    assert_eq!(silent.heartbeat(&d.addr()), UNKNOWN);
    live.auto_finish(true);
    live.finish(&on_live[0], &format!("0:{}", on_live[0].index));
    assert_eq!(outcome(&job), Ok(echoed(0, 2)));
    let rerun = live.launches();
    assert_eq!(rerun.len(), 2);
    assert_eq!(
        (rerun[1].index, rerun[1].attempt_number),
        (on_silent[0].index, 1)
    );
    assert_eq!(beating.stop(), 0, "live was never forgotten");
    assert!(d.is_alive("live"));
}

/// HeartbeatReceiverSuite "expire dead hosts" with Spark's loss reason
/// (`ExecutorProcessLost("Executor heartbeat timed out after <n> ms")`, the application's
/// fault): a running task lost this way counts, so with `maxFailures = 1` its job fails
/// naming the timeout.
#[test]
fn a_heartbeat_timeout_is_reported_as_the_loss_reason() {
    let timeout = Duration::from_millis(1000);
    let d = Driver::start(DriverSetup {
        heartbeat: Some((timeout, Duration::from_millis(10))),
        max_failures: 1,
        ..DriverSetup::default()
    });
    let executor = FakeExecutor::start(&d.addr(), "quiet", "host1", 1);
    // Heartbeats until its task is known to be RUNNING, then none.
    let beating = Heartbeater::start(&executor, &d);
    let job = d.submit(job(0, 1));
    let task = executor.wait_launches(1).remove(0);
    executor.report(&task, ember_scheduler::TaskStatus::Running);
    // Handled after the RUNNING update, which went before it on the same connection.
    executor.barrier();
    assert!(d.is_alive("quiet"));
    assert_eq!(beating.stop(), 0);
    let Err(ember_scheduler::JobError::Failed { message }) = outcome(&job) else {
        panic!("the job must fail");
    };
    let prefix = "Task 0 in stage 0.0 failed 1 times, most recent failure: ExecutorLostFailure \
                  (executor quiet exited caused by one of the running tasks) Reason: Executor \
                  heartbeat timed out after ";
    let millis = message
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("{message}"));
    let millis: u64 = millis.parse().unwrap_or_else(|_| panic!("{message}"));
    assert!(millis > 1000, "{message}");
    assert!(!d.is_alive("quiet"));
}

/// Ember's own: an executor's heartbeats count only from the connection it registered
/// from, so another peer heartbeating in its name neither learns that it is known nor keeps
/// it alive once it falls silent.
#[test]
fn heartbeats_from_another_peer_do_not_keep_a_silent_executor_alive() {
    let d = driver_with_heartbeats(Duration::from_millis(300));
    let quiet = FakeExecutor::start(&d.addr(), "quiet", "host1", 1);
    let other = FakeExecutor::start(&d.addr(), "other", "host2", 1);
    assert_eq!(quiet.heartbeat(&d.addr()), KNOWN, "from its own connection");
    assert_eq!(heartbeat_as(&other.env, &d.addr(), "quiet"), UNKNOWN);
    wait_until(
        "quiet expires though another peer heartbeats for it",
        DEADLINE,
        || {
            let _ = heartbeat_as(&other.env, &d.addr(), "quiet");
            !d.is_alive("quiet")
        },
    );
}
