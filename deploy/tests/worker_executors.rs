//! A real worker on loopback running real executor and driver processes for a fake master:
//! launch, placeholders, kill, exit codes, failures, unknown masters, state-report retries,
//! and no process left behind after shutdown.

pub mod worker_util;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ember_deploy::messages::{
    Command, DriverDescription, DriverState, ExecutorState, WorkerMessage,
};
use ember_deploy::{worker_keys, AppId, DriverId};
use worker_util::{
    first_line, is_alive, is_exec_state, shell_app, wait_until, Event, FakeMaster, TestWorker,
    DEADLINE,
};

const APP: &str = "app-20240101000000-0001";

/// A registered worker and its master.
fn cluster(extra: &[(&str, &str)]) -> (FakeMaster, TestWorker) {
    let master = FakeMaster::start();
    let worker = TestWorker::start(vec![master.address()], extra);
    master.wait_for("registration", |e| matches!(e, Event::LatestState { .. }));
    (master, worker)
}

fn launch(master: &FakeMaster, exec_id: u32, script: &str) {
    launch_from(master, &master.url(), exec_id, script);
}

fn launch_from(master: &FakeMaster, master_url: &str, exec_id: u32, script: &str) {
    master.tell_worker(WorkerMessage::LaunchExecutor {
        master_url: master_url.to_string(),
        app_id: AppId(APP.to_string()),
        exec_id,
        description: shell_app(script),
        cores: 1,
        memory_mib: 256,
    });
}

/// The pid an executor script printed first (`echo $$` before `exec`).
fn executor_pid(worker: &TestWorker, exec_id: u32) -> u32 {
    let line = first_line(&worker.executor_dir(APP, exec_id).join("stdout"));
    let pid = line.split_whitespace().next().unwrap_or_default();
    pid.parse().unwrap_or_else(|_| panic!("no pid in {line:?}"))
}

/// With no cleanup setting given (it is on by default, as in Spark 4), a finished
/// application's work dir goes once nothing in it is newer than the TTL; a running one's
/// stays.
#[test]
fn a_finished_apps_work_dir_is_cleaned_up_by_default() {
    let (master, worker) = cluster(&[
        (worker_keys::CLEANUP_APP_DATA_TTL, "1s"),
        (worker_keys::CLEANUP_INTERVAL, "200ms"),
    ]);
    let running_app = "app-20240101000000-0002";
    for (app_id, script) in [(APP, "exit 0"), (running_app, "exec sleep 60")] {
        master.tell_worker(WorkerMessage::LaunchExecutor {
            master_url: master.url(),
            app_id: AppId(app_id.to_string()),
            exec_id: 0,
            description: shell_app(script),
            cores: 1,
            memory_mib: 256,
        });
    }
    let finished = worker.executor_dir(APP, 0);
    let running = worker.executor_dir(running_app, 0);
    let finished_app = finished.parent().expect("the app's dir").to_path_buf();
    master.wait_for("the first app's executor exits", |e| {
        matches!(e, Event::ExecutorState { app_id, state: ExecutorState::Exited, .. }
            if app_id.0 == APP)
    });
    wait_until(
        &format!("{} is removed", finished_app.display()),
        DEADLINE,
        || !finished_app.exists(),
    );
    assert!(running.join("stdout").exists(), "a running app's dir stays");
}

