//! The application handlers (`on_apps.rs`) and `schedule()` driven directly: what the
//! master sends when applications register, are placed, see their executors change state,
//! are killed or finish. MasterSuite items are named where they are the same case.

use rpc_env::EndpointRef;

use super::apps::AppStatus;
use super::config::MasterSettings;
use super::effects::{Effect, Effects};
use super::tests::{launched, Fixture};
use crate::ids::AppId;
use crate::messages::{
    AppClientMessage, AppClientProtocol, ExecutorState, WorkerMessage, WorkerProtocol,
};

fn told_its_id(f: &Fixture, app: &AppId, driver: &EndpointRef<AppClientProtocol>) -> Effect {
    Effect::ToApp {
        to: driver.clone(),
        msg: AppClientMessage::RegisteredApplication {
            app_id: app.clone(),
            master: f.master.me.clone(),
        },
    }
}

fn kill(f: &Fixture, to: &EndpointRef<WorkerProtocol>, app: &AppId, exec_id: u32) -> Effect {
    Effect::ToWorker {
        to: to.clone(),
        msg: WorkerMessage::KillExecutor {
            master_url: f.master.url.clone(),
            app_id: app.clone(),
            exec_id,
        },
    }
}

fn finished(to: &EndpointRef<WorkerProtocol>, app: &AppId) -> Effect {
    Effect::ToWorker {
        to: to.clone(),
        msg: WorkerMessage::ApplicationFinished {
            app_id: app.clone(),
        },
    }
}

fn updated(
    f: &Fixture,
    app: &AppId,
    exec_id: u32,
    state: ExecutorState,
    exit: Option<i32>,
) -> Effect {
    Effect::ToApp {
        to: f.driver_of(app),
        msg: AppClientMessage::ExecutorUpdated {
            id: exec_id,
            state,
            message: None,
            exit_status: exit,
            worker_host: None,
        },
    }
}

/// An application registering with one alive worker is told its id, then placed at
/// once: `LaunchExecutor` to that worker, `ExecutorAdded` to the application.
#[test]
fn an_app_registering_with_one_alive_worker_launches_an_executor_there() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let (app, driver, out) = f.register_app("app", None, None);
    let mut expected = vec![told_its_id(&f, &app, &driver)];
    expected.extend(launched(&f, &worker, &app, 0, 4));
    assert_eq!(out.as_slice(), expected, "all four cores in one executor");
}

/// With no worker the application waits, and its driver is told why; the first worker to
/// register gets its executor.
#[test]
fn an_app_waits_for_a_worker_and_its_registration_launches_the_executor() {
    let mut f = Fixture::new(MasterSettings::default());
    let (app, driver, out) = f.register_app("app", None, Some(2));
    let why = Effect::ToApp {
        to: driver.clone(),
        msg: AppClientMessage::ApplicationWaiting {
            reason: "no worker is registered".into(),
        },
    };
    assert_eq!(out.as_slice(), [told_its_id(&f, &app, &driver), why]);

    let (worker, out) = f.register_worker("worker-1", 4, 1024);
    let registered = Effect::ToWorker {
        to: worker.clone(),
        msg: WorkerMessage::RegisteredWorker {
            master: f.master.me.clone(),
            master_web_ui_url: super::tests::WEB_UI.into(),
            master_address: worker.rpc_address().expect("server").clone(),
            duplicate: false,
        },
    };
    let mut expected = vec![registered];
    expected.extend(launched(&f, &worker, &app, 0, 2));
    expected.extend(launched(&f, &worker, &app, 1, 2));
    assert_eq!(out.as_slice(), expected, "two executors of two cores");
}

/// A retried registration from the same driver address is answered with the id given.
#[test]
fn a_second_registration_from_the_same_driver_is_answered_with_the_same_id() {
    let mut f = Fixture::new(MasterSettings::default());
    let (app, driver, _out) = f.register_app("app", None, None);
    let again = f.master.register_application(
        f.master
            .apps
            .get(&app)
            .expect("active")
            .description()
            .clone(),
        driver.clone(),
        None,
    );
    assert_eq!(again.as_slice(), [told_its_id(&f, &app, &driver)]);
    assert_eq!(f.master.apps.len(), 1);
}

/// MasterSuite 5 in effect: spread out, an application's cores go one worker at a time.
#[test]
fn spread_out_sends_one_launch_to_each_worker() {
    let mut f = Fixture::new(MasterSettings::default());
    let workers: Vec<_> = ["worker-1", "worker-2", "worker-3"]
        .into_iter()
        .map(|id| f.add_worker(id, 4, 1024))
        .collect();
    let (_app, _driver, out) = f.register_app("app", Some(3), Some(1));
    for worker in &workers {
        let launches: Vec<u32> = out
            .to_worker(worker)
            .into_iter()
            .filter_map(|m| match m {
                WorkerMessage::LaunchExecutor { cores, .. } => Some(*cores),
                _ => None,
            })
            .collect();
        assert_eq!(launches, [1], "one 1-core executor on {worker}");
    }
}

