//! Recovery driven by direct calls (RecoverySuite's handler-level items): a master stores
//! into a directory, a second master on the same env and directory is elected, recovers,
//! and is fed the answers to `MasterChanged`. The registries must stay consistent at
//! every step, and what the master sends (`MasterChanged` to what it recovers, kills of
//! what it does not know, the recovery timer, launches once ALIVE) is asserted from the
//! effects its handlers return.

use std::fs;

use rpc_env::EndpointRef;

use super::apps::AppStatus;
use super::config::MasterSettings;
use super::effects::{Effect, Effects};
use super::persistence::{FileSystemPersistence, PersistenceEngine};
use super::phase::Phase;
use super::stored::{app_key, driver_key, worker_key, FORMAT_VERSION};
use super::test_dir::TestDir;
use super::tests::{launched, Fixture, WEB_UI};
use super::workers::WorkerStatus;
use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{
    AppClientMessage, DriverState, ExecutorDescription, ExecutorState, MasterMessage,
    WorkerMessage, WorkerProtocol, WorkerRegistration,
};

fn worker_status(f: &Fixture, id: &str) -> Option<WorkerStatus> {
    f.master
        .workers
        .get(&WorkerId(id.into()))
        .map(|w| w.status())
}

fn app_status(f: &Fixture, id: &AppId) -> Option<AppStatus> {
    f.master.apps.get(id).map(|a| a.status())
}

/// What a worker reports after `MasterChanged`: the executors the old master placed.
fn reported(f: &Fixture, app: &AppId) -> Vec<ExecutorDescription> {
    let app_info = f.master.apps.get(app).expect("active");
    app_info
        .executors()
        .map(|(exec_id, e)| ExecutorDescription {
            app_id: app.clone(),
            exec_id,
            cores: e.cores,
            memory_mib: e.memory_mib,
            state: ExecutorState::Running,
        })
        .collect()
}

fn is_recovering(f: &Fixture) -> bool {
    matches!(f.master.phase, Phase::Recovering { .. })
}

/// The `MasterChanged` a recovering master sends an application's driver.
fn app_told(f: &Fixture, app: &AppId) -> Effect {
    Effect::ToApp {
        to: f.driver_of(app),
        msg: AppClientMessage::MasterChanged {
            master: f.master.me.clone(),
            master_web_ui_url: WEB_UI.into(),
        },
    }
}

/// A known worker's ref.
fn worker_ref(f: &Fixture, id: &str) -> EndpointRef<WorkerProtocol> {
    let worker = f.master.workers.get(&WorkerId(id.into())).expect("known");
    worker.endpoint().clone()
}

/// The `MasterChanged` a recovering master sends a stored worker.
fn worker_told(f: &Fixture, id: &str) -> Effect {
    Effect::ToWorker {
        to: worker_ref(f, id),
        msg: WorkerMessage::MasterChanged {
            master: f.master.me.clone(),
            master_web_ui_url: WEB_UI.into(),
        },
    }
}

