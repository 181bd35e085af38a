//! A standalone cluster for your integration tests: a master and N workers in the test's
//! process, executors as real child processes that run *your* task functions.
//!
//! A cluster's executors are processes started from a program; here that program is your
//! test binary itself. A libtest binary cannot take executor arguments directly, so put
//! [`executor_entry!`](crate::executor_entry) once at the top level of the test file, naming
//! the function that returns your task functions. It adds a test named
//! `ember_executor_entry` that, in a normal test run, returns at once and, in a process a
//! worker started, runs the executor and exits; and it declares `test_cluster()`, a
//! [`TestClusterBuilder`] whose drivers run the same task functions. The registry is named
//! once. Starting a cluster checks that this binary's entry really runs those functions, so a
//! forgotten or mismatched entry is an error at [`start`](TestClusterBuilder::start), not
//! when a task runs.
//!
//! ```no_run
//! // tests/my_cluster_test.rs
//! use std::time::Duration;
//!
//! use ember::{TaskContext, TaskError, TaskRegistry};
//!
//! fn double(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
//!     Ok(2 * x)
//! }
//!
//! /// Every task function the driver and the executors know.
//! fn tasks() -> TaskRegistry {
//!     let mut registry = TaskRegistry::new();
//!     registry.register("double", double);
//!     registry
//! }
//!
//! // Makes this test binary usable as the cluster's executor program, and declares
//! // `test_cluster()`.
//! ember::executor_entry!(tasks);
//!
//! #[test]
//! fn doubles_on_a_two_worker_cluster() -> Result<(), ember::Error> {
//!     // 2 workers of 1 core and 1024 MiB each.
//!     let cluster = test_cluster()
//!         .workers(2)
//!         .cores_per_worker(1)
//!         .memory_mib_per_worker(1024)
//!         .start()?;
//!     let ctx = cluster.context("doubler")?;
//!     cluster.wait_for_executors(&ctx, 2, Duration::from_secs(30))?;
//!     let out: Vec<u64> = ctx.run_job("double", vec![1u64, 2, 3])?;
//!     assert_eq!(out, vec![2, 4, 6]);
//!     // On purpose: lose an executor, then a worker; jobs still complete.
//!     cluster.kill_executor(ctx.app_id(), "0")?;
//!     cluster.kill_worker(1);
//!     let out: Vec<u64> = ctx.run_job("double", vec![4u64])?;
//!     assert_eq!(out, vec![8]);
//!     // Stops the contexts, the workers and the master; fails if an executor outlived them.
//!     cluster.stop()?;
//!     assert!(cluster.executor_processes().is_empty());
//!     Ok(())
//! }
//! ```
//!
//! Executors are found through `/proc` (Linux): the children of this process whose command
//! line is an executor's.
//!
//! Logs: starting a cluster sets up `env_logger` for the test harness, so
//! `RUST_LOG=info cargo test` shows the cluster's log with each failing test (add
//! `-- --nocapture` to see it always). Errors of `kill_executor` and `stop` about processes
//! are [`Error::Process`].

mod entry;
mod processes;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rpc_env::{RpcConf, SizeUnit};

use ember_deploy::{LocalCluster, MasterHandle, WorkerHandle};
use ember_executor::TaskRegistry;
use ember_scheduler::{DriverControl, ExecutorId};

use crate::context::Context;
use crate::error::Error;
use crate::keys::{APP_NAME, EXECUTOR_MEMORY, EXECUTOR_PROGRAM, EXECUTOR_PROGRAM_ARGS, MASTER};

pub use entry::{run_executor_entry, EXECUTOR_ENTRY_ARGS, EXECUTOR_ENTRY_TEST};
pub use processes::{executor_processes, executor_processes_of, ExecutorProcess};

/// What [`TestCluster::state`] returns: the master's view of workers and applications.
pub use ember_deploy::messages::{AppSummary, MasterState, WorkerSummary};

