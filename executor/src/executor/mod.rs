//! The [`Executor`]: a pool of task threads sized to the executor's cores.
//!
//! Each task runs in a [`TaskRunner`]: it reports `Running`, runs the registered function,
//! and reports `Finished` with the encoded output, `Failed` with the error or the panic's
//! message, or `Killed`. A kill is cooperative: the task's [`TaskContext`] says it was
//! asked to stop. Status updates from the task threads are combined into batches, one
//! message per batch.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use ember_scheduler::{
    ExecutorId, TaskDescription, TaskFailedReason, TaskId, TaskIdMap, TaskStatus, TaskUpdate,
};

use crate::registry::{KillSwitch, TaskContext, TaskRegistry};
use crate::task_files::TaskFiles;

/// Where an executor's status updates go (the driver endpoint, near or far).
pub trait StatusReporter: Send + Sync {
    /// Reports a batch of updates, in order.
    fn report(&self, updates: Vec<TaskUpdate>);
}

thread_local! {
    /// Set while a task thread reports a finished task, after which it takes the next task
    /// from the queue; the first task launched meanwhile needs no other thread woken.
    static WILL_TAKE_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long a kill that arrives before its task is remembered (Spark's `KILL_MARK_TTL_MS`).
const KILL_MARK_TTL: Duration = Duration::from_secs(10);

struct Queue {
    tasks: VecDeque<TaskDescription>,
    stopped: bool,
}

/// Updates waiting to be sent. Whether a thread is sending them is [`Inner::sending`].
struct Reports {
    pending: Vec<TaskUpdate>,
    /// When the oldest update that was queued without being sent (a `Running`) was queued.
    quiet_since: Option<Instant>,
    flusher: Flusher,
}

/// Where the flusher of quiet updates is, as the threads queuing them see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flusher {
    /// Running, or waiting with a deadline: it finds a newly queued update by itself, so
    /// queuing one costs no wakeup.
    Awake,
    /// Waiting with no deadline: the next quiet update must wake it.
    Parked,
    /// The executor stopped: it returns when it next looks. Nothing moves it out of here.
    Stopped,
}

/// How long a `Running` update may wait for company before it is sent alone. A short task's
/// `Running` then travels with its result, halving the messages per task; a long task's
/// still reaches the driver almost at once.
const RUNNING_REPORT_DELAY: Duration = Duration::from_millis(10);

/// How long an idle task thread spins for work while another thread's report is being
/// handled (see [`Inner::spin_while_reporting`]).
const REPORT_SPIN: Duration = Duration::from_micros(50);

struct Inner {
    /// Where tasks find the application's added files.
    files: Arc<TaskFiles>,
    executor_id: ExecutorId,
    registry: Arc<TaskRegistry>,
    reporter: Arc<dyn StatusReporter>,
    /// Results larger than this cannot travel to the driver.
    max_result_size: usize,
    queue: Mutex<Queue>,
    work: Condvar,
    /// How many tasks wait in the queue, readable without its lock (for spinning threads).
    queued: AtomicUsize,
    /// Whether a thread is sending updates. Written only under the `reports` lock, which
    /// orders it for the threads that read it there; idle task threads also read it
    /// without the lock, to decide whether to spin (see [`Inner::spin_while_reporting`]).
    sending: AtomicBool,
    running: Mutex<TaskIdMap<Arc<KillSwitch>>>,
    kill_marks: Mutex<TaskIdMap<(String, Instant)>>,
    reports: Mutex<Reports>,
    /// Wakes the flusher of quiet updates.
    reports_waiting: Condvar,
}

/// Runs tasks on `cores` threads.
pub struct Executor {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Executor {
    /// Starts an executor with `cores` task threads; its tasks find the application's
    /// added files through `files`.
    pub fn start(
        executor_id: ExecutorId,
        cores: u32,
        registry: Arc<TaskRegistry>,
        reporter: Arc<dyn StatusReporter>,
        max_result_size: usize,
        files: Arc<TaskFiles>,
    ) -> std::io::Result<Executor> {
        let inner = Arc::new(Inner {
            executor_id,
            registry,
            files,
            reporter,
            max_result_size,
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                stopped: false,
            }),
            work: Condvar::new(),
            queued: AtomicUsize::new(0),
            sending: AtomicBool::new(false),
            running: Mutex::new(TaskIdMap::default()),
            kill_marks: Mutex::new(TaskIdMap::default()),
            reports: Mutex::new(Reports {
                pending: Vec::new(),
                quiet_since: None,
                flusher: Flusher::Awake,
            }),
            reports_waiting: Condvar::new(),
        });
        let mut threads = Vec::new();
        let flusher = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("executor-status-flusher".to_string())
                .spawn(move || flusher.flush_quiet_updates())?,
        );
        for i in 0..cores.max(1) {
            let worker = Arc::clone(&inner);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("Executor task launch worker-{i}"))
                    .spawn(move || worker.run_worker())?,
            );
        }
        Ok(Executor {
            inner,
            threads: Mutex::new(threads),
        })
    }

    /// Queues tasks to run.
    pub fn launch_tasks(&self, tasks: Vec<TaskDescription>) {
        let mut queue = self.inner.queue.lock();
        if queue.stopped {
            log::warn!(
                "Dropped {} tasks launched on a stopped executor",
                tasks.len()
            );
            return;
        }
        let mut count = tasks.len();
        queue.tasks.extend(tasks);
        self.inner
            .queued
            .store(queue.tasks.len(), Ordering::Release);
        drop(queue);
        // A task thread launching work (it reported a result, and the driver, running on
        // this very thread, handed it the next task) takes one task itself as soon as it
        // returns: waking another thread for it would only cost a switch.
        if WILL_TAKE_NEXT.with(|t| t.replace(false)) {
            count = count.saturating_sub(1);
        }
        match count {
            0 => {}
            1 => {
                self.inner.work.notify_one();
            }
            _ => {
                self.inner.work.notify_all();
            }
        }
    }

    /// Asks a task attempt to stop. A kill that arrives before its task is remembered for a
    /// while and applied when the task starts.
    pub fn kill_task(&self, task_id: TaskId, reason: String) {
        // Checking for the task and leaving a mark happen under the `running` lock, which a
        // starting task also holds while it takes its mark: a kill cannot slip between.
        let running = self.inner.running.lock();
        if let Some(kill) = running.get(&task_id) {
            log::info!("Executor is trying to kill TID {task_id}, reason: {reason}");
            kill.kill(reason);
            return;
        }
        let mut marks = self.inner.kill_marks.lock();
        let now = Instant::now();
        marks.retain(|_, (_, at)| now.duration_since(*at) < KILL_MARK_TTL);
        marks.insert(task_id, (reason, now));
    }

    /// The attempts running now.
    pub fn running_tasks(&self) -> Vec<TaskId> {
        self.inner.running.lock().keys().copied().collect()
    }

    /// Stops taking tasks and asks running ones to stop; returns at once.
    pub fn stop(&self) {
        self.inner.queue.lock().stopped = true;
        self.inner.work.notify_all();
        self.inner.reports.lock().flusher = Flusher::Stopped;
        self.inner.reports_waiting.notify_all();
        for kill in self.inner.running.lock().values() {
            kill.kill("the executor is stopping".into());
        }
    }

    /// Waits for the task threads to end (after [`stop`](Self::stop)).
    pub fn join(&self) {
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Executor({})", self.inner.executor_id)
    }
}

