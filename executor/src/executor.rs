//! The [`Executor`]: a pool of task threads sized to the executor's cores.
//!
//! Each task runs in a [`TaskRunner`]: it reports `Running`, runs the registered function,
//! and reports `Finished` with the encoded output, `Failed` with the error or the panic's
//! message, or `Killed`. A kill is cooperative: the task's [`TaskContext`] says it was
//! asked to stop. Status updates from the task threads are combined into batches, one
//! message per batch.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use ember_scheduler::{
    ExecutorId, TaskDescription, TaskFailedReason, TaskId, TaskStatus, TaskUpdate,
};

use crate::registry::{KillSwitch, TaskContext, TaskRegistry};

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

struct Reports {
    pending: Vec<TaskUpdate>,
    sending: bool,
}

struct Inner {
    executor_id: ExecutorId,
    registry: Arc<TaskRegistry>,
    reporter: Arc<dyn StatusReporter>,
    /// Results larger than this cannot travel to the driver.
    max_result_size: usize,
    queue: Mutex<Queue>,
    work: Condvar,
    running: Mutex<HashMap<TaskId, Arc<KillSwitch>>>,
    kill_marks: Mutex<HashMap<TaskId, (String, Instant)>>,
    reports: Mutex<Reports>,
}

/// Runs tasks on `cores` threads.
pub struct Executor {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Executor {
    /// Starts an executor with `cores` task threads.
    pub fn start(
        executor_id: ExecutorId,
        cores: u32,
        registry: Arc<TaskRegistry>,
        reporter: Arc<dyn StatusReporter>,
        max_result_size: usize,
    ) -> std::io::Result<Executor> {
        let inner = Arc::new(Inner {
            executor_id,
            registry,
            reporter,
            max_result_size,
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                stopped: false,
            }),
            work: Condvar::new(),
            running: Mutex::new(HashMap::new()),
            kill_marks: Mutex::new(HashMap::new()),
            reports: Mutex::new(Reports {
                pending: Vec::new(),
                sending: false,
            }),
        });
        let mut threads = Vec::new();
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
        drop(queue);
        // A task thread launching work (it reported a result, and the driver, running on
        // this very thread, handed it the next task) takes one task itself as soon as it
        // returns: waking another thread for it would only cost a switch.
        if WILL_TAKE_NEXT.with(|t| t.replace(false)) {
            count -= 1;
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
        if let Some(kill) = self.inner.running.lock().get(&task_id) {
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
                loop {
                    if queue.stopped {
                        return;
                    }
                    if let Some(task) = queue.tasks.pop_front() {
                        break task;
                    }
                    self.work.wait(&mut queue);
                }
            };
            TaskRunner { inner: self }.run(task);
        }
    }

    /// Queues an update; the first thread to find nobody sending sends, and keeps sending
    /// what others queue meanwhile, so concurrent updates travel together.
    fn report(&self, update: TaskUpdate) {
        let mut reports = self.reports.lock();
        reports.pending.push(update);
        if reports.sending {
            return;
        }
        reports.sending = true;
        loop {
            let batch = std::mem::take(&mut reports.pending);
            drop(reports);
            self.reporter.report(batch);
            reports = self.reports.lock();
            if reports.pending.is_empty() {
                reports.sending = false;
                return;
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
        if let Some((reason, _)) = inner.kill_marks.lock().remove(&task_id) {
            kill.kill(reason);
        }
        inner.running.lock().insert(task_id, Arc::clone(&kill));
        inner.report(TaskUpdate {
            task_id,
            status: TaskStatus::Running,
            cpus,
        });
        let ctx = TaskContext {
            task_id,
            attempt_number: task.attempt_number,
            partition: task.partition,
            job_id: task.job_id,
            stage_id: task.stage_id,
            executor_id: inner.executor_id.clone(),
            properties: task.properties,
            kill: Arc::clone(&kill),
        };
        let status = match kill.reason() {
            // Killed before it started: don't start it.
            Some(reason) => TaskStatus::Killed { reason },
            None => self.execute(&task.function, &ctx, task.input, &task.name),
        };
        inner.running.lock().remove(&task_id);
        WILL_TAKE_NEXT.with(|t| t.set(true));
        inner.report(TaskUpdate {
            task_id,
            status,
            cpus,
        });
        WILL_TAKE_NEXT.with(|t| t.set(false));
    }

    fn execute(
        &self,
        function: &str,
        ctx: &TaskContext,
        input: bytes::Bytes,
        name: &str,
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
                        "Result of {name} is {} bytes, too large to send",
                        result.len()
                    );
                    TaskStatus::Failed {
                        reason: TaskFailedReason::ExceptionFailure {
                            message: format!(
                                "The result of {name} is {} bytes, which exceeds what a \
                                 message may carry (ember.rpc.message.maxSize, {} bytes)",
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
                log::warn!("Exception in {name}: {e}");
                TaskStatus::Failed {
                    reason: TaskFailedReason::ExceptionFailure {
                        message: e.message().to_string(),
                    },
                }
            }
            (Err(panic), None) => {
                let message = panic_message(&*panic);
                log::error!("Task {name} panicked: {message}");
                TaskStatus::Failed {
                    reason: TaskFailedReason::ExceptionFailure {
                        message: format!("task panicked: {message}"),
                    },
                }
            }
        }
    }
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
