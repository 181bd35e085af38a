//! The master and cluster-mode drivers: submit, status, kill, launch on a worker, drivers
//! before executors, relaunch of supervised drivers, standby refusals.

pub mod master_support;

use ember_deploy::messages::{
    DriverState, DriverStatusResponse, KillDriverResponse, MasterAsk, MasterMessage,
    SubmitDriverResponse, WorkerMessage,
};
use ember_deploy::{master_keys, start_master, DriverId, MasterConfig, MasterHandle};
use master_support::*;

fn submit(
    master: &MasterHandle,
    cores: u32,
    memory_mib: u32,
    supervise: bool,
) -> SubmitDriverResponse {
    master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestSubmitDriver {
            description: driver(cores, memory_mib, supervise),
            reply,
        })
        .expect("answered")
}

fn submitted(master: &MasterHandle, cores: u32, supervise: bool) -> DriverId {
    let response = submit(master, cores, 64, supervise);
    assert!(response.success, "{}", response.message);
    response.driver_id.expect("an id")
}

fn kill(master: &MasterHandle, id: &DriverId) -> KillDriverResponse {
    master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestKillDriver {
            driver_id: id.clone(),
            reply,
        })
        .expect("answered")
}

fn status(master: &MasterHandle, id: &DriverId) -> DriverStatusResponse {
    master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestDriverStatus {
            driver_id: id.clone(),
            reply,
        })
        .expect("answered")
}

fn launched_drivers(worker: &FakeWorker, n: usize) -> Vec<DriverId> {
    worker.got.wait_count("LaunchDriver", n, |m| match m {
        WorkerMessage::LaunchDriver { driver_id, .. } => Some(driver_id.clone()),
        _ => None,
    })
}

#[test]
fn a_driver_waits_for_a_worker_then_runs_there() {
    let master = master();
    let response = submit(&master, 1, 256, false);
    assert!(response.success);
    let id = response.driver_id.expect("an id");
    assert_eq!(
        response.message,
        format!("Driver successfully submitted as {id}")
    );
    assert!(
        id.0.starts_with("driver-") && id.0.ends_with("-0000"),
        "{id}"
    );
    let waiting = status(&master, &id);
    assert_eq!(
        (waiting.found, waiting.state, waiting.worker_id.clone()),
        (true, Some(DriverState::Submitted), None)
    );

    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let (launched, description) = worker.got.wait_for("LaunchDriver", |m| {
        m.iter().find_map(|m| match m {
            WorkerMessage::LaunchDriver {
                driver_id,
                description,
            } => Some((driver_id.clone(), description.clone())),
            _ => None,
        })
    });
    assert_eq!((launched, description), (id.clone(), driver(1, 256, false)));
    let running = status(&master, &id);
    assert_eq!(
        (running.state, running.worker_id),
        (Some(DriverState::Running), Some(worker.id.clone()))
    );
    // Where its output is served: the status page the worker registered with.
    assert_eq!(
        running.worker_web_ui_url.as_deref(),
        Some("http://127.0.0.1:8081")
    );
    assert_eq!(waiting.worker_web_ui_url, None);
    let state = master.state().expect("state");
    assert_eq!(state.active_drivers.len(), 1);
    assert_eq!(
        (
            state.workers[0].cores_used,
            state.workers[0].memory_used_mib
        ),
        (1, 256)
    );
    master.shutdown();
}

#[test]
fn killing_a_waiting_driver_ends_it_at_once() {
    let master = master();
    let id = submitted(&master, 1, false);
    let response = kill(&master, &id);
    assert_eq!(
        (response.success, response.message.clone()),
        (true, format!("Kill request for {id} submitted"))
    );
    let after = status(&master, &id);
    assert_eq!(
        (after.found, after.state),
        (true, Some(DriverState::Killed))
    );
    let again = kill(&master, &id);
    assert_eq!(
        (again.success, again.message),
        (
            false,
            format!("Driver {id} has already finished or does not exist")
        )
    );
    let unknown = status(&master, &DriverId("driver-nope".into()));
    assert_eq!(
        (unknown.found, unknown.state, unknown.exception),
        (false, None, None)
    );
    let state = master.state().expect("state");
    assert!(state.active_drivers.is_empty());
    assert_eq!(state.completed_drivers[0].state, DriverState::Killed);
    master.shutdown();
}

#[test]
fn killing_a_running_driver_asks_its_worker() {
    let master = master();
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(4, 1024);
    let id = submitted(&master, 2, false);
    launched_drivers(&worker, 1);
    assert!(kill(&master, &id).success);
    worker.got.wait_for("KillDriver", |m| {
        m.iter()
            .any(|m| matches!(m, WorkerMessage::KillDriver { driver_id } if *driver_id == id))
            .then_some(())
    });
    assert_eq!(
        status(&master, &id).state,
        Some(DriverState::Running),
        "until the worker says"
    );

    // Only final states are accepted; the rest is an error and changes nothing. The ask
    // after it travels on the same connection, so it is handled after it.
    let change = |state| MasterMessage::DriverStateChanged {
        driver_id: id.clone(),
        state,
        exception: None,
    };
    worker
        .master
        .send(change(DriverState::Running))
        .expect("sent");
    let ask_status = || {
        worker
            .master
            .ask_sync(|reply| MasterAsk::RequestDriverStatus {
                driver_id: id.clone(),
                reply,
            })
            .expect("answered")
    };
    assert_eq!(ask_status().state, Some(DriverState::Running));
    worker
        .master
        .send(change(DriverState::Killed))
        .expect("sent");
    let done = ask_status();
    assert_eq!((done.found, done.state), (true, Some(DriverState::Killed)));
    assert_eq!(done.worker_id, Some(worker.id.clone()));
    let state = master.state().expect("state");
    assert_eq!(state.workers[0].cores_used, 0, "its cores are free again");
    master.shutdown();
}