impl Inner {
    fn run_worker(&self) {
        loop {
            let task = {
                let mut queue = self.queue.lock();
                let mut spun = false;
                loop {
                    if queue.stopped {
                        return;
                    }
                    if let Some(task) = queue.tasks.pop_front() {
                        self.queued.store(queue.tasks.len(), Ordering::Release);
                        break task;
                    }
                    if !spun && self.sending.load(Ordering::Acquire) {
                        // Another thread is reporting; in the driver's own process that
                        // call runs the scheduler, which usually launches tasks before it
                        // returns. Waiting for them awake costs this otherwise idle thread
                        // a few microseconds; parking costs both threads a switch.
                        drop(queue);
                        self.spin_while_reporting();
                        spun = true;
                        queue = self.queue.lock();
                        continue;
                    }
                    self.work.wait(&mut queue);
                }
            };
            TaskRunner { inner: self }.run(task);
        }
    }

    /// Spins, for at most [`REPORT_SPIN`], until a task is queued or nobody is reporting.
    fn spin_while_reporting(&self) {
        let start = Instant::now();
        let mut spins: u32 = 0;
        while self.queued.load(Ordering::Acquire) == 0 && self.sending.load(Ordering::Acquire) {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && start.elapsed() >= REPORT_SPIN {
                // Long enough: this report is not bringing work soon; park instead.
                return;
            }
        }
    }

