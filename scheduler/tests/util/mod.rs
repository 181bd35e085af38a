//! Shared helpers of the scheduler's integration tests: a driver on a loopback server env
//! (its `DriverEndpoint`, optionally a `HeartbeatReceiver`), and fake executors, each in a
//! client-mode env of its own, that register with it, record what the driver sends them and
//! report task status the way an executor backend does. Waiting on conditions is
//! ember-test-support's.
//!
//! Every test file declares this module `pub mod util;`: its items are public items of each
//! test crate, of which each file uses a part.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ember_scheduler::{
    AppConfig, DriverAsk, DriverControl, DriverEndpoint, DriverMessage, DriverProtocol, ExecutorId,
    ExecutorMessage, ExecutorProtocol, HeartbeatAsk, HeartbeatProtocol, HeartbeatReceiver,
    HeartbeatResponse, JobId, JobState, Pools, SchedulerConf, StageId, TaskDescription, TaskId,
    TaskLocation, TaskScheduler, TaskSet, TaskSpec, TaskStatus, TaskUpdate, DRIVER_ENDPOINT_NAME,
    EXECUTOR_ENDPOINT_NAME, HEARTBEAT_RECEIVER_NAME,
};
use rpc_env::{
    AskHandle, ControlRef, EndpointContext, EndpointRef, HandlerResult, RpcAddress, RpcConf,
    RpcEndpoint, RpcEnv, RpcEnvConfig, RpcError,
};

pub use ember_test_support::{wait_until, DEADLINE};

