//! Who may tell a real master what, on an authenticated cluster: a second env that holds
//! the secret cannot heartbeat for, report the state of, or report the executors of a
//! worker it did not register from, and an application cannot kill or unregister another's
//! executors. Refused messages change nothing and are counted (`MasterState`'s
//! `refused_messages`).

pub mod master_support;

use ember_deploy::messages::{
    ExecutorDescription, ExecutorState, MasterAsk, MasterMessage, MasterProtocol, MasterState,
    WorkerMessage, WORKER_ENDPOINT_NAME,
};
use ember_deploy::{AppId, MasterHandle};
use master_support::{
    app, app_state, authenticated_conf, master_with, server_env_with, wait_state, worker_state,
    FakeApp, FakeWorker, SECRET,
};
use rpc_env::keys;

fn authenticated_master(extra: &[(&str, &str)]) -> MasterHandle {
    let mut settings = vec![
        (keys::AUTHENTICATE, "true"),
        (keys::AUTHENTICATE_SECRET, SECRET),
    ];
    settings.extend_from_slice(extra);
    master_with(&settings)
}

/// A worker in an authenticated env of its own (its own address).
fn worker(master: &MasterHandle, env_name: &str, id: &str) -> FakeWorker {
    let env = server_env_with(env_name, authenticated_conf());
    FakeWorker::in_env(env, master, id, WORKER_ENDPOINT_NAME)
}

/// An app client in an authenticated env of its own.
fn app_client(master: &MasterHandle, name: &str) -> FakeApp {
    FakeApp::in_env(server_env_with(name, authenticated_conf()), master)
}

/// The master's state, asked on `from`'s connection: after everything sent on it before.
fn state_after(from: &rpc_env::EndpointRef<MasterProtocol>) -> MasterState {
    from.ask_sync(|reply| MasterAsk::RequestMasterState { reply })
        .expect("the master answers")
}

fn executors_of(state: &MasterState, app: &AppId) -> u32 {
    state
        .active_apps
        .iter()
        .find(|a| &a.id == app)
        .map_or(0, |a| a.executors)
}

#[test]
fn a_peer_cannot_speak_for_a_worker_it_did_not_register_from() {
    let master = authenticated_master(&[]);
    let real = worker(&master, "worker-a", "worker-a");
    real.register(4, 1024);
    let client = app_client(&master, "app");
    let app_id = client.register(app("app", Some(1), Some(1), 100));
    assert_eq!(real.launches(1), vec![(app_id.clone(), 0, 1)]);

    // Another process with the secret, claiming to be worker-a.
    let impostor = worker(&master, "impostor", "worker-a");
    impostor.heartbeat();
    let forged_state = impostor
        .master
        .ask_sync(|reply| MasterAsk::ExecutorStateChanged {
            app_id: app_id.clone(),
            exec_id: 0,
            state: ExecutorState::Failed,
            message: Some("forged".into()),
            exit_status: Some(1),
            reply,
        });
    assert!(forged_state.is_err(), "refused: {forged_state:?}");
    // Its latest state would have the master kill what worker-a does not run.
    impostor
        .master
        .send(MasterMessage::WorkerLatestState {
            id: real.id.clone(),
            executors: vec![ExecutorDescription {
                app_id: AppId("app-that-never-was".into()),
                exec_id: 7,
                cores: 1,
                memory_mib: 100,
                state: ExecutorState::Running,
            }],
            driver_ids: Vec::new(),
        })
        .unwrap();
    let state = state_after(&impostor.master);
    assert_eq!(
        state.refused_messages, 3,
        "heartbeat, state change, latest state"
    );
    assert_eq!(
        executors_of(&state, &app_id),
        1,
        "the executor is still there"
    );
    assert_eq!(worker_state(&state, &real.id), Some("ALIVE"));
    // Neither worker-a nor the impostor was told anything because of them.
    let kills = real.got.with(|m| {
        m.iter()
            .filter(|m| matches!(m, WorkerMessage::KillExecutor { .. }))
            .count()
    });
    assert_eq!(kills, 0);
    assert!(
        impostor.got.with(|m| m.is_empty()),
        "the impostor got nothing"
    );

    // The real worker's own report is taken.
    real.executor_state(&app_id, 0, ExecutorState::Running, None);
    let state = state_after(&real.master);
    assert_eq!(state.refused_messages, 3);
    assert_eq!(executors_of(&state, &app_id), 1);
}

#[test]
fn an_impostors_heartbeats_do_not_keep_a_silent_worker_alive() {
    let master = authenticated_master(&[("ember.worker.timeout", "1s")]);
    let real = worker(&master, "worker-a", "worker-a");
    real.register(4, 1024);
    let impostor = worker(&master, "impostor", "worker-a");
    // worker-a goes silent; the impostor heartbeats for it all along.
    let state = wait_state(&master, "worker-a timed out", |state| {
        impostor.heartbeat();
        worker_state(state, &real.id) == Some("DEAD")
    });
    assert!(state.refused_messages >= 1);
}

#[test]
fn an_application_cannot_kill_or_unregister_another_applications_executors() {
    let master = authenticated_master(&[]);
    let real = worker(&master, "worker-a", "worker-a");
    real.register(4, 1024);
    let x = app_client(&master, "x");
    let x_id = x.register(app("x", Some(1), Some(1), 100));
    let y = app_client(&master, "y");
    let y_id = y.register(app("y", Some(1), Some(1), 100));
    real.launches(2);

    y.master
        .send(MasterMessage::KillExecutors {
            app_id: x_id.clone(),
            exec_ids: vec![0],
        })
        .unwrap();
    y.unregister(&x_id);
    let state = state_after(&y.master);
    assert_eq!(state.refused_messages, 2);
    assert_eq!(executors_of(&state, &x_id), 1, "x keeps its executor");
    assert_eq!(app_state(&state, &x_id), Some("RUNNING"));
    assert!(
        real.got.with(|m| !m
            .iter()
            .any(|m| matches!(m, WorkerMessage::KillExecutor { .. }))),
        "nothing was killed"
    );

    // Its own executors it may kill.
    y.master
        .send(MasterMessage::KillExecutors {
            app_id: y_id.clone(),
            exec_ids: vec![0],
        })
        .unwrap();
    let state = state_after(&y.master);
    assert_eq!(state.refused_messages, 2);
    real.got.wait_for("y's executor killed", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::KillExecutor { app_id, exec_id: 0, .. } if *app_id == y_id))
            .then_some(())
    });
    assert_eq!(executors_of(&state_after(&x.master), &x_id), 1);
}
