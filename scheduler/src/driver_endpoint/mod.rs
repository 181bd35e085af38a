//! The driver endpoint, `CoarseGrainedScheduler`: executors register with it, it offers
//! their free cores to the task scheduler, launches what comes back, and turns status
//! updates into job results.
//!
//! It owns the [`TaskScheduler`] outright: every change to scheduling state happens in one
//! of its handlers, one at a time, so there is no scheduler lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc_env::{ControlRef, EndpointRef, Refusals, RpcAddress, Ticker};

mod batches;
mod events;
mod executors;
mod handlers;
mod stage;

pub use executors::DISASSOCIATED;

use batches::{batches_that_fit, estimated_size, FRAME_ALLOWANCE};
use stage::Stage;

use crate::job::{JobError, JobState};
use crate::messages::{
    AppConfig, ExecutorMessage, ExecutorProtocol, HeartbeatProtocol, TaskUpdate,
};
use crate::task_scheduler::{SchedulerEvent, TaskScheduler};
use crate::{ExecutorId, FastMap, JobId, TaskDescription, TaskId, WorkerOffer};

/// An executor inside the driver's process (local modes): tasks are handed over as values.
pub trait LocalExecutor: Send + Sync {
    /// Runs these tasks.
    fn launch_tasks(&self, tasks: Vec<TaskDescription>);
    /// Kills this attempt; it reports `Killed` with `reason`.
    fn kill_task(&self, task_id: TaskId, reason: String);
    /// Stops the executor.
    fn stop(&self);
}

/// Executors a launch batch is searched for linearly before a map takes over.
const SHORT_LIST: usize = 8;

/// How tasks reach an executor.
enum ExecutorSink {
    Remote(EndpointRef<ExecutorProtocol>),
    Local(Arc<dyn LocalExecutor>),
}

struct ExecutorData {
    sink: ExecutorSink,
    host: String,
    /// Where its messages come from (the sender of its registration), to recognise its
    /// disconnection and to accept its messages only from there. `None` for an in-process
    /// executor, whose updates come as control messages.
    address: Option<RpcAddress>,
    total_cores: u32,
    /// Cores held by tasks launched there and not yet ended (queued ones included).
    busy_cores: u32,
    stage: Stage,
}

/// The driver endpoint.
pub struct DriverEndpoint {
    scheduler: TaskScheduler,
    executors: FastMap<ExecutorId, ExecutorData>,
    jobs: FastMap<JobId, Arc<JobState>>,
    app_config: AppConfig,
    max_message_size: usize,
    heartbeat: Option<ControlRef<HeartbeatProtocol>>,
    tickers: Vec<Ticker>,
    periodic_revive: bool,
    /// A moving average of recent tasks' run times, as executors report them.
    task_time: Option<Duration>,
    /// Standalone mode: how long a disconnected executor waits for its real loss reason
    /// from the master before it is removed as disassociated. `None`: at once.
    disconnect_removal_delay: Option<Duration>,
    /// No disconnected executor is due for removal before this (it may be earlier than the
    /// first due: a deadline check finds nothing then, and looks again later). `None`: none
    /// waits with a deadline. It spares the deadline check a scan of every executor.
    next_removal_due: Option<Instant>,
    /// Since when the application has had no executor, after having had one.
    no_executors_since: Option<Instant>,
    /// Asks the cluster manager to kill an executor that may still run.
    executor_killer: Option<ExecutorKiller>,
    /// Tells the cluster manager an executor registered here.
    registration_hook: Option<RegistrationHook>,
    /// Messages from the network refused because their sender was not the executor they
    /// named.
    refused: Refusals,
    /// Where task ends and executor changes are told (the event log), if anywhere.
    events: Option<Arc<dyn crate::EventSink>>,
}

/// How the driver asks its cluster manager to kill an executor (standalone: the master,
/// through the app client).
pub type ExecutorKiller = Box<dyn Fn(&ExecutorId) + Send>;

