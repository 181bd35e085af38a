//! The master and its workers: registration, refusals, heartbeats, dead workers, the
//! latest-state check, disconnects, standby. Fake workers record what the master sends.

pub mod master_support;

use ember_deploy::messages::{
    AppClientMessage, ExecutorDescription, ExecutorState, MasterMessage, WorkerMessage,
};
use ember_deploy::{master_keys, start_master, AppId, DriverId, MasterConfig};
use ember_test_support::wait_for;
use master_support::*;
use rpc_env::RpcAddress;

#[test]
fn a_worker_registers_and_is_listed_alive() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-20240101000000-127.0.0.1-1");
    // SPARK-20529: the master echoes the address the worker dialled, whatever it was.
    let mut registration = worker.registration(8, 2048);
    if let MasterMessage::RegisterWorker { registration } = &mut registration {
        registration.master_address = RpcAddress::new("localhost2", 10000);
    }
    worker.master.send(registration).expect("sent");
    let (master_ref, echoed, duplicate) = worker.got.wait_for("RegisteredWorker", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::RegisteredWorker {
                master,
                master_address,
                duplicate,
                ..
            } => Some((master.clone(), master_address.clone(), *duplicate)),
            _ => None,
        })
    });
    assert_eq!(echoed, RpcAddress::new("localhost2", 10000));
    assert!(!duplicate);
    assert_eq!(master_ref.rpc_address(), Some(&master.address()));

    let state = master.state().expect("state");
    assert_eq!(state.status, "ALIVE");
    assert_eq!(state.url, master.url());
    assert_eq!(state.workers.len(), 1);
    let w = &state.workers[0];
    assert_eq!(
        (w.id.clone(), w.state.as_str()),
        (worker.id.clone(), "ALIVE")
    );
    assert_eq!(
        (w.cores, w.cores_used, w.memory_mib, w.memory_used_mib),
        (8, 0, 2048, 0)
    );
    let address = worker.env.address().expect("server");
    assert_eq!(w.host_port, address.host_port());
    master.shutdown();
}

#[test]
fn the_same_worker_registering_again_is_told_it_is_a_duplicate() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    worker.send_registration(4, 1024);
    let duplicates = worker.got.wait_count("two answers", 2, |m| match m {
        WorkerMessage::RegisteredWorker { duplicate, .. } => Some(*duplicate),
        _ => None,
    });
    assert_eq!(duplicates, [false, true]);
    assert_eq!(master.state().expect("state").workers.len(), 1);
    master.shutdown();
}

#[test]
fn another_worker_claiming_a_live_id_is_refused() {
    let master = master();
    let first = FakeWorker::start(&master, "worker-1");
    first.register(4, 1024);
    let impostor = FakeWorker::start(&master, "worker-1");
    impostor.send_registration(4, 1024);
    let reason = impostor.got.wait_for("RegisterWorkerFailed", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::RegisterWorkerFailed { message } => Some(message.clone()),
            _ => None,
        })
    });
    assert_eq!(reason, "Duplicate worker ID");
    let state = master.state().expect("state");
    assert_eq!(state.workers.len(), 1);
    let address = first.env.address().expect("server");
    assert_eq!(
        state.workers[0].host_port,
        address.host_port(),
        "the first one stays"
    );
    master.shutdown();
}

#[test]
fn a_second_worker_at_the_same_address_is_refused() {
    let master = master();
    let first = FakeWorker::start(&master, "worker-a");
    first.register(4, 1024);
    let second = FakeWorker::in_env(first.env.clone(), &master, "worker-b", "Worker2");
    second.send_registration(4, 1024);
    let reason = second.got.wait_for("RegisterWorkerFailed", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::RegisterWorkerFailed { message } => Some(message.clone()),
            _ => None,
        })
    });
    let address = first.env.address().expect("server");
    assert_eq!(
        reason,
        format!("Attempted to re-register worker at same address: {address}")
    );
    assert_eq!(master.state().expect("state").workers.len(), 1);
    master.shutdown();
}

