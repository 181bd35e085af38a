//! The driver under many executors: the real [`DriverEndpoint`] and [`TaskScheduler`] in
//! this process, with E simulated executors of 4 cores each that answer every launch at
//! once with a FINISHED status update, as an executor running empty tasks in no time would.
//!
//! The simulated executors are the driver endpoint's in-process executors (its
//! [`LocalExecutor`] hook, which `local[N]` uses for its one executor): tasks reach them as
//! values and their updates come back as control messages, so what is timed is the
//! scheduler and the endpoint's own work per task (offers, launches, status updates,
//! results), not the network. The endpoint runs `Inline`, so all of it happens on one
//! thread at a time: the cost per task is that thread's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use ember_scheduler::{
    AppConfig, DriverControl, DriverEndpoint, DriverProtocol, ExecutorId, JobId, JobState,
    LocalExecutor, Pools, SchedulerConf, StageId, TaskDescription, TaskId, TaskLocation, TaskSet,
    TaskSpec, TaskStatus, TaskUpdate, DRIVER_ENDPOINT_NAME,
};
use rpc_env::{ControlRef, RpcEnv, RpcEnvConfig};

use crate::error::BenchError;
use crate::suites::flood::rss;

/// Cores of each simulated executor (the issue's).
pub(crate) const CORES: u32 = 4;
/// How many hosts each task prefers when it has preferred locations: three, as a block's
/// replicas in HDFS.
const REPLICAS: usize = 3;
/// How long a job may take before the run fails: far above any expected time, so that a
/// stalled scheduler is reported, not waited on forever.
const JOB_DEADLINE: Duration = Duration::from_secs(600);
/// The periodic revive, as cluster modes have it (`ember.scheduler.revive.interval`): the
/// endpoint with in-process executors has none of its own, and delay scheduling needs one
/// to offer an executor whose last offer it declined.
const REVIVE_INTERVAL: Duration = Duration::from_secs(1);
/// The encoded output of every simulated task: static, so answering costs no allocation.
static RESULT: [u8; 8] = [0; 8];

/// What one job measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobRun {
    /// Wall time from submission to the job's end, over its tasks, in µs.
    pub(crate) us_per_task: f64,
    /// From submission to the first launch, in ms.
    pub(crate) first_launch_ms: f64,
}

/// When the first launch of the current job happened, and how many tasks were launched.
#[derive(Default)]
struct Probe {
    first_launch: Mutex<Option<Instant>>,
    launched: AtomicU64,
}

/// A simulated executor: finishes every task it is sent, at once.
struct SimExecutor {
    id: ExecutorId,
    driver: ControlRef<DriverProtocol>,
    probe: Arc<Probe>,
}

impl LocalExecutor for SimExecutor {
    fn launch_tasks(&self, tasks: Vec<TaskDescription>) {
        {
            let mut first = lock(&self.probe.first_launch);
            if first.is_none() {
                *first = Some(Instant::now());
            }
        }
        self.probe
            .launched
            .fetch_add(tasks.len() as u64, Ordering::Relaxed);
        let updates = tasks
            .into_iter()
            .map(|t| TaskUpdate {
                task_id: t.task_id,
                status: TaskStatus::Finished {
                    result: Bytes::from_static(&RESULT),
                },
                cpus: t.cpus,
                run_micros: 0,
            })
            .collect();
        let sent = self.driver.send(DriverControl::LocalStatusUpdate {
            executor_id: self.id.clone(),
            updates,
        });
        if let Err(e) = sent {
            log::warn!("simulated executor {}: the driver is gone: {e}", self.id);
        }
    }

    fn kill_task(&self, task_id: TaskId, reason: String) {
        // Tasks end the moment they launch: there is never one to kill.
        log::debug!(
            "simulated executor {}: kill of TID {task_id} ({reason}) ignored",
            self.id
        );
    }

    fn stop(&self) {}
}

/// The host of simulated executor `i`: each has its own, as one executor per worker host.
fn host(i: usize) -> String {
    format!("host-{i}")
}

/// A driver endpoint with `executors` simulated executors, in an env of its own.
pub(crate) struct SimDriver {
    env: RpcEnv,
    driver: ControlRef<DriverProtocol>,
    probe: Arc<Probe>,
    executors: usize,
    next_job: u32,
    revive: Option<thread::JoinHandle<()>>,
    stop_revive: Arc<std::sync::atomic::AtomicBool>,
}

