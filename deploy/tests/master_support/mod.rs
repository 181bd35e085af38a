//! Fakes for the master's endpoint tests: workers and application clients that record
//! what the master sends them, each in an RPC env of its own on loopback (so each has its
//! own address, as real ones do), and waits with deadlines instead of sleeps.
//!
//! Every test file declares this module `pub mod master_support;`: its items are public items
//! of each test crate, of which each file uses a part.

// Helpers of the recovery and standby tests.
mod recovery;
pub use recovery::*;

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use ember_test_support::wait_for;
pub use ember_test_support::DEADLINE;

use ember_deploy::messages::{
    AppClientMessage, AppClientProtocol, ApplicationDescription, Command, DriverDescription,
    ExecutorDescription, ExecutorState, MasterAsk, MasterMessage, MasterProtocol, MasterState,
    WorkerAsk, WorkerMessage, WorkerProtocol, WorkerRegistration, APP_CLIENT_ENDPOINT_NAME,
    MASTER_ENDPOINT_NAME, WORKER_ENDPOINT_NAME,
};
use ember_deploy::{start_master, AppId, DriverId, MasterConfig, MasterHandle, WorkerId};
use rpc_env::{
    keys, EndpointContext, EndpointRef, HandlerResult, Protocol, RpcAddress, RpcConf, RpcEndpoint,
    RpcEnv, RpcEnvConfig,
};

/// Settings for a small env: one IO thread, one loop thread.
pub fn small_conf() -> RpcConf {
    RpcConf::new()
        .with(keys::IO_THREADS, "1")
        .with(keys::DISPATCHER_NUM_THREADS, "1")
}

/// The secret of the authenticated clusters in these tests.
pub const SECRET: &str = "master-tests-secret-0123456789ab";

/// [`small_conf`] with authentication on, keyed by [`SECRET`].
pub fn authenticated_conf() -> RpcConf {
    small_conf()
        .with(keys::AUTHENTICATE, "true")
        .with(keys::AUTHENTICATE_SECRET, SECRET)
}

/// A server-mode env on loopback with these settings.
pub fn server_env_with(name: &str, conf: RpcConf) -> RpcEnv {
    RpcEnv::create(RpcEnvConfig::server(name, "127.0.0.1", 0).with_conf(conf)).expect("env")
}

/// Starts a master on loopback with a free port and these extra settings.
pub fn master_with(settings: &[(&str, &str)]) -> MasterHandle {
    init_logging();
    let mut config = MasterConfig::local().with_conf(small_conf());
    for (k, v) in settings {
        config = config.set(*k, *v);
    }
    start_master(config).expect("master starts")
}

/// Logs to the test's output when `RUST_LOG` asks for it.
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A master with default settings.
pub fn master() -> MasterHandle {
    master_with(&[])
}

/// Polls the master's state until `cond` holds; panics naming `what` after [`DEADLINE`].
#[track_caller]
pub fn wait_state(
    master: &MasterHandle,
    what: &str,
    cond: impl Fn(&MasterState) -> bool,
) -> MasterState {
    wait_for(what, DEADLINE, || {
        let state = master.state().expect("master answers");
        if cond(&state) {
            Ok(state)
        } else {
            Err(Box::new(state))
        }
    })
}

/// Messages an endpoint received, in order, with a way to wait for one.
pub struct Recorded<M> {
    items: Mutex<Vec<M>>,
    changed: Condvar,
}

