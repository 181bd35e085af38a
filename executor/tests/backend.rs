//! The executor backend process (`ember-executor`) against a fake driver: its start
//! sequence, tasks over the wire, heartbeats, and every way it exits.
//!
//! The driver is a server-mode env of this test with a fake `CoarseGrainedScheduler` and
//! `HeartbeatReceiver` (`util`); the executor is the real binary, a child process.

pub mod util;

use std::collections::BTreeMap;

use rpc_env::{encode_to_bytes, RpcEndpoint, RpcEnv, RpcEnvConfig};

use ember_executor::{builtin, local_hostname, WatchedProtocol, EXIT_WORKER_LOST};
use ember_scheduler::{
    ExecutorId, ExecutorMessage, JobId, StageId, TaskDescription, TaskId, TaskStatus,
};
use util::{
    wait_until, DriverEvent, DriverSetup, ExecutorProcess, FakeDriver, Registration, DEADLINE,
};

/// A task for executor `1` running the built-in `function` on `input`.
fn task(tid: u64, function: &str, input: bytes::Bytes) -> TaskDescription {
    TaskDescription {
        task_id: TaskId(tid),
        attempt_number: 0,
        executor_id: ExecutorId::new("1"),
        index: tid as u32,
        partition: tid as u32,
        job_id: JobId(0),
        stage_id: StageId(0),
        stage_attempt: 0,
        function: function.into(),
        properties: BTreeMap::new(),
        cpus: 1,
        input,
    }
}

/// An executor of `driver` that registered and launched, and its ref.
fn launched(
    driver: &FakeDriver,
) -> (
    ExecutorProcess,
    rpc_env::EndpointRef<ember_scheduler::ExecutorProtocol>,
) {
    let process = ExecutorProcess::spawn(&ExecutorProcess::args(&driver.url()));
    let executor = driver.wait_launched();
    (process, executor)
}

/// Spark's start sequence and CGSB 19 "SPARK-41848: executor cores should be
/// decreased based on taskCpus" (the driver counts an executor's cores only from its
/// `LaunchedExecutor`): the executor fetches the application's config, asks
/// `RegisterExecutor` with its `Executor` ref, host, cores and `EMBER_LOG_URL_*` log URLs,
/// and says `LaunchedExecutor` once the registration was answered (that it says nothing
/// before: the next test).
#[test]
fn it_fetches_the_config_registers_and_launches_after_the_answer() {
    let driver = FakeDriver::with(DriverSetup {
        registration: Registration::Hold,
        ..DriverSetup::default()
    });
    let _process = ExecutorProcess::spawn_with_env(
        &ExecutorProcess::args(&driver.url()),
        &[("EMBER_LOG_URL_STDOUT", "http://host/stdout")],
    );
    wait_until("the registration is held", DEADLINE, || {
        driver.registration_held()
    });
    driver.answer_registration(true);
    let events = driver.wait_for("the executor launched", |events| {
        events.contains(&DriverEvent::Launched("1".into()))
    });
    let mut log_urls = BTreeMap::new();
    log_urls.insert("stdout".to_string(), "http://host/stdout".to_string());
    assert_eq!(
        events,
        vec![
            DriverEvent::ConfigFetched,
            DriverEvent::Registered {
                executor_id: "1".into(),
                ref_name: "Executor".into(),
                hostname: "127.0.0.1".into(),
                cores: 2,
                log_urls,
            },
            DriverEvent::Answered(true),
            DriverEvent::Launched("1".into()),
        ]
    );
}

/// The other half of the start sequence: nothing is launched before the registration is
/// answered. The answer is held, then refused; a refused executor exits, and its connection's
/// end reaches the driver after everything it sent. So if it said `LaunchedExecutor` while
/// waiting for the answer, the driver has seen that by then.
#[test]
fn nothing_is_launched_before_the_registration_is_answered() {
    let driver = FakeDriver::with(DriverSetup {
        registration: Registration::Hold,
        ..DriverSetup::default()
    });
    let mut process = ExecutorProcess::spawn(&ExecutorProcess::args(&driver.url()));
    wait_until("the registration is held", DEADLINE, || {
        driver.registration_held()
    });
    driver.answer_registration(false);
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    driver.wait_disconnected();
    let events = driver.events();
    assert!(
        !events.iter().any(|e| matches!(e, DriverEvent::Launched(_))),
        "LaunchedExecutor came before the registration was answered: {events:?}"
    );
}

