//! The master and its applications: registration, placement seen through `LaunchExecutor`,
//! executor state changes, the retry budget, kill, unregister, disconnect, the master's
//! state. Fake workers and app clients record what the master sends.

pub mod master_support;

use ember_deploy::messages::{AppClientMessage, ExecutorState, MasterAsk, WorkerMessage};
use ember_deploy::{master_keys, start_master, AppId, MasterConfig};
use master_support::*;

fn is_app_id(id: &AppId, number: u32) -> bool {
    let Some(rest) = id.0.strip_prefix("app-") else {
        return false;
    };
    let (stamp, n) = rest.split_at(14.min(rest.len()));
    stamp.bytes().all(|b| b.is_ascii_digit()) && n == format!("-{number:04}")
}

#[test]
fn registration_launches_executors_and_tells_the_app() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(8, 2048);
    let app = FakeApp::start(&master, "app");
    let description = self::app("pi", None, None, 512);
    let app_id = app.register(description.clone());
    assert!(is_app_id(&app_id, 0), "{app_id}");

    let launch = worker.got.wait_for("LaunchExecutor", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::LaunchExecutor {
                master_url,
                app_id,
                exec_id,
                description,
                cores,
                memory_mib,
            } => Some((
                master_url.clone(),
                app_id.clone(),
                *exec_id,
                description.clone(),
                *cores,
                *memory_mib,
            )),
            _ => None,
        })
    });
    assert_eq!(
        launch,
        (master.url(), app_id.clone(), 0, description, 8, 512)
    );
    let added = app.got.wait_for("ExecutorAdded", |m| {
        m.iter().find_map(|m| match m {
            AppClientMessage::ExecutorAdded {
                id,
                worker_id,
                host_port,
                cores,
                memory_mib,
            } => Some((
                *id,
                worker_id.clone(),
                host_port.clone(),
                *cores,
                *memory_mib,
            )),
            _ => None,
        })
    });
    let host_port = worker.env.address().expect("server").host_port();
    assert_eq!(added, (0, worker.id.clone(), host_port, 8, 512));

    let state = master.state().expect("state");
    assert_eq!(state.active_apps.len(), 1);
    let a = &state.active_apps[0];
    assert_eq!(
        (a.id.clone(), a.name.as_str(), a.state.as_str()),
        (app_id, "pi", "RUNNING")
    );
    assert_eq!((a.cores_granted, a.executors), (8, 1));
    assert_eq!(
        (
            state.workers[0].cores_used,
            state.workers[0].memory_used_mib
        ),
        (8, 512)
    );
    assert!(state.completed_apps.is_empty() && state.active_drivers.is_empty());
    master.shutdown();
}

#[test]
fn an_app_waits_until_a_worker_fits_it() {
    let master = master();
    let small = FakeWorker::start(&master, "worker-small");
    small.register(2, 2048);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("wide", None, Some(4), 256));
    let state = master.state().expect("state");
    assert_eq!(
        (
            state.active_apps[0].state.as_str(),
            state.active_apps[0].executors
        ),
        ("WAITING", 0)
    );
    let big = FakeWorker::start(&master, "worker-big");
    big.register(4, 2048);
    assert_eq!(big.launches(1), [(app_id, 0, 4)]);
    assert!(small.launched_now().is_empty());
    master.shutdown();
}

fn three_workers(master: &ember_deploy::MasterHandle) -> Vec<FakeWorker> {
    (1..=3)
        .map(|i| {
            let w = FakeWorker::start(master, &format!("worker-{i}"));
            w.register(10, 512);
            w
        })
        .collect()
}

#[test]
fn spread_out_places_cores_round_robin() {
    let master = master();
    let workers = three_workers(&master);
    let app = FakeApp::start(&master, "app");
    app.register(self::app("spread", Some(8), None, 128));
    let mut cores: Vec<u32> = app.added(3).into_iter().map(|e| e.2).collect();
    cores.sort_unstable();
    assert_eq!(cores, [2, 3, 3], "MasterSuite 5: [3, 3, 2]");
    for w in &workers {
        assert_eq!(w.launches(1).len(), 1, "{} got one executor", w.id);
    }
    master.shutdown();
}