/// How the driver tells its cluster manager an executor registered (standalone: the
/// master, through the app client, which then counts its later exit as an executor's end,
/// not a program that failed to become one).
pub type RegistrationHook = Box<dyn Fn(&ExecutorId) + Send>;

impl DriverEndpoint {
    /// A driver endpoint scheduling with `scheduler`; executors fetch `app_config`, with
    /// any secret in it removed here so that no reply can carry it.
    pub fn new(scheduler: TaskScheduler, app_config: AppConfig, max_message_size: usize) -> Self {
        let app_config = app_config.without_secrets();
        DriverEndpoint {
            scheduler,
            executors: FastMap::default(),
            jobs: FastMap::default(),
            app_config,
            max_message_size,
            heartbeat: None,
            tickers: Vec::new(),
            periodic_revive: true,
            task_time: None,
            disconnect_removal_delay: None,
            next_removal_due: None,
            no_executors_since: None,
            executor_killer: None,
            registration_hook: None,
            refused: Refusals::new(),
            events: None,
        }
    }

    /// An executor lost to silence (stopped heartbeats) may still run, hung, holding its
    /// cores: `killer` asks the cluster manager to kill it, which frees them for a
    /// replacement.
    pub fn with_executor_killer(mut self, killer: ExecutorKiller) -> Self {
        self.executor_killer = Some(killer);
        self
    }

    /// `hook` is told of each executor that registers (once per executor).
    pub fn with_registration_hook(mut self, hook: RegistrationHook) -> Self {
        self.registration_hook = Some(hook);
        self
    }

    /// Standalone mode: a disconnected executor gets no new tasks at once, but its tasks
    /// wait up to `delay` for the master to say how it ended (its exit code decides whether
    /// the loss counts against the application), as Spark's
    /// `spark.standalone.executorRemoveDelayOnDisconnection`.
    pub fn with_disconnect_removal_delay(mut self, delay: Duration) -> Self {
        self.disconnect_removal_delay = Some(delay);
        self
    }

    /// How many cores' worth of tasks an executor may hold. Spark's rule is its cores. Ember
    /// lets tasks wait queued on an executor, up to `ember.scheduler.launchAheadTime` of work
    /// per core judged by recent task times (at most `ember.scheduler.launchAhead` tasks), so
    /// an executor running tiny tasks never idles through a round trip to the driver, while
    /// a long task is never queued behind another: the work queued bounds how late a job can
    /// end because of it.
    fn capacity(&self, e: &ExecutorData) -> u32 {
        let conf = self.scheduler.conf();
        let ahead = match self.task_time {
            Some(t) if !t.is_zero() => {
                let fits = conf.launch_ahead_time.as_nanos() / t.as_nanos();
                u32::try_from(fits)
                    .unwrap_or(u32::MAX)
                    .min(conf.launch_ahead)
            }
            Some(_) => conf.launch_ahead,
            None => 0,
        };
        e.total_cores.saturating_mul(1 + ahead)
    }

    fn free_cores(&self, e: &ExecutorData) -> u32 {
        self.capacity(e).saturating_sub(e.busy_cores)
    }

    /// Folds one task's time into the moving average.
    fn learn_task_time(&mut self, took: Duration) {
        self.task_time = Some(match self.task_time {
            None => took,
            Some(avg) => (avg * 4 + took) / 5,
        });
    }

    /// Executors heartbeat to `receiver`, which hears of registrations and removals.
    pub fn with_heartbeat_receiver(mut self, receiver: ControlRef<HeartbeatProtocol>) -> Self {
        self.heartbeat = Some(receiver);
        self
    }

    /// An in-process executor, registered and launched from the start (local modes). Local
    /// modes make offers when work arrives or ends, never on a timer, as in Spark.
    pub fn with_local_executor(
        mut self,
        id: ExecutorId,
        host: String,
        cores: u32,
        executor: Arc<dyn LocalExecutor>,
    ) -> Self {
        self.executors.insert(
            id,
            ExecutorData {
                sink: ExecutorSink::Local(executor),
                host,
                address: None,
                total_cores: cores,
                busy_cores: 0,
                stage: Stage::Launched,
            },
        );
        self.periodic_revive = false;
        self
    }

