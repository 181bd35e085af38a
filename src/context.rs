//! [`Context`]: what a driver program holds (Spark's `SparkContext`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc_env::{
    decode_from, encode_to_bytes, Decode, Encode, EndpointRef, LocalOnly, RpcConf, RpcEnv,
    RpcEnvConfig, TimeUnit,
};

use ember_executor::{DriverReporter, Executor, ExecutorArgs, LocalExecutorHandle, TaskRegistry};
use ember_scheduler::{
    keys, AppConfig, DriverAsk, DriverEndpoint, DriverMessage, DriverProtocol, ExecutorId,
    HeartbeatReceiver, JobId, JobState, Pools, SchedulerConf, SchedulingMode, StageId,
    TaskLocation, TaskScheduler, TaskSet, TaskSpec, DRIVER_ENDPOINT_NAME, HEARTBEAT_RECEIVER_NAME,
};

use crate::error::Error;
use crate::master_url::MasterUrl;

/// The setting that names the master (`local[2]`, `ember://host:7077`, ...).
pub const MASTER: &str = "ember.master";
/// The setting that names the application.
pub const APP_NAME: &str = "ember.app.name";
/// The host the driver's RPC server binds and advertises (127.0.0.1).
pub const DRIVER_HOST: &str = "ember.driver.host";
/// The port of the driver's RPC server (0: any free one).
pub const DRIVER_PORT: &str = "ember.driver.port";
/// How often the driver looks for executors whose heartbeats stopped (60 s).
pub const NETWORK_TIMEOUT_INTERVAL: &str = "ember.network.timeoutInterval";

thread_local! {
    /// Local properties are per thread, as in Spark: each thread may submit to its own pool.
    static LOCAL_PROPERTIES: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

struct Inner {
    env: RpcEnv,
    driver: EndpointRef<DriverProtocol>,
    registry: Arc<TaskRegistry>,
    next_job: AtomicU32,
    local_executor: Option<Arc<Executor>>,
    app_id: String,
    app_name: String,
    master: Option<MasterUrl>,
    default_parallelism: u32,
    stopped: AtomicBool,
}

/// A connection to a cluster (or to threads of this process): runs jobs of registered tasks.
///
/// Cheap to clone; every clone is the same context. Call [`stop`](Self::stop) when done.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

fn required<'a>(conf: &'a RpcConf, key: &str, what: &str) -> Result<&'a str, Error> {
    conf.get(key)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::Conf(format!("{what} must be set in your configuration ({key})")))
}

fn pools(conf: &RpcConf) -> Result<Pools, Error> {
    let mode = SchedulingMode::parse(conf.get(keys::SCHEDULER_MODE).unwrap_or("FIFO"))
        .map_err(|e| Error::Conf(format!("{}: {e}", keys::SCHEDULER_MODE)))?;
    match mode {
        SchedulingMode::Fifo => Ok(Pools::fifo()),
        SchedulingMode::Fair => {
            let xml = match conf.get(keys::ALLOCATION_FILE) {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    Error::Conf(format!(
                        "Cannot read {} '{path}': {e}",
                        keys::ALLOCATION_FILE
                    ))
                })?),
                None => None,
            };
            Pools::fair(xml.as_deref()).map_err(|e| Error::Conf(e.to_string()))
        }
    }
}

