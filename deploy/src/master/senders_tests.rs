//! The sender checks (`senders.rs`) driven directly: each message tied to a worker or an
//! application is taken from the address that registered it and refused, counted, from any
//! other, with nothing changed.

use rpc_env::RpcAddress;

use super::config::MasterSettings;
use super::effects::Effects;
use super::tests::{address_of, Fixture};
use crate::ids::{AppId, WorkerId};
use crate::messages::{
    DriverState, ExecutorDescription, ExecutorState, MasterMessage, WorkerMessage,
};

/// Another process's address: nobody registered from it.
fn elsewhere() -> RpcAddress {
    RpcAddress::new("127.0.0.1", 1)
}

fn handle(f: &mut Fixture, msg: MasterMessage, from: &RpcAddress) -> Effects {
    let out = f.master.handle(msg, Some(from)).expect("handled");
    f.check("a message");
    out
}

#[test]
fn a_registration_records_its_sender_as_the_workers_address() {
    let mut f = Fixture::new(MasterSettings::default());
    let registration = f.new_worker("worker-1", 4, 1024);
    let from = RpcAddress::new("127.0.0.1", 2);
    let msg = MasterMessage::RegisterWorker { registration };
    let _ = handle(&mut f, msg, &from);
    let worker = f.master.workers.get(&WorkerId("worker-1".into()));
    assert_eq!(worker.map(|w| w.address()), Some(&from));
}

#[test]
fn a_heartbeat_counts_only_from_the_workers_own_address() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let id = WorkerId("worker-1".into());
    let seen = f.master.workers.get(&id).expect("known").last_heartbeat();
    let beat = || MasterMessage::Heartbeat {
        worker_id: WorkerId("worker-1".into()),
        worker: worker.clone(),
    };
    assert_eq!(handle(&mut f, beat(), &elsewhere()), Effects::none());
    assert_eq!(f.master.refused_messages(), 1);
    assert_eq!(
        f.master.workers.get(&id).map(|w| w.last_heartbeat()),
        Some(seen)
    );
    let _ = handle(&mut f, beat(), &address_of(&worker));
    assert_eq!(f.master.refused_messages(), 1);
    assert!(f.master.workers.get(&id).map(|w| w.last_heartbeat()) > Some(seen));
}

#[test]
fn a_latest_state_from_elsewhere_kills_nothing() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let report = || MasterMessage::WorkerLatestState {
        id: WorkerId("worker-1".into()),
        executors: vec![ExecutorDescription {
            app_id: AppId("app-gone".into()),
            exec_id: 3,
            cores: 1,
            memory_mib: 100,
            state: ExecutorState::Running,
        }],
        driver_ids: Vec::new(),
    };
    assert_eq!(handle(&mut f, report(), &elsewhere()), Effects::none());
    assert_eq!(f.master.refused_messages(), 1);
    let out = handle(&mut f, report(), &address_of(&worker));
    assert!(
        matches!(
            out.to_worker(&worker)[..],
            [WorkerMessage::KillExecutor { exec_id: 3, .. }]
        ),
        "{out:?}"
    );
}

#[test]
fn an_executor_state_change_is_taken_only_from_its_workers_address() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("a", Some(1), Some(1));
    // What `handle_ask` checks before it hands the ask to `executor_state_changed`.
    assert!(!f.master.accepts_executor_state(&app, 0, Some(&elsewhere())));
    assert_eq!(f.master.refused_messages(), 1);
    assert_eq!(f.executors(&app).len(), 1, "the executor is still there");
    assert!(f
        .master
        .accepts_executor_state(&app, 0, Some(&address_of(&worker))));
    assert!(
        f.master.accepts_executor_state(&app, 0, None),
        "from this process"
    );
    assert!(
        f.master.accepts_executor_state(&app, 9, Some(&elsewhere())),
        "an unknown executor is the handler's to ignore"
    );
    assert_eq!(f.master.refused_messages(), 1);
}

#[test]
fn a_driver_state_change_is_taken_only_from_the_worker_running_it() {
    let mut f = Fixture::new(MasterSettings::default());
    let runs_it = f.add_worker("worker-1", 4, 1024);
    let (driver, _launch) = f.submit(false);
    let other = f.add_worker("worker-2", 4, 1024);
    let finished = || MasterMessage::DriverStateChanged {
        driver_id: driver.clone(),
        state: DriverState::Finished,
        exception: None,
    };
    let _ = handle(&mut f, finished(), &address_of(&other));
    assert_eq!(f.master.refused_messages(), 1);
    assert!(f.master.drivers.get(&driver).is_some(), "still running");
    let _ = handle(&mut f, finished(), &address_of(&runs_it));
    assert_eq!(f.master.refused_messages(), 1);
    assert!(f.master.drivers.get(&driver).is_none(), "finished");
}

#[test]
fn an_application_may_kill_unregister_and_register_executors_only_of_its_own() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-1", 4, 1024);
    let x = f.add_app("x", Some(1), Some(1));
    let y = f.add_app("y", Some(1), Some(1));
    let y_address = f.master.apps.get(&y).expect("active").address().clone();
    let kill_x = MasterMessage::KillExecutors {
        app_id: x.clone(),
        exec_ids: vec![0],
    };
    assert_eq!(handle(&mut f, kill_x, &y_address), Effects::none());
    let unregister_x = MasterMessage::UnregisterApplication { app_id: x.clone() };
    assert_eq!(handle(&mut f, unregister_x, &y_address), Effects::none());
    let ack_x = MasterMessage::MasterChangeAcknowledged { app_id: x.clone() };
    assert_eq!(handle(&mut f, ack_x, &y_address), Effects::none());
    let registered_x = MasterMessage::ExecutorRegistered {
        app_id: x.clone(),
        exec_id: 0,
    };
    assert_eq!(handle(&mut f, registered_x, &y_address), Effects::none());
    let x_exec = f.master.apps.get(&x).and_then(|a| a.executor(0)).cloned();
    assert_eq!(x_exec.map(|e| e.registered), Some(false), "refused");
    assert_eq!(f.master.refused_messages(), 4);
    assert_eq!(f.executors(&x).len(), 1);
    assert!(f.master.apps.get(&x).is_some());

    let unregister_y = MasterMessage::UnregisterApplication { app_id: y.clone() };
    let _ = handle(&mut f, unregister_y, &y_address);
    assert!(f.master.apps.get(&y).is_none(), "its own, it may");
    assert_eq!(f.master.refused_messages(), 4);
}