    fn make_offers(&mut self, only: Option<&ExecutorId>) {
        let task_cpus = self.scheduler.conf().task_cpus;
        let offers: Vec<WorkerOffer> = match only {
            Some(id) => self
                .executors
                .get(id)
                .filter(|e| e.stage.takes_tasks() && self.free_cores(e) >= task_cpus)
                .map(|e| WorkerOffer::new(id.clone(), e.host.clone(), self.free_cores(e)))
                .into_iter()
                .collect(),
            None => self
                .executors
                .iter()
                .filter(|(_, e)| e.stage.takes_tasks() && self.free_cores(e) >= task_cpus)
                .map(|(id, e)| WorkerOffer::new(id.clone(), e.host.clone(), self.free_cores(e)))
                .collect(),
        };
        if offers.is_empty() || !self.scheduler.has_task_sets() {
            return;
        }
        let tasks = self
            .scheduler
            .resource_offers(&offers, only.is_none(), Instant::now());
        self.launch_tasks(tasks);
    }

    fn launch_tasks(&mut self, tasks: Vec<TaskDescription>) {
        if tasks.is_empty() {
            return;
        }
        // Launches usually go to one executor (a finished task's); a short list beats a map.
        // A full offer round (a revive, a new job) launches on every executor, though, and
        // searching the list for each task made that round quadratic in executors (issue
        // 15: 2 million comparisons a round at 1,000 executors of 4 cores): past a few
        // executors, a map says where each one's batch is.
        let mut by_executor: Vec<(ExecutorId, Vec<TaskDescription>)> = Vec::new();
        let mut slot_of: FastMap<ExecutorId, usize> = FastMap::default();
        let mut too_large = Vec::new();
        for task in tasks {
            let remote = matches!(
                self.executors.get(&task.executor_id).map(|e| &e.sink),
                Some(ExecutorSink::Remote(_))
            );
            if remote {
                if let Some(size) = self.oversized(&task) {
                    too_large.push((task, size));
                    continue;
                }
            }
            if let Some(e) = self.executors.get_mut(&task.executor_id) {
                e.busy_cores += task.cpus;
            }
            let slot = if by_executor.len() <= SHORT_LIST {
                by_executor
                    .iter()
                    .position(|(id, _)| *id == task.executor_id)
            } else {
                slot_of.get(&task.executor_id).copied()
            };
            match slot {
                Some(i) => by_executor[i].1.push(task),
                None => {
                    by_executor.push((task.executor_id.clone(), vec![task]));
                    if by_executor.len() > SHORT_LIST {
                        if slot_of.is_empty() {
                            for (i, (id, _)) in by_executor.iter().enumerate() {
                                slot_of.insert(id.clone(), i);
                            }
                        } else {
                            let i = by_executor.len() - 1;
                            slot_of.insert(by_executor[i].0.clone(), i);
                        }
                    }
                }
            }
        }
        let mut unreachable = Vec::new();
        for (executor_id, tasks) in by_executor {
            match self.executors.get(&executor_id).map(|e| &e.sink) {
                Some(ExecutorSink::Remote(r)) => {
                    // Every task fits a message on its own (checked above), but several
                    // together may not: send them in batches that fit.
                    for batch in batches_that_fit(tasks, self.max_message_size) {
                        if let Err(e) = r.send(ExecutorMessage::LaunchTasks { tasks: batch }) {
                            log::warn!("Could not send tasks to executor {executor_id}: {e}");
                            unreachable.push(executor_id.clone());
                            break;
                        }
                    }
                }
                Some(ExecutorSink::Local(l)) => l.launch_tasks(tasks),
                None => log::warn!("Tasks for unknown executor {executor_id} dropped"),
            }
        }
        // Its connection is gone, its disconnection not yet handled: lose it now, as that
        // would. Its unsent tasks go with its others (not counted against them: they never
        // ran). Offering its cores again instead would send to it again, and again.
        for executor_id in unreachable {
            self.executor_unreachable(&executor_id);
        }
        for (task, size) in too_large {
            let message = format!(
                "Serialized task {}:{} was {size} bytes, which exceeds max allowed: \
                 ember.rpc.message.maxSize ({} bytes). Consider increasing \
                 ember.rpc.message.maxSize or using smaller task inputs.",
                task.task_id, task.index, self.max_message_size
            );
            let events = self
                .scheduler
                .abort_task_set_of(task.task_id, &message, Instant::now());
            self.handle_events(events);
        }
    }