impl SimDriver {
    /// Starts the endpoint (default scheduler settings: FIFO, delay scheduling on with
    /// Spark's 3 s locality wait) with `executors` executors on hosts of their own.
    pub(crate) fn start(executors: usize) -> Result<SimDriver, BenchError> {
        SimDriver::start_with(executors, Pools::fifo())
    }

    /// Like [`start`](Self::start), scheduling with `pools` (FAIR pools, say).
    pub(crate) fn start_with(executors: usize, pools: Pools) -> Result<SimDriver, BenchError> {
        let failed =
            |what: &str, e: &dyn std::fmt::Display| BenchError::new(format!("{what}: {e}"));
        let env = RpcEnv::create(RpcEnvConfig::client("ember-bench-scale"))
            .map_err(|e| failed("starting the driver env", &e))?;
        let driver = env.control_ref::<DriverProtocol>(DRIVER_ENDPOINT_NAME);
        let probe = Arc::new(Probe::default());
        let scheduler = ember_scheduler::TaskScheduler::new(SchedulerConf::default(), 4, pools);
        let app = AppConfig {
            app_id: "scale-sim".into(),
            properties: BTreeMap::new(),
        };
        let mut endpoint = DriverEndpoint::new(scheduler, app, 128 << 20);
        for i in 0..executors {
            let id = ExecutorId::new(i.to_string());
            let sim = SimExecutor {
                id: id.clone(),
                driver: driver.clone(),
                probe: Arc::clone(&probe),
            };
            endpoint = endpoint.with_local_executor(id, host(i), CORES, Arc::new(sim));
        }
        env.setup_endpoint(DRIVER_ENDPOINT_NAME, endpoint)
            .map_err(|e| failed("starting the driver endpoint", &e))?;
        let stop_revive = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let revive = {
            let driver = driver.clone();
            let stop = Arc::clone(&stop_revive);
            thread::Builder::new()
                .name("scale-revive".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Not synchronisation: the revive period, as the driver's ticker.
                        thread::park_timeout(REVIVE_INTERVAL);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let _ = driver.send(DriverControl::ReviveOffers);
                    }
                })
                .map_err(|e| BenchError::io("starting the revive thread", e))?
        };
        Ok(SimDriver {
            env,
            driver,
            probe,
            executors,
            next_job: 0,
            revive: Some(revive),
            stop_revive,
        })
    }

    /// The task set of a job of `tasks` tasks with 8-byte inputs (a `u64`, as the no-op
    /// task takes), each preferring [`REPLICAS`] consecutive hosts of the first `hosts`
    /// executors' (none if `hosts` is 0).
    pub(crate) fn task_set(&mut self, tasks: usize, hosts: usize) -> TaskSet {
        let job_id = JobId(self.next_job);
        self.next_job += 1;
        let specs = (0..tasks)
            .map(|i| TaskSpec {
                partition: i as u32,
                preferred_locations: if hosts > 0 {
                    (0..REPLICAS.min(hosts))
                        .map(|r| TaskLocation::Host(host((i + r) % hosts)))
                        .collect()
                } else {
                    Vec::new()
                },
                input: Bytes::copy_from_slice(&(i as u64).to_le_bytes()),
            })
            .collect();
        TaskSet {
            job_id,
            stage_id: StageId(job_id.0),
            stage_attempt: 0,
            function: Arc::from("noop"),
            tasks: specs,
            properties: BTreeMap::new(),
        }
    }

    /// Submits `task_set` and returns its job without waiting.
    pub(crate) fn submit(&self, task_set: TaskSet) -> Result<Arc<JobState>, BenchError> {
        let job = Arc::new(JobState::new(task_set.job_id, task_set.tasks.len()));
        self.driver
            .send(DriverControl::SubmitJob {
                task_set,
                job: Arc::clone(&job),
            })
            .map_err(|e| BenchError::new(format!("submitting a job: {e}")))?;
        Ok(job)
    }

    /// Waits until the endpoint has handled every message sent before (a round trip).
    pub(crate) fn barrier(&self) -> Result<(), BenchError> {
        self.driver
            .ask_sync(|reply| DriverControl::ExecutorCount { reply })
            .map(drop)
            .map_err(|e| BenchError::new(format!("asking the driver endpoint: {e}")))
    }

    /// Runs one job of `tasks` tasks to its end.
    pub(crate) fn run_job(&mut self, tasks: usize, local: bool) -> Result<JobRun, BenchError> {
        let hosts = if local { self.executors } else { 0 };
        let task_set = self.task_set(tasks, hosts);
        *lock(&self.probe.first_launch) = None;
        let before = self.probe.launched.load(Ordering::Relaxed);
        let start = Instant::now();
        let job = self.submit(task_set)?;
        let outcome = job.wait(Some(start + JOB_DEADLINE));
        let took = start.elapsed();
        match outcome {
            Some(Ok(results)) if results.len() == tasks => {}
            Some(Ok(_)) => return Err(BenchError::new("a job returned the wrong results")),
            Some(Err(e)) => return Err(BenchError::new(format!("a job failed: {e}"))),
            None => {
                return Err(BenchError::new(format!(
                    "a job of {tasks} tasks on {} executors did not end within {JOB_DEADLINE:?}",
                    self.executors
                )))
            }
        }
        let launched = self.probe.launched.load(Ordering::Relaxed) - before;
        if launched != tasks as u64 {
            log::info!("{launched} launches for {tasks} tasks");
        }
        let first = lock(&self.probe.first_launch).unwrap_or(start);
        Ok(JobRun {
            us_per_task: took.as_secs_f64() * 1e6 / tasks as f64,
            first_launch_ms: first.saturating_duration_since(start).as_secs_f64() * 1e3,
        })
    }
}