/// The outcome of an ask, waiting at most [`DEADLINE`] for it.
#[track_caller]
pub fn answer<T: Send + 'static>(handle: AskHandle<T>) -> Result<T, RpcError> {
    let end = Instant::now() + DEADLINE;
    let mut handle = handle;
    loop {
        match handle.poll() {
            Ok(result) => return result,
            Err(back) => handle = back,
        }
        if Instant::now() >= end {
            panic!("the ask did not end within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// An env that is shut down (and awaited) when dropped, unless the test is panicking.
pub struct Env(pub RpcEnv);

impl Env {
    /// Shuts the env down and waits for it.
    pub fn stop_now(&self) {
        self.0.shutdown();
        self.0.await_termination();
    }
}

impl std::ops::Deref for Env {
    type Target = RpcEnv;
    fn deref(&self) -> &RpcEnv {
        &self.0
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop_now();
        }
    }
}

/// The app config every test driver serves.
/// The secret in [`app_config`]'s settings.
pub const APP_SECRET: &str = "scheduler-tests-secret-0123456789";

/// The app config a test driver hands out: its settings include [`APP_SECRET`].
pub fn app_config() -> AppConfig {
    let mut properties = BTreeMap::new();
    properties.insert("ember.app.name".to_string(), "scheduler-tests".to_string());
    properties.insert("ember.task.cpus".to_string(), "1".to_string());
    // A secret the driver endpoint must never hand out.
    properties.insert(
        rpc_env::keys::AUTHENTICATE_SECRET.to_string(),
        APP_SECRET.to_string(),
    );
    AppConfig {
        app_id: "app-20240101000000-0000".to_string(),
        properties,
    }
}

/// How a driver is set up.
pub struct DriverSetup {
    /// Settings of the driver's env (`ember.rpc.message.maxSize`, ...).
    pub rpc: RpcConf,
    /// The scheduler's settings (Spark's one task per core by default: [`spark_cores`]).
    pub scheduler: SchedulerConf,
    /// How many times a task may fail before its job fails (`ember.task.maxFailures`).
    pub max_failures: u32,
    /// `(timeout, check interval)` of a heartbeat receiver, if one runs.
    pub heartbeat: Option<(Duration, Duration)>,
    /// Standalone mode's wait for a disconnected executor's real loss reason.
    pub disconnect_removal_delay: Option<Duration>,
}

/// Settings with Spark's one task per free core (`ember.scheduler.launchAhead = 0`), which
/// the ported tests assume; the launch-ahead tests set their own.
pub fn spark_cores() -> SchedulerConf {
    SchedulerConf {
        launch_ahead: 0,
        ..SchedulerConf::default()
    }
}

impl Default for DriverSetup {
    fn default() -> Self {
        DriverSetup {
            rpc: RpcConf::new(),
            scheduler: spark_cores(),
            max_failures: 4,
            heartbeat: None,
            disconnect_removal_delay: None,
        }
    }
}

/// A driver: a server-mode env on loopback with the driver endpoint.
pub struct Driver {
    /// Its env.
    pub env: Env,
    /// The driver endpoint's control handle, as the driver's own process holds it.
    pub driver: ControlRef<DriverProtocol>,
}

impl Driver {
    /// Starts a driver set up so.
    pub fn start(setup: DriverSetup) -> Driver {
        // `RUST_LOG=debug` shows the driver's side of a failing test.
        let _ = env_logger::builder().is_test(true).try_init();
        let max_message_size = setup.rpc.max_message_size().expect("a valid max size");
        let env = Env(RpcEnv::create(
            RpcEnvConfig::server("driver", "127.0.0.1", 0).with_conf(setup.rpc),
        )
        .expect("the driver env starts"));
        let driver = env.control_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
        let scheduler = TaskScheduler::new(setup.scheduler, setup.max_failures, Pools::fifo());
        let mut endpoint = DriverEndpoint::new(scheduler, app_config(), max_message_size);
        if let Some((timeout, interval)) = setup.heartbeat {
            env.setup_endpoint(
                HEARTBEAT_RECEIVER_NAME,
                HeartbeatReceiver::new(driver.clone(), timeout, interval),
            )
            .expect("the heartbeat receiver registers");
            endpoint = endpoint.with_heartbeat_receiver(env.control_ref(HEARTBEAT_RECEIVER_NAME));
        }
        if let Some(delay) = setup.disconnect_removal_delay {
            endpoint = endpoint.with_disconnect_removal_delay(delay);
        }
        env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint)
            .expect("the driver endpoint registers");
        Driver { env, driver }
    }

    /// The driver env's address, for executors to register with.
    pub fn addr(&self) -> RpcAddress {
        self.env.address().expect("a server env").clone()
    }

    /// Submits `task_set` as its job, from the driver's own process.
    pub fn submit(&self, task_set: TaskSet) -> Arc<JobState> {
        let job = Arc::new(JobState::new(task_set.job_id, task_set.tasks.len()));
        self.driver
            .send(DriverControl::SubmitJob {
                task_set,
                job: Arc::clone(&job),
            })
            .expect("the driver takes the job");
        job
    }

    /// Sends the driver endpoint `msg`, from the driver's own process.
    pub fn send(&self, msg: DriverControl) {
        self.driver.send(msg).expect("the driver takes the message");
    }

    /// Tells every executor to stop. Also a barrier: everything sent to the driver before
    /// from this thread has been handled, and every message the driver sent an executor
    /// before reaches that executor before its `StopExecutor`.
    pub fn stop_executors(&self) -> bool {
        answer(
            self.driver
                .ask(|reply| DriverControl::StopExecutors { reply }),
        )
        .expect("answered")
    }

    /// (launched executors, their cores).
    pub fn executor_count(&self) -> (u32, u32) {
        answer(
            self.driver
                .ask(|reply| DriverControl::ExecutorCount { reply }),
        )
        .expect("answered")
    }

    /// The executors the driver knows, sorted.
    pub fn executor_ids(&self) -> Vec<String> {
        answer(
            self.driver
                .ask(|reply| DriverControl::ExecutorIds { reply }),
        )
        .expect("answered")
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    /// How many messages from the network the driver refused for their sender.
    pub fn refused_messages(&self) -> u64 {
        answer(
            self.driver
                .ask(|reply| DriverControl::RefusedMessages { reply }),
        )
        .expect("answered")
    }

    /// Whether the driver counts `executor` as alive.
    pub fn is_alive(&self, executor: &str) -> bool {
        answer(self.driver.ask(|reply| DriverControl::IsExecutorAlive {
            executor_id: ExecutorId::new(executor),
            reply,
        }))
        .expect("answered")
    }
}

/// What a fake executor was sent, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// `LaunchTask`.
    Launch(TaskDescription),
    /// `KillTask`.
    Kill {
        /// The task killed.
        task_id: TaskId,
        /// Why.
        reason: String,
    },
    /// `StopExecutor`.
    Stop,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// Report every launched task RUNNING then FINISHED (result = its input) at once.
    auto_finish: AtomicBool,
}

/// The fake executor backend endpoint (in the executor's env).
struct FakeBackend {
    id: ExecutorId,
    driver: EndpointRef<DriverProtocol>,
    shared: Arc<Shared>,
    /// Attempts running here, with their cores.
    running: HashMap<TaskId, u32>,
}

impl FakeBackend {
    fn report(&self, updates: Vec<TaskUpdate>) {
        let _ = self.driver.send(DriverMessage::StatusUpdate {
            executor_id: self.id.clone(),
            updates,
        });
    }
}

impl RpcEndpoint for FakeBackend {
    type Protocol = ExecutorProtocol;

    fn receive(
        &mut self,
        _ctx: &EndpointContext<'_, ExecutorProtocol>,
        msg: ExecutorMessage,
    ) -> HandlerResult {
        match msg {
            ExecutorMessage::LaunchTasks { tasks } => {
                let auto = self.shared.auto_finish.load(Ordering::SeqCst);
                let mut updates = Vec::new();
                for task in tasks {
                    if auto {
                        updates.push(TaskUpdate {
                            task_id: task.task_id,
                            status: TaskStatus::Running,
                            cpus: task.cpus,
                            run_micros: 0,
                        });
                        updates.push(TaskUpdate {
                            task_id: task.task_id,
                            status: TaskStatus::Finished {
                                result: task.input.clone(),
                            },
                            cpus: task.cpus,
                            run_micros: 0,
                        });
                    } else {
                        self.running.insert(task.task_id, task.cpus);
                    }
                    self.shared.seen.lock().unwrap().push(Seen::Launch(task));
                }
                if !updates.is_empty() {
                    self.report(updates);
                }
            }
            ExecutorMessage::KillTask { task_id, reason } => {
                self.shared.seen.lock().unwrap().push(Seen::Kill {
                    task_id,
                    reason: reason.clone(),
                });
                // As an executor does: a running attempt ends KILLED with the reason.
                if let Some(cpus) = self.running.remove(&task_id) {
                    self.report(vec![TaskUpdate {
                        task_id,
                        status: TaskStatus::Killed { reason },
                        cpus,
                        run_micros: 0,
                    }]);
                }
            }
            ExecutorMessage::StopExecutor => self.shared.seen.lock().unwrap().push(Seen::Stop),
            ExecutorMessage::RegisteredExecutor | ExecutorMessage::RegistrationFailed { .. } => {}
        }
        Ok(())
    }
}

/// A fake executor: its own client-mode env, its backend endpoint, its ref to the driver.
pub struct FakeExecutor {
    /// Its executor id.
    pub id: ExecutorId,
    /// Its env.
    pub env: Env,
    /// The driver endpoint's ref.
    pub driver: EndpointRef<DriverProtocol>,
    /// Its own backend endpoint's ref.
    pub me: EndpointRef<ExecutorProtocol>,
    shared: Arc<Shared>,
}

impl FakeExecutor {
    /// Starts an executor env and registers `id` with the driver at `addr`; the
    /// registration's answer comes back with it.
    pub fn register(
        addr: &RpcAddress,
        id: &str,
        host: &str,
        cores: u32,
    ) -> (FakeExecutor, Result<bool, RpcError>) {
        FakeExecutor::register_with(RpcConf::new(), addr, id, host, cores)
    }

    /// [`FakeExecutor::register`] from an env with these settings (a secret, say).
    pub fn register_with(
        conf: RpcConf,
        addr: &RpcAddress,
        id: &str,
        host: &str,
        cores: u32,
    ) -> (FakeExecutor, Result<bool, RpcError>) {
        let env = Env(RpcEnv::create(
            RpcEnvConfig::client(format!("executor-{id}")).with_conf(conf),
        )
        .expect("the executor env starts"));
        let driver = env
            .setup_endpoint_ref::<DriverProtocol>(addr, DRIVER_ENDPOINT_NAME)
            .expect("the driver is found");
        let shared = Arc::new(Shared::default());
        let executor_id = ExecutorId::new(id);
        let me = env
            .setup_endpoint(
                EXECUTOR_ENDPOINT_NAME,
                FakeBackend {
                    id: executor_id.clone(),
                    driver: driver.clone(),
                    shared: Arc::clone(&shared),
                    running: HashMap::new(),
                },
            )
            .expect("the backend registers");
        let mut log_urls = BTreeMap::new();
        log_urls.insert("stdout".to_string(), format!("http://{host}/stdout"));
        let registered = answer(driver.ask(|reply| DriverAsk::RegisterExecutor {
            executor_id: executor_id.clone(),
            executor_ref: me.clone(),
            hostname: host.to_string(),
            cores,
            log_urls,
            reply,
        }));
        let executor = FakeExecutor {
            id: executor_id,
            env,
            driver,
            me,
            shared,
        };
        (executor, registered)
    }

    /// Registers and sends `LaunchedExecutor`: the executor takes tasks.
    pub fn start(addr: &RpcAddress, id: &str, host: &str, cores: u32) -> FakeExecutor {
        let (executor, registered) = FakeExecutor::register(addr, id, host, cores);
        assert_eq!(registered, Ok(true), "executor {id} registers");
        executor.launched();
        executor
    }

    /// Like [`FakeExecutor::start`], reporting every task finished at once.
    pub fn start_finishing(addr: &RpcAddress, id: &str, host: &str, cores: u32) -> FakeExecutor {
        let (executor, registered) = FakeExecutor::register(addr, id, host, cores);
        assert_eq!(registered, Ok(true), "executor {id} registers");
        executor.auto_finish(true);
        executor.launched();
        executor
    }

    /// Whether every task launched here is reported RUNNING, then FINISHED at once.
    pub fn auto_finish(&self, on: bool) {
        self.shared.auto_finish.store(on, Ordering::SeqCst);
    }

    /// Tells the driver this executor has launched (`LaunchedExecutor`), as a worker would.
    pub fn launched(&self) {
        self.driver
            .send(DriverMessage::LaunchedExecutor {
                executor_id: self.id.clone(),
            })
            .expect("sent");
    }

    /// Everything the driver sent here, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The tasks launched here, in order.
    pub fn launches(&self) -> Vec<TaskDescription> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Launch(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// The tasks killed here, with the reasons, in order.
    pub fn kills(&self) -> Vec<(TaskId, String)> {
        self.seen()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Kill { task_id, reason } => Some((task_id, reason)),
                _ => None,
            })
            .collect()
    }

    /// How many times this executor was told to stop.
    pub fn stops(&self) -> usize {
        self.seen().iter().filter(|s| **s == Seen::Stop).count()
    }

    /// Waits until `n` tasks in all have been launched here; returns them all.
    #[track_caller]
    pub fn wait_launches(&self, n: usize) -> Vec<TaskDescription> {
        wait_until(
            &format!("executor {} has {n} task(s)", self.id),
            DEADLINE,
            || self.launches().len() >= n,
        );
        self.launches()
    }

    /// Waits until `n` `StopExecutor`s in all have arrived.
    #[track_caller]
    pub fn wait_stops(&self, n: usize) {
        wait_until(
            &format!("executor {} was told to stop {n} time(s)", self.id),
            DEADLINE,
            || self.stops() >= n,
        );
    }

    /// Reports `task` with `status`, holding the cores the task was launched with.
    pub fn report(&self, task: &TaskDescription, status: TaskStatus) {
        self.report_timed(task, status, 0);
    }

    /// Reports `task` with `status` after running `run_micros` (0: not timed).
    pub fn report_timed(&self, task: &TaskDescription, status: TaskStatus, run_micros: u64) {
        self.driver
            .send(DriverMessage::StatusUpdate {
                executor_id: self.id.clone(),
                updates: vec![TaskUpdate {
                    task_id: task.task_id,
                    status,
                    cpus: task.cpus,
                    run_micros,
                }],
            })
            .expect("sent");
    }

    /// Reports `task` finished with `result`.
    pub fn finish(&self, task: &TaskDescription, result: &str) {
        self.report(
            task,
            TaskStatus::Finished {
                result: Bytes::from(result.to_string()),
            },
        );
    }

    /// Returns once the driver has handled everything this executor sent it before: an ask
    /// on the same connection, answered after them.
    pub fn barrier(&self) {
        answer(
            self.driver
                .ask(|reply| DriverAsk::RetrieveAppConfig { reply }),
        )
        .expect("the driver answers");
    }

    /// Asks the driver's heartbeat receiver (looked up at `addr`) whether it knows us.
    pub fn heartbeat(&self, addr: &RpcAddress) -> HeartbeatResponse {
        heartbeat_as(&self.env, addr, self.id.as_str())
    }

    /// Closes the executor's env: its connection to the driver goes.
    pub fn disconnect(&self) {
        self.env.stop_now();
    }
}