    /// The encoded size of `task` if it does not fit a message. Encoding is skipped when the
    /// task is clearly far below the limit.
    fn oversized(&self, task: &TaskDescription) -> Option<usize> {
        if estimated_size(task) + 64 * 1024 < self.max_message_size {
            return None;
        }
        let size = rpc_env::encode_to_bytes(task).len() + FRAME_ALLOWANCE;
        (size > self.max_message_size).then_some(size)
    }

    fn handle_events(&mut self, events: Vec<SchedulerEvent>) {
        for event in events {
            match event {
                SchedulerEvent::TaskSucceeded {
                    job_id,
                    partition,
                    result,
                } => {
                    if let Some(job) = self.jobs.get(&job_id) {
                        job.task_succeeded(partition, result);
                    }
                }
                SchedulerEvent::JobFailed { job_id, message } => {
                    if let Some(job) = self.jobs.get(&job_id) {
                        job.fail(JobError::Failed { message });
                    }
                }
                SchedulerEvent::TaskSetFinished { job_id } => {
                    if let Some(job) = self.jobs.remove(&job_id) {
                        if !job.is_done() {
                            job.fail(JobError::Failed {
                                message: "its task set ended without every result".into(),
                            });
                        }
                    }
                }
                SchedulerEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                } => self.kill_on(&executor_id, task_id, reason),
            }
        }
    }

    fn kill_on(&self, executor_id: &ExecutorId, task_id: TaskId, reason: String) {
        match self.executors.get(executor_id).map(|e| &e.sink) {
            Some(ExecutorSink::Remote(r)) => {
                if let Err(e) = r.send(ExecutorMessage::KillTask { task_id, reason }) {
                    log::warn!("Could not ask executor {executor_id} to kill TID {task_id}: {e}");
                }
            }
            Some(ExecutorSink::Local(l)) => l.kill_task(task_id, reason),
            None => {
                log::warn!("Attempted to kill task {task_id} for unknown executor {executor_id}.")
            }
        }
    }

    fn status_update(&mut self, executor_id: &ExecutorId, updates: Vec<TaskUpdate>) {
        let now = Instant::now();
        let mut freed = false;
        // Applied once after the loop: one lookup of the executor per batch, not per task.
        let mut freed_cpus = 0u32;
        for update in updates {
            let finished = update.status.state().is_finished();
            freed |= finished;
            let task_end = if finished {
                self.task_end_of(executor_id, &update, now)
            } else {
                None
            };
            let events = self
                .scheduler
                .status_update(update.task_id, update.status, now);
            if finished {
                freed_cpus = freed_cpus.saturating_add(update.cpus);
                if update.run_micros > 0 {
                    self.learn_task_time(Duration::from_micros(update.run_micros));
                }
            }
            if let Some(end) = task_end {
                self.post(|| crate::DriverEvent::TaskEnd(end));
            }
            self.handle_events(events);
        }
        match self.executors.get_mut(executor_id) {
            None => log::warn!("Ignored task status update from unknown executor {executor_id}"),
            Some(e) => {
                e.busy_cores = e.busy_cores.saturating_sub(freed_cpus);
                if freed {
                    self.make_offers(Some(executor_id));
                }
            }
        }
    }

    fn stop_executors(&self) {
        for (id, e) in &self.executors {
            match &e.sink {
                ExecutorSink::Remote(r) => {
                    if let Err(err) = r.send(ExecutorMessage::StopExecutor) {
                        log::debug!("Could not tell executor {id} to stop: {err}");
                    }
                }
                ExecutorSink::Local(l) => l.stop(),
            }
        }
    }
}