/// RecoverySuite 3: master correctly recovers the application.
#[test]
fn a_restarted_master_recovers_workers_apps_and_drivers() {
    let dir = TestDir::new("recover");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    f.add_worker("worker-1", 16, 8192);
    let (driver, _launch) = f.submit(false);
    let app = f.add_app("app", Some(12), Some(4));
    let before = reported(&f, &app);
    assert_eq!(before.len(), 3, "three 4-core executors");
    for key in [
        worker_key(&WorkerId("worker-1".into())),
        app_key(&app),
        driver_key(&driver),
    ] {
        assert!(dir.path().join(&key).is_file(), "{key} is stored");
    }

    let elected = f.restart(MasterSettings::default(), dir.path());
    assert!(is_recovering(&f));
    assert_eq!(
        elected.as_slice(),
        [
            app_told(&f, &app),
            worker_told(&f, "worker-1"),
            Effect::ArmRecoveryTimer
        ],
        "each stored app and worker is told, then the timer bounds the wait"
    );
    assert_eq!(f.master.snapshot().status, "RECOVERING");
    assert_eq!(worker_status(&f, "worker-1"), Some(WorkerStatus::Unknown));
    assert_eq!(app_status(&f, &app), Some(AppStatus::Unknown));
    assert_eq!(
        f.master.drivers.get(&driver).map(|d| d.worker()),
        Some(None)
    );
    let w = f
        .master
        .workers
        .get(&WorkerId("worker-1".into()))
        .expect("w");
    assert_eq!((w.cores_free(), w.cores_used()), (16, 0));
    f.check("beginning recovery");

    assert_eq!(f.master.master_change_acknowledged(&app), Effects::none());
    assert_eq!(app_status(&f, &app), Some(AppStatus::Waiting));
    assert!(is_recovering(&f), "the worker has not answered");
    f.check("the app answering");

    let completed =
        f.master
            .worker_scheduler_state(&WorkerId("worker-1".into()), before, vec![driver.clone()]);
    f.check("the worker answering");
    assert_eq!(
        completed.as_slice(),
        [Effect::CancelRecoveryTimer],
        "the last answer completes recovery; the app has all it asked for"
    );
    assert_eq!(f.master.phase, Phase::Alive);
    assert_eq!(worker_status(&f, "worker-1"), Some(WorkerStatus::Alive));
    let w = f
        .master
        .workers
        .get(&WorkerId("worker-1".into()))
        .expect("w");
    assert_eq!(
        (w.cores_free(), w.cores_used()),
        (3, 13),
        "12 + the driver's 1"
    );
    assert_eq!(app_status(&f, &app), Some(AppStatus::Running));
    let ids: Vec<u32> = f.executors(&app).iter().map(|e| e.0).collect();
    assert_eq!(ids, [0, 1, 2], "the executors keep their ids");
    let placed = f.master.drivers.get(&driver).expect("active");
    assert_eq!(
        (placed.state(), placed.worker().cloned()),
        (DriverState::Running, Some(WorkerId("worker-1".into())))
    );

    // Scheduling resumes, and new executors are numbered after the recovered ones.
    f.add_worker("worker-2", 8, 8192);
    let new_ids: Vec<u32> = f.executors(&app).iter().map(|e| e.0).collect();
    assert_eq!(new_ids, [0, 1, 2], "the app has all 12 cores it asked for");
    let other = f.add_app("other", None, Some(4));
    assert_eq!(f.executors(&other).len(), 2);
    assert!(
        other.0.ends_with("-0001"),
        "app ids go on after {app}: {other}"
    );
}

/// A worker's answer to `MasterChanged` names work the new master does not know (an
/// executor of an application that was not stored, a driver that was not): the master has
/// it killed there, as after a registration (SPARK-13604), and keeps what it knows.
#[test]
fn a_recovering_master_kills_what_a_worker_runs_unknown_to_it() {
    let dir = TestDir::new("kill-unknown");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", Some(1), Some(1));
    let mut executors = reported(&f, &app);
    let _told = f.restart(MasterSettings::default(), dir.path());

    executors.push(ExecutorDescription {
        app_id: AppId("app-gone".into()),
        exec_id: 7,
        cores: 1,
        memory_mib: 100,
        state: ExecutorState::Running,
    });
    let gone = DriverId("driver-gone".into());
    let out = f.master.worker_scheduler_state(
        &WorkerId("worker-1".into()),
        executors,
        vec![gone.clone()],
    );
    f.check("the worker answering");
    assert_eq!(
        out.to_worker(&worker),
        [
            &WorkerMessage::KillExecutor {
                master_url: f.master.url.clone(),
                app_id: AppId("app-gone".into()),
                exec_id: 7,
            },
            &WorkerMessage::KillDriver { driver_id: gone },
        ]
    );
    assert_eq!(
        out.as_slice().len(),
        2,
        "nothing else: the app has not answered"
    );
    assert_eq!(f.executors(&app).len(), 1, "the known executor is kept");
    assert!(is_recovering(&f));
}

/// RecoverySuite 2 (SPARK-46664): with only drivers stored there is nothing to wait for.
#[test]
fn only_drivers_stored_recovers_at_once() {
    let dir = TestDir::new("drivers-only");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    let (plain, _) = f.submit(false);
    let (supervised, _) = f.submit(true);

    let elected = f.restart(MasterSettings::default(), dir.path());
    assert_eq!(f.master.phase, Phase::Alive, "no worker or app to wait for");
    assert_eq!(
        elected.as_slice(),
        [Effect::CancelRecoveryTimer],
        "no one to tell, no timer armed, no worker to launch the relaunched driver on"
    );
    assert!(f.master.workers.iter().next().is_none());
    f.check("recovering drivers only");
    // No worker claimed them: the unsupervised one ends in ERROR, the other is relaunched.
    let find = |id: &DriverId| f.master.drivers.find(id).map(|d| d.state());
    assert_eq!(find(&plain), Some(DriverState::Error));
    assert_eq!(find(&supervised), Some(DriverState::Relaunching));
    let relaunched: Vec<DriverId> = f.master.drivers.active().map(|d| d.id().clone()).collect();
    assert_eq!(relaunched.len(), 1);
    assert!(!dir.path().join(driver_key(&plain)).exists(), "unpersisted");
    assert!(
        dir.path().join(driver_key(&relaunched[0])).is_file(),
        "persisted"
    );
    assert!(
        relaunched[0].0.ends_with("-0002"),
        "numbered after the recovered drivers: {}",
        relaunched[0]
    );
}

