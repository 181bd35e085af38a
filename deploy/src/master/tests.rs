//! The master's handlers driven directly, without a running endpoint: after every step
//! the registries must agree with each other (`check_consistency`). A handler returns what
//! it wants sent ([`Effects`]) and nothing performs it here, so tests assert on exactly
//! what the master would send; `on_*_tests.rs` do so for each handler, the tests below
//! follow the registries through a cluster's life. Refs point at envs where no endpoint
//! is registered.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rpc_env::{keys as rpc_keys, EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig};

use super::apps::AppStatus;
use super::config::MasterSettings;
use super::effects::{Effect, Effects};
use super::endpoint::Master;
use super::leader::{LeaderElection, NeverLeader, SingleNodeLeader};
use super::persistence::{BlackHolePersistence, FileSystemPersistence, PersistenceEngine};
use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{
    AppClientMessage, AppClientProtocol, ApplicationDescription, Command, DriverDescription,
    DriverState, ExecutorState, MasterMessage, MasterProtocol, WorkerMessage, WorkerProtocol,
    WorkerRegistration, MASTER_ENDPOINT_NAME,
};

/// A master driven by direct calls, with the envs its peers' refs point into.
pub(super) struct Fixture {
    envs: Vec<RpcEnv>,
    pub(super) master: Master,
}

fn small_env(name: &str) -> RpcEnv {
    let conf = RpcConf::new()
        .with(rpc_keys::IO_THREADS, "1")
        .with(rpc_keys::DISPATCHER_NUM_THREADS, "1");
    RpcEnv::create(RpcEnvConfig::server(name, "127.0.0.1", 0).with_conf(conf)).expect("env")
}

/// The address a worker's endpoint listens on.
pub(super) fn address_of(worker: &EndpointRef<WorkerProtocol>) -> RpcAddress {
    worker.rpc_address().expect("a server env").clone()
}

pub(super) fn command() -> Command {
    Command {
        program: "true".into(),
        args: Vec::new(),
        env: BTreeMap::new(),
    }
}

impl Fixture {
    /// A master that stores nothing (recovery mode NONE), elected and ALIVE.
    pub(super) fn new(settings: MasterSettings) -> Fixture {
        Fixture::with_persistence(settings, Box::new(BlackHolePersistence))
    }

    /// A master storing into `dir` (recovery mode FILESYSTEM), elected and ALIVE: `dir`
    /// must hold nothing ([`Fixture::restart`] recovers what it holds).
    pub(super) fn with_recovery_dir(settings: MasterSettings, dir: &Path) -> Fixture {
        let engine = FileSystemPersistence::open(dir, None).expect("recovery dir");
        Fixture::with_persistence(settings, Box::new(engine))
    }

    /// A master storing into `engine`, elected and ALIVE: the store must hold nothing.
    pub(super) fn with_persistence(
        settings: MasterSettings,
        engine: Box<dyn PersistenceEngine>,
    ) -> Fixture {
        let env = small_env("master-test");
        let (master, elected) = new_master(&env, settings, engine, Box::new(SingleNodeLeader));
        assert_eq!(elected, Effects::none(), "nothing stored, nothing to tell");
        Fixture {
            envs: vec![env],
            master,
        }
    }

    /// A master that never wins the election: STANDBY for good.
    pub(super) fn standby() -> Fixture {
        let env = small_env("master-test");
        let engine = Box::new(BlackHolePersistence);
        let settings = MasterSettings::default();
        let (master, elected) = new_master(&env, settings, engine, Box::new(NeverLeader));
        assert_eq!(elected, Effects::none());
        Fixture {
            envs: vec![env],
            master,
        }
    }

    /// Replaces the master by a new one on the same env and the same store, as a master
    /// restarted on the same address; the peers' envs stay. Returns what winning the
    /// election made the new master send (`MasterChanged` to what it recovers).
    pub(super) fn restart(&mut self, settings: MasterSettings, dir: &Path) -> Effects {
        let engine = FileSystemPersistence::open(dir, None).expect("recovery dir");
        self.restart_with(settings, Box::new(engine))
    }