/// CGEB 11 "track allocated resources by taskId", without resources (Ember has none): a
/// `LaunchTasks` of the built-in `noop` reports `Running` then `Finished` with the encoded
/// input, carrying the task's cores; and CGEB 12's SPARK-24203 default: without
/// `--hostname` the executor registers the machine's host name.
#[test]
fn a_noop_task_reports_running_then_finished_and_the_host_defaults() {
    let driver = FakeDriver::start();
    let args: Vec<String> = ExecutorProcess::args(&driver.url())
        .into_iter()
        .filter(|a| a != "--hostname" && a != "127.0.0.1")
        .collect();
    let _process = ExecutorProcess::spawn(&args);
    let executor = driver.wait_launched();
    let registered = driver.events().into_iter().find_map(|e| match e {
        DriverEvent::Registered { hostname, .. } => Some(hostname),
        _ => None,
    });
    assert_eq!(registered, Some(local_hostname()));
    let mut t = task(7, builtin::NOOP, encode_to_bytes(&41u64));
    t.cpus = 2;
    executor
        .send(ExecutorMessage::LaunchTasks { tasks: vec![t] })
        .unwrap();
    assert_eq!(
        driver.wait_end(7),
        vec![
            TaskStatus::Running,
            TaskStatus::Finished {
                result: encode_to_bytes(&41u64)
            }
        ]
    );
    let cpus: Vec<u32> = driver
        .events()
        .into_iter()
        .filter_map(|e| match e {
            DriverEvent::Status(id, u) if id == "1" => Some(u.cpus),
            _ => None,
        })
        .collect();
    assert_eq!(cpus, vec![2, 2]);
}

/// CGEB 14 "Tasks launched should always be cancelled." (once, over the wire) and
/// HeartbeatReceiverSuite 2 "normal heartbeat" from the executor's side: heartbeats (every
/// `ember.executor.heartbeatInterval`, 100 ms here) list the running tasks; `KillTask` of a
/// running `sleep` task makes it report `Killed` with the reason, and later heartbeats no
/// longer list it.
#[test]
fn kill_task_kills_a_running_task_and_heartbeats_list_running_tasks() {
    let driver = FakeDriver::start();
    let (_process, executor) = launched(&driver);
    executor
        .send(ExecutorMessage::LaunchTasks {
            tasks: vec![task(3, builtin::SLEEP, encode_to_bytes(&60_000u64))],
        })
        .unwrap();
    driver.wait_for("TID 3 runs", |events| {
        events
            .iter()
            .any(|e| matches!(e, DriverEvent::Status(_, u) if u.task_id == TaskId(3)))
    });
    wait_until("a heartbeat lists TID 3", DEADLINE, || {
        driver
            .heartbeats()
            .iter()
            .any(|(id, running)| id == "1" && running == &vec![TaskId(3)])
    });
    executor
        .send(ExecutorMessage::KillTask {
            task_id: TaskId(3),
            reason: "stage cancelled".into(),
        })
        .unwrap();
    assert_eq!(
        driver.wait_end(3),
        vec![
            TaskStatus::Running,
            TaskStatus::Killed {
                reason: "stage cancelled".into()
            }
        ]
    );
    let seen = driver.heartbeats().len();
    wait_until("a later heartbeat lists nothing", DEADLINE, || {
        driver.heartbeats()[seen..]
            .iter()
            .any(|(_, running)| running.is_empty())
    });
}

/// Spark's `StopExecutor` ("Driver commanded a shutdown", then the env stops and
/// `main` exits 0): the process exits 0, though a task was running.
#[test]
fn stop_executor_makes_the_process_exit_0() {
    let driver = FakeDriver::start();
    let (mut process, executor) = launched(&driver);
    executor
        .send(ExecutorMessage::LaunchTasks {
            tasks: vec![task(1, builtin::SLEEP, encode_to_bytes(&60_000u64))],
        })
        .unwrap();
    driver.wait_for("TID 1 runs", |events| {
        events
            .iter()
            .any(|e| matches!(e, DriverEvent::Status(_, u) if u.task_id == TaskId(1)))
    });
    executor.send(ExecutorMessage::StopExecutor).unwrap();
    assert_eq!(process.wait_exit(), 0, "{}", process.stderr());
    assert!(process.stderr().contains("Driver commanded a shutdown"));
}

/// Spark's registration failure (`exitExecutor(1, "Cannot register with
/// driver: <url>")`): a driver answering `false` makes the executor exit 1, and it never
/// says `LaunchedExecutor`.
#[test]
fn a_refused_registration_exits_1() {
    let driver = FakeDriver::with(DriverSetup {
        registration: Registration::Refuse,
        ..DriverSetup::default()
    });
    let mut process = ExecutorProcess::spawn(&ExecutorProcess::args(&driver.url()));
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    assert!(
        process.stderr().contains("Cannot register with driver"),
        "{}",
        process.stderr()
    );
    assert!(!driver
        .events()
        .iter()
        .any(|e| matches!(e, DriverEvent::Launched(_))));
}

/// As above, with the driver failing the ask (Spark's `Duplicate executor ID` answer): exit
/// 1, and the message names the driver's reason.
#[test]
fn a_failed_registration_exits_1_with_the_reason() {
    let driver = FakeDriver::with(DriverSetup {
        registration: Registration::Fail("Duplicate executor ID: 1".into()),
        ..DriverSetup::default()
    });
    let mut process = ExecutorProcess::spawn(&ExecutorProcess::args(&driver.url()));
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    let stderr = process.stderr();
    assert!(stderr.contains("Cannot register with driver"), "{stderr}");
    assert!(stderr.contains("Duplicate executor ID: 1"), "{stderr}");
}

