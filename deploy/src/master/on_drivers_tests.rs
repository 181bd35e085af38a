//! The driver handlers (`on_drivers.rs`, cluster deploy mode) driven directly: what the
//! master sends when drivers are submitted, placed, killed, end, or lose their worker.

use rpc_env::EndpointRef;

use super::config::MasterSettings;
use super::effects::{Effect, Effects};
use super::tests::{driver_description, Fixture};
use crate::ids::{DriverId, WorkerId};
use crate::messages::{DriverState, KillDriverResponse, WorkerMessage, WorkerProtocol};

fn launch(to: &EndpointRef<WorkerProtocol>, driver: &DriverId, supervise: bool) -> Effect {
    Effect::ToWorker {
        to: to.clone(),
        msg: WorkerMessage::LaunchDriver {
            driver_id: driver.clone(),
            description: driver_description(supervise),
        },
    }
}

fn state(f: &Fixture, driver: &DriverId) -> Option<DriverState> {
    f.master.drivers.find(driver).map(|d| d.state())
}

#[test]
fn a_submitted_driver_is_launched_on_a_worker_with_room() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let (response, out) = f.master.submit_driver(driver_description(false));
    f.check("submitting");
    let driver = response.driver_id.clone().expect("accepted");
    assert!(response.success);
    assert_eq!(
        response.message,
        format!("Driver successfully submitted as {driver}")
    );
    assert_eq!(out.as_slice(), [launch(&worker, &driver, false)]);
}

/// A driver waits while no worker has room, and the next worker to register runs it.
#[test]
fn a_waiting_driver_is_launched_on_the_next_worker_to_register() {
    let mut f = Fixture::new(MasterSettings::default());
    let (driver, out) = f.submit(false);
    assert_eq!(out, Effects::none(), "nowhere to run");
    assert_eq!(state(&f, &driver), Some(DriverState::Submitted));

    let (worker, out) = f.register_worker("worker-1", 4, 1024);
    assert!(matches!(
        out.to_worker(&worker)[..],
        [WorkerMessage::RegisteredWorker { .. }, _]
    ));
    assert_eq!(out.as_slice()[1], launch(&worker, &driver, false));
}

/// A driver ending frees its worker's cores for the driver that waited for them.
#[test]
fn a_driver_ending_launches_the_one_waiting_for_its_cores() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 1, 1024);
    let (first, _launch) = f.submit(false);
    let (second, out) = f.submit(false);
    assert_eq!(out, Effects::none(), "one core, taken");
    let out = f
        .master
        .driver_state_changed(&first, DriverState::Finished, None)
        .expect("a final state");
    f.check("the first driver finishing");
    assert_eq!(out.as_slice(), [launch(&worker, &second, false)]);
    assert_eq!(state(&f, &first), Some(DriverState::Finished));
}

/// As Spark, which throws: a state that is not final is an error of the handler.
#[test]
fn a_driver_state_that_is_not_final_is_an_error() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-1", 4, 1024);
    let (driver, _launch) = f.submit(false);
    let err = f
        .master
        .driver_state_changed(&driver, DriverState::Running, None)
        .expect_err("not final");
    assert_eq!(
        err.to_string(),
        format!("Received unexpected state update for driver {driver}: RUNNING")
    );
    assert_eq!(state(&f, &driver), Some(DriverState::Running));
}

/// `RequestKillDriver` of a running driver: its worker is asked to kill it; the driver
/// ends when the worker reports it.
#[test]
fn killing_a_running_driver_asks_its_worker_to_kill_it() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let (driver, _launch) = f.submit(false);
    let (response, out) = f.master.kill_driver(driver.clone());
    assert_eq!(
        response,
        KillDriverResponse {
            driver_id: driver.clone(),
            success: true,
            message: format!("Kill request for {driver} submitted"),
        }
    );
    assert_eq!(
        out.as_slice(),
        [Effect::ToWorker {
            to: worker,
            msg: WorkerMessage::KillDriver {
                driver_id: driver.clone()
            },
        }]
    );
    assert_eq!(state(&f, &driver), Some(DriverState::Running));
}

#[test]
fn killing_a_waiting_driver_ends_it_at_once_and_sends_nothing() {
    let mut f = Fixture::new(MasterSettings::default());
    let (driver, _nowhere) = f.submit(false);
    let (response, out) = f.master.kill_driver(driver.clone());
    f.check("killing a waiting driver");
    assert!(response.success);
    assert_eq!(out, Effects::none());
    assert_eq!(state(&f, &driver), Some(DriverState::Killed));
}

#[test]
fn killing_an_unknown_driver_fails_and_sends_nothing() {
    let mut f = Fixture::new(MasterSettings::default());
    let unknown = DriverId("driver-unknown".into());
    let (response, out) = f.master.kill_driver(unknown.clone());
    assert_eq!(
        response,
        KillDriverResponse {
            driver_id: unknown.clone(),
            success: false,
            message: format!("Driver {unknown} has already finished or does not exist"),
        }
    );
    assert_eq!(out, Effects::none());
}

/// SPARK-19900: a supervised driver whose worker is lost is relaunched under a new id on
/// another worker; the old id ends as RELAUNCHING. An unsupervised one ends in ERROR.
#[test]
fn a_lost_workers_supervised_driver_is_relaunched_elsewhere_under_a_new_id() {
    let mut f = Fixture::new(MasterSettings::default());
    let one = f.add_worker("worker-1", 4, 1024);
    let two = f.add_worker("worker-2", 4, 1024);
    let (supervised, out) = f.submit(true);
    // Drivers are spread over the workers at random: lose the one it runs on.
    let (lost, other) = if out.to_worker(&one).is_empty() {
        (WorkerId("worker-2".into()), one)
    } else {
        (WorkerId("worker-1".into()), two)
    };
    let address = f.master.workers.get(&lost).expect("live").address().clone();
    let out = f.master.disconnected(&address);
    f.check("losing the driver's worker");
    assert_eq!(state(&f, &supervised), Some(DriverState::Relaunching));
    let relaunched = f
        .master
        .drivers
        .active()
        .map(|d| d.id().clone())
        .next()
        .expect("relaunched");
    assert_ne!(relaunched, supervised, "a new id");
    assert_eq!(out.as_slice(), [launch(&other, &relaunched, true)]);

    let (plain, _launch) = f.submit(false);
    let _lost = f.master.remove_worker(&WorkerId("worker-1".into()), "test");
    let _lost = f.master.remove_worker(&WorkerId("worker-2".into()), "test");
    f.check("losing every worker");
    assert_eq!(state(&f, &plain), Some(DriverState::Error));
}