#[test]
fn a_silent_worker_is_removed_and_its_executors_reported_lost() {
    let master = master_with(&[
        (master_keys::WORKER_TIMEOUT, "200ms"),
        (master_keys::DEAD_WORKER_PERSISTENCE, "100000"),
    ]);
    // The app waits first, so its executor is launched by the registration itself, before
    // the worker (which never heartbeats) can time out.
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("a", None, None, 512));
    let worker = FakeWorker::start(&master, "worker-silent");
    worker.register(4, 1024);
    assert_eq!(worker.launches(1)[0].1, 0);

    let (exec_id, message, exit, host) = app.got.wait_for("ExecutorUpdated LOST", |m| {
        m.iter().find_map(|m| match m {
            AppClientMessage::ExecutorUpdated {
                id,
                state: ExecutorState::Lost,
                message,
                exit_status,
                worker_host,
            } => Some((*id, message.clone(), *exit_status, worker_host.clone())),
            _ => None,
        })
    });
    assert_eq!(exec_id, 0);
    assert_eq!(
        message.as_deref(),
        Some("worker lost: Not receiving heartbeat for 0 seconds")
    );
    assert_eq!((exit, host.as_deref()), (None, Some("127.0.0.1")));
    let removed = app.got.wait_for("WorkerRemoved", |m| {
        m.iter().find_map(|m| match m {
            AppClientMessage::WorkerRemoved { id, host, message } => {
                Some((id.clone(), host.clone(), message.clone()))
            }
            _ => None,
        })
    });
    assert_eq!(removed.0, worker.id);
    assert_eq!(removed.1, "127.0.0.1");
    assert_eq!(removed.2, "Not receiving heartbeat for 0 seconds");
    let state = master.state().expect("state");
    assert_eq!(worker_state(&state, &worker.id), Some("DEAD"));
    assert_eq!(state.active_apps[0].executors, 0);
    assert_eq!(state.active_apps[0].id, app_id);

    // A DEAD worker that heartbeats is told to register again...
    worker.heartbeat();
    let url = worker.got.wait_for("ReconnectWorker", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::ReconnectWorker { master_url } => Some(master_url.clone()),
            _ => None,
        })
    });
    assert_eq!(url, master.url());
    // ...and when it does it is new again and gets the waiting app's next executor.
    worker.register(4, 1024);
    let launches = worker.launches(2);
    assert_eq!(launches[1], (app_id, 1, 4));
    let state = master.state().expect("state");
    assert_eq!(state.workers.len(), 1, "listed once");
    master.shutdown();
}

#[test]
fn dead_workers_are_culled_after_the_persistence_period() {
    let master = master_with(&[
        (master_keys::WORKER_TIMEOUT, "100ms"),
        (master_keys::DEAD_WORKER_PERSISTENCE, "0"),
    ]);
    let worker = FakeWorker::start(&master, "worker-culled");
    worker.register(4, 1024);
    wait_state(&master, "the worker is gone", |s| s.workers.is_empty());
    // Culled workers are strangers: their heartbeats are ignored, not answered (a dead worker
    // the master still lists would be told `ReconnectWorker`). The master handles the
    // heartbeat and then the registration sent after it in that order (one sender, one
    // connection), and what it sends the worker arrives in the order sent: so if the first
    // thing the worker hears afterwards is `RegisteredWorker`, the heartbeat was answered
    // with nothing.
    let heard_before = worker.got.with(<[WorkerMessage]>::len);
    worker.heartbeat();
    worker.register(4, 1024);
    let first_heard = worker.got.with(|m| match m.get(heard_before) {
        Some(WorkerMessage::RegisteredWorker { .. }) => "RegisteredWorker",
        Some(WorkerMessage::ReconnectWorker { .. }) => "ReconnectWorker",
        Some(_) => "another message",
        None => "nothing",
    });
    assert_eq!(
        first_heard, "RegisteredWorker",
        "the culled worker's heartbeat was answered"
    );
    master.shutdown();
}