    /// [`Fixture::restart`] on `engine`'s store.
    pub(super) fn restart_with(
        &mut self,
        settings: MasterSettings,
        engine: Box<dyn PersistenceEngine>,
    ) -> Effects {
        let leader = Box::new(SingleNodeLeader);
        let (master, elected) = new_master(&self.envs[0], settings, engine, leader);
        self.master = master;
        elected
    }

    #[track_caller]
    pub(super) fn check(&self, step: &str) {
        if let Err(e) = self.master.check_consistency() {
            panic!("after {step}: {e}");
        }
    }

    /// What a worker on a new env of its own would send to register.
    pub(super) fn new_worker(
        &mut self,
        id: &str,
        cores: u32,
        memory_mib: u32,
    ) -> WorkerRegistration {
        let env = small_env(id);
        let address = env.address().expect("server").clone();
        let registration = WorkerRegistration {
            id: WorkerId(id.into()),
            host: address.host().to_string(),
            port: address.port(),
            worker: env.local_ref("Worker"),
            cores,
            memory_mib,
            web_ui_url: String::new(),
            master_address: address,
        };
        self.envs.push(env);
        registration
    }

    /// Hands the master `registration`; returns what it sends.
    pub(super) fn register(&mut self, registration: WorkerRegistration) -> Effects {
        let id = registration.id.clone();
        let msg = MasterMessage::RegisterWorker { registration };
        let out = self.master.handle(msg, None).expect("handled");
        self.check(&format!("registering {id}"));
        out
    }

    /// Registers a new worker; returns its ref and what the master sends.
    pub(super) fn register_worker(
        &mut self,
        id: &str,
        cores: u32,
        memory_mib: u32,
    ) -> (EndpointRef<WorkerProtocol>, Effects) {
        let registration = self.new_worker(id, cores, memory_mib);
        let worker = registration.worker.clone();
        (worker, self.register(registration))
    }

    /// Registers a new worker, which must be told it is registered first; returns its ref.
    /// What else the master sends (launches on it) is not looked at.
    pub(super) fn add_worker(
        &mut self,
        id: &str,
        cores: u32,
        memory_mib: u32,
    ) -> EndpointRef<WorkerProtocol> {
        let (worker, out) = self.register_worker(id, cores, memory_mib);
        assert!(
            matches!(
                out.to_worker(&worker).first(),
                Some(WorkerMessage::RegisteredWorker {
                    duplicate: false,
                    ..
                })
            ),
            "{id} is told it is registered: {out:?}"
        );
        worker
    }

    /// The `RegisterApplication` a driver on a new env of its own would send, with its ref.
    pub(super) fn new_app(
        &mut self,
        name: &str,
        max_cores: Option<u32>,
        cores_per_executor: Option<u32>,
    ) -> (MasterMessage, EndpointRef<AppClientProtocol>) {
        let env = small_env(name);
        let description = ApplicationDescription {
            name: name.into(),
            max_cores,
            memory_per_executor_mib: 100,
            cores_per_executor,
            command: command(),
            user: "me".into(),
            program_digest: None,
        };
        let driver = env.local_ref("AppClient");
        let msg = MasterMessage::RegisterApplication {
            description,
            driver: driver.clone(),
        };
        self.envs.push(env);
        (msg, driver)
    }

    /// Registers a new application, from a driver on a new env of its own; returns its id,
    /// its driver's ref, and what the master sends.
    pub(super) fn register_app(
        &mut self,
        name: &str,
        max_cores: Option<u32>,
        cores_per_executor: Option<u32>,
    ) -> (AppId, EndpointRef<AppClientProtocol>, Effects) {
        let (msg, driver) = self.new_app(name, max_cores, cores_per_executor);
        let out = self.master.handle(msg, None).expect("handled");
        self.check(&format!("registering {name}"));
        let app = self.master.apps.in_order().last().expect("registered");
        (app.id().clone(), driver, out)
    }