impl<M> Default for Recorded<M> {
    fn default() -> Self {
        Recorded {
            items: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    }
}

impl<M> Recorded<M> {
    fn push(&self, m: M) {
        self.lock().push(m);
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<M>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `find` finds something in what was received so far.
    #[track_caller]
    pub fn wait_for<T>(&self, what: &str, mut find: impl FnMut(&[M]) -> Option<T>) -> T {
        let end = Instant::now() + DEADLINE;
        let mut items = self.lock();
        loop {
            if let Some(found) = find(&items) {
                return found;
            }
            let now = Instant::now();
            assert!(now < end, "timed out waiting for {what}");
            items = self
                .changed
                .wait_timeout(items, end - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until at least `n` received messages match `pred`; returns the first `n`.
    #[track_caller]
    pub fn wait_count<T>(&self, what: &str, n: usize, pick: impl Fn(&M) -> Option<T>) -> Vec<T> {
        self.wait_for(what, |items| {
            let found: Vec<T> = items.iter().filter_map(&pick).collect();
            (found.len() >= n).then(|| found.into_iter().take(n).collect())
        })
    }

    /// Looks at what was received so far.
    pub fn with<T>(&self, f: impl FnOnce(&[M]) -> T) -> T {
        f(&self.lock())
    }
}

/// What a fake sends back when told `MasterChanged` (nothing while unset), built anew for
/// each change.
type Follow = Arc<Mutex<Option<Box<dyn Fn() -> MasterMessage + Send>>>>;

struct Recorder<P: Protocol> {
    got: Arc<Recorded<P::Message>>,
    follow: Follow,
}

/// Sends the follow-up answer, if any, to the new master.
fn follow(follow: &Follow, master: &EndpointRef<MasterProtocol>) {
    let answer = follow.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(make) = answer.as_ref() {
        if let Err(e) = master.send(make()) {
            eprintln!("a fake could not answer MasterChanged: {e}");
        }
    }
}

impl RpcEndpoint for Recorder<WorkerProtocol> {
    type Protocol = WorkerProtocol;

    fn receive(
        &mut self,
        _: &EndpointContext<'_, WorkerProtocol>,
        msg: WorkerMessage,
    ) -> HandlerResult {
        if let WorkerMessage::MasterChanged { master, .. } = &msg {
            follow(&self.follow, master);
        }
        self.got.push(msg);
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        _: &EndpointContext<'_, WorkerProtocol>,
        _: WorkerAsk,
    ) -> HandlerResult {
        Ok(())
    }
}

impl RpcEndpoint for Recorder<AppClientProtocol> {
    type Protocol = AppClientProtocol;

    fn receive(
        &mut self,
        _: &EndpointContext<'_, AppClientProtocol>,
        msg: AppClientMessage,
    ) -> HandlerResult {
        if let AppClientMessage::MasterChanged { master, .. } = &msg {
            follow(&self.follow, master);
        }
        self.got.push(msg);
        Ok(())
    }
}

fn server_env(name: &str) -> RpcEnv {
    server_env_with(name, small_conf())
}

fn master_ref(env: &RpcEnv, master: &MasterHandle) -> EndpointRef<MasterProtocol> {
    master_ref_at(env, &master.address())
}

fn master_ref_at(env: &RpcEnv, master: &RpcAddress) -> EndpointRef<MasterProtocol> {
    env.setup_endpoint_ref(master, MASTER_ENDPOINT_NAME)
        .expect("master found")
}

/// A worker that only records: it registers, heartbeats and reports when told to.
pub struct FakeWorker {
    /// Its own env on loopback.
    pub env: RpcEnv,
    /// Its worker id.
    pub id: WorkerId,
    /// Its own worker endpoint's ref (what it registers).
    pub me: EndpointRef<WorkerProtocol>,
    /// Its ref to the master.
    pub master: EndpointRef<MasterProtocol>,
    /// What the master sent it.
    pub got: Arc<Recorded<WorkerMessage>>,
    follow: Follow,
}

impl FakeWorker {
    /// A worker endpoint in an env of its own.
    pub fn start(master: &MasterHandle, id: &str) -> FakeWorker {
        let env = server_env(id);
        FakeWorker::in_env(env, master, id, WORKER_ENDPOINT_NAME)
    }

    /// A worker endpoint called `name` in `env` (several may share one env, and so one
    /// address).
    pub fn in_env(env: RpcEnv, master: &MasterHandle, id: &str, name: &str) -> FakeWorker {
        FakeWorker::in_env_at(env, &master.address(), id, name)
    }

    /// A worker endpoint in an env of its own, for the master at `master` (a master in
    /// another process, say).
    pub fn start_at(master: &RpcAddress, id: &str) -> FakeWorker {
        FakeWorker::in_env_at(server_env(id), master, id, WORKER_ENDPOINT_NAME)
    }

    fn in_env_at(env: RpcEnv, master: &RpcAddress, id: &str, name: &str) -> FakeWorker {
        let got = Arc::new(Recorded::default());
        let follow = Follow::default();
        let recorder = Recorder::<WorkerProtocol> {
            got: Arc::clone(&got),
            follow: Arc::clone(&follow),
        };
        let me = env.setup_endpoint(name, recorder).expect("endpoint");
        let master = master_ref_at(&env, master);
        FakeWorker {
            env,
            id: WorkerId(id.to_string()),
            me,
            master,
            got,
            follow,
        }
    }

    /// From now on, answer every `MasterChanged` at once, as a worker does, with
    /// `WorkerSchedulerStateResponse` listing `executors` and `driver_ids`.
    pub fn follow_master_changes(
        &self,
        executors: Vec<ExecutorDescription>,
        driver_ids: Vec<DriverId>,
    ) {
        let id = self.id.clone();
        let make = move || MasterMessage::WorkerSchedulerStateResponse {
            id: id.clone(),
            executors: executors.clone(),
            driver_ids: driver_ids.clone(),
        };
        *self.follow.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(make));
    }

    /// Waits for the `n`-th `MasterChanged` and returns the master it names.
    #[track_caller]
    pub fn master_changed(&self, n: usize) -> EndpointRef<MasterProtocol> {
        let masters = self.got.wait_count("MasterChanged", n, |m| match m {
            WorkerMessage::MasterChanged { master, .. } => Some(master.clone()),
            _ => None,
        });
        masters.into_iter().last().expect("n > 0")
    }

    /// The `RegisterWorker` this worker sends.
    pub fn registration(&self, cores: u32, memory_mib: u32) -> MasterMessage {
        let address = self.env.address().expect("server env").clone();
        let registration = WorkerRegistration {
            id: self.id.clone(),
            host: address.host().to_string(),
            port: address.port(),
            worker: self.me.clone(),
            cores,
            memory_mib,
            web_ui_url: format!("http://{}:8081", address.host()),
            master_address: self.master.rpc_address().expect("server").clone(),
        };
        MasterMessage::RegisterWorker { registration }
    }

    /// Sends `RegisterWorker` without waiting.
    pub fn send_registration(&self, cores: u32, memory_mib: u32) {
        self.master
            .send(self.registration(cores, memory_mib))
            .expect("sent");
    }

    /// Registers and waits for the master's answer, which must be `RegisteredWorker`.
    pub fn register(&self, cores: u32, memory_mib: u32) {
        let before = self.registrations();
        self.send_registration(cores, memory_mib);
        self.got.wait_for("RegisteredWorker", |m| {
            let n = m
                .iter()
                .filter(|m| matches!(m, WorkerMessage::RegisteredWorker { .. }))
                .count();
            (n > before).then_some(())
        });
    }

    fn registrations(&self) -> usize {
        self.got.with(|m| {
            m.iter()
                .filter(|m| matches!(m, WorkerMessage::RegisteredWorker { .. }))
                .count()
        })
    }

    /// Sends the master a heartbeat.
    pub fn heartbeat(&self) {
        let beat = MasterMessage::Heartbeat {
            worker_id: self.id.clone(),
            worker: self.me.clone(),
        };
        self.master.send(beat).expect("sent");
    }

    /// Reports an executor's state as a worker does (an ask answered `true`).
    pub fn executor_state(
        &self,
        app: &AppId,
        exec_id: u32,
        state: ExecutorState,
        exit: Option<i32>,
    ) {
        let answer = self
            .master
            .ask_sync(|reply| MasterAsk::ExecutorStateChanged {
                app_id: app.clone(),
                exec_id,
                state,
                message: None,
                exit_status: exit,
                reply,
            })
            .expect("answered");
        assert!(answer, "ExecutorStateChanged is always answered true");
    }

    /// `(app, exec id, cores)` of the first `n` `LaunchExecutor`s received.
    #[track_caller]
    pub fn launches(&self, n: usize) -> Vec<(AppId, u32, u32)> {
        self.got.wait_count("LaunchExecutor", n, |m| match m {
            WorkerMessage::LaunchExecutor {
                app_id,
                exec_id,
                cores,
                ..
            } => Some((app_id.clone(), *exec_id, *cores)),
            _ => None,
        })
    }

    /// `LaunchExecutor`s received so far.
    pub fn launched_now(&self) -> Vec<(AppId, u32, u32)> {
        self.got.with(|m| {
            m.iter()
                .filter_map(|m| match m {
                    WorkerMessage::LaunchExecutor {
                        app_id,
                        exec_id,
                        cores,
                        ..
                    } => Some((app_id.clone(), *exec_id, *cores)),
                    _ => None,
                })
                .collect()
        })
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.env.shutdown();
    }
}

/// An application client that only records.
pub struct FakeApp {
    /// Its own env on loopback.
    pub env: RpcEnv,
    /// Its own app client endpoint's ref (what it registers).
    pub me: EndpointRef<AppClientProtocol>,
    /// Its ref to the master.
    pub master: EndpointRef<MasterProtocol>,
    /// What the master sent it.
    pub got: Arc<Recorded<AppClientMessage>>,
    follow: Follow,
}

impl FakeApp {
    /// An app client in a server-mode env of its own.
    pub fn start(master: &MasterHandle, name: &str) -> FakeApp {
        FakeApp::in_env(server_env(name), master)
    }

    /// An app client in a client-mode env: the master can answer it only over the
    /// connection its registration came on.
    pub fn start_client_mode(master: &MasterHandle, name: &str) -> FakeApp {
        let env = RpcEnv::create(RpcEnvConfig::client(name).with_conf(small_conf())).expect("env");
        FakeApp::in_env(env, master)
    }

    /// An app client in `env`.
    pub fn in_env(env: RpcEnv, master: &MasterHandle) -> FakeApp {
        let got = Arc::new(Recorded::default());
        let follow = Follow::default();
        let recorder = Recorder::<AppClientProtocol> {
            got: Arc::clone(&got),
            follow: Arc::clone(&follow),
        };
        let me = env
            .setup_endpoint(APP_CLIENT_ENDPOINT_NAME, recorder)
            .expect("endpoint");
        let master = master_ref(&env, master);
        FakeApp {
            env,
            me,
            master,
            got,
            follow,
        }
    }

    /// From now on, answer every `MasterChanged` at once, as an app client does, with
    /// `MasterChangeAcknowledged(app_id)`.
    pub fn follow_master_changes(&self, app_id: &AppId) {
        let app_id = app_id.clone();
        let make = move || MasterMessage::MasterChangeAcknowledged {
            app_id: app_id.clone(),
        };
        *self.follow.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(make));
    }

    /// Waits for the `n`-th `MasterChanged` and returns the master it names.
    #[track_caller]
    pub fn master_changed(&self, n: usize) -> EndpointRef<MasterProtocol> {
        let masters = self.got.wait_count("MasterChanged", n, |m| match m {
            AppClientMessage::MasterChanged { master, .. } => Some(master.clone()),
            _ => None,
        });
        masters.into_iter().last().expect("n > 0")
    }

    /// Sends `RegisterApplication`.
    pub fn send_registration(&self, description: ApplicationDescription) {
        let msg = MasterMessage::RegisterApplication {
            description,
            driver: self.me.clone(),
        };
        self.master.send(msg).expect("sent");
    }

    /// Registers and waits for `RegisteredApplication`; returns the id.
    pub fn register(&self, description: ApplicationDescription) -> AppId {
        self.send_registration(description);
        self.app_id()
    }

    /// The id from the first `RegisteredApplication`.
    #[track_caller]
    pub fn app_id(&self) -> AppId {
        self.got.wait_for("RegisteredApplication", |m| {
            m.iter().find_map(|m| match m {
                AppClientMessage::RegisteredApplication { app_id, .. } => Some(app_id.clone()),
                _ => None,
            })
        })
    }

    /// `(exec id, worker, cores)` of the first `n` `ExecutorAdded`s.
    #[track_caller]
    pub fn added(&self, n: usize) -> Vec<(u32, WorkerId, u32)> {
        self.got.wait_count("ExecutorAdded", n, |m| match m {
            AppClientMessage::ExecutorAdded {
                id,
                worker_id,
                cores,
                ..
            } => Some((*id, worker_id.clone(), *cores)),
            _ => None,
        })
    }

    /// Waits for `ApplicationRemoved` and returns its message.
    #[track_caller]
    pub fn removed(&self) -> String {
        self.got.wait_for("ApplicationRemoved", |m| {
            m.iter().find_map(|m| match m {
                AppClientMessage::ApplicationRemoved { message } => Some(message.clone()),
                _ => None,
            })
        })
    }

    /// Unregisters application `app_id`.
    pub fn unregister(&self, app_id: &AppId) {
        let msg = MasterMessage::UnregisterApplication {
            app_id: app_id.clone(),
        };
        self.master.send(msg).expect("sent");
    }
}

impl Drop for FakeApp {
    fn drop(&mut self) {
        self.env.shutdown();
    }
}

/// A command that does nothing (`/bin/true`): the master never runs it.
pub fn command() -> Command {
    Command {
        program: "/bin/true".into(),
        args: Vec::new(),
        env: BTreeMap::new(),
    }
}

/// An application asking for `max_cores` (unlimited when `None`), executors of
/// `cores_per_executor` cores (all a worker has when `None`) and `memory_mib` each.
pub fn app(
    name: &str,
    max_cores: Option<u32>,
    cores_per_executor: Option<u32>,
    memory_mib: u32,
) -> ApplicationDescription {
    ApplicationDescription {
        name: name.to_string(),
        max_cores,
        memory_per_executor_mib: memory_mib,
        cores_per_executor,
        command: command(),
        user: "tester".into(),
        program_digest: None,
    }
}

/// A driver asking for `cores` and `memory_mib`, supervised or not.
pub fn driver(cores: u32, memory_mib: u32, supervise: bool) -> DriverDescription {
    DriverDescription {
        memory_mib,
        cores,
        supervise,
        command: command(),
        program_digest: None,
    }
}

/// The summary of worker `id` in `state`.
pub fn worker_state<'a>(state: &'a MasterState, id: &WorkerId) -> Option<&'a str> {
    state
        .workers
        .iter()
        .find(|w| &w.id == id)
        .map(|w| w.state.as_str())
}

/// The summary of application `id` among the active ones, if it is active.
pub fn app_state<'a>(state: &'a MasterState, id: &AppId) -> Option<&'a str> {
    state
        .active_apps
        .iter()
        .find(|a| &a.id == id)
        .map(|a| a.state.as_str())
}
