//! Who may tell a real master what, on an authenticated cluster: a second env that holds
//! the secret cannot heartbeat for, report the state of, or report the executors of a
//! worker it did not register from, and an application cannot kill or unregister another's
//! executors. Refused messages change nothing and are counted (`MasterState`'s
//! `refused_messages`). And the master's timers are control messages: a peer writing the
//! frames they once had (`CompleteRecovery` in the middle of a recovery) is cut off.

pub mod master_support;

use ember_deploy::messages::{
    ExecutorDescription, ExecutorState, MasterAsk, MasterMessage, MasterProtocol, MasterState,
    WorkerMessage, WORKER_ENDPOINT_NAME,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember_deploy::messages::MASTER_ENDPOINT_NAME;
use ember_deploy::{master_keys, AppId, MasterHandle};
use ember_test_support::wait_until;
use master_support::{
    app, app_state, authenticated_conf, master_with, server_env_with, start_master_on, wait_state,
    worker_state, FakeApp, FakeWorker, RecoveryDir, Running, DEADLINE, SECRET,
};
use rpc_env::{keys, message, EndpointContext, Protocol, RpcAddress, RpcEndpoint};

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

message! {
    /// `MasterMessage` as it was when the master's timers were part of it: placeholders for
    /// the first eight tags, then the timers at theirs, so these encode to the frames a
    /// master of then acted on.
    pub enum OldMasterMessage {
        /// Tag 0 (not sent here).
        T0,
        /// Tag 1 (not sent here).
        T1,
        /// Tag 2 (not sent here).
        T2,
        /// Tag 3 (not sent here).
        T3,
        /// Tag 4 (not sent here).
        T4,
        /// Tag 5 (not sent here).
        T5,
        /// Tag 6 (not sent here).
        T6,
        /// Tag 7 (not sent here).
        T7,
        /// Tag 8.
        CheckForWorkerTimeout,
        /// Tag 9: end recovery now, dropping whoever has not answered.
        CompleteRecovery,
        /// Tag 10.
        CheckLeadership,
    }
}

/// The old master protocol.
pub struct OldMasterProtocol;

impl Protocol for OldMasterProtocol {
    type Message = OldMasterMessage;
    type Ask = rpc_env::NoMessage;
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

#[test]
fn a_peer_can_neither_end_a_recovery_nor_answer_it_for_a_worker() {
    let dir = RecoveryDir::new("senders");
    let dir_setting = dir.setting();
    let settings = [
        (keys::AUTHENTICATE, "true"),
        (keys::AUTHENTICATE_SECRET, SECRET),
        (master_keys::RECOVERY_MODE, "FILESYSTEM"),
        (master_keys::RECOVERY_DIRECTORY, dir_setting.as_str()),
    ];
    let first = Running(master_with(&settings));
    let real = worker(&first, "worker-a", "worker-a");
    real.register(4, 1024);
    let port = first.address().port();
    first.shutdown();
    first.await_termination();
    drop(first);

    let master = Running(start_master_on(port, &settings));
    let told = real.master_changed(1);
    let state = master.state().expect("state");
    assert_eq!(state.status, "RECOVERING");
    assert_eq!(worker_state(&state, &real.id), Some("UNKNOWN"));

    // A peer with the secret writes the old `CompleteRecovery` frame (and the other
    // timers'): it does not decode, and the connection closes.
    for (what, msg) in [
        ("CompleteRecovery", OldMasterMessage::CompleteRecovery),
        (
            "CheckForWorkerTimeout",
            OldMasterMessage::CheckForWorkerTimeout,
        ),
        ("CheckLeadership", OldMasterMessage::CheckLeadership),
    ] {
        let env = server_env_with(what, authenticated_conf());
        let closed = Arc::new(AtomicUsize::new(0));
        env.setup_endpoint("watcher", Watcher(Arc::clone(&closed)))
            .unwrap();
        let old = env.endpoint_ref_at::<OldMasterProtocol>(&master.address(), MASTER_ENDPOINT_NAME);
        old.send(msg).expect("the frame leaves");
        wait_until(
            &format!("{what}: the master closes the connection"),
            DEADLINE,
            || closed.load(Ordering::SeqCst) > 0,
        );
        env.shutdown();
    }
    // A peer answering `MasterChanged` for worker-a is refused.
    let impostor = worker(&master, "impostor", "worker-a");
    impostor
        .master
        .send(MasterMessage::WorkerSchedulerStateResponse {
            id: real.id.clone(),
            executors: Vec::new(),
            driver_ids: Vec::new(),
        })
        .unwrap();
    let state = state_after(&impostor.master);
    assert_eq!(state.status, "RECOVERING", "the recovery goes on");
    assert_eq!(worker_state(&state, &real.id), Some("UNKNOWN"));
    assert_eq!(state.refused_messages, 1);

    // worker-a's own answer is taken, and ends the recovery.
    told.send(MasterMessage::WorkerSchedulerStateResponse {
        id: real.id.clone(),
        executors: Vec::new(),
        driver_ids: Vec::new(),
    })
    .unwrap();
    let state = wait_state(&master, "recovered", |s| s.status == "ALIVE");
    assert_eq!(worker_state(&state, &real.id), Some("ALIVE"));
    assert_eq!(state.refused_messages, 1);
}