    /// Registers a new application, which must be told its id first; returns the id. What
    /// else the master sends (its executors) is not looked at.
    pub(super) fn add_app(
        &mut self,
        name: &str,
        max_cores: Option<u32>,
        cores_per_executor: Option<u32>,
    ) -> AppId {
        let (id, driver, out) = self.register_app(name, max_cores, cores_per_executor);
        assert_eq!(
            out.to_app(&driver).first(),
            Some(&&AppClientMessage::RegisteredApplication {
                app_id: id.clone(),
                master: self.master.me.clone(),
            }),
            "{name} is told its id"
        );
        id
    }

    /// The driver's ref of an active application.
    pub(super) fn driver_of(&self, app: &AppId) -> EndpointRef<AppClientProtocol> {
        self.master.apps.get(app).expect("active").driver().clone()
    }

    /// Submits a driver, which must be accepted; returns its id and what the master sends.
    pub(super) fn submit(&mut self, supervise: bool) -> (DriverId, Effects) {
        let (response, out) = self.master.submit_driver(driver_description(supervise));
        self.check("submitting a driver");
        assert!(response.success, "{}", response.message);
        (response.driver_id.expect("accepted"), out)
    }

    pub(super) fn executors(&self, app: &AppId) -> Vec<(u32, WorkerId, u32)> {
        self.master
            .apps
            .get(app)
            .map(|a| {
                a.executors()
                    .map(|(id, e)| (id, e.worker.clone(), e.cores))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The application's driver says executor `exec_id` registered with it.
    pub(super) fn registered(&mut self, app: &AppId, exec_id: u32) {
        let out = self.master.executor_registered(app, exec_id);
        assert!(out.as_slice().is_empty(), "nothing is sent");
        self.check(&format!("{app}/{exec_id} registered"));
    }

    /// A worker reports an executor's new state; returns what the master sends.
    pub(super) fn exec_state(
        &mut self,
        app: &AppId,
        exec_id: u32,
        state: ExecutorState,
        exit: Option<i32>,
    ) -> Effects {
        let out = self
            .master
            .executor_state_changed(app, exec_id, state, None, exit);
        self.check(&format!("{app}/{exec_id} -> {state:?}"));
        out
    }
}

/// The `LaunchExecutor` of `launched` (as the master numbers it) to the worker at `to`,
/// and the `ExecutorAdded` its driver `app` is told, as one placement sends them.
pub(super) fn launched(
    f: &Fixture,
    to: &EndpointRef<WorkerProtocol>,
    app: &AppId,
    exec_id: u32,
    cores: u32,
) -> [Effect; 2] {
    let worker = f
        .master
        .workers
        .iter()
        .find(|w| w.endpoint() == to)
        .expect("a known worker");
    let description = f
        .master
        .apps
        .get(app)
        .expect("active")
        .description()
        .clone();
    let memory_mib = description.memory_per_executor_mib;
    [
        Effect::ToWorker {
            to: to.clone(),
            msg: WorkerMessage::LaunchExecutor {
                master_url: f.master.url.clone(),
                app_id: app.clone(),
                exec_id,
                description,
                cores,
                memory_mib,
            },
        },
        Effect::ToApp {
            to: f.driver_of(app),
            msg: AppClientMessage::ExecutorAdded {
                id: exec_id,
                worker_id: worker.id().clone(),
                host_port: worker.host_port(),
                cores,
                memory_mib,
            },
        },
    ]
}

/// A master on `env` that polls `election` once, as `on_start` does; with what winning it
/// made the master send.
fn new_master(
    env: &RpcEnv,
    settings: MasterSettings,
    engine: Box<dyn PersistenceEngine>,
    election: Box<dyn LeaderElection>,
) -> (Master, Effects) {
    let address = env.address().expect("server").clone();
    let me = env.local_ref::<MasterProtocol>(MASTER_ENDPOINT_NAME);
    let mut master = Master::new(settings, me, &address, WEB_UI.into(), engine, election);
    let elected = master.check_leadership(env);
    (master, elected)
}

/// The masters' web UI URL in these tests.
pub(super) const WEB_UI: &str = "http://x";

impl Drop for Fixture {
    fn drop(&mut self) {
        for env in &self.envs {
            env.shutdown();
        }
    }
}

pub(super) fn driver_description(supervise: bool) -> DriverDescription {
    DriverDescription {
        memory_mib: 100,
        cores: 1,
        supervise,
        command: command(),
        program_digest: None,
    }
}

#[test]
fn registries_stay_consistent_through_a_cluster_lifetime() {
    let mut f = Fixture::new(MasterSettings::default());
    for id in ["worker-a", "worker-b", "worker-c"] {
        f.add_worker(id, 10, 1024);
    }
    let (driver, _launch) = f.submit(true);
    let driver_worker = f
        .master
        .drivers
        .get(&driver)
        .and_then(|d| d.worker().cloned());
    let driver_worker = driver_worker.expect("placed at once");

    let a = f.add_app("a", Some(12), None);
    assert_eq!(f.executors(&a).iter().map(|e| e.2).sum::<u32>(), 12);
    let b = f.add_app("b", None, Some(2));
    assert_eq!(
        f.executors(&b).iter().map(|e| e.2).sum::<u32>(),
        16,
        "everything left, two cores at a time, minus the driver's odd core"
    );

    let _ = f.exec_state(&a, 0, ExecutorState::Running, None);
    let _ = f.exec_state(&a, 1, ExecutorState::Failed, Some(1));
    assert!(f.master.apps.get(&a).is_some(), "one failure is not fatal");

    let _ = f.master.remove_worker(&driver_worker, "test");
    let _ = f.master.schedule();
    f.check("losing the driver's worker");
    assert_eq!(
        f.master.drivers.find(&driver).map(|d| d.state()),
        Some(DriverState::Relaunching)
    );
    assert!(f.executors(&a).iter().all(|e| e.1 != driver_worker));

    assert!(f.master.kill_application(&b).0);
    f.check("killing b");
    let relaunched: Vec<DriverId> = f.master.drivers.active().map(|d| d.id().clone()).collect();
    assert_eq!(relaunched.len(), 1);
    assert_ne!(relaunched[0], driver, "relaunched under a new id");
    assert!(f
        .master
        .drivers
        .get(&relaunched[0])
        .and_then(|d| d.worker())
        .is_some());

    let _ = f
        .master
        .driver_state_changed(&relaunched[0], DriverState::Finished, None)
        .expect("a final state");
    f.check("the driver finishing");
    let _ = f.master.unregister_application(&a);
    f.check("a unregistering");
    for w in f.master.workers.alive_iter() {
        assert_eq!(
            (w.cores_used(), w.is_idle()),
            (0, true),
            "{} is free",
            w.id()
        );
    }
    assert_eq!(f.master.apps.len(), 0);
}

#[test]
fn the_retry_budget_fails_an_app_whose_executors_keep_dying() {
    let mut f = Fixture::new(MasterSettings::default());
    f.add_worker("worker-a", 4, 1024);
    let app = f.add_app("flaky", None, None);
    for round in 0..10 {
        let execs = f.executors(&app);
        assert_eq!(execs.len(), 1, "round {round}: relaunched");
        let _ = f.exec_state(&app, execs[0].0, ExecutorState::Failed, Some(1));
    }
    assert!(f.master.apps.get(&app).is_none());
    let removed = f.master.apps.completed().last().expect("kept").status();
    assert_eq!(removed, AppStatus::Failed);
}

#[test]
fn a_running_executor_or_a_clean_exit_keeps_the_app() {
    let settings = MasterSettings {
        max_executor_retries: Some(2),
        ..MasterSettings::default()
    };
    let mut f = Fixture::new(settings);
    f.add_worker("worker-a", 2, 1024);
    let app = f.add_app("steady", None, Some(1));
    // Executors 0 and 1; 0 runs (and registers with its driver), 1 fails over and over.
    let _ = f.exec_state(&app, 0, ExecutorState::Running, None);
    f.registered(&app, 0);
    for _ in 0..4 {
        let failing = f.executors(&app).last().expect("one").0;
        let _ = f.exec_state(&app, failing, ExecutorState::Failed, Some(1));
    }
    assert!(
        f.master.apps.get(&app).is_some(),
        "a RUNNING executor keeps it"
    );
    let _ = f.exec_state(&app, 0, ExecutorState::Exited, Some(0));
    assert!(
        f.master.apps.get(&app).is_some(),
        "a registered executor's exit 0 does not count"
    );
}

/// Ember's own (Spark relaunches these for ever): executors that exit 0 before they
/// register with the driver count against the retry budget, RUNNING or not, and the driver
/// is told why the application was removed.
#[test]
fn executors_that_exit_before_registering_fail_the_app_saying_why() {
    let settings = MasterSettings {
        max_executor_retries: Some(3),
        ..MasterSettings::default()
    };
    let mut f = Fixture::new(settings);
    f.add_worker("worker-a", 1, 1024);
    let app = f.add_app("no-entry", None, None);
    let driver = f.driver_of(&app);
    let mut told = None;
    for round in 0..3 {
        let execs = f.executors(&app);
        assert_eq!(execs.len(), 1, "round {round}: relaunched");
        let id = execs[0].0;
        let _ = f.exec_state(&app, id, ExecutorState::Running, None);
        let out = f.exec_state(&app, id, ExecutorState::Exited, Some(0));
        told = out.as_slice().iter().find_map(|e| match e {
            Effect::ToApp {
                to,
                msg: AppClientMessage::ApplicationRemoved { message },
            } if *to == driver => Some(message.clone()),
            _ => None,
        });
    }
    assert!(f.master.apps.get(&app).is_none(), "no fourth launch");
    assert_eq!(
        told.as_deref(),
        Some("FAILED: 3 executors in a row exited (status 0) before registering with the driver")
    );
    // One that registered resets the count: its later clean exit is not a failure.
    let app = f.add_app("fine", None, None);
    let id = f.executors(&app)[0].0;
    let _ = f.exec_state(&app, id, ExecutorState::Exited, Some(1));
    let id = f.executors(&app)[0].0;
    let _ = f.exec_state(&app, id, ExecutorState::Running, None);
    f.registered(&app, id);
    let _ = f.exec_state(&app, id, ExecutorState::Exited, Some(0));
    assert!(f.master.apps.get(&app).is_some());
}

#[test]
fn silent_workers_die_then_are_culled() {
    let settings = MasterSettings {
        worker_timeout: Duration::from_secs(60),
        dead_worker_persistence: 1,
        ..MasterSettings::default()
    };
    let mut f = Fixture::new(settings);
    f.add_worker("worker-a", 4, 1024);
    let app = f.add_app("a", None, None);
    assert_eq!(f.executors(&app).len(), 1);
    let start = f
        .master
        .workers
        .alive(&WorkerId("worker-a".into()))
        .expect("registered")
        .last_heartbeat();
    let _ = f
        .master
        .time_out_dead_workers(start + Duration::from_secs(59));
    assert_eq!(f.master.workers.alive_iter().count(), 1, "not yet");
    let _ = f
        .master
        .time_out_dead_workers(start + Duration::from_secs(61));
    f.check("the worker dying");
    assert_eq!(f.master.workers.alive_iter().count(), 0);
    assert!(f.executors(&app).is_empty(), "its executor is lost");
    let _ = f
        .master
        .time_out_dead_workers(start + Duration::from_secs(119));
    assert_eq!(f.master.workers.iter().count(), 1, "listed while dead");
    let _ = f
        .master
        .time_out_dead_workers(start + Duration::from_secs(121));
    assert_eq!(
        f.master.workers.iter().count(),
        0,
        "culled after (1 + 1) timeouts"
    );
}