/// The task functions of a cluster's drivers: a function that makes the registry, called
/// once per context.
type TasksFn = Arc<dyn Fn() -> TaskRegistry + Send + Sync>;

/// How to start a [`TestCluster`]: its size, settings and task functions.
#[derive(Clone)]
pub struct TestClusterBuilder {
    workers: u32,
    cores: u32,
    memory_mib: u32,
    conf: RpcConf,
    tasks: TasksFn,
}

impl std::fmt::Debug for TestClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClusterBuilder")
            .field("workers", &self.workers)
            .field("cores", &self.cores)
            .field("memory_mib", &self.memory_mib)
            .field("conf", &self.conf)
            .finish_non_exhaustive()
    }
}

impl TestClusterBuilder {
    /// The task functions of the cluster's drivers (none unless set). The `test_cluster()`
    /// that [`executor_entry!`](crate::executor_entry) declares sets the entry's own, so a
    /// test rarely calls this.
    pub fn tasks<F>(mut self, tasks: F) -> TestClusterBuilder
    where
        F: Fn() -> TaskRegistry + Send + Sync + 'static,
    {
        self.tasks = Arc::new(tasks);
        self
    }

    /// How many workers (default 2).
    pub fn workers(mut self, workers: u32) -> TestClusterBuilder {
        self.workers = workers;
        self
    }

    /// Cores each worker offers (default 1).
    pub fn cores_per_worker(mut self, cores: u32) -> TestClusterBuilder {
        self.cores = cores;
        self
    }

    /// Memory each worker offers, in MiB (default 1024: one executor of the default
    /// `ember.executor.memory`).
    pub fn memory_mib_per_worker(mut self, memory_mib: u32) -> TestClusterBuilder {
        self.memory_mib = memory_mib;
        self
    }

    /// Sets an `ember.*` setting for the master, the workers and every context of the
    /// cluster (`ember.deploy.spreadOut`, `ember.deploy.maxExecutorRetries`, timeouts...).
    pub fn conf(mut self, key: &str, value: &str) -> TestClusterBuilder {
        self.conf.set(key, value);
        self
    }

    /// Starts the master and the workers and waits until every worker has registered.
    ///
    /// First it checks that this test binary's [`executor_entry!`](crate::executor_entry)
    /// runs the drivers' task functions (by starting the binary once, as a worker would, and
    /// asking the entry): a missing entry or a different registry is an [`Error::Conf`]
    /// saying what to change. The check is skipped when the settings name another executor
    /// program (`ember.executor.program` or `ember.executor.programArgs`), and when the
    /// drivers have no task functions (the cluster is there for drivers of other programs).
    pub fn start(self) -> Result<TestCluster, Error> {
        // The test's logs, as `RUST_LOG` asks (errors only without it), through the test
        // harness's capture: shown with a failing test's output. A test that set up a
        // logger of its own keeps it.
        let _ = env_logger::Builder::from_env(env_logger::Env::default())
            .is_test(true)
            .try_init();
        let drivers_tasks = (self.tasks)();
        let own_program =
            !self.conf.contains(EXECUTOR_PROGRAM) && !self.conf.contains(EXECUTOR_PROGRAM_ARGS);
        if own_program && !drivers_tasks.names().is_empty() {
            entry::check_executor_entry(&drivers_tasks)?;
        }
        // Authenticated by default with a fresh secret, as local-cluster is; a test that
        // sets `ember.authenticate` itself decides.
        let conf = self.conf.with_default_authentication()?;
        let cluster = LocalCluster::start(self.workers, self.cores, self.memory_mib, &conf)
            .map_err(|e| Error::Conf(format!("Cannot start the test cluster: {e}")))?;
        let master = cluster.master().clone();
        let worker_urls = (0..self.workers as usize)
            .filter_map(|i| cluster.worker(i).map(WorkerHandle::url))
            .collect();
        Ok(TestCluster {
            cluster: Mutex::new(Some(cluster)),
            master,
            worker_urls,
            memory_mib: self.memory_mib,
            conf,
            tasks: self.tasks,
            contexts: Mutex::new(Vec::new()),
        })
    }
}

