//! A standalone cluster for your integration tests: a master and N workers in the test's
//! process, executors as real child processes that run *your* task functions.
//!
//! A cluster's executors are processes started from a program; here that program is your
//! test binary itself. A libtest binary cannot take executor arguments directly, so put
//! [`executor_entry!`](crate::executor_entry) once at the top level of the test file: it
//! adds a test named `ember_executor_entry` that, in a normal test run, returns at once
//! and, in a process a worker started, runs the executor and exits. [`TestCluster`] starts
//! the cluster with its executors launched that way (`ember.executor.programArgs` is
//! [`EXECUTOR_ENTRY_ARGS`]).
//!
//! ```no_run
//! // tests/my_cluster_test.rs
//! use std::time::Duration;
//!
//! use ember::testing::TestCluster;
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
//! // Makes this test binary usable as the cluster's executor program.
//! ember::executor_entry!(tasks);
//!
//! #[test]
//! fn doubles_on_a_two_worker_cluster() -> Result<(), ember::Error> {
//!     // 2 workers of 1 core and 1024 MiB each.
//!     let cluster = TestCluster::builder()
//!         .workers(2)
//!         .cores_per_worker(1)
//!         .memory_mib_per_worker(1024)
//!         .start(tasks)?;
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

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rpc_env::{RpcConf, SizeUnit};

use ember_deploy::{LocalCluster, MasterHandle, WorkerHandle};
use ember_executor::{looks_like_executor, run_executor, usage, ExecutorArgs, TaskRegistry};
use ember_scheduler::{DriverControl, ExecutorId};

use crate::context::Context;
use crate::error::Error;
use crate::keys::{APP_NAME, EXECUTOR_MEMORY, EXECUTOR_PROGRAM_ARGS, MASTER};

/// What [`TestCluster::state`] returns: the master's view of workers and applications.
pub use ember_deploy::messages::{AppSummary, MasterState, WorkerSummary};

/// The name of the test [`executor_entry!`](crate::executor_entry) defines.
pub const EXECUTOR_ENTRY_TEST: &str = "ember_executor_entry";

/// What a test binary is told before the executor arguments so that it runs only the
/// executor entry: libtest takes the arguments after `--` as name filters, and with
/// `--exact` only `ember_executor_entry` matches one of them.
pub const EXECUTOR_ENTRY_ARGS: &str =
    "ember_executor_entry --exact --nocapture --test-threads=1 --";

/// Defines the test `ember_executor_entry`, which makes this test binary an executor
/// program: when the process's arguments hold executor arguments after a `--` (as a
/// [`TestCluster`]'s workers launch it), it runs an executor with the task functions
/// `$tasks()` returns and exits with its code; in a normal test run it returns at once.
///
/// Put it once per test file, at the top level (`--exact` matches the test's full name):
///
/// ```ignore
/// fn tasks() -> ember::TaskRegistry { /* register the task functions */ }
/// ember::executor_entry!(tasks);
/// ```
///
/// It shows in the file's test list (`test ember_executor_entry ... ok`) because it is a
/// test: a test binary runs nothing of a crate's own before the harness, and Ember forbids
/// the `unsafe` that a constructor run before `main` (the `ctor` crate) would need, so the
/// harness must be told to run this one test, by name, for an executor to start. In a
/// normal test run it does nothing and passes at once.
#[macro_export]
macro_rules! executor_entry {
    ($tasks:expr) => {
        /// Not a test: the executor program of this file's test clusters.
        #[test]
        fn ember_executor_entry() {
            $crate::testing::run_executor_entry(|| ($tasks)());
        }
    };
}

/// The body of [`executor_entry!`](crate::executor_entry): with executor arguments after
/// the first `--` of this process's command line, runs an executor of the tasks `tasks()`
/// returns and exits with its code (1 when the arguments are bad); otherwise returns.
pub fn run_executor_entry(tasks: impl FnOnce() -> TaskRegistry) {
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(separator) = args.iter().position(|a| a == "--") else {
        return;
    };
    let executor_args = &args[separator + 1..];
    if !looks_like_executor(executor_args) {
        return;
    }
    let _ = env_logger::try_init();
    match ExecutorArgs::parse(executor_args.iter().cloned()) {
        Ok(parsed) => std::process::exit(run_executor(&parsed, Arc::new(tasks()))),
        Err(e) => {
            let program = args
                .first()
                .map_or("test".into(), |p| p.to_string_lossy().into_owned());
            eprintln!("{e}");
            eprint!("{}", usage(&program));
            std::process::exit(1);
        }
    }
}