/// Spark's `onDisconnected` of the driver (`exitExecutor(1, "Driver <addr>
/// disassociated! Shutting down.")`): when the driver's env goes away without a
/// `StopExecutor`, the executor exits 1.
#[test]
fn losing_the_driver_exits_1() {
    let driver = FakeDriver::start();
    let (mut process, _executor) = launched(&driver);
    driver.stop_now();
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    let stderr = process.stderr();
    assert!(stderr.contains("Driver"), "{stderr}");
    assert!(stderr.contains("disassociated"), "{stderr}");
}

/// Spark's driver lookup (three attempts, then the process dies): with
/// nothing listening at the driver's address the executor exits 1, saying so.
#[test]
fn an_unreachable_driver_exits_1() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ember://CoarseGrainedScheduler@127.0.0.1:{port}");
    let mut process = ExecutorProcess::spawn(&ExecutorProcess::args(&url));
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    assert!(
        process.stderr().contains("Cannot reach the driver"),
        "{}",
        process.stderr()
    );
}

/// Ember's own, after Spark's `spark.executor.heartbeat.maxFailures` (60) and exit code 56
/// (`HEARTBEAT_FAILURE`): an executor whose every heartbeat fails exits 56.
#[test]
fn heartbeats_that_keep_failing_exit_56() {
    let mut setup = DriverSetup {
        fail_heartbeats: true,
        ..DriverSetup::default()
    };
    setup
        .properties
        .insert("ember.executor.heartbeatInterval".into(), "10ms".into());
    let driver = FakeDriver::with(setup);
    let (mut process, _executor) = launched(&driver);
    assert_eq!(
        process.wait_exit(),
        ember_executor::EXIT_HEARTBEAT_FAILURE,
        "{}",
        process.stderr()
    );
    assert!(driver.heartbeats().len() >= 60);
}

/// A worker's endpoint, as far as the watcher cares: it only has to exist.
struct FakeWorker;

impl RpcEndpoint for FakeWorker {
    type Protocol = WatchedProtocol;
}

/// WorkerWatcherSuite 1 "WorkerWatcher shuts down on valid disassociation", end to end:
/// an executor started with `--worker-url` exits with 255 (Spark's `exit(-1)`) when that
/// worker's env goes away, though its driver is still there.
#[test]
fn losing_the_worker_exits_255() {
    let driver = FakeDriver::start();
    let worker = RpcEnv::create(RpcEnvConfig::server("fake-worker", "127.0.0.1", 0)).unwrap();
    worker.setup_endpoint("Worker", FakeWorker).unwrap();
    let worker_url = format!(
        "ember://Worker@127.0.0.1:{}",
        worker.address().unwrap().port()
    );
    let mut args = ExecutorProcess::args(&driver.url());
    args.extend(["--worker-url".to_string(), worker_url]);
    let mut process = ExecutorProcess::spawn(&args);
    driver.wait_launched();
    wait_until("the watcher connected", DEADLINE, || {
        process.stderr().contains("Connecting to worker")
    });
    assert!(!process.has_exited(), "{}", process.stderr());
    worker.shutdown();
    worker.await_termination();
    let code = process.wait_exit();
    assert_eq!(code, EXIT_WORKER_LOST, "{}", process.stderr());
    assert!(
        process.stderr().contains("Lost connection to worker"),
        "{}",
        process.stderr()
    );
}

/// Spark's `LaunchTask` before the executor exists (`exitExecutor(1, "Received
/// LaunchTask command but executor was null")`): tasks sent while the registration is still
/// unanswered make the executor exit 1.
#[test]
fn tasks_before_the_registration_answer_exit_1() {
    let driver = FakeDriver::with(DriverSetup {
        registration: Registration::Hold,
        ..DriverSetup::default()
    });
    let mut process = ExecutorProcess::spawn(&ExecutorProcess::args(&driver.url()));
    wait_until("the registration is held", DEADLINE, || {
        driver.registration_held()
    });
    let executor = driver.executor_ref().expect("the executor registered");
    executor
        .send(ExecutorMessage::LaunchTasks {
            tasks: vec![task(1, builtin::NOOP, encode_to_bytes(&1u64))],
        })
        .unwrap();
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    assert!(
        process
            .stderr()
            .contains("Received LaunchTask command but executor was null"),
        "{}",
        process.stderr()
    );
}

/// Ember's own (Spark fails the same way setting up its `WorkerWatcher`): a `--worker-url`
/// that is not an endpoint URL makes the executor exit 1, naming the problem.
#[test]
fn a_malformed_worker_url_exits_1() {
    let driver = FakeDriver::start();
    let mut args = ExecutorProcess::args(&driver.url());
    args.extend(["--worker-url".to_string(), "not a url".to_string()]);
    let mut process = ExecutorProcess::spawn(&args);
    assert_eq!(process.wait_exit(), 1, "{}", process.stderr());
    assert!(
        process.stderr().contains("ember-executor: "),
        "{}",
        process.stderr()
    );
}