/// What did not answer is dropped when recovery completes (the timer's path).
#[test]
fn the_silent_are_dropped_when_recovery_completes() {
    let dir = TestDir::new("silent");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    f.add_worker("worker-talks", 4, 1024);
    f.add_worker("worker-silent", 4, 1024);
    let talks = f.add_app("talks", Some(1), Some(1));
    let silent = f.add_app("silent", Some(1), Some(1));

    let elected = f.restart(MasterSettings::default(), dir.path());
    assert_eq!(
        elected.as_slice(),
        [
            app_told(&f, &talks),
            app_told(&f, &silent),
            worker_told(&f, "worker-silent"),
            worker_told(&f, "worker-talks"),
            Effect::ArmRecoveryTimer
        ]
    );
    assert_eq!(f.master.master_change_acknowledged(&talks), Effects::none());
    let talks_state =
        f.master
            .worker_scheduler_state(&WorkerId("worker-talks".into()), Vec::new(), Vec::new());
    assert_eq!(talks_state, Effects::none(), "nothing unknown to kill");
    assert!(is_recovering(&f));
    f.check("half answered");

    let silent_driver = f.driver_of(&silent);
    let (silent_worker, talks_worker) = (
        worker_ref(&f, "worker-silent"),
        worker_ref(&f, "worker-talks"),
    );
    let completed = f.master.complete_recovery();
    f.check("recovery completed");
    let lost = |to| Effect::ToApp {
        to,
        msg: AppClientMessage::WorkerRemoved {
            id: WorkerId("worker-silent".into()),
            host: "127.0.0.1".into(),
            message: "Not responding for recovery".into(),
        },
    };
    let finished = |to| Effect::ToWorker {
        to,
        msg: WorkerMessage::ApplicationFinished {
            app_id: silent.clone(),
        },
    };
    let mut expected = vec![
        Effect::CancelRecoveryTimer,
        lost(f.driver_of(&talks)),
        lost(silent_driver),
        finished(silent_worker),
        finished(talks_worker.clone()),
    ];
    expected.extend(launched(&f, &talks_worker, &talks, 0, 1));
    assert_eq!(completed.as_slice(), expected);
    assert_eq!(f.master.phase, Phase::Alive);
    assert_eq!(worker_status(&f, "worker-talks"), Some(WorkerStatus::Alive));
    assert_eq!(worker_status(&f, "worker-silent"), Some(WorkerStatus::Dead));
    assert_eq!(app_status(&f, &silent), None, "finished");
    assert_eq!(
        f.master.apps.completed().last().map(|a| a.status()),
        Some(AppStatus::Finished)
    );
    assert!(!dir.path().join(app_key(&silent)).exists());
    assert!(!dir.path().join("worker_worker-silent").exists());
    // The answering app was RUNNING at once and gets its executor again.
    assert_eq!(app_status(&f, &talks), Some(AppStatus::Running));
    assert_eq!(f.executors(&talks).len(), 1);
}

/// The `RegisterWorker` a stored worker sends again, from where it was; it must be told
/// it is registered, as a duplicate (SPARK-46346).
fn register_again(f: &mut Fixture, id: &str) {
    let w = f.master.workers.get(&WorkerId(id.into())).expect("stored");
    let address = w.address().clone();
    let registration = WorkerRegistration {
        id: w.id().clone(),
        host: w.host().to_string(),
        port: w.port(),
        worker: w.endpoint().clone(),
        cores: w.cores(),
        memory_mib: w.memory_mib(),
        web_ui_url: String::new(),
        master_address: address,
    };
    let worker = registration.worker.clone();
    let msg = MasterMessage::RegisterWorker { registration };
    let out = f.master.handle(msg, None).expect("handled");
    f.check(&format!("{id} registering again"));
    assert!(
        matches!(
            out.to_worker(&worker)[..],
            [WorkerMessage::RegisteredWorker {
                duplicate: true,
                ..
            }]
        ),
        "{out:?}"
    );
}