/// A heartbeat for `executor` from `env` to the receiver at `addr`.
pub fn heartbeat_as(env: &RpcEnv, addr: &RpcAddress, executor: &str) -> HeartbeatResponse {
    let receiver = env
        .setup_endpoint_ref::<HeartbeatProtocol>(addr, HEARTBEAT_RECEIVER_NAME)
        .expect("the heartbeat receiver is found");
    answer(receiver.ask(|reply| HeartbeatAsk::Heartbeat {
        executor_id: ExecutorId::new(executor),
        running: Vec::new(),
        reply,
    }))
    .expect("the heartbeat is answered")
}

/// Job `job` (stage `job`, attempt 0) with one task per input, task `i` preferring
/// `prefs(i)`.
pub fn job_of(job: u32, inputs: Vec<Bytes>, prefs: impl Fn(usize) -> Vec<TaskLocation>) -> TaskSet {
    TaskSet {
        job_id: JobId(job),
        stage_id: StageId(job),
        stage_attempt: 0,
        function: "echo".into(),
        tasks: inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| TaskSpec {
                partition: i as u32,
                preferred_locations: prefs(i),
                input,
            })
            .collect(),
        properties: BTreeMap::new(),
    }
}

/// Job `job` of `n` tasks with inputs `"<job>:<i>"` and no preferences.
pub fn job(job: u32, n: usize) -> TaskSet {
    let inputs = (0..n).map(|i| Bytes::from(format!("{job}:{i}"))).collect();
    job_of(job, inputs, |_| Vec::new())
}

/// The results an echoing executor gives for [`job`]`(job, n)`.
pub fn echoed(job: u32, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{job}:{i}"))).collect()
}

/// Waits for `job`'s outcome.
#[track_caller]
pub fn outcome(job: &JobState) -> Result<Vec<Bytes>, ember_scheduler::JobError> {
    job.wait(Some(Instant::now() + DEADLINE))
        .expect("the job ended in time")
}
