//! Recovery mode FILESYSTEM (RecoverySuite, PersistenceEngineSuite): a master stores its
//! workers, applications and drivers; a master restarted on the same port with the same
//! directory tells each `MasterChanged`, waits for the answers, drops the silent ones at
//! the recovery timeout, and carries on. Fake workers and app clients record and answer.

pub mod master_support;

use ember_deploy::messages::{
    DriverState, ExecutorDescription, ExecutorState, MasterAsk, MasterMessage, WorkerMessage,
};
use ember_deploy::{master_keys, start_master, AppId, DriverId, MasterHandle, WorkerId};
use master_support::*;
use rpc_env::RpcError;

/// Settings of a FILESYSTEM master storing into `dir`, with these extra ones.
fn recovery<'a>(dir: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        (master_keys::RECOVERY_MODE, "FILESYSTEM"),
        (master_keys::RECOVERY_DIRECTORY, dir),
    ];
    settings.extend_from_slice(extra);
    settings
}

/// Stops a master for good and returns its port, for its successor.
fn stop(master: &MasterHandle) -> u16 {
    let port = master.address().port();
    master.shutdown();
    master.await_termination();
    port
}

fn running(executors: &[(AppId, u32, u32)]) -> Vec<ExecutorDescription> {
    executors
        .iter()
        .map(|(app_id, exec_id, cores)| ExecutorDescription {
            app_id: app_id.clone(),
            exec_id: *exec_id,
            cores: *cores,
            memory_mib: 512,
            state: ExecutorState::Running,
        })
        .collect()
}

fn submit(master: &MasterHandle, supervise: bool) -> DriverId {
    let answer = master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestSubmitDriver {
            description: driver(1, 256, supervise),
            reply,
        })
        .expect("answered");
    answer.driver_id.expect("accepted")
}

/// RecoverySuite 3 end to end, and 13: the restarted master recovers the worker, the
/// application with its executors, and the driver the worker runs; registrations are
/// accepted while it recovers; scheduling goes on afterwards.
#[test]
fn a_restarted_master_recovers_what_answers() {
    let dir = RecoveryDir::new("restart");
    let dir_setting = dir.setting();
    let settings = recovery(&dir_setting, &[]);
    let first = Running(master_with(&settings));
    let worker = FakeWorker::start(&first, "worker-1");
    worker.register(8, 4096);
    let driver_id = submit(&first, false);
    worker.got.wait_for("LaunchDriver", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::LaunchDriver { .. }))
            .then_some(())
    });
    let app = FakeApp::start(&first, "app");
    let app_id = app.register(self::app("app", Some(6), Some(2), 512));
    let launched = worker.launches(3);
    let port = stop(&first);

    let master = Running(start_master_on(port, &settings));
    let told = worker.master_changed(1);
    assert_eq!(told.rpc_address(), Some(&master.address()));
    let told_app = app.master_changed(1);
    assert_eq!(told_app.rpc_address(), Some(&master.address()));
    let state = master.state().expect("state");
    assert_eq!(state.status, "RECOVERING");
    assert_eq!(worker_state(&state, &worker.id), Some("UNKNOWN"));
    assert_eq!(app_state(&state, &app_id), Some("UNKNOWN"));
    assert_eq!(state.active_drivers.len(), 1);

    // RecoverySuite 13: a new worker may register meanwhile.
    let newcomer = FakeWorker::start(&master, "worker-2");
    newcomer.register(2, 1024);
    assert_eq!(master.state().expect("state").status, "RECOVERING");

    told_app
        .send(MasterMessage::MasterChangeAcknowledged {
            app_id: app_id.clone(),
        })
        .expect("sent");
    wait_state(&master, "the app answered", |s| {
        app_state(s, &app_id) == Some("WAITING")
    });
    told.send(MasterMessage::WorkerSchedulerStateResponse {
        id: worker.id.clone(),
        executors: running(&launched),
        driver_ids: vec![driver_id.clone()],
    })
    .expect("sent");
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    assert_eq!(worker_state(&state, &worker.id), Some("ALIVE"));
    let w = state.workers.iter().find(|w| w.id == worker.id).expect("w");
    assert_eq!((w.cores_used, w.memory_used_mib), (7, 3 * 512 + 256));
    let a = state
        .active_apps
        .iter()
        .find(|a| a.id == app_id)
        .expect("app");
    assert_eq!(
        (a.state.as_str(), a.executors, a.cores_granted),
        ("RUNNING", 3, 6)
    );
    assert_eq!(state.active_drivers.len(), 1);
    assert_eq!(state.active_drivers[0].state, DriverState::Running);
    assert_eq!(state.active_drivers[0].worker, Some(worker.id.clone()));

    // Carrying on: nothing is launched twice, and a new application gets the newcomer.
    let other = FakeApp::start(&master, "other");
    let other_id = other.register(self::app("other", None, Some(2), 512));
    assert_ne!(other_id, app_id);
    assert_eq!(newcomer.launches(1)[0].0, other_id);
    assert_eq!(
        worker.launched_now().len(),
        3,
        "the recovered executors stay"
    );
    master.shutdown();
}