/// The cost per task, in µs, of `jobs` jobs of `tasks` tasks each submitted at once to a
/// driver with FAIR scheduling and `executors` executors, spread over `pools` pools (the
/// job's `ember.scheduler.pool` property): from the first submission to the last job's end
/// over all their tasks.
pub(crate) fn fair_us_per_task(
    executors: usize,
    jobs: usize,
    tasks: usize,
    pools: usize,
) -> Result<f64, BenchError> {
    let fair = Pools::fair(None).map_err(|e| BenchError::new(format!("FAIR pools: {e}")))?;
    let mut sim = SimDriver::start_with(executors, fair)?;
    sim.run_job(WARM_UP_FAIR_TASKS, false)?;
    let start = Instant::now();
    let mut running = Vec::with_capacity(jobs);
    for j in 0..jobs {
        let mut task_set = sim.task_set(tasks, 0);
        task_set.properties.insert(
            ember_scheduler::keys::POOL_PROPERTY.to_string(),
            format!("pool-{}", j % pools),
        );
        running.push(sim.submit(task_set)?);
    }
    for job in running {
        match job.wait(Some(start + JOB_DEADLINE)) {
            Some(Ok(results)) if results.len() == tasks => {}
            Some(Ok(_)) => return Err(BenchError::new("a FAIR job returned the wrong results")),
            Some(Err(e)) => return Err(BenchError::new(format!("a FAIR job failed: {e}"))),
            None => return Err(BenchError::new("the FAIR jobs did not end in time")),
        }
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / (jobs * tasks) as f64)
}

/// Tasks of the job that warms a FAIR driver up.
const WARM_UP_FAIR_TASKS: usize = 1_000;

impl Drop for SimDriver {
    fn drop(&mut self) {
        self.stop_revive.store(true, Ordering::Relaxed);
        if let Some(revive) = self.revive.take() {
            revive.thread().unpark();
            let _ = revive.join();
        }
        self.env.shutdown();
    }
}

/// Driver memory per pending task, in bytes: this process's resident memory grown by
/// building and submitting a job of `tasks` tasks (no preferred locations) to a driver with
/// no executor, so none launches: the task set, the scheduler's books of it and the job's
/// result slots. With `hosts` > 0, each task prefers [`REPLICAS`] of that many hosts. Run
/// it first, while the allocator has no freed memory to reuse.
pub(crate) fn bytes_per_pending_task(tasks: usize, hosts: usize) -> Result<f64, BenchError> {
    let me = std::process::id();
    let mut sim = SimDriver::start(0)?;
    sim.barrier()?;
    let before = rss::status_kib(me, "VmRSS")?;
    let task_set = sim.task_set(tasks, hosts);
    let job = sim.submit(task_set)?;
    sim.barrier()?;
    let after = rss::status_kib(me, "VmRSS")?;
    drop(job);
    Ok((after - before) * 1024.0 / tasks as f64)
}

/// The lock's value, even if a thread panicked holding it (the probe's values stay usable).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
