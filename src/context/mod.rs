//! [`Context`]: what a driver program holds (Spark's `SparkContext`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use rpc_env::{ControlRef, Decode, Encode, RpcEnv};

use ember_deploy::messages::{AppClientControl, AppClientProtocol};
use ember_deploy::LocalCluster;
use ember_executor::{Executor, ExecutorArgs, TaskRegistry};
use ember_scheduler::{
    DriverControl, DriverProtocol, JobId, JobState, StageId, TaskLocation, TaskSet, TaskSpec,
    DRIVER_ENDPOINT_NAME,
};

use crate::error::Error;
use crate::event_log::EventLog;
use crate::job_handle::JobHandle;
use crate::master_url::MasterUrl;
use crate::progress::ConsoleProgress;
use crate::standalone_backend::AppStatus;

mod start;

thread_local! {
    /// Local properties are per thread, as in Spark: each thread may submit to its own pool.
    static LOCAL_PROPERTIES: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

struct Inner {
    env: RpcEnv,
    driver: ControlRef<DriverProtocol>,
    deployment: Deployment,
    registry: Arc<TaskRegistry>,
    next_job: AtomicU32,
    app_id: String,
    app_name: String,
    default_parallelism: u32,
    stopped: AtomicBool,
    /// The console progress bar, when `ember.ui.showConsoleProgress` is on and stderr is a
    /// terminal.
    progress: Option<Arc<ConsoleProgress>>,
    /// The event log (`ember.eventLog.enabled`), if on.
    event_log: Option<Arc<EventLog>>,
}

/// What watches the application besides its caller: the console progress bar and the
/// event log, each when its setting asks for it.
struct Observers {
    progress: Option<Arc<ConsoleProgress>>,
    event_log: Option<Arc<EventLog>>,
}

/// Where the application's executors come from, by the master URL's mode, with what that
/// mode has to hold and stop.
enum Deployment {
    /// `local[...]`: one executor in this process.
    Local {
        master: MasterUrl,
        executor: Arc<Executor>,
        /// The files added with [`Context::add_file`], by name: the tasks run here and
        /// read them where they are.
        files: Arc<parking_lot::RwLock<BTreeMap<String, PathBuf>>>,
    },
    /// No cluster manager ([`Context::driver_only`]): executors register by themselves.
    DriverOnly,
    /// `ember://...`: executors come from a standalone cluster's workers.
    Standalone {
        master: MasterUrl,
        app: StandaloneApp,
    },
    /// `local-cluster[...]`: as standalone, on a master and workers started in this process.
    LocalCluster {
        master: MasterUrl,
        app: StandaloneApp,
        /// Taken and stopped when the context stops.
        cluster: parking_lot::Mutex<Option<LocalCluster>>,
    },
}

/// An application registered with a standalone master.
struct StandaloneApp {
    /// The app client endpoint, which talks to the masters.
    client: ControlRef<AppClientProtocol>,
    /// What the masters said of the application.
    status: Arc<AppStatus>,
}

impl Deployment {
    fn master(&self) -> Option<&MasterUrl> {
        match self {
            Deployment::Local { master, .. }
            | Deployment::Standalone { master, .. }
            | Deployment::LocalCluster { master, .. } => Some(master),
            Deployment::DriverOnly => None,
        }
    }

    fn standalone_app(&self) -> Option<&StandaloneApp> {
        match self {
            Deployment::Standalone { app, .. } | Deployment::LocalCluster { app, .. } => Some(app),
            Deployment::Local { .. } | Deployment::DriverOnly => None,
        }
    }
}

/// A connection to a cluster (or to threads of this process): runs jobs of registered tasks.
///
/// Cheap to clone; every clone is the same context. Call [`stop`](Self::stop) when done.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

impl Context {
    /// The application's id (`local-<millis>` in local modes).
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The application's name.
    pub fn app_name(&self) -> &str {
        &self.inner.app_name
    }

    /// Adds the regular file at `path` to the application (Spark's `SparkContext.addFile`)
    /// and returns the name tasks get it by, its file name:
    /// [`TaskContext::file(name)`](crate::TaskContext::file) is its path where the task
    /// runs. Executor processes fetch it from this driver the first time a task asks, check
    /// its hash and keep it. Another file of the same name is refused.
    pub fn add_file(&self, path: impl AsRef<std::path::Path>) -> Result<String, Error> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                Error::Conf(format!(
                    "Cannot add {}: it has no file name",
                    path.display()
                ))
            })?
            .to_string();
        match &self.inner.deployment {
            Deployment::Local { files, .. } => {
                let real = std::fs::canonicalize(path)
                    .ok()
                    .filter(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::Conf(format!(
                            "Cannot add {}: it is not a regular file",
                            path.display()
                        ))
                    })?;
                let mut files = files.write();
                match files.get(&name) {
                    Some(known) if *known != real => Err(Error::Conf(format!(
                        "Cannot add {}: '{name}' is already the file {}",
                        path.display(),
                        known.display()
                    ))),
                    _ => {
                        files.insert(name.clone(), real);
                        Ok(name)
                    }
                }
            }
            Deployment::DriverOnly
            | Deployment::Standalone { .. }
            | Deployment::LocalCluster { .. } => {
                self.inner.env.file_server()?.add_file(path)?;
                Ok(name)
            }
        }
    }

    /// The master this context runs on (`None` for a driver with no cluster manager).
    pub fn master(&self) -> Option<&MasterUrl> {
        self.inner.deployment.master()
    }

    /// How many partitions a job should have by default (the local thread count).
    pub fn default_parallelism(&self) -> u32 {
        self.inner.default_parallelism
    }

    /// The driver endpoint's control handle: how this process submits jobs and asks about
    /// executors.
    pub(crate) fn driver_control(&self) -> &ControlRef<DriverProtocol> {
        &self.inner.driver
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

    /// The executors the driver has now: registered and not yet removed (Spark's
    /// `getExecutorIds`). In local mode, the one in-process executor, `driver`.
    pub fn executor_ids(&self) -> Result<Vec<String>, Error> {
        let ids = self
            .inner
            .driver
            .ask_sync(|reply| DriverControl::ExecutorIds { reply })?;
        Ok(ids.into_iter().map(|id| id.to_string()).collect())
    }

    /// Waits until at least `count` executors have registered and launched.
    pub fn wait_for_executors(&self, count: u32, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let (executors, _cores) = self
                .inner
                .driver
                .ask_sync(|reply| DriverControl::ExecutorCount { reply })?;
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
        let app = self.inner.deployment.standalone_app();
        if let Some(reason) = app.and_then(|app| app.status.dead_reason()) {
            return Err(Error::Job(ember_scheduler::JobError::Failed {
                message: format!("Application has been killed. Reason: {reason}"),
            }));
        }
        self.inner
            .registry
            .check::<In, Out>(task)
            .map_err(Error::Task)?;
        let job_id = JobId(self.inner.next_job.fetch_add(1, Ordering::Relaxed));
        let tasks: Vec<TaskSpec> = encode_inputs(&inputs)
            .into_iter()
            .zip(inputs)
            .enumerate()
            .map(|(i, (input, (_, preferred)))| TaskSpec {
                partition: i as u32,
                preferred_locations: preferred,
                input,
            })
            .collect();
        let mut job = JobState::new(job_id, tasks.len());
        if let Some(log) = &self.inner.event_log {
            job = log.job_submitted(job, tasks.len());
        }
        let job = Arc::new(job);
        if let Some(progress) = &self.inner.progress {
            progress.track(&job);
        }
        let task_set = TaskSet {
            job_id,
            stage_id: StageId(job_id.0),
            stage_attempt: 0,
            function: Arc::from(task),
            tasks,
            properties: LOCAL_PROPERTIES.with(|p| p.borrow().clone()),
        };
        if !task_set.tasks.is_empty() {
            self.inner.driver.send(DriverControl::SubmitJob {
                task_set,
                job: Arc::clone(&job),
            })?;
        }
        Ok(JobHandle {
            job,
            driver: self.inner.driver.clone(),
            progress: self.inner.progress.clone(),
            _out: PhantomData,
        })
    }

    /// Stops the context: running jobs fail, executors are told to stop, the network
    /// closes. Idempotent.
    pub fn stop(&self) {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(progress) = &self.inner.progress {
            progress.stop();
        }
        let env = &self.inner.env;
        // Executors are told to stop while the network is still up (Spark's
        // `stopExecutors` before the env goes); a failure only means there were none to tell.
        let told = self
            .inner
            .driver
            .ask_with_timeout(
                |reply| DriverControl::StopExecutors { reply },
                Duration::from_secs(10),
            )
            .wait();
        if let Err(e) = told {
            log::warn!("Could not tell the executors to stop: {e}");
        }
        if let Some(app) = self.inner.deployment.standalone_app() {
            let stopped = app
                .client
                .ask_with_timeout(
                    |reply| AppClientControl::StopAppClient { reply },
                    Duration::from_secs(10),
                )
                .wait();
            if let Err(e) = stopped {
                log::warn!("Could not unregister from the master: {e}");
            }
        }
        env.stop(&env.local_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME));
        env.shutdown();
        env.await_termination();
        match &self.inner.deployment {
            Deployment::Local { executor, .. } => {
                executor.stop();
                executor.join();
            }
            Deployment::LocalCluster { cluster, .. } => {
                if let Some(mut cluster) = cluster.lock().take() {
                    cluster.stop();
                }
            }
            Deployment::Standalone { .. } | Deployment::DriverOnly => {}
        }
        // Last: the driver endpoint has stopped, and its jobs have ended, so nothing comes
        // after the end line.
        if let Some(log) = &self.inner.event_log {
            log.application_ended();
        }
        log::info!("Stopped {} ({})", self.inner.app_name, self.inner.app_id);
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("app_id", &self.inner.app_id)
            .field("master", &self.inner.deployment.master())
            .finish()
    }
}

/// Encodes every input into one buffer and gives each task its slice of it: one allocation
/// per job instead of one per task (the slices share the buffer, which lives as long as the
/// task set keeps any of them for a retry).
fn encode_inputs<In: Encode>(inputs: &[(In, Vec<TaskLocation>)]) -> Vec<Bytes> {
    let mut buf = BytesMut::new();
    let mut ends = Vec::with_capacity(inputs.len());
    for (input, _) in inputs {
        input.encode(&mut buf);
        ends.push(buf.len());
    }
    let all = buf.freeze();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let slice = all.slice(start..end);
            start = end;
            slice
        })
        .collect()
}