/// Workers and applications that never answer are dropped at the recovery timeout; the
/// ones that answered (at once, as real ones do) carry on.
#[test]
fn the_silent_are_dropped_at_the_recovery_timeout() {
    let dir = RecoveryDir::new("timeout");
    let dir_setting = dir.setting();
    let settings = recovery(&dir_setting, &[(master_keys::RECOVERY_TIMEOUT, "3s")]);
    let first = Running(master_with(&settings));
    let talker = FakeWorker::start(&first, "worker-talks");
    talker.register(2, 1024);
    let app = FakeApp::start(&first, "app-talks");
    let app_id = app.register(self::app("talks", Some(1), Some(1), 64));
    let talker_execs = talker.launches(1);
    let silent = FakeWorker::start(&first, "worker-silent");
    silent.register(2, 1024);
    let mute = FakeApp::start(&first, "app-silent");
    let mute_id = mute.register(self::app("silent", Some(1), Some(1), 64));
    assert_eq!(
        silent.launches(1)[0].0,
        mute_id,
        "the worker with more free cores"
    );
    talker.follow_master_changes(running(&talker_execs), Vec::new());
    app.follow_master_changes(&app_id);
    let port = stop(&first);

    let master = Running(start_master_on(port, &settings));
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    silent.master_changed(1);
    mute.master_changed(1);
    assert_eq!(worker_state(&state, &talker.id), Some("ALIVE"));
    assert_eq!(worker_state(&state, &silent.id), Some("DEAD"));
    assert_eq!(app_state(&state, &mute_id), None);
    let finished = state.completed_apps.iter().find(|a| a.id == mute_id);
    assert_eq!(finished.map(|a| a.state.as_str()), Some("FINISHED"));
    let a = state
        .active_apps
        .iter()
        .find(|a| a.id == app_id)
        .expect("app");
    assert_eq!((a.state.as_str(), a.executors), ("RUNNING", 1));
    master.shutdown();
}

/// A damaged file in the directory is reported and skipped; the rest is recovered.
#[test]
fn a_corrupt_file_is_skipped() {
    let dir = RecoveryDir::new("corrupt");
    let dir_setting = dir.setting();
    let settings = recovery(&dir_setting, &[]);
    let first = Running(master_with(&settings));
    let worker = FakeWorker::start(&first, "worker-ok");
    worker.register(2, 1024);
    worker.follow_master_changes(Vec::new(), Vec::new());
    let port = stop(&first);
    let stored = std::fs::read(dir.path().join("worker_worker-ok")).expect("stored");
    std::fs::write(
        dir.path().join("worker_worker-torn"),
        &stored[..stored.len() / 2],
    )
    .expect("write");
    std::fs::write(dir.path().join("app_app-garbage"), b"\x00\x01garbage").expect("write");
    std::fs::write(dir.path().join("driver_driver-empty"), b"").expect("write");

    let master = Running(start_master_on(port, &settings));
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    let ids: Vec<&WorkerId> = state.workers.iter().map(|w| &w.id).collect();
    assert_eq!(ids, [&worker.id]);
    assert!(state.active_apps.is_empty() && state.active_drivers.is_empty());
    master.shutdown();
}