#[test]
fn a_launched_executor_runs_with_its_placeholders_filled_and_is_killed_on_request() {
    let (master, worker) = cluster(&[]);
    let started = Instant::now();
    launch(
        &master,
        0,
        "echo $$ {{EXECUTOR_ID}} {{APP_ID}} {{CORES}} {{WORKER_URL}}; exec sleep 30",
    );
    master.wait_for("RUNNING", |e| is_exec_state(e, 0, ExecutorState::Running));
    let dir = worker.executor_dir(APP, 0);
    let line = first_line(&dir.join("stdout"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "launching takes milliseconds, not seconds"
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[1..],
        ["0", APP, "1", worker.handle.url().as_str()],
        "placeholders in {line:?}"
    );
    let pid: u32 = words[0].parse().expect("a pid");
    assert!(is_alive(pid));
    let state = worker.handle.state().expect("state");
    assert_eq!((state.cores_used, state.memory_used_mib), (1, 256));
    assert_eq!(state.executors.len(), 1);
    assert_eq!(state.executors[0].state, ExecutorState::Running);

    master.tell_worker(WorkerMessage::KillExecutor {
        master_url: master.url(),
        app_id: AppId(APP.to_string()),
        exec_id: 0,
    });
    match master.wait_for("KILLED", |e| is_exec_state(e, 0, ExecutorState::Killed)) {
        Event::ExecutorState { exit_status, .. } => assert_eq!(exit_status, Some(128 + 15)),
        other => panic!("{other:?}"),
    }
    assert!(!is_alive(pid), "the executor process is gone");
    let state = worker.handle.state().expect("state");
    assert_eq!((state.cores_used, state.memory_used_mib), (0, 0));
    assert!(state.executors.is_empty());
    assert_eq!(state.finished_executors.len(), 1);
    assert_eq!(state.finished_executors[0].state, ExecutorState::Killed);
    // The master saw RUNNING before KILLED, and nothing else for it.
    let states: Vec<ExecutorState> = master
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ExecutorState { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(states, [ExecutorState::Running, ExecutorState::Killed]);
}

#[test]
fn an_executor_that_exits_is_reported_exited_with_its_code() {
    let (master, worker) = cluster(&[]);
    launch(&master, 5, "echo bye; echo oops >&2; exit 7");
    match master.wait_for("EXITED", |e| is_exec_state(e, 5, ExecutorState::Exited)) {
        Event::ExecutorState {
            message,
            exit_status,
            ..
        } => {
            assert_eq!(exit_status, Some(7));
            assert_eq!(message.as_deref(), Some("Command exited with code 7"));
        }
        other => panic!("{other:?}"),
    }
    let dir = worker.executor_dir(APP, 5);
    assert_eq!(
        std::fs::read_to_string(dir.join("stdout")).expect("stdout"),
        "bye\n"
    );
    let stderr = std::fs::read_to_string(dir.join("stderr")).expect("stderr");
    assert!(
        stderr.starts_with("Ember Executor Command: \"/bin/sh\""),
        "{stderr}"
    );
    assert!(stderr.ends_with("oops\n"), "{stderr}");
    assert_eq!(worker.handle.state().expect("state").cores_used, 0);
}

#[test]
fn an_executor_that_cannot_start_is_reported_failed() {
    let (master, worker) = cluster(&[]);
    let mut app = shell_app("");
    app.command = Command {
        program: "/nonexistent/ember-executor".to_string(),
        args: vec![],
        env: BTreeMap::new(),
    };
    master.tell_worker(WorkerMessage::LaunchExecutor {
        master_url: master.url(),
        app_id: AppId(APP.to_string()),
        exec_id: 1,
        description: app,
        cores: 1,
        memory_mib: 256,
    });
    match master.wait_for("FAILED", |e| is_exec_state(e, 1, ExecutorState::Failed)) {
        Event::ExecutorState { message, .. } => {
            let message = message.unwrap_or_default();
            assert!(message.contains("cannot run program"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let state = worker.handle.state().expect("state");
    assert_eq!(state.cores_used, 0, "nothing held for it");
}

#[test]
fn a_launch_from_an_unknown_master_is_ignored() {
    let (master, worker) = cluster(&[]);
    launch_from(&master, "ember://10.9.9.9:7077", 8, "exec sleep 30");
    // Messages from one sender are handled in order: once the next launch has run, the
    // first was seen and dropped.
    launch(&master, 9, "exit 0");
    master.wait_for("the second executor", |e| {
        is_exec_state(e, 9, ExecutorState::Exited)
    });
    assert_eq!(
        master.count(|e| matches!(e, Event::ExecutorState { exec_id: 8, .. })),
        0
    );
    assert!(!worker.executor_dir(APP, 8).exists(), "nothing was started");
    let state = worker.handle.state().expect("state");
    assert!(state.executors.is_empty());
}

#[test]
fn shutdown_kills_running_executors_and_drivers() {
    let (master, worker) = cluster(&[]);
    launch(&master, 0, "echo $$; exec sleep 30");
    // A shell that ignores SIGTERM needs the SIGKILL after the grace period.
    launch(&master, 1, "trap '' TERM; echo $$; sleep 30; sleep 30");
    master.tell_worker(WorkerMessage::LaunchDriver {
        driver_id: DriverId("driver-20240101000000-0001".to_string()),
        description: DriverDescription {
            memory_mib: 128,
            cores: 1,
            supervise: true,
            command: Command {
                program: "/bin/sh".to_string(),
                args: vec!["-c".to_string(), "echo $$; exec sleep 30".to_string()],
                env: BTreeMap::new(),
            },
            program_digest: None,
        },
    });
    let pids = [executor_pid(&worker, 0), executor_pid(&worker, 1)];
    let driver_dir = worker
        .work
        .path()
        .canonicalize()
        .expect("work dir")
        .join("driver-20240101000000-0001");
    let driver_pid: u32 = first_line(&driver_dir.join("stdout"))
        .parse()
        .expect("a pid");
    assert!(pids.iter().chain([&driver_pid]).all(|&p| is_alive(p)));
    let asked = Instant::now();
    worker.handle.shutdown();
    assert!(asked.elapsed() < DEADLINE);
    for pid in pids.iter().chain([&driver_pid]) {
        assert!(!is_alive(*pid), "process {pid} outlived its worker");
    }
}

#[test]
fn a_failed_state_report_is_retried() {
    // A failed ask is retried after the ask timeout; keep that short (but long enough for a
    // loaded machine: an ask that times out is retried too, which would add a duplicate).
    let (master, worker) = cluster(&[("ember.rpc.askTimeout", "2s")]);
    master.fail_state_asks(1);
    launch(&master, 2, "exit 0");
    master.wait_for_nth(2, "RUNNING twice", |e| {
        is_exec_state(e, 2, ExecutorState::Running)
    });
    master.wait_for("EXITED after it", |e| {
        is_exec_state(e, 2, ExecutorState::Exited)
    });
    let states: Vec<ExecutorState> = master
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ExecutorState { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    // Order is kept across the retry: every RUNNING report comes before EXITED.
    let first_exited = states.iter().position(|s| *s == ExecutorState::Exited);
    assert!(
        first_exited
            .is_some_and(|i| i >= 2 && states[..i].iter().all(|s| *s == ExecutorState::Running)),
        "{states:?}"
    );
    drop(worker);
}

#[test]
fn drivers_run_finish_and_can_be_killed() {
    let (master, worker) = cluster(&[(worker_keys::DRIVER_TERMINATE_TIMEOUT, "5s")]);
    let driver = |id: &str, script: &str| WorkerMessage::LaunchDriver {
        driver_id: DriverId(id.to_string()),
        description: DriverDescription {
            memory_mib: 128,
            cores: 1,
            supervise: false,
            command: Command {
                program: "/bin/sh".to_string(),
                args: vec!["-c".to_string(), script.to_string()],
                env: BTreeMap::new(),
            },
            program_digest: None,
        },
    };
    master.tell_worker(driver("driver-1", "echo {{WORKER_URL}}"));
    master.wait_for("FINISHED", |e| {
        matches!(e, Event::DriverState { driver_id, state: DriverState::Finished, .. }
            if driver_id.0 == "driver-1")
    });
    let out = worker.work.path().join("driver-1").join("stdout");
    assert_eq!(first_line(&out), worker.handle.url());
    master.tell_worker(driver("driver-2", "exec sleep 30"));
    wait_for_drivers(&worker, 1);
    master.tell_worker(WorkerMessage::KillDriver {
        driver_id: DriverId("driver-2".to_string()),
    });
    master.wait_for("KILLED", |e| {
        matches!(e, Event::DriverState { driver_id, state: DriverState::Killed, .. }
            if driver_id.0 == "driver-2")
    });
    wait_for_drivers(&worker, 0);
    assert_eq!(worker.handle.state().expect("state").cores_used, 0);
}

fn wait_for_drivers(worker: &TestWorker, n: usize) {
    worker_util::wait_until(&format!("{n} running drivers"), DEADLINE, || {
        worker.handle.state().map(|s| s.drivers.len()) == Ok(n)
    });
}

/// What the worker reports as used is what its running executors and drivers hold, and is
/// free again as each ends.
#[test]
fn running_executors_and_drivers_count_as_used_until_they_end() {
    let (master, worker) = cluster(&[(worker_keys::DRIVER_TERMINATE_TIMEOUT, "5s")]);
    launch(&master, 0, "exec sleep 30");
    master.wait_for("RUNNING", |e| is_exec_state(e, 0, ExecutorState::Running));
    master.tell_worker(WorkerMessage::LaunchDriver {
        driver_id: DriverId("driver-1".to_string()),
        description: DriverDescription {
            memory_mib: 128,
            cores: 2,
            supervise: false,
            command: Command {
                program: "/bin/sh".to_string(),
                args: vec!["-c".to_string(), "exec sleep 30".to_string()],
                env: BTreeMap::new(),
            },
            program_digest: None,
        },
    });
    wait_for_drivers(&worker, 1);
    let used = || {
        let state = worker.handle.state().expect("state");
        (state.cores_used, state.memory_used_mib)
    };
    assert_eq!(used(), (1 + 2, 256 + 128));

    master.tell_worker(WorkerMessage::KillExecutor {
        master_url: master.url(),
        app_id: AppId(APP.to_string()),
        exec_id: 0,
    });
    master.wait_for("KILLED", |e| is_exec_state(e, 0, ExecutorState::Killed));
    assert_eq!(used(), (2, 128), "the driver still holds its share");

    master.tell_worker(WorkerMessage::KillDriver {
        driver_id: DriverId("driver-1".to_string()),
    });
    wait_for_drivers(&worker, 0);
    assert_eq!(used(), (0, 0));
}