#[test]
fn an_executor_state_change_is_forwarded_to_its_driver() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let out = f.exec_state(&app, 0, ExecutorState::Running, None);
    assert_eq!(
        out.as_slice(),
        [updated(&f, &app, 0, ExecutorState::Running, None)]
    );
    // A repeated RUNNING (a worker retrying its ask) is ignored, and not forwarded.
    let again = f.exec_state(&app, 0, ExecutorState::Running, None);
    assert_eq!(again, Effects::none());
}

/// A failed executor's cores are free again: the driver hears of the failure, and a
/// replacement is launched on the same worker.
#[test]
fn a_failed_executor_is_reported_and_replaced() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let out = f.exec_state(&app, 0, ExecutorState::Failed, Some(1));
    let mut expected = vec![updated(&f, &app, 0, ExecutorState::Failed, Some(1))];
    expected.extend(launched(&f, &worker, &app, 1, 4));
    assert_eq!(out.as_slice(), expected);
}

/// Out of retries (`ember.deploy.maxExecutorRetries`) with no executor running, the
/// application is removed as FAILED: its driver is told so, every worker that it finished.
#[test]
fn out_of_retries_the_app_is_removed_and_its_driver_told_failed() {
    let settings = MasterSettings {
        max_executor_retries: Some(1),
        ..MasterSettings::default()
    };
    let mut f = Fixture::new(settings);
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let driver = f.driver_of(&app);
    let update = updated(&f, &app, 0, ExecutorState::Failed, Some(1));
    let out = f.exec_state(&app, 0, ExecutorState::Failed, Some(1));
    assert_eq!(
        out.as_slice(),
        [
            update,
            Effect::ToApp {
                to: driver,
                msg: AppClientMessage::ApplicationRemoved {
                    message: "FAILED".into(),
                },
            },
            finished(&worker, &app),
        ]
    );
    assert_eq!(
        f.master.apps.completed().last().map(|a| a.status()),
        Some(AppStatus::Failed)
    );
}

/// `RequestKillApplication`: its executors are killed, its driver told KILLED, every
/// worker (dead ones too) told it finished.
#[test]
fn killing_an_app_kills_its_executors_and_tells_its_driver() {
    let mut f = Fixture::new(MasterSettings::default());
    let busy = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", Some(4), None);
    let dead = f.add_worker("worker-2", 4, 1024);
    let _lost = f
        .master
        .remove_worker(&crate::ids::WorkerId("worker-2".into()), "test");
    let driver = f.driver_of(&app);
    let (killed, out) = f.master.kill_application(&app);
    f.check("killing the app");
    assert!(killed);
    assert_eq!(
        out.as_slice(),
        [
            kill(&f, &busy, &app, 0),
            Effect::ToApp {
                to: driver,
                msg: AppClientMessage::ApplicationRemoved {
                    message: "KILLED".into(),
                },
            },
            finished(&busy, &app),
            finished(&dead, &app),
        ]
    );
    let (killed, out) = f.master.kill_application(&AppId("app-unknown".into()));
    assert!(!killed);
    assert_eq!(out, Effects::none());
}

/// An application that unregisters (or whose driver disconnects) finished by itself: its
/// executors are killed and the workers told, but its driver is not told anything.
#[test]
fn an_app_that_finishes_has_its_executors_killed_without_telling_its_driver() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let out = f.master.unregister_application(&app);
    f.check("unregistering");
    assert_eq!(
        out.as_slice(),
        [kill(&f, &worker, &app, 0), finished(&worker, &app)]
    );

    let other = f.add_app("other", None, None);
    let address = f.driver_of(&other).rpc_address().expect("server").clone();
    let out = f.master.disconnected(&address);
    f.check("the driver disconnecting");
    assert_eq!(
        out.as_slice(),
        [kill(&f, &worker, &other, 0), finished(&worker, &other)]
    );
}

/// `KillExecutors` from a driver: each named executor is killed on its worker, and its
/// cores go back to scheduling, so a replacement starts.
#[test]
fn killed_executors_are_killed_on_their_worker_and_replaced() {
    let mut f = Fixture::new(MasterSettings::default());
    let worker = f.add_worker("worker-1", 4, 1024);
    let app = f.add_app("app", None, None);
    let out = f.master.kill_executors(&app, &[0, 9]);
    f.check("killing executors");
    let mut expected = vec![kill(&f, &worker, &app, 0)];
    expected.extend(launched(&f, &worker, &app, 1, 4));
    assert_eq!(out.as_slice(), expected, "the unknown 9 is skipped");

    let out = f.master.kill_executors(&AppId("app-unknown".into()), &[1]);
    assert_eq!(out, Effects::none());
}
