//! Who may tell the driver endpoint what. Jobs, cancellation and the rest of
//! `DriverControl` come only from the driver's own process: a peer that holds the cluster's
//! secret and writes the very frames the old wire protocol had for them (`CancelJob`,
//! `AbortAll`, `KillTask`, ...) gets its connection closed, and the job runs on. And an
//! executor's messages are accepted only from that executor's connection: refused ones are
//! counted, never acted on.

pub mod util;

use bytes::Bytes;
use ember_scheduler::{
    AppConfig, DriverMessage, ExecutorId, ExecutorLossReason, JobId, TaskId, TaskStatus,
    TaskUpdate, DRIVER_ENDPOINT_NAME,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rpc_env::{
    keys, message, EndpointContext, Protocol, Reply, RpcAddress, RpcConf, RpcEndpoint, RpcEnv,
    RpcEnvConfig,
};
use util::{
    answer, job, outcome, wait_until, Driver, DriverSetup, Env, FakeExecutor, Seen, DEADLINE,
};

/// The cluster's secret in these tests.
const SECRET: &str = "driver-senders-secret-0123456789";

fn authenticated() -> RpcConf {
    RpcConf::new()
        .with(keys::AUTHENTICATE, "true")
        .with(keys::AUTHENTICATE_SECRET, SECRET)
}

message! {
    /// `DriverMessage` as it was when local-only messages were part of it: the same
    /// variants, in the same order, so these encode to the frames a driver of then decoded
    /// and acted on.
    pub enum OldDriverMessage {
        /// Tag 0.
        LaunchedExecutor {
            /// The executor.
            executor_id: ExecutorId,
        },
        /// Tag 1.
        StatusUpdate {
            /// The executor.
            executor_id: ExecutorId,
            /// Its updates.
            updates: Vec<TaskUpdate>,
        },
        /// Tag 2.
        ReviveOffers,
        /// Tag 3.
        CheckSpeculation,
        /// Tag 4.
        CheckDeadlines,
        /// Tag 5.
        KillTask {
            /// The attempt.
            task_id: TaskId,
            /// Why.
            reason: String,
        },
        /// Tag 6.
        RemoveExecutor {
            /// The executor.
            executor_id: ExecutorId,
            /// Why.
            reason: ExecutorLossReason,
        },
        /// Tag 7.
        ExecutorUnresponsive {
            /// The executor.
            executor_id: ExecutorId,
            /// For how long.
            silent_ms: u64,
        },
        /// Tag 8 (its fields were `LocalOnly`, which never decoded).
        SubmitJob,
        /// Tag 9.
        CancelJob {
            /// The job.
            job_id: JobId,
            /// Why.
            reason: String,
        },
        /// Tag 10.
        AbortAll {
            /// Why.
            message: String,
        },
    }
}

message! {
    /// `DriverAsk` as it was: local asks after the two executors send.
    pub enum OldDriverAsk {
        /// Tag 0 (not sent here).
        RegisterExecutor,
        /// Tag 1, still on the wire: the barrier.
        RetrieveAppConfig {
            /// The answer.
            reply: Reply<AppConfig>,
        },
        /// Tag 2.
        StopExecutors {
            /// The answer.
            reply: Reply<bool>,
        },
    }
}

/// The old driver protocol, as a peer that still speaks it sees the driver endpoint.
pub struct OldDriverProtocol;

impl Protocol for OldDriverProtocol {
    type Message = OldDriverMessage;
    type Ask = OldDriverAsk;
    type Control = rpc_env::NoMessage;
}

/// Counts the connections of its env that closed.
struct Watcher(Arc<AtomicUsize>);

/// The watcher's protocol: it takes no messages.
pub struct WatcherProtocol;

impl Protocol for WatcherProtocol {
    type Message = rpc_env::NoMessage;
    type Ask = rpc_env::NoMessage;
    type Control = rpc_env::NoMessage;
}

impl RpcEndpoint for Watcher {
    type Protocol = WatcherProtocol;

    fn on_disconnected(&mut self, _ctx: &EndpointContext<'_, WatcherProtocol>, _: &RpcAddress) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A peer with the cluster's secret, outside the application, that finds the driver
/// endpoint under the old protocol and sees its connection close.
struct Intruder {
    env: Env,
    driver: rpc_env::EndpointRef<OldDriverProtocol>,
    closed: Arc<AtomicUsize>,
}

impl Intruder {
    fn new(driver: &Driver, name: &str) -> Intruder {
        let env =
            Env(RpcEnv::create(RpcEnvConfig::client(name).with_conf(authenticated())).unwrap());
        let closed = Arc::new(AtomicUsize::new(0));
        env.setup_endpoint("watcher", Watcher(Arc::clone(&closed)))
            .unwrap();
        // Not looked up: a lookup would refuse the old protocol (its fingerprint differs)
        // before the driver ever saw an old message.
        let driver = env.endpoint_ref_at::<OldDriverProtocol>(&driver.addr(), DRIVER_ENDPOINT_NAME);
        Intruder {
            env,
            driver,
            closed,
        }
    }

    /// Waits until the driver has closed the connection.
    #[track_caller]
    fn wait_closed(&self, what: &str) {
        wait_until(
            &format!("{what}: the driver closes the connection"),
            DEADLINE,
            || self.closed.load(Ordering::SeqCst) > 0,
        );
        self.env.stop_now();
    }
}

#[test]
fn an_authenticated_peer_cannot_cancel_abort_or_kill_through_the_old_frames() {
    let d = Driver::start(DriverSetup {
        rpc: authenticated(),
        ..DriverSetup::default()
    });
    let (a, registered) = FakeExecutor::register_with(authenticated(), &d.addr(), "a", "hostA", 1);
    assert_eq!(registered, Ok(true));
    a.launched();
    let job = d.submit(job(0, 1));
    let task = a.wait_launches(1).remove(0);
    a.report(&task, TaskStatus::Running);

    // The peer is authenticated and reaches the endpoint: a wire ask is answered.
    let probe = Intruder::new(&d, "probe");
    let config = answer(
        probe
            .driver
            .ask(|reply| OldDriverAsk::RetrieveAppConfig { reply }),
    );
    assert!(config.is_ok(), "{config:?}");
    assert_eq!(probe.closed.load(Ordering::SeqCst), 0);

    let forged: Vec<(&str, OldDriverMessage)> = vec![
        (
            "CancelJob",
            OldDriverMessage::CancelJob {
                job_id: JobId(0),
                reason: "forged".into(),
            },
        ),
        (
            "AbortAll",
            OldDriverMessage::AbortAll {
                message: "forged".into(),
            },
        ),
        (
            "KillTask",
            OldDriverMessage::KillTask {
                task_id: task.task_id,
                reason: "forged".into(),
            },
        ),
        (
            "RemoveExecutor",
            OldDriverMessage::RemoveExecutor {
                executor_id: ExecutorId::new("a"),
                reason: ExecutorLossReason::ProcessLost {
                    message: "forged".into(),
                    worker_host: None,
                    caused_by_app: true,
                },
            },
        ),
        (
            "ExecutorUnresponsive",
            OldDriverMessage::ExecutorUnresponsive {
                executor_id: ExecutorId::new("a"),
                silent_ms: 1_000_000,
            },
        ),
        ("SubmitJob", OldDriverMessage::SubmitJob),
    ];
    for (what, msg) in forged {
        let intruder = Intruder::new(&d, what);
        intruder.driver.send(msg).expect("the frame leaves");
        // The frame does not decode as anything the driver takes: the connection closes.
        intruder.wait_closed(what);
    }
    let intruder = Intruder::new(&d, "StopExecutors");
    let stopped = answer(
        intruder
            .driver
            .ask(|reply| OldDriverAsk::StopExecutors { reply }),
    );
    // A failure frame (`Malformed message`) is sent before the close, but may not win the
    // race with it: either way the ask fails.
    assert!(stopped.is_err(), "StopExecutors: {stopped:?}");
    intruder.wait_closed("StopExecutors");

    // Nothing was acted on: the job runs, its task was not killed, the executor neither
    // removed nor told to stop.
    assert!(!job.is_done(), "the job was neither cancelled nor aborted");
    assert!(d.is_alive("a"));
    assert_eq!(a.seen(), vec![Seen::Launch(task.clone())]);
    a.finish(&task, "0:0");
    assert_eq!(outcome(&job), Ok(vec![Bytes::from("0:0")]));
}

#[test]
fn an_executor_status_update_is_accepted_only_from_that_executors_connection() {
    let d = Driver::start(DriverSetup::default());
    let a = FakeExecutor::start(&d.addr(), "a", "hostA", 1);
    let job = d.submit(job(0, 1));
    let task = a.wait_launches(1).remove(0);
    let b = FakeExecutor::start(&d.addr(), "b", "hostB", 1);
    assert_eq!(d.refused_messages(), 0);

    // b speaks for a: refused.
    let forged = |executor: &str| DriverMessage::StatusUpdate {
        executor_id: ExecutorId::new(executor),
        updates: vec![TaskUpdate {
            task_id: task.task_id,
            status: TaskStatus::Finished {
                result: Bytes::from("forged"),
            },
            cpus: 1,
            run_micros: 1,
        }],
    };
    b.driver.send(forged("a")).unwrap();
    b.barrier();
    assert_eq!(d.refused_messages(), 1);
    // b reports a's task as its own: refused too (one executor cannot end another's task).
    b.driver.send(forged("b")).unwrap();
    b.barrier();
    assert_eq!(d.refused_messages(), 2);
    // A registered executor's LaunchedExecutor for another: refused.
    b.driver
        .send(DriverMessage::LaunchedExecutor {
            executor_id: ExecutorId::new("a"),
        })
        .unwrap();
    b.barrier();
    assert_eq!(d.refused_messages(), 3);

    // A peer that never registered, naming a known executor (refused) and an unknown one
    // (not taken either: nobody's to refuse).
    let (stranger, registered) = FakeExecutor::register(&d.addr(), "a", "hostC", 1);
    assert!(registered.is_err(), "a's id is taken");
    stranger.driver.send(forged("a")).unwrap();
    stranger.driver.send(forged("nobody")).unwrap();
    stranger.barrier();
    assert_eq!(d.refused_messages(), 4);

    assert!(!job.is_done(), "no forged result was taken");
    a.finish(&task, "0:0");
    assert_eq!(outcome(&job), Ok(vec![Bytes::from("0:0")]));
    assert_eq!(d.refused_messages(), 4, "a's own update is accepted");
    assert!(b.launches().is_empty());
}