#[test]
fn packed_fills_one_worker_first() {
    let master = master_with(&[(master_keys::SPREAD_OUT, "false")]);
    let _workers = three_workers(&master);
    let app = FakeApp::start(&master, "app");
    app.register(self::app("packed", Some(16), None, 128));
    let mut cores: Vec<u32> = app.added(2).into_iter().map(|e| e.2).collect();
    cores.sort_unstable();
    assert_eq!(cores, [6, 10], "MasterSuite 6: [10, 6, 0]");
    let state = master.state().expect("state");
    assert_eq!(state.active_apps[0].executors, 2);
    let mut used: Vec<u32> = state.workers.iter().map(|w| w.cores_used).collect();
    used.sort_unstable();
    assert_eq!(used, [0, 6, 10]);
    master.shutdown();
}

#[test]
fn cores_per_executor_splits_a_worker() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(10, 1024);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("split", None, Some(3), 100));
    let launches = worker.launches(3);
    let expected: Vec<(AppId, u32, u32)> = (0..3).map(|i| (app_id.clone(), i, 3)).collect();
    assert_eq!(
        launches, expected,
        "three executors of 3 cores; one core left over"
    );
    master.shutdown();
}

#[test]
fn executor_state_changes_reach_the_app() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("a", None, None, 256));
    worker.launches(1);
    worker.executor_state(&app_id, 0, ExecutorState::Running, None);
    worker.executor_state(&app_id, 0, ExecutorState::Exited, Some(0));
    let updates = app.got.wait_count("two ExecutorUpdated", 2, |m| match m {
        AppClientMessage::ExecutorUpdated {
            id,
            state,
            exit_status,
            worker_host,
            ..
        } => Some((*id, *state, *exit_status, worker_host.clone())),
        _ => None,
    });
    assert_eq!(
        updates,
        [
            (0, ExecutorState::Running, None, None),
            (0, ExecutorState::Exited, Some(0), None)
        ]
    );
    // The app still wants cores, so the freed ones get a new executor.
    assert_eq!(worker.launches(2)[1], (app_id.clone(), 1, 4));
    // Updates for executors the master does not know are still answered true.
    worker.executor_state(&app_id, 42, ExecutorState::Running, None);
    master.shutdown();
}

// RecoverySuite 5 (SPARK-27510): a worker that fails every launch sees exactly
// `ember.deploy.maxExecutorRetries` launches, then the app is removed as FAILED.
#[test]
fn executors_that_keep_failing_fail_the_app() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("doomed", None, None, 256));
    for round in 0..10 {
        let (_, exec_id, _) = worker.launches(round + 1)[round].clone();
        worker.executor_state(&app_id, exec_id, ExecutorState::Failed, Some(1));
    }
    assert_eq!(app.removed(), "FAILED");
    worker.got.wait_for("ApplicationFinished", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::ApplicationFinished { app_id: a } if *a == app_id))
            .then_some(())
    });
    assert_eq!(worker.launched_now().len(), 10);
    let state = master.state().expect("state");
    assert!(state.active_apps.is_empty());
    assert_eq!(state.completed_apps[0].state, "FAILED");
    assert_eq!(state.workers[0].cores_used, 0);
    master.shutdown();
}

#[test]
fn killing_an_app_kills_its_executors() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("victim", None, None, 256));
    worker.launches(1);
    let kill = |id: &AppId| {
        master
            .master_ref()
            .ask_sync(|reply| MasterAsk::RequestKillApplication {
                app_id: id.clone(),
                reply,
            })
            .expect("answered")
    };
    assert!(kill(&app_id));
    assert_eq!(app.removed(), "KILLED");
    let killed = worker.got.wait_for("KillExecutor", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::KillExecutor {
                app_id, exec_id, ..
            } => Some((app_id.clone(), *exec_id)),
            _ => None,
        })
    });
    assert_eq!(killed, (app_id.clone(), 0));
    let state = master.state().expect("state");
    assert_eq!(state.completed_apps[0].state, "KILLED");
    assert!(!kill(&app_id), "gone");
    assert!(!kill(&AppId("app-nope".into())));
    master.shutdown();
}

