//! Who may tell a real worker what: orders from a peer that is not the master the worker
//! registered with are refused, proven by the worker's state (nothing started, nothing
//! killed, the refusals counted); the same orders from its master are obeyed.

pub mod worker_util;

use std::collections::BTreeMap;

use ember_deploy::messages::{Command, DriverDescription, WorkerMessage};
use ember_deploy::{AppId, DriverId};
use worker_util::{shell_app, wait_until, Event, FakeMaster, TestWorker, DEADLINE};

const APP: &str = "app-20240101000000-0001";

fn sleeper_driver(id: &str) -> WorkerMessage {
    WorkerMessage::LaunchDriver {
        driver_id: DriverId(id.to_string()),
        description: DriverDescription {
            memory_mib: 128,
            cores: 1,
            supervise: false,
            command: Command {
                program: "/bin/sh".to_string(),
                args: vec!["-c".to_string(), "exec sleep 30".to_string()],
                env: BTreeMap::new(),
            },
            program_digest: None,
        },
    }
}

fn sleeper_executor(master: &FakeMaster, exec_id: u32) -> WorkerMessage {
    WorkerMessage::LaunchExecutor {
        // What the message claims is not what is checked: the sender is.
        master_url: master.url(),
        app_id: AppId(APP.to_string()),
        exec_id,
        description: shell_app("exec sleep 30"),
        cores: 1,
        memory_mib: 128,
    }
}

#[test]
fn only_the_registered_master_may_start_or_stop_processes() {
    let master = FakeMaster::start();
    let worker = TestWorker::start(vec![master.address()], &[]);
    master.wait_for("registration", |e| matches!(e, Event::LatestState { .. }));
    let intruder = FakeMaster::start();
    intruder.connect_to_worker(&worker.handle.url());

    intruder.tell_worker(sleeper_driver("driver-intruder"));
    intruder.tell_worker(sleeper_executor(&master, 7));
    // A master that is not the sender cannot be announced by it.
    intruder.tell_worker(WorkerMessage::MasterChanged {
        master: master.master_ref(),
        master_web_ui_url: "http://127.0.0.1:1".to_string(),
    });
    wait_until("the three refusals are counted", DEADLINE, || {
        worker.handle.state().is_ok_and(|s| s.refused_messages == 3)
    });
    let state = worker.handle.state().expect("state");
    assert!(state.drivers.is_empty(), "{state:?}");
    assert!(state.executors.is_empty(), "{state:?}");
    assert_eq!(state.master_url, Some(master.url()));

    // The real master's orders are obeyed, and the intruder cannot stop what they started.
    master.tell_worker(sleeper_driver("driver-1"));
    master.tell_worker(sleeper_executor(&master, 1));
    wait_until("the driver and the executor run", DEADLINE, || {
        worker
            .handle
            .state()
            .is_ok_and(|s| s.drivers.len() == 1 && s.executors.len() == 1)
    });
    intruder.tell_worker(WorkerMessage::KillDriver {
        driver_id: DriverId("driver-1".to_string()),
    });
    intruder.tell_worker(WorkerMessage::KillExecutor {
        master_url: master.url(),
        app_id: AppId(APP.to_string()),
        exec_id: 1,
    });
    wait_until("the two kills are refused", DEADLINE, || {
        worker.handle.state().is_ok_and(|s| s.refused_messages == 5)
    });
    let state = worker.handle.state().expect("state");
    assert_eq!(state.drivers.len(), 1, "{state:?}");
    assert_eq!(state.executors.len(), 1, "{state:?}");
    drop(worker);
}