/// An executor process: a child of this process started with executor arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorProcess {
    /// Its process id.
    pub pid: u32,
    /// Its application's id.
    pub app_id: String,
    /// Its id within the application (`0`, `1`, ...).
    pub executor_id: String,
    /// The driver it serves.
    pub driver_url: String,
    /// The worker that launched it.
    pub worker_url: Option<String>,
}

impl ExecutorProcess {
    /// Whether the process still runs: its pid names a live (not zombie) process with this
    /// very command line, so a recycled pid does not count.
    pub fn is_running(&self) -> bool {
        read_executor(self.pid).as_ref() == Some(self)
    }
}

/// The executor processes among this process's children (read from `/proc`).
pub fn executor_processes() -> Vec<ExecutorProcess> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<ExecutorProcess> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(me))
        .filter_map(read_executor)
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// The executor processes of the application `ctx` runs (children of this process whose
/// driver is `ctx`'s), as with `local-cluster[N,C,M]` contexts.
pub fn executor_processes_of(ctx: &Context) -> Vec<ExecutorProcess> {
    let Some(driver_url) = ctx.driver_url() else {
        return Vec::new();
    };
    executor_processes()
        .into_iter()
        .filter(|p| p.driver_url == driver_url)
        .collect()
}

/// The parent of `pid`, from `/proc/<pid>/stat` (`pid (comm) state ppid ...`; the command
/// name may hold spaces and parentheses, so fields are counted after the last `)`).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// The executor `pid` is, if its command line holds executor arguments. A zombie's command
/// line is empty, so it is none.
fn read_executor(pid: u32) -> Option<ExecutorProcess> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from(String::from_utf8_lossy(w).into_owned()))
        .collect();
    let start = words.iter().position(|w| w == "--driver-url")?;
    let args = ExecutorArgs::parse(words[start..].iter().cloned()).ok()?;
    Some(ExecutorProcess {
        pid,
        app_id: args.app_id,
        executor_id: args.executor_id,
        driver_url: args.driver_url,
        worker_url: args.worker_url,
    })
}

/// How to start a [`TestCluster`]: its size and settings.
#[derive(Debug, Clone)]
pub struct TestClusterBuilder {
    workers: u32,
    cores: u32,
    memory_mib: u32,
    conf: RpcConf,
}

impl TestClusterBuilder {
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
    /// `tasks` gives the task functions of the cluster's drivers; the executors get theirs
    /// from [`executor_entry!`](crate::executor_entry), which should use the same function.
    pub fn start<F>(self, tasks: F) -> Result<TestCluster, Error>
    where
        F: Fn() -> TaskRegistry + Send + Sync + 'static,
    {
        // The test's logs, as `RUST_LOG` asks (errors only without it), through the test
        // harness's capture: shown with a failing test's output. A test that set up a
        // logger of its own keeps it.
        let _ = env_logger::Builder::from_env(env_logger::Env::default())
            .is_test(true)
            .try_init();
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
            tasks: Arc::new(tasks),
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
    tasks: Arc<dyn Fn() -> TaskRegistry + Send + Sync>,
    contexts: Mutex<Vec<Context>>,
}

impl TestCluster {
    /// A builder with named settings: two workers of one core and 1024 MiB each unless
    /// [`workers`](TestClusterBuilder::workers),
    /// [`cores_per_worker`](TestClusterBuilder::cores_per_worker),
    /// [`memory_mib_per_worker`](TestClusterBuilder::memory_mib_per_worker) or
    /// [`conf`](TestClusterBuilder::conf) say otherwise.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            workers: 2,
            cores: 1,
            memory_mib: 1024,
            conf: RpcConf::new(),
        }
    }

    /// Starts a cluster of `workers` workers with `cores_per_worker` cores and
    /// `memory_mib_per_worker` MiB each (executors take `ember.executor.memory`, 1024 MiB by
    /// default), with default settings. `tasks` gives the drivers' task functions. The
    /// [`builder`](Self::builder) says the same with names.
    pub fn start<F>(
        workers: u32,
        cores_per_worker: u32,
        memory_mib_per_worker: u32,
        tasks: F,
    ) -> Result<TestCluster, Error>
    where
        F: Fn() -> TaskRegistry + Send + Sync + 'static,
    {
        TestCluster::builder()
            .workers(workers)
            .cores_per_worker(cores_per_worker)
            .memory_mib_per_worker(memory_mib_per_worker)
            .start(tasks)
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