#[test]
fn heartbeats_keep_a_worker_alive() {
    let master = master_with(&[(master_keys::WORKER_TIMEOUT, "1s")]);
    let beating = FakeWorker::start(&master, "worker-beating");
    beating.register(4, 1024);
    let silent = FakeWorker::start(&master, "worker-silent");
    silent.register(4, 1024);
    // Beat until the silent one is declared dead; the beating one must outlive it.
    let state = wait_for("the silent worker dies", DEADLINE, || {
        beating.heartbeat();
        let state = master.state().expect("state");
        if worker_state(&state, &silent.id) == Some("DEAD") {
            Ok(state)
        } else {
            Err(Box::new(state))
        }
    });
    assert_eq!(worker_state(&state, &beating.id), Some("ALIVE"));
    master.shutdown();
}

// MasterSuite 22 (SPARK-13604).
#[test]
fn unknown_executors_and_drivers_of_a_worker_are_killed() {
    let master = master();
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("a", Some(1), None, 64));
    let worker = FakeWorker::start(&master, "1");
    worker.register(10, 128);
    assert_eq!(worker.launches(1)[0].1, 0);
    let exec = |app: &str, id: u32| ExecutorDescription {
        app_id: AppId(app.to_string()),
        exec_id: id,
        cores: 1,
        memory_mib: 64,
        state: ExecutorState::Running,
    };
    // The executor the master knows comes first: were it killed, it would be the first kill.
    let latest = MasterMessage::WorkerLatestState {
        id: worker.id.clone(),
        executors: vec![exec(&app_id.0, 0), exec("0", 0), exec("1", 1), exec("2", 2)],
        driver_ids: ["0", "1", "2"].map(|d| DriverId(d.into())).to_vec(),
    };
    worker.master.send(latest).expect("sent");
    let killed = worker.got.wait_count("KillExecutor", 3, |m| match m {
        WorkerMessage::KillExecutor {
            app_id, exec_id, ..
        } => Some((app_id.0.clone(), *exec_id)),
        _ => None,
    });
    assert_eq!(killed, [("0".into(), 0), ("1".into(), 1), ("2".into(), 2)]);
    let drivers = worker.got.wait_count("KillDriver", 3, |m| match m {
        WorkerMessage::KillDriver { driver_id } => Some(driver_id.0.clone()),
        _ => None,
    });
    assert_eq!(drivers, ["0", "1", "2"]);
    master.shutdown();
}

#[test]
fn a_disconnected_worker_is_removed() {
    let master = master();
    let app = FakeApp::start(&master, "app");
    app.register(self::app("a", None, None, 64));
    let worker = FakeWorker::start(&master, "worker-leaving");
    worker.register(2, 256);
    app.added(1);
    let address = worker.env.address().expect("server").clone();
    worker.env.shutdown();
    let message = app.got.wait_for("WorkerRemoved", |m| {
        m.iter().find_map(|m| match m {
            AppClientMessage::WorkerRemoved { message, .. } => Some(message.clone()),
            _ => None,
        })
    });
    assert_eq!(message, format!("{address} got disassociated"));
    let state = master.state().expect("state");
    assert_eq!(worker_state(&state, &worker.id), Some("DEAD"));
    master.shutdown();
}

// RecoverySuite 12 (SPARK-46353).
#[test]
fn a_standby_master_turns_workers_away() {
    let config = MasterConfig {
        standby: true,
        ..MasterConfig::local().with_conf(small_conf())
    };
    let master = start_master(config).expect("starts");
    let worker = FakeWorker::start(&master, "worker-1");
    worker.send_registration(4, 1024);
    worker.got.wait_for("MasterInStandby", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::MasterInStandby))
            .then_some(())
    });
    worker.got.with(|m| {
        assert!(!m
            .iter()
            .any(|m| matches!(m, WorkerMessage::RegisteredWorker { .. })));
    });
    let state = master.state().expect("state");
    assert_eq!(state.status, "STANDBY");
    assert!(state.workers.is_empty());
    master.shutdown();
}

#[test]
fn heartbeats_of_strangers_are_ignored() {
    let master = master();
    let stranger = FakeWorker::start(&master, "worker-never-registered");
    stranger.heartbeat();
    // A registration after it goes through the same connection, so its answer comes after
    // any answer to the heartbeat.
    stranger.register(1, 64);
    stranger.got.with(|m| {
        assert!(!m
            .iter()
            .any(|m| matches!(m, WorkerMessage::ReconnectWorker { .. })));
    });
    master.shutdown();
}