/// A master and its workers in this process for a test, with executors running this test
/// binary's [`executor_entry!`](crate::executor_entry). Stopped (contexts included) by
/// [`stop`](Self::stop) or when dropped. See the [module documentation](self).
pub struct TestCluster {
    cluster: Mutex<Option<LocalCluster>>,
    master: MasterHandle,
    /// Every worker's URL, killed ones included: how this cluster's executors are known.
    worker_urls: Vec<String>,
    memory_mib: u32,
    conf: RpcConf,
    tasks: TasksFn,
    contexts: Mutex<Vec<Context>>,
}

impl TestCluster {
    /// A builder with named settings: two workers of one core and 1024 MiB each unless
    /// [`workers`](TestClusterBuilder::workers),
    /// [`cores_per_worker`](TestClusterBuilder::cores_per_worker),
    /// [`memory_mib_per_worker`](TestClusterBuilder::memory_mib_per_worker) or
    /// [`conf`](TestClusterBuilder::conf) say otherwise, and drivers without task functions
    /// unless [`tasks`](TestClusterBuilder::tasks) gives them. A test file with
    /// [`executor_entry!`](crate::executor_entry) starts from its `test_cluster()` instead,
    /// which is this builder with the entry's task functions.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            workers: 2,
            cores: 1,
            memory_mib: 1024,
            conf: RpcConf::new(),
            tasks: Arc::new(TaskRegistry::new),
        }
    }

    /// The settings the cluster's master, workers and contexts run with, the random secret
    /// it authenticates with included (unless the builder set `ember.authenticate`): the
    /// base for a context or an env a test makes itself to talk to the cluster.
    pub fn conf(&self) -> &RpcConf {
        &self.conf
    }

    /// The master's URL, `ember://127.0.0.1:<port>`.
    pub fn master_url(&self) -> String {
        self.master.url()
    }

    /// The master, to ask it things (`master_ref()`).
    pub fn master(&self) -> &MasterHandle {
        &self.master
    }

    /// The master's state: workers, active and completed applications.
    pub fn state(&self) -> Result<MasterState, Error> {
        Ok(self.master.state()?)
    }

    /// Worker `i` (in start order), unless it was killed or the cluster stopped.
    pub fn worker(&self, i: usize) -> Option<WorkerHandle> {
        self.cluster.lock().as_ref()?.worker(i).cloned()
    }

    /// A context for an application called `app_name` on this cluster, with the cluster's
    /// settings. It is stopped with the cluster if not before.
    pub fn context(&self, app_name: &str) -> Result<Context, Error> {
        self.context_with(app_name, &[])
    }

    /// Like [`context`](Self::context), with application settings on top of the cluster's
    /// (`ember.cores.max`, `ember.executor.cores`, `ember.executor.program`, ...).
    pub fn context_with(
        &self,
        app_name: &str,
        settings: &[(&str, &str)],
    ) -> Result<Context, Error> {
        let mut conf = self.conf.clone();
        for (key, value) in settings {
            conf.set(*key, *value);
        }
        conf.set(MASTER, self.master.url());
        conf.set(APP_NAME, app_name);
        if !conf.contains(EXECUTOR_PROGRAM_ARGS) {
            conf.set(EXECUTOR_PROGRAM_ARGS, EXECUTOR_ENTRY_ARGS);
        }
        let executor_mib = conf.get_size_bytes(EXECUTOR_MEMORY, 1 << 30, SizeUnit::MiB)? >> 20;
        if executor_mib > u64::from(self.memory_mib) {
            return Err(Error::Conf(format!(
                "Asked to launch cluster with {} MiB/worker but requested {executor_mib} \
                 MiB/executor",
                self.memory_mib
            )));
        }
        let ctx = Context::new(conf, (self.tasks)())?;
        self.contexts.lock().push(ctx.clone());
        Ok(ctx)
    }

    /// Waits until `ctx`'s driver has `count` executors registered, at most `timeout`.
    pub fn wait_for_executors(
        &self,
        ctx: &Context,
        count: u32,
        timeout: Duration,
    ) -> Result<(), Error> {
        ctx.wait_for_executors(count, timeout)
    }

    /// Whether `ctx`'s driver counts executor `executor_id` as alive (registered and not
    /// being removed). Asked through the driver endpoint's control handle: only the
    /// driver's own process may ask this.
    pub fn driver_has_executor(&self, ctx: &Context, executor_id: &str) -> Result<bool, Error> {
        Ok(ctx
            .driver_control()
            .ask_sync(|reply| DriverControl::IsExecutorAlive {
                executor_id: ExecutorId::new(executor_id),
                reply,
            })?)
    }

    /// This cluster's executor processes that are running now (all applications).
    pub fn executor_processes(&self) -> Vec<ExecutorProcess> {
        executor_processes()
            .into_iter()
            .filter(|p| {
                p.worker_url
                    .as_ref()
                    .is_some_and(|w| self.worker_urls.contains(w))
            })
            .collect()
    }

    /// The process ids of [`executor_processes`](Self::executor_processes).
    pub fn executor_pids(&self) -> Vec<u32> {
        self.executor_processes().iter().map(|p| p.pid).collect()
    }

    /// Kills executor `executor_id` of application `app_id` with SIGKILL, as if its machine
    /// crashed; its worker, the master and the driver then notice by themselves. Returns the
    /// process that was killed.
    pub fn kill_executor(&self, app_id: &str, executor_id: &str) -> Result<ExecutorProcess, Error> {
        let process = self
            .executor_processes()
            .into_iter()
            .find(|p| p.app_id == app_id && p.executor_id == executor_id)
            .ok_or_else(|| {
                Error::Process(format!(
                    "No running process of executor {executor_id} of {app_id}"
                ))
            })?;
        sigkill(process.pid)?;
        Ok(process)
    }

    /// Stops worker `i` as if its machine went away: its executors die with it and the
    /// master notices the lost connection. `false` if there is no such worker (any more).
    pub fn kill_worker(&self, i: usize) -> bool {
        let mut cluster = self.cluster.lock();
        let Some(cluster) = cluster.as_mut() else {
            return false;
        };
        if cluster.worker(i).is_none() {
            return false;
        }
        cluster.kill_worker(i);
        true
    }

    /// Stops every context made by [`context`](Self::context), then the workers (killing
    /// what executors remain) and the master. Idempotent. Afterwards no executor process of
    /// this cluster runs: should one have outlived its worker, it is killed and this is an
    /// error naming it.
    pub fn stop(&self) -> Result<(), Error> {
        let contexts = std::mem::take(&mut *self.contexts.lock());
        for ctx in contexts {
            ctx.stop();
        }
        if let Some(mut cluster) = self.cluster.lock().take() {
            cluster.stop();
        }
        let left = self.executor_processes();
        if left.is_empty() {
            return Ok(());
        }
        for process in &left {
            if let Err(e) = sigkill(process.pid) {
                log::warn!("Could not kill executor process {}: {e}", process.pid);
            }
        }
        Err(Error::Process(format!(
            "Executor processes outlived the test cluster (now killed): {left:?}"
        )))
    }
}

/// SIGKILL to `pid` (nix: the workspace has no unsafe code).
fn sigkill(pid: u32) -> Result<(), Error> {
    let raw = i32::try_from(pid).map_err(|_| Error::Process(format!("Not a process id: {pid}")))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| Error::Process(format!("Could not kill process {pid}: {e}")))
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::error!("{e}");
        }
    }
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("master", &self.master.url())
            .field("workers", &self.worker_urls)
            .finish()
    }
}