/// RecoverySuite 2 (SPARK-46664): only a driver stored, no worker or application to
/// wait for: ALIVE at once, the unclaimed driver ended (it was not supervised).
#[test]
fn only_a_driver_stored_recovers_at_once() {
    let dir = RecoveryDir::new("driver-only");
    let dir_setting = dir.setting();
    // A recovery timeout no test waits for: reaching ALIVE must not depend on it.
    let settings = recovery(&dir_setting, &[(master_keys::RECOVERY_TIMEOUT, "1h")]);
    let first = Running(master_with(&settings));
    let driver_id = submit(&first, false);
    let port = stop(&first);

    let master = Running(start_master_on(port, &settings));
    let state = wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    assert!(state.workers.is_empty() && state.active_drivers.is_empty());
    let ended = state.completed_drivers.iter().find(|d| d.id == driver_id);
    assert_eq!(ended.map(|d| d.state), Some(DriverState::Error));
    master.shutdown();
}

/// RecoverySuite 14 (SPARK-46353): a stored worker registering again while the master
/// recovers is told it is a duplicate and is ALIVE; recovery still waits for the
/// application, and for the worker's report of what it runs.
#[test]
fn a_stored_worker_registering_again_is_a_duplicate() {
    let dir = RecoveryDir::new("duplicate");
    let dir_setting = dir.setting();
    let settings = recovery(&dir_setting, &[(master_keys::RECOVERY_TIMEOUT, "1h")]);
    let first = Running(master_with(&settings));
    let worker = FakeWorker::start(&first, "worker-0");
    worker.register(2, 1024);
    let app = FakeApp::start(&first, "app");
    let app_id = app.register(self::app("app", Some(0), None, 64));
    let port = stop(&first);

    let master = Running(start_master_on(port, &settings));
    worker.master_changed(1);
    worker.send_registration(2, 1024);
    let duplicates = worker.got.wait_count("a second answer", 2, |m| match m {
        WorkerMessage::RegisteredWorker { duplicate, .. } => Some(*duplicate),
        _ => None,
    });
    assert_eq!(duplicates, [false, true]);
    let state = wait_state(&master, "the worker ALIVE", |s| {
        worker_state(s, &worker.id) == Some("ALIVE")
    });
    assert_eq!(state.status, "RECOVERING", "the app has not answered");
    app.master_changed(1)
        .send(MasterMessage::MasterChangeAcknowledged { app_id })
        .expect("sent");
    wait_state(&master, "the app answered", |s| {
        s.active_apps.iter().all(|a| a.state == "WAITING")
    });
    // Registered again, but its executors come with its answer: still waiting for it.
    assert_eq!(master.state().expect("state").status, "RECOVERING");
    worker
        .master_changed(1)
        .send(MasterMessage::WorkerSchedulerStateResponse {
            id: worker.id.clone(),
            executors: Vec::new(),
            driver_ids: Vec::new(),
        })
        .expect("sent");
    wait_state(&master, "ALIVE", |s| s.status == "ALIVE");
    master.shutdown();
}

/// An unknown recovery mode, or FILESYSTEM without a directory, stops the start with an
/// error naming the key (Spark would silently run without recovery).
#[test]
fn bad_recovery_settings_name_their_key() {
    for (settings, key) in [
        (
            vec![(master_keys::RECOVERY_MODE, "ZOOKEEPER")],
            master_keys::RECOVERY_MODE,
        ),
        (
            vec![(master_keys::RECOVERY_MODE, "FILESYSTEM")],
            master_keys::RECOVERY_DIRECTORY,
        ),
    ] {
        match start_master(config_on(0, &settings)) {
            Err(RpcError::Conf(e)) => assert_eq!(e.key(), key, "{e}"),
            Err(e) => panic!("not a settings error: {e}"),
            Ok(master) => {
                master.shutdown();
                panic!("started with {settings:?}");
            }
        }
    }
}
