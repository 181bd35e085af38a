//! The worker handlers (`on_workers.rs`) driven directly: what the master sends in answer
//! to registrations, heartbeats and latest-state reports, and when it loses a worker.
//! MasterSuite and RecoverySuite items are named where they are the same case.

use std::time::Duration;

use rpc_env::RpcAddress;

use super::config::MasterSettings;
use super::effects::{Effect, Effects};
use super::tests::{address_of, launched, Fixture, WEB_UI};
use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{
    AppClientMessage, ExecutorDescription, ExecutorState, MasterMessage, WorkerMessage,
};

/// RecoverySuite 4 (SPARK-20529): the answer echoes the master address the worker
/// dialled, whatever it was; with nothing to run, it is the only message.
#[test]
fn a_new_worker_is_told_it_is_registered_with_the_address_it_dialled() {
    let mut f = Fixture::new(MasterSettings::default());
    let mut registration = f.new_worker("worker-1", 8, 2048);
    registration.master_address = RpcAddress::new("localhost2", 10000);
    let worker = registration.worker.clone();
    let out = f.register(registration);
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: worker,
            msg: WorkerMessage::RegisteredWorker {
                master: f.master.me.clone(),
                master_web_ui_url: WEB_UI.into(),
                master_address: RpcAddress::new("localhost2", 10000),
                duplicate: false,
            },
        }]
    );
}

/// Spark 4 (SPARK-23191): the same worker registering again (its first answer was lost)
/// is told it is registered, as a duplicate, and is not registered twice.
#[test]
fn the_same_worker_registering_again_is_told_it_is_a_duplicate() {
    let mut f = Fixture::new(MasterSettings::default());
    let registration = f.new_worker("worker-1", 8, 2048);
    let worker = registration.worker.clone();
    let _first = f.register(registration.clone());
    let again = f.register(registration);
    assert!(
        matches!(
            again.to_worker(&worker)[..],
            [WorkerMessage::RegisteredWorker {
                duplicate: true,
                ..
            }]
        ),
        "{again:?}"
    );
    assert_eq!(again.as_slice().len(), 1);
    assert_eq!(f.master.workers.iter().count(), 1);
}

#[test]
fn register_worker_with_a_live_id_from_elsewhere_answers_duplicate_worker_id() {
    let mut f = Fixture::new(MasterSettings::default());
    let first = f.add_worker("worker-1", 8, 2048);
    let (impostor, out) = f.register_worker("worker-1", 4, 1024);
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: impostor,
            msg: WorkerMessage::RegisterWorkerFailed {
                message: "Duplicate worker ID".into(),
            },
        }]
    );
    let kept = f.master.workers.get(&WorkerId("worker-1".into()));
    assert_eq!(
        kept.map(|w| w.endpoint()),
        Some(&first),
        "the first is kept"
    );
}

#[test]
fn register_worker_at_a_live_workers_address_answers_register_worker_failed() {
    let mut f = Fixture::new(MasterSettings::default());
    let first = f.add_worker("worker-1", 8, 2048);
    let mut registration = f.new_worker("worker-2", 8, 2048);
    registration.worker = first.clone();
    let out = f.register(registration);
    let address = address_of(&first);
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: first,
            msg: WorkerMessage::RegisterWorkerFailed {
                message: format!("Attempted to re-register worker at same address: {address}"),
            },
        }]
    );
    assert!(f.master.workers.get(&WorkerId("worker-2".into())).is_none());
}

/// RecoverySuite 12 (SPARK-46353): a STANDBY master answers `MasterInStandby` and
/// registers no one; an application gets no answer at all.
#[test]
fn a_standby_master_answers_master_in_standby_and_ignores_applications() {
    let mut f = Fixture::standby();
    let (worker, out) = f.register_worker("worker-1", 8, 2048);
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: worker,
            msg: WorkerMessage::MasterInStandby,
        }]
    );
    assert!(f.master.workers.iter().next().is_none());

    let (msg, _driver) = f.new_app("app", None, None);
    let out = f.master.handle(msg, None).expect("handled");
    assert_eq!(out, Effects::none());
    assert_eq!(f.master.apps.len(), 0);
}