    /// Queues an update; the first thread to find nobody sending sends, and keeps sending
    /// what others queue meanwhile, so concurrent updates travel together.
    fn report(&self, update: TaskUpdate) {
        let mut reports = self.reports.lock();
        reports.pending.push(update);
        self.send_pending(reports);
    }

    /// Queues an update to go with the next one sent, or alone after
    /// [`RUNNING_REPORT_DELAY`].
    fn report_later(&self, update: TaskUpdate) {
        let mut reports = self.reports.lock();
        reports.pending.push(update);
        if reports.quiet_since.is_none() {
            reports.quiet_since = Some(Instant::now());
            // Waking the flusher for every task would cost a thread switch per task; a
            // flusher already on a timer finds this update when it wakes.
            if reports.flusher == Flusher::Parked {
                reports.flusher = Flusher::Awake;
                drop(reports);
                self.reports_waiting.notify_one();
            }
        }
    }

    /// Sends what is queued unless another thread is sending (it takes ours too).
    fn send_pending<'a>(&'a self, mut reports: parking_lot::MutexGuard<'a, Reports>) {
        // Under the lock, the last write is seen whatever the ordering (see `sending`).
        if self.sending.load(Ordering::Relaxed) {
            return;
        }
        self.sending.store(true, Ordering::Release);
        loop {
            let batch = std::mem::take(&mut reports.pending);
            reports.quiet_since = None;
            drop(reports);
            // Each result fits in a message on its own (see `max_result_size`), but several
            // together may not: split what goes in one report.
            for part in split_by_size(batch, self.max_result_size) {
                self.reporter.report(part);
            }
            reports = self.reports.lock();
            if reports.pending.is_empty() {
                self.sending.store(false, Ordering::Release);
                return;
            }
        }
    }

    /// The flusher thread: sends quiet updates nobody else sent in time.
    fn flush_quiet_updates(&self) {
        let mut reports = self.reports.lock();
        loop {
            if reports.flusher == Flusher::Stopped {
                return;
            }
            match reports.quiet_since {
                None => {
                    reports.flusher = Flusher::Parked;
                    self.reports_waiting.wait(&mut reports);
                    if reports.flusher == Flusher::Parked {
                        reports.flusher = Flusher::Awake;
                    }
                }
                Some(since) => {
                    let due = since + RUNNING_REPORT_DELAY;
                    let sending = self.sending.load(Ordering::Relaxed);
                    if Instant::now() >= due && !sending && !reports.pending.is_empty() {
                        self.send_pending(reports);
                        reports = self.reports.lock();
                    } else {
                        self.reports_waiting.wait_until(
                            &mut reports,
                            due.max(Instant::now() + Duration::from_millis(1)),
                        );
                    }
                }
            }
        }
    }
}

/// Runs one task attempt from start to report.
pub struct TaskRunner<'a> {
    inner: &'a Inner,
}