/// RecoverySuite 13 and 14 (SPARK-46353): registrations are accepted while recovering; a
/// stored worker registering again is ALIVE at once, but recovery still waits for its
/// report of what it runs, and keeps it if the report never comes.
#[test]
fn a_stored_worker_registering_again_is_alive_but_still_owes_its_state() {
    let dir = TestDir::new("reregister");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    f.add_worker("worker-0", 4, 1024);
    f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", Some(1), Some(1));
    let _told = f.restart(MasterSettings::default(), dir.path());

    // RecoverySuite 13: a new worker is registered while recovering.
    f.add_worker("worker-new", 2, 512);
    assert_eq!(worker_status(&f, "worker-new"), Some(WorkerStatus::Alive));
    register_again(&mut f, "worker-0");
    register_again(&mut f, "worker-1");
    assert_eq!(worker_status(&f, "worker-0"), Some(WorkerStatus::Alive));
    let _ = f.master.master_change_acknowledged(&app);
    assert!(is_recovering(&f), "the workers owe their executors");
    let _ = f
        .master
        .worker_scheduler_state(&WorkerId("worker-0".into()), Vec::new(), Vec::new());
    assert!(is_recovering(&f), "worker-1 still owes its executors");

    let _ = f.master.complete_recovery();
    f.check("after");
    assert_eq!(f.master.phase, Phase::Alive);
    assert_eq!(
        worker_status(&f, "worker-1"),
        Some(WorkerStatus::Alive),
        "registered, so kept"
    );
    assert_eq!(app_status(&f, &app), Some(AppStatus::Running));
}

/// Damaged, foreign-version and mismatched records are skipped; the rest is recovered.
#[test]
fn damaged_records_are_skipped() {
    let dir = TestDir::new("damaged");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    f.add_worker("worker-ok", 4, 1024);
    let app = f.add_app("future", None, None);
    let mut engine = FileSystemPersistence::open(dir.path(), None).expect("opens");
    let read_one = |engine: &FileSystemPersistence, key: &str| {
        let mut found = engine.read(key);
        assert_eq!(found.len(), 1, "{key}");
        found.remove(0).1
    };
    // Intact files whose records are not: garbage, a later format, another worker's.
    engine
        .persist("worker_garbage", b"not a record")
        .expect("persist");
    let mut later = read_one(&engine, &app_key(&app));
    later[0] = FORMAT_VERSION + 1;
    engine.persist(&app_key(&app), &later).expect("persist");
    let ok = read_one(&engine, &worker_key(&WorkerId("worker-ok".into())));
    engine.persist("worker_copied", &ok).expect("persist");
    // And a torn file.
    fs::write(dir.path().join("driver_torn"), b"EMBR\0\0").expect("write");

    let elected = f.restart(MasterSettings::default(), dir.path());
    assert_eq!(
        elected.as_slice(),
        [worker_told(&f, "worker-ok"), Effect::ArmRecoveryTimer],
        "only what was read back is told"
    );
    let workers: Vec<&str> = f.master.workers.iter().map(|w| w.id().0.as_str()).collect();
    assert_eq!(workers, ["worker-ok"], "the copy holds another id");
    assert!(f.master.apps.get(&app).is_none());
    assert!(f.master.drivers.active().next().is_none());
    assert!(is_recovering(&f));
    let _ = f
        .master
        .worker_scheduler_state(&WorkerId("worker-ok".into()), Vec::new(), Vec::new());
    assert_eq!(f.master.phase, Phase::Alive);
    f.check("after skipping");
}

/// Removal unpersists: a finished app, a lost worker, an ended driver leave no record.
#[test]
fn removals_unpersist() {
    let dir = TestDir::new("unpersist");
    let mut f = Fixture::with_recovery_dir(MasterSettings::default(), dir.path());
    f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let (driver, _launch) = f.submit(false);
    let _ = f.master.unregister_application(&app);
    let _ = f
        .master
        .driver_state_changed(&driver, DriverState::Finished, None)
        .expect("final");
    let _ = f.master.remove_worker(&WorkerId("worker-1".into()), "test");
    let left: Vec<String> = fs::read_dir(dir.path())
        .expect("lists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let elected = f.restart(MasterSettings::default(), dir.path());
    assert_eq!(f.master.phase, Phase::Alive, "nothing to recover");
    assert_eq!(elected, Effects::none());
}