#[test]
fn a_heartbeat_from_a_live_worker_only_refreshes_it() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 8, 2048);
    let id = WorkerId("worker-1".into());
    let before = f.master.workers.get(&id).expect("live").last_heartbeat();
    let out = f.master.heartbeat(&id, &worker);
    assert_eq!(out, Effects::none());
    let after = f.master.workers.get(&id).expect("live").last_heartbeat();
    assert!(after >= before);
}

/// A worker the master removed (it timed out) but that still heartbeats is asked to
/// register again.
#[test]
fn a_heartbeat_from_a_removed_worker_asks_it_to_reconnect() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 8, 2048);
    let id = WorkerId("worker-1".into());
    let _lost = f.master.remove_worker(&id, "test");
    let out = f.master.heartbeat(&id, &worker);
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: worker,
            msg: WorkerMessage::ReconnectWorker {
                master_url: f.master.url.clone(),
            },
        }]
    );
}

#[test]
fn a_heartbeat_from_a_never_registered_worker_is_ignored() {
    let mut f = Fixture::new(MasterSettings::default());
    let registration = f.new_worker("worker-1", 8, 2048);
    let out = f.master.heartbeat(&registration.id, &registration.worker);
    assert_eq!(out, Effects::none());
}

/// MasterSuite 22 (SPARK-13604): what a worker reports running that the master does not
/// know is killed; what it knows is left alone.
#[test]
fn the_latest_state_of_a_worker_has_what_the_master_does_not_know_killed() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 10, 1024);
    let app = f.add_app("app", Some(1), Some(1));
    let (driver, _launch) = f.submit(false);
    let mut executors = vec![ExecutorDescription {
        app_id: app.clone(),
        exec_id: 0,
        cores: 1,
        memory_mib: 100,
        state: ExecutorState::Running,
    }];
    let mut driver_ids = vec![driver];
    for n in 0..3 {
        executors.push(ExecutorDescription {
            app_id: AppId(n.to_string()),
            exec_id: n,
            cores: 1,
            memory_mib: 100,
            state: ExecutorState::Running,
        });
        driver_ids.push(DriverId(n.to_string()));
    }
    let msg = MasterMessage::WorkerLatestState {
        id: WorkerId("worker-1".into()),
        executors,
        driver_ids,
    };
    let out = f.master.handle(msg, None).expect("handled");
    let mut expected: Vec<WorkerMessage> = (0..3)
        .map(|n| WorkerMessage::KillExecutor {
            master_url: f.master.url.clone(),
            app_id: AppId(n.to_string()),
            exec_id: n,
        })
        .collect();
    expected.extend((0..3).map(|n| WorkerMessage::KillDriver {
        driver_id: DriverId(n.to_string()),
    }));
    assert_eq!(out.to_worker(&worker), expected.iter().collect::<Vec<_>>());
    assert_eq!(out.as_slice().len(), 6, "sent to that worker only");
}