#[test]
fn drivers_are_placed_before_executors() {
    let master = master();
    let app = FakeApp::start(&master, "app");
    let app_id = app.register(self::app("a", None, None, 64));
    let driver_id = submitted(&master, 1, false);
    let worker = FakeWorker::start(&master, "worker-1");
    worker.register(2, 1024);
    assert_eq!(
        worker.launches(1),
        [(app_id, 0, 1)],
        "the executor gets what is left"
    );
    worker.got.with(|m| {
        let first = m
            .iter()
            .position(|m| matches!(m, WorkerMessage::LaunchDriver { .. }));
        let exec = m
            .iter()
            .position(|m| matches!(m, WorkerMessage::LaunchExecutor { .. }));
        assert!(first < exec, "LaunchDriver first: {first:?} < {exec:?}");
    });
    assert_eq!(launched_drivers(&worker, 1), [driver_id]);
    master.shutdown();
}

// SPARK-19900 (RecoverySuite 6, in part): a supervised driver whose worker dies runs again
// under a new id; an unsupervised one ends in ERROR.
#[test]
fn a_lost_worker_relaunches_supervised_drivers_only() {
    let master = master_with(&[
        (master_keys::WORKER_TIMEOUT, "200ms"),
        (master_keys::DEAD_WORKER_PERSISTENCE, "100000"),
    ]);
    // Queued first, so the (silent) worker gets both the moment it registers.
    let supervised = submitted(&master, 1, true);
    let unsupervised = submitted(&master, 1, false);
    let doomed = FakeWorker::start(&master, "worker-doomed");
    doomed.register(2, 1024);
    assert_eq!(launched_drivers(&doomed, 2).len(), 2);

    let state = wait_state(&master, "the worker died", |s| {
        worker_state(s, &doomed.id) == Some("DEAD")
    });
    assert_eq!(
        status(&master, &supervised).state,
        Some(DriverState::Relaunching)
    );
    assert_eq!(
        status(&master, &unsupervised).state,
        Some(DriverState::Error)
    );
    assert_eq!(state.active_drivers.len(), 1);
    let relaunched = state.active_drivers[0].id.clone();
    assert_ne!(relaunched, supervised);
    assert_eq!(state.active_drivers[0].state, DriverState::Submitted);

    let rescuer = FakeWorker::start(&master, "worker-rescuer");
    rescuer.register(2, 1024);
    assert_eq!(launched_drivers(&rescuer, 1), [relaunched]);
    master.shutdown();
}

#[test]
fn a_standby_master_refuses_driver_requests() {
    let config = MasterConfig {
        standby: true,
        ..MasterConfig::local().with_conf(small_conf())
    };
    let master = start_master(config).expect("starts");
    let response = submit(&master, 1, 64, false);
    assert_eq!(
        (response.success, response.driver_id, response.message.as_str()),
        (
            false,
            None,
            "Current state is not alive: STANDBY. Can only accept driver submissions in ALIVE state."
        )
    );
    let id = DriverId("driver-x".into());
    let killed = kill(&master, &id);
    assert_eq!(
        (killed.success, killed.message.as_str()),
        (
            false,
            "Current state is not alive: STANDBY. Can only kill drivers in ALIVE state."
        )
    );
    let found = status(&master, &id);
    assert!(!found.found);
    assert_eq!(
        found.exception.as_deref(),
        Some("Current state is not alive: STANDBY. Can only request driver status in ALIVE state.")
    );
    master.shutdown();
}

/// Cluster deploy mode's upload goes past a standby to the leader: the standby's store takes
/// nothing (it does not know which programs the leader's drivers need), the leader's takes
/// the program, and the submission is accepted there; a second submission sends nothing.
#[test]
fn the_upload_skips_a_standby_and_the_leader_keeps_the_program() {
    use ember_deploy::program::{digest_file, ProgramDigest};
    use ember_deploy::submit::MasterClient;

    let standby = start_master(MasterConfig {
        standby: true,
        ..MasterConfig::local().with_conf(small_conf())
    })
    .expect("a standby starts");
    let leader = master_with(&[]);
    let scratch = ember_test_support::TempDir::new("upload-standby");
    let program = scratch.path().join("app");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&program, &content).expect("the program");
    let (size, sha256) = digest_file(&program).expect("hashes");
    let mut description = driver(1, 64, false);
    description.command.program = program.display().to_string();
    description.program_digest = Some(ProgramDigest {
        uri: String::new(),
        size,
        sha256: sha256.clone(),
    });
    let client =
        MasterClient::new(&[standby.address(), leader.address()], &small_conf()).expect("a client");
    let response = client.submit(&description).expect("submitted");
    assert!(response.success, "{}", response.message);
    let state = leader.state().expect("the leader answers");
    assert_eq!(state.active_drivers.len(), 1, "{state:?}");
    // Deleted here: a second submission of the same program needs nothing from this disk.
    std::fs::remove_file(&program).expect("removed");
    let again = client.submit(&description).expect("submitted again");
    assert!(again.success, "{}", again.message);
    // Only a standby: refused as a standby refuses a submission, so the user learns why.
    let only_standby = MasterClient::new(&[standby.address()], &small_conf()).expect("client");
    let refused = only_standby.submit(&description).expect("an answer");
    assert!(!refused.success);
    assert!(
        refused.message.starts_with("Current state is not alive"),
        "{}",
        refused.message
    );
    standby.shutdown();
    leader.shutdown();
}