#[test]
fn unregistering_frees_cores_for_the_next_app_in_line() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let first = FakeApp::start(&master, "first");
    let first_id = first.register(self::app("first", None, None, 256));
    first.added(1);
    let second = FakeApp::start(&master, "second");
    let second_id = second.register(self::app("second", None, None, 256));
    let state = master.state().expect("state");
    let order: Vec<(&AppId, &str)> = state
        .active_apps
        .iter()
        .map(|a| (&a.id, a.state.as_str()))
        .collect();
    assert_eq!(order, [(&first_id, "RUNNING"), (&second_id, "WAITING")]);

    first.unregister(&first_id);
    assert_eq!(
        second.added(1)[0].2,
        4,
        "the second app gets the freed cores"
    );
    let state = wait_state(&master, "first finished", |s| !s.completed_apps.is_empty());
    assert_eq!(state.completed_apps[0].state, "FINISHED");
    first.got.with(|m| {
        assert!(
            !m.iter()
                .any(|m| matches!(m, AppClientMessage::ApplicationRemoved { .. })),
            "a finished app is not told it was removed"
        );
    });
    master.shutdown();
}

#[test]
fn a_client_mode_app_is_answered_over_its_connection() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(2, 512);
    let app = FakeApp::start_client_mode(&master, "client-app");
    let app_id = app.register(self::app("c", None, None, 128));
    assert_eq!(app.added(1)[0].0, 0);
    assert_eq!(worker.launches(1)[0].0, app_id);
    // Its connection closing finishes it.
    app.env.shutdown();
    let state = wait_state(&master, "the app finished", |s| s.active_apps.is_empty());
    assert_eq!(state.completed_apps[0].state, "FINISHED");
    master.shutdown();
}

#[test]
fn a_second_registration_from_the_same_driver_gets_the_same_id() {
    let master = master();
    let app = FakeApp::start(&master, "app");
    app.send_registration(self::app("twice", None, None, 128));
    app.send_registration(self::app("twice", None, None, 128));
    let ids = app.got.wait_count("two answers", 2, |m| match m {
        AppClientMessage::RegisteredApplication { app_id, .. } => Some(app_id.clone()),
        _ => None,
    });
    assert_eq!(ids[0], ids[1]);
    assert_eq!(master.state().expect("state").active_apps.len(), 1);
    master.shutdown();
}

#[test]
fn an_app_whose_driver_goes_away_is_finished_and_its_executors_killed() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(2, 512);
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("gone", None, None, 128));
    worker.launches(1);
    app.env.shutdown();
    let killed = worker.got.wait_for("KillExecutor", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::KillExecutor { app_id, .. } => Some(app_id.clone()),
            _ => None,
        })
    });
    assert_eq!(killed, app_id);
    let state = master.state().expect("state");
    assert_eq!(state.completed_apps[0].state, "FINISHED");
    master.shutdown();
}

#[test]
fn a_standby_master_does_not_answer_apps() {
    let config = MasterConfig {
        standby: true,
        ..MasterConfig::local().with_conf(small_conf())
    };
    let master = start_master(config).expect("starts");
    // Client mode: the master could answer only over this app's one connection, which
    // also carries the answer to the ask below, after any answer to the registration.
    let app = FakeApp::start_client_mode(&master, "app");
    app.send_registration(self::app("ignored", None, None, 128));
    let state = app
        .master
        .ask_sync(|reply| MasterAsk::RequestMasterState { reply })
        .expect("answered");
    assert_eq!(state.status, "STANDBY");
    assert!(state.active_apps.is_empty());
    app.got
        .with(|m| assert!(m.is_empty(), "no answer to a standby registration"));
    master.shutdown();
}