fn app_config(conf: &RpcConf, app_id: &str) -> AppConfig {
    AppConfig {
        app_id: app_id.to_string(),
        properties: conf
            .iter()
            .filter(|(k, _)| k.starts_with("ember."))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn new_app_id(prefix: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{prefix}-{millis}")
}

impl Context {
    /// A context for the master and application named in `conf` (`ember.master`,
    /// `ember.app.name`), running tasks from `registry`.
    pub fn new(conf: RpcConf, registry: TaskRegistry) -> Result<Context, Error> {
        let master = MasterUrl::parse(required(&conf, MASTER, "A master URL")?)?;
        let app_name = required(&conf, APP_NAME, "An application name")?.to_string();
        match master {
            MasterUrl::Local {
                threads,
                max_failures,
            } => Context::local(
                conf,
                registry,
                app_name,
                threads.resolve(),
                max_failures,
                master,
            ),
            MasterUrl::LocalCluster { .. } | MasterUrl::Standalone { .. } => Err(Error::Conf(
                "The standalone deploy mode (local-cluster[...] and ember://...) is not \
                 available yet; use local[N], or Context::driver_only with executors you start"
                    .to_string(),
            )),
        }
    }

    fn local(
        conf: RpcConf,
        registry: TaskRegistry,
        app_name: String,
        threads: u32,
        max_failures: u32,
        master: MasterUrl,
    ) -> Result<Context, Error> {
        let scheduler_conf = SchedulerConf::from_conf(&conf)?;
        if scheduler_conf.task_cpus > threads {
            return Err(Error::Conf(format!(
                "The number of cores per executor (={threads}) has to be >= the number of cpus \
                 per task = {}.",
                scheduler_conf.task_cpus
            )));
        }
        let max_message_size = conf.max_message_size()?;
        let scheduler = TaskScheduler::new(scheduler_conf, max_failures, pools(&conf)?);
        let env = RpcEnv::create(RpcEnvConfig::client("ember-driver").with_conf(conf.clone()))?;
        let app_id = new_app_id("local");
        let registry = Arc::new(registry);
        let driver = env.local_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
        let reporter = Arc::new(DriverReporter::new(driver.clone(), ExecutorId::driver()));
        let executor = Executor::start(
            ExecutorId::driver(),
            threads,
            Arc::clone(&registry),
            reporter,
            usize::MAX,
        )
        .map_err(|e| Error::Conf(format!("Cannot start the local executor: {e}")))?;
        let executor = Arc::new(executor);
        let endpoint = DriverEndpoint::new(scheduler, app_config(&conf, &app_id), max_message_size)
            .with_local_executor(
                ExecutorId::driver(),
                "localhost".to_string(),
                threads,
                Arc::new(LocalExecutorHandle(Arc::clone(&executor))),
            );
        if let Err(e) = env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint) {
            executor.stop();
            env.shutdown();
            return Err(e.into());
        }
        log::info!("Started {app_name} ({app_id}) on {threads} local thread(s)");
        Ok(Context {
            inner: Arc::new(Inner {
                env,
                driver,
                registry,
                next_job: AtomicU32::new(0),
                local_executor: Some(executor),
                app_id,
                app_name,
                master: Some(master),
                default_parallelism: threads,
                stopped: AtomicBool::new(false),
            }),
        })
    }

    /// A driver with no cluster manager: it listens on `ember.driver.host:ember.driver.port`
    /// and schedules on whatever executors register with it. Start them yourself with
    /// [`executor_args`](Self::executor_args) (tests and benchmarks do).
    pub fn driver_only(conf: RpcConf, registry: TaskRegistry) -> Result<Context, Error> {
        let app_name = conf.get(APP_NAME).unwrap_or("ember-app").to_string();
        let scheduler_conf = SchedulerConf::from_conf(&conf)?;
        let max_failures = conf.get_u32(keys::TASK_MAX_FAILURES, 4)?;
        let max_message_size = conf.max_message_size()?;
        let network_timeout = conf.network_timeout()?;
        let check_interval = conf.get_duration(
            NETWORK_TIMEOUT_INTERVAL,
            Duration::from_secs(60),
            TimeUnit::Milliseconds,
        )?;
        let host = conf.get(DRIVER_HOST).unwrap_or("127.0.0.1").to_string();
        let port = conf.get_u32(DRIVER_PORT, 0)?;
        let port = u16::try_from(port)
            .map_err(|_| Error::Conf(format!("{DRIVER_PORT} must be a port, not {port}")))?;
        let scheduler = TaskScheduler::new(scheduler_conf, max_failures, pools(&conf)?);
        let env = RpcEnv::create(
            RpcEnvConfig::server("ember-driver", host, port).with_conf(conf.clone()),
        )?;
        let app_id = new_app_id("app");
        let driver = env.local_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
        let started = (|| -> Result<(), Error> {
            let heartbeat = env.setup_endpoint(
                HEARTBEAT_RECEIVER_NAME,
                HeartbeatReceiver::new(driver.clone(), network_timeout, check_interval),
            )?;
            let endpoint =
                DriverEndpoint::new(scheduler, app_config(&conf, &app_id), max_message_size)
                    .with_heartbeat_receiver(heartbeat);
            env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint)?;
            Ok(())
        })();
        if let Err(e) = started {
            env.shutdown();
            return Err(e);
        }
        Ok(Context {
            inner: Arc::new(Inner {
                env,
                driver,
                registry: Arc::new(registry),
                next_job: AtomicU32::new(0),
                local_executor: None,
                app_id,
                app_name,
                master: None,
                default_parallelism: 2,
                stopped: AtomicBool::new(false),
            }),
        })
    }

    /// The application's id (`local-<millis>` in local modes).
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The application's name.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// The master this context runs on (`None` for a driver with no cluster manager).
    pub fn master(&self) -> Option<&MasterUrl> {
        self.inner.master.as_ref()
    }

    /// How many partitions a job should have by default (the local thread count).
    pub fn default_parallelism(&self) -> u32 {
        self.inner.default_parallelism
    }

    /// The driver endpoint's URI, for executors to register with.
    pub fn driver_url(&self) -> Option<String> {
        self.inner
            .env
            .address()
            .map(|a| format!("ember://{DRIVER_ENDPOINT_NAME}@{}", a.host_port()))
    }

    /// The command-line arguments of an executor process for this driver.
    pub fn executor_args(&self, executor_id: &str, cores: u32) -> Option<ExecutorArgs> {
        Some(ExecutorArgs {
            driver_url: self.driver_url()?,
            executor_id: executor_id.to_string(),
            hostname: "127.0.0.1".to_string(),
            cores,
            app_id: self.inner.app_id.clone(),
            worker_url: None,
        })
    }

    /// Waits until at least `count` executors have registered and launched.
    pub fn wait_for_executors(&self, count: u32, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let (executors, _cores) = self
                .inner
                .driver
                .ask_sync(|reply| DriverAsk::ExecutorCount { reply })?;
            if executors >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "{executors} of {count} executors registered within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sets (or, with `None`, clears) a local property of jobs this thread submits from
    /// now on; `ember.scheduler.pool` picks the FAIR pool.
    pub fn set_local_property(&self, key: &str, value: Option<&str>) {
        LOCAL_PROPERTIES.with(|p| {
            let mut p = p.borrow_mut();
            match value {
                Some(v) => p.insert(key.to_string(), v.to_string()),
                None => p.remove(key),
            };
        });
    }

    /// Runs `task` on every input, one partition each, and returns the outputs in partition
    /// order.
    pub fn run_job<In, Out>(&self, task: &str, inputs: Vec<In>) -> Result<Vec<Out>, Error>
    where
        In: Encode + 'static,
        Out: Decode + 'static,
    {
        self.submit_job(task, inputs)?.wait()
    }

    /// Starts a job and returns at once with a handle to wait on, poll or cancel.
    pub fn submit_job<In, Out>(&self, task: &str, inputs: Vec<In>) -> Result<JobHandle<Out>, Error>
    where
        In: Encode + 'static,
        Out: Decode + 'static,
    {
        self.submit_job_with_locations(task, inputs.into_iter().map(|i| (i, Vec::new())).collect())
    }

    /// Like [`submit_job`](Self::submit_job), with preferred locations per partition
    /// (`host`, `executor_<host>_<id>`, ...).
    pub fn submit_job_with_locations<In, Out>(
        &self,
        task: &str,
        inputs: Vec<(In, Vec<TaskLocation>)>,
    ) -> Result<JobHandle<Out>, Error>
    where
        In: Encode + 'static,
        Out: Decode + 'static,
    {
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        self.inner
            .registry
            .check::<In, Out>(task)
            .map_err(Error::Task)?;
        let job_id = JobId(self.inner.next_job.fetch_add(1, Ordering::Relaxed));
        let tasks: Vec<TaskSpec> = inputs
            .iter()
            .enumerate()
            .map(|(i, (input, preferred))| TaskSpec {
                partition: i as u32,
                preferred_locations: preferred.clone(),
                input: encode_to_bytes(input),
            })
            .collect();
        let job = Arc::new(JobState::new(job_id, tasks.len()));
        let task_set = TaskSet {
            job_id,
            stage_id: StageId(job_id.0),
            stage_attempt: 0,
            function: Arc::from(task),
            tasks,
            properties: LOCAL_PROPERTIES.with(|p| p.borrow().clone()),
        };
        if !task_set.tasks.is_empty() {
            self.inner.driver.send(DriverMessage::SubmitJob {
                task_set: LocalOnly(task_set),
                job: LocalOnly(Arc::clone(&job)),
            })?;
        }
        Ok(JobHandle {
            job,
            driver: self.inner.driver.clone(),
            _out: PhantomData,
        })
    }

    /// Stops the context: running jobs fail, executors are told to stop, the network
    /// closes. Idempotent.
    pub fn stop(&self) {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let env = &self.inner.env;
        // Executors are told to stop while the network is still up (Spark's
        // `stopExecutors` before the env goes); a failure only means there were none to tell.
        let told = self
            .inner
            .driver
            .ask_with_timeout(
                |reply| DriverAsk::StopExecutors { reply },
                &rpc_env::RpcTimeout::new(Duration::from_secs(10), "ember.rpc.askTimeout"),
            )
            .wait();
        if let Err(e) = told {
            log::warn!("Could not tell the executors to stop: {e}");
        }
        env.stop(&self.inner.driver);
        env.shutdown();
        env.await_termination();
        if let Some(executor) = &self.inner.local_executor {
            executor.stop();
            executor.join();
        }
        log::info!("Stopped {} ({})", self.inner.app_name, self.inner.app_id);
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("app_id", &self.inner.app_id)
            .field("master", &self.inner.master)
            .finish()
    }
}

/// A submitted job: wait for its outputs, watch its progress, or cancel it.
pub struct JobHandle<Out> {
    job: Arc<JobState>,
    driver: EndpointRef<DriverProtocol>,
    _out: PhantomData<fn() -> Out>,
}

impl<Out: Decode + 'static> JobHandle<Out> {
    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.job.job_id()
    }

    /// (partitions done, partitions in all).
    pub fn progress(&self) -> (usize, usize) {
        self.job.progress()
    }

    /// Whether the job has ended.
    pub fn is_done(&self) -> bool {
        self.job.is_done()
    }

    /// Cancels the job: running tasks are killed and [`wait`](Self::wait) fails.
    pub fn cancel(&self, reason: &str) {
        let _ = self.driver.send(DriverMessage::CancelJob {
            job_id: self.job.job_id(),
            reason: reason.to_string(),
        });
    }

    /// Waits for the outputs, in partition order.
    pub fn wait(self) -> Result<Vec<Out>, Error> {
        match self.job.wait(None) {
            Some(outcome) => decode_all(outcome?),
            None => Err(Error::Timeout("the job".into())),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the job has not ended.
    pub fn wait_timeout(
        self,
        timeout: Duration,
    ) -> Result<Result<Vec<Out>, Error>, JobHandle<Out>> {
        match self.job.wait(Some(Instant::now() + timeout)) {
            Some(outcome) => Ok(outcome.map_err(Error::from).and_then(decode_all)),
            None => Err(self),
        }
    }
}

fn decode_all<Out: Decode>(results: Vec<bytes::Bytes>) -> Result<Vec<Out>, Error> {
    results
        .into_iter()
        .enumerate()
        .map(|(partition, bytes)| {
            decode_from::<Out>(bytes).map_err(|e| Error::BadResult {
                partition,
                message: e.to_string(),
            })
        })
        .collect()
}

impl<Out> std::fmt::Debug for JobHandle<Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobHandle({:?})", self.job)
    }
}