/// A worker silent past `ember.worker.timeout` is removed: its executors' drivers hear
/// they are LOST (with the worker's host, so they drop its shuffle outputs), and every
/// application hears the worker is gone.
#[test]
fn a_timed_out_worker_has_its_executors_lost_and_every_app_told() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-1", 4, 1024);
    let running = f.add_app("running", Some(4), None);
    let idle = f.add_app("idle", None, None);
    assert!(f.executors(&idle).is_empty(), "no cores left for it");
    let id = WorkerId("worker-1".into());
    let start = f.master.workers.get(&id).expect("live").last_heartbeat();

    let out = f
        .master
        .time_out_dead_workers(start + Duration::from_secs(61));
    f.check("the worker timing out");
    let message = "Not receiving heartbeat for 60 seconds".to_string();
    let removed = |to| Effect::ToApp {
        to,
        msg: AppClientMessage::WorkerRemoved {
            id: id.clone(),
            host: "127.0.0.1".into(),
            message: message.clone(),
        },
    };
    let waiting = |to| Effect::ToApp {
        to,
        msg: AppClientMessage::ApplicationWaiting {
            reason: "no worker is registered".into(),
        },
    };
    assert_eq!(
        out.as_slice(),
        [
            Effect::ToApp {
                to: f.driver_of(&running),
                msg: AppClientMessage::ExecutorUpdated {
                    id: 0,
                    state: ExecutorState::Lost,
                    message: Some(format!("worker lost: {message}")),
                    exit_status: None,
                    worker_host: Some("127.0.0.1".into()),
                },
            },
            removed(f.driver_of(&running)),
            removed(f.driver_of(&idle)),
            // Neither has an executor left, nor a worker to get one from: both are told.
            waiting(f.driver_of(&running)),
            waiting(f.driver_of(&idle)),
        ]
    );
}

/// A worker whose connection closes is removed at once, and what it ran is placed again
/// on the workers left.
#[test]
fn a_disconnected_worker_is_removed_and_its_executors_placed_elsewhere() {
    let mut f = Fixture::new(MasterSettings::default());
    let first = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", Some(4), None);
    let second = f.add_worker("worker-2", 4, 1024);
    assert_eq!(f.executors(&app).len(), 1, "on worker-1");

    let address = address_of(&first);
    let out = f.master.disconnected(&address);
    f.check("worker-1 disconnecting");
    let message = format!("{address} got disassociated");
    let mut expected = vec![
        Effect::ToApp {
            to: f.driver_of(&app),
            msg: AppClientMessage::ExecutorUpdated {
                id: 0,
                state: ExecutorState::Lost,
                message: Some(format!("worker lost: {message}")),
                exit_status: None,
                worker_host: Some("127.0.0.1".into()),
            },
        },
        Effect::ToApp {
            to: f.driver_of(&app),
            msg: AppClientMessage::WorkerRemoved {
                id: WorkerId("worker-1".into()),
                host: "127.0.0.1".into(),
                message,
            },
        },
    ];
    expected.extend(launched(&f, &second, &app, 1, 4));
    assert_eq!(out.as_slice(), expected);
}

/// A connection that was neither a worker's nor an application's changes nothing.
#[test]
fn an_unknown_disconnect_sends_nothing() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-1", 4, 1024);
    let out = f.master.disconnected(&RpcAddress::new("10.0.0.9", 7078));
    assert_eq!(out, Effects::none());
    assert_eq!(f.master.workers.alive_iter().count(), 1);
}

/// Issue 15: a worker's registration or an executor's state change with nothing waiting to
/// be placed walks no list of every worker (a master of 10,000 workers took 22 s to handle
/// their executors' RUNNING reports when each copied all of them); placing an application
/// copies each worker once.
#[test]
fn events_with_nothing_to_place_walk_no_worker_list() {
    let mut f = Fixture::new(MasterSettings::default());
    for i in 0..8 {
        f.add_worker(&format!("worker-{i}"), 4, 2048);
    }
    assert_eq!(
        f.master.workers_scanned, 0,
        "registrations, nothing to place"
    );
    let app = f.add_app("app", Some(8 * 4), Some(4));
    let placed = f.master.workers_scanned;
    assert_eq!(
        placed, 8,
        "one snapshot of the 8 workers to place the application"
    );
    let executors = f.executors(&app);
    assert_eq!(executors.len(), 8, "one executor on every worker");
    for (exec_id, _, _) in executors {
        let _running = f.exec_state(&app, exec_id, ExecutorState::Running, None);
    }
    f.add_worker("worker-late", 4, 2048);
    assert_eq!(
        f.master.workers_scanned, placed,
        "the application has every core it asked for: nothing to place"
    );
}
