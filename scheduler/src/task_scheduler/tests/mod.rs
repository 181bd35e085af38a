//! Ports of Spark's TaskSchedulerImplSuite (each names the test it ports, `#n` being its
//! place in the suite), plus Ember's own checks of the task scheduler. All sans-IO: offers, status updates and losses are plain calls with a manual clock.
//!
//! Not ported, because Ember has no such feature: decommission (#1, #64–#66), exclusion on
//! failure and the health tracker (#14–#43, #45), barrier task sets (#50–#58, #67, #68,
//! #99), custom resources and resource profiles (#59–#63, #72–#98, #100–#107), stage
//! re-attempts from a DAG scheduler (#10–#12 as written; their zombie parts are ported with
//! cancelled and aborted jobs), task serialization failures (#9: tasks are registered
//! functions plus bytes, nothing is serialized at launch), deferred result fetching (#69)
//! and scheduling-mode parsing (#49, covered by the pool tests).

mod jobs;
mod locality;
mod loss;
mod offers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{SchedulerEvent, TaskScheduler};
use crate::task_set_manager::TaskSetManager;
use crate::{
    ExecutorId, ExecutorLossReason, JobId, Pools, SchedulerConf, StageId, TaskDescription,
    TaskFailedReason, TaskId, TaskLocation, TaskSet, TaskSpec, TaskStatus, WorkerOffer,
};

/// The suite's `spark.task.maxFailures`.
const MAX_TASK_FAILURES: u32 = 4;

/// A scheduler and a manual clock.
struct Harness {
    sched: TaskScheduler,
    start: Instant,
    elapsed: Duration,
}

impl Harness {
    /// FIFO, offers not shuffled, `maxFailures` 4, default settings.
    fn new() -> Harness {
        Harness::with(SchedulerConf::default(), MAX_TASK_FAILURES)
    }

    /// FIFO, offers not shuffled.
    fn with(conf: SchedulerConf, max_failures: u32) -> Harness {
        Harness::from(TaskScheduler::new(conf, max_failures, Pools::fifo()).without_shuffling())
    }

    fn from(sched: TaskScheduler) -> Harness {
        Harness {
            sched,
            start: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    fn advance_ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    fn submit(&mut self, task_set: TaskSet) {
        let now = self.now();
        self.sched.submit_tasks(task_set, now);
    }

    /// One offer round: `(executor, host, cores)` each.
    fn offer(&mut self, offers: &[(&str, &str, u32)], all_free: bool) -> Vec<TaskDescription> {
        let offers: Vec<WorkerOffer> = offers
            .iter()
            .map(|&(e, h, c)| WorkerOffer::new(e, h, c))
            .collect();
        let now = self.now();
        self.sched.resource_offers(&offers, all_free, now)
    }

    /// A full offer round (`all_free = true`), as the periodic revive makes.
    fn offer_all(&mut self, offers: &[(&str, &str, u32)]) -> Vec<TaskDescription> {
        self.offer(offers, true)
    }

    fn update(&mut self, tid: TaskId, status: TaskStatus) -> Vec<SchedulerEvent> {
        let now = self.now();
        self.sched.status_update(tid, status, now)
    }

    fn finish(&mut self, tid: TaskId, result: &str) -> Vec<SchedulerEvent> {
        self.update(
            tid,
            TaskStatus::Finished {
                result: Bytes::from(result.to_string()),
            },
        )
    }

    fn fail(&mut self, tid: TaskId, reason: TaskFailedReason) -> Vec<SchedulerEvent> {
        self.update(tid, TaskStatus::Failed { reason })
    }

    fn lose(&mut self, executor: &str, reason: ExecutorLossReason) -> Vec<SchedulerEvent> {
        let now = self.now();
        self.sched
            .executor_lost(&ExecutorId::new(executor), &reason, 0, now)
    }

    /// The manager of `job`'s task set, while the scheduler has it.
    fn tsm(&self, job: u32) -> Option<&TaskSetManager> {
        self.sched
            .task_sets
            .values()
            .find(|e| e.job_id == JobId(job))
            .map(|e| &e.manager)
    }

    fn is_zombie(&self, job: u32) -> bool {
        self.tsm(job)
            .expect("the task set is still there")
            .is_zombie()
    }

    fn alive(&self, executor: &str) -> bool {
        self.sched.is_executor_alive(&ExecutorId::new(executor))
    }
}

/// A task set of `n` tasks of job and stage `job`, attempt 0, task `i` preferring `prefs(i)`
/// (Spark's `FakeTask.createTaskSet`). Partition `i`, input `"input <i>"`.
fn task_set_with(job: u32, n: usize, prefs: impl Fn(usize) -> Vec<TaskLocation>) -> TaskSet {
    TaskSet {
        job_id: JobId(job),
        stage_id: StageId(job),
        stage_attempt: 0,
        function: "f".into(),
        tasks: (0..n)
            .map(|i| TaskSpec {
                partition: i as u32,
                preferred_locations: prefs(i),
                input: Bytes::from(format!("input {i}")),
            })
            .collect(),
        properties: BTreeMap::new(),
    }
}

/// `n` tasks with no locality preference.
fn task_set(job: u32, n: usize) -> TaskSet {
    task_set_with(job, n, |_| Vec::new())
}

/// Spark's `TaskLocation(host, executorId)`.
fn exec_loc(host: &str, executor: &str) -> TaskLocation {
    TaskLocation::ExecutorCache {
        host: host.into(),
        executor_id: executor.into(),
    }
}

/// Spark's `ExecutorProcessLost()`: "Worker lost", the application's fault.
fn worker_lost() -> ExecutorLossReason {
    ExecutorLossReason::ProcessLost {
        message: "Worker lost".into(),
        worker_host: None,
        caused_by_app: true,
    }
}

fn exception(message: &str) -> TaskFailedReason {
    TaskFailedReason::ExceptionFailure {
        message: message.into(),
    }
}

fn executors(tasks: &[TaskDescription]) -> Vec<&str> {
    tasks.iter().map(|t| t.executor_id.as_str()).collect()
}

fn indices(tasks: &[TaskDescription]) -> Vec<u32> {
    tasks.iter().map(|t| t.index).collect()
}

fn jobs_of(tasks: &[TaskDescription]) -> Vec<u32> {
    tasks.iter().map(|t| t.job_id.0).collect()
}

/// The abort messages among `events`.
fn failures(events: &[SchedulerEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::JobFailed { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect()
}

/// Whether `events` say `job`'s task set is gone.
fn finished(events: &[SchedulerEvent], job: u32) -> bool {
    events
        .iter()
        .any(|e| *e == SchedulerEvent::TaskSetFinished { job_id: JobId(job) })
}

/// The kills among `events`: (task, executor, reason).
fn kills(events: &[SchedulerEvent]) -> Vec<(TaskId, &str, &str)> {
    events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::KillTask {
                task_id,
                executor_id,
                reason,
            } => Some((*task_id, executor_id.as_str(), reason.as_str())),
            _ => None,
        })
        .collect()
}

/// The successes among `events`: (partition, result).
fn successes(events: &[SchedulerEvent]) -> Vec<(u32, &[u8])> {
    events
        .iter()
        .filter_map(|e| match e {
            SchedulerEvent::TaskSucceeded {
                partition, result, ..
            } => Some((*partition, result.as_ref())),
            _ => None,
        })
        .collect()
}