impl TaskRunner<'_> {
    fn run(self, task: TaskDescription) {
        let inner = self.inner;
        let task_id = task.task_id;
        let cpus = task.cpus;
        let kill = Arc::new(KillSwitch::default());
        {
            let mut running = inner.running.lock();
            if let Some((reason, _)) = inner.kill_marks.lock().remove(&task_id) {
                kill.kill(reason);
            }
            running.insert(task_id, Arc::clone(&kill));
        }
        inner.report_later(TaskUpdate {
            task_id,
            status: TaskStatus::Running,
            cpus,
            run_micros: 0,
        });
        // The name only appears in logs of failures: keep its parts, make the text on demand.
        let (index, attempt, stage, stage_attempt) = (
            task.index,
            task.attempt_number,
            task.stage_id,
            task.stage_attempt,
        );
        let name =
            move || ember_scheduler::task_name(index, attempt, stage, stage_attempt, task_id);
        let ctx = TaskContext {
            task_id,
            attempt_number: task.attempt_number,
            partition: task.partition,
            job_id: task.job_id,
            stage_id: task.stage_id,
            executor_id: inner.executor_id.clone(),
            properties: task.properties,
            kill: Arc::clone(&kill),
            files: Arc::clone(&inner.files),
        };
        let started = Instant::now();
        let status = match kill.reason() {
            // Killed before it started: don't start it.
            Some(reason) => TaskStatus::Killed { reason },
            None => self.execute(&task.function, &ctx, task.input, &name),
        };
        inner.running.lock().remove(&task_id);
        WILL_TAKE_NEXT.with(|t| t.set(true));
        inner.report(TaskUpdate {
            task_id,
            status,
            cpus,
            run_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        });
        WILL_TAKE_NEXT.with(|t| t.set(false));
    }

    fn execute(
        &self,
        function: &str,
        ctx: &TaskContext,
        input: bytes::Bytes,
        name: &dyn Fn() -> String,
    ) -> TaskStatus {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.inner.registry.run(function, ctx, input)
        }));
        let killed = ctx.kill.reason();
        match (outcome, killed) {
            (_, Some(reason)) => TaskStatus::Killed { reason },
            (Ok(Ok(result)), None) => {
                if result.len() > self.inner.max_result_size {
                    log::warn!(
                        "Result of {} is {} bytes, too large to send",
                        name(),
                        result.len()
                    );
                    TaskStatus::Failed {
                        reason: TaskFailedReason::ExceptionFailure {
                            message: format!(
                                "The result of {} is {} bytes, which exceeds what a \
                                 message may carry (ember.rpc.message.maxSize, {} bytes)",
                                name(),
                                result.len(),
                                self.inner.max_result_size
                            ),
                        },
                    }
                } else {
                    TaskStatus::Finished { result }
                }
            }
            (Ok(Err(e)), None) if e.is_killed() => TaskStatus::Killed {
                reason: e.message().to_string(),
            },
            (Ok(Err(e)), None) => {
                log::warn!("Exception in {}: {e}", name());
                TaskStatus::Failed {
                    reason: TaskFailedReason::ExceptionFailure {
                        message: e.message().to_string(),
                    },
                }
            }
            (Err(panic), None) => {
                let message = panic_message(&*panic);
                log::error!("Task {} panicked: {message}", name());
                TaskStatus::Failed {
                    reason: TaskFailedReason::ExceptionFailure {
                        message: format!("task panicked: {message}"),
                    },
                }
            }
        }
    }
}

/// About what an update adds to a message besides its result or failure text.
const UPDATE_OVERHEAD: usize = 64;

fn update_size(update: &TaskUpdate) -> usize {
    UPDATE_OVERHEAD
        + match &update.status {
            TaskStatus::Finished { result } => result.len(),
            TaskStatus::Failed {
                reason: TaskFailedReason::ExceptionFailure { message },
            } => message.len(),
            TaskStatus::Killed { reason } => reason.len(),
            _ => 0,
        }
}

/// Splits updates, in order, into batches of at most `limit` bytes of results each (an
/// update alone over the limit still gets a batch of its own).
fn split_by_size(updates: Vec<TaskUpdate>, limit: usize) -> Vec<Vec<TaskUpdate>> {
    let total: usize = updates.iter().map(update_size).sum();
    if total <= limit {
        return vec![updates];
    }
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for update in updates {
        let this = update_size(&update);
        if !current.is_empty() && size + this > limit {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        size += this;
        current.push(update);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests;
