//! Ports of Spark's TaskSetManagerSuite (each names the test it ports, `#n` being its place
//! in the suite), plus Ember's own checks. Everything is sans-IO: a fake
//! cluster view and a manual clock, no threads, no sleeps.

mod failures;
mod frontier;
mod offers;
mod speculation;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ClusterView, Offered, TaskSetEvent, TaskSetManager};
use crate::{
    ExecutorId, ExecutorLossReason, JobId, SchedulerConf, StageId, TaskDescription,
    TaskFailedReason, TaskId, TaskLocality, TaskLocation, TaskSet, TaskSpec, TaskState,
};

/// Spark's default `spark.locality.wait`.
const WAIT: Duration = Duration::from_secs(3);
/// The suite's `MAX_TASK_FAILURES`.
const MAX_TASK_FAILURES: u32 = 4;

/// Executors by id with their hosts, and racks by host (Spark's `FakeTaskScheduler` plus
/// `FakeRackUtil`).
#[derive(Debug, Default)]
struct FakeCluster {
    executors: BTreeMap<String, String>,
    racks: HashMap<String, String>,
    /// How many times each host's rack was asked for (Spark's counting `FakeRackUtil`).
    rack_lookups: RefCell<BTreeMap<String, usize>>,
}

impl FakeCluster {
    fn with(executors: &[(&str, &str)]) -> FakeCluster {
        let mut cluster = FakeCluster::default();
        for (executor, host) in executors {
            cluster.add(executor, host);
        }
        cluster
    }

    fn add(&mut self, executor: &str, host: &str) {
        self.executors.insert(executor.into(), host.into());
    }

    fn remove(&mut self, executor: &str) -> String {
        self.executors.remove(executor).unwrap_or_default()
    }

    fn assign_rack(&mut self, host: &str, rack: &str) {
        self.racks.insert(host.into(), rack.into());
    }
}

impl ClusterView for FakeCluster {
    fn is_executor_alive(&self, executor: &ExecutorId) -> bool {
        self.executors.contains_key(executor.as_str())
    }

    fn has_executors_alive_on_host(&self, host: &str) -> bool {
        self.executors.values().any(|h| h == host)
    }

    fn has_hosts_alive_on_rack(&self, rack: &str) -> bool {
        self.executors
            .values()
            .any(|h| self.racks.get(h).is_some_and(|r| r == rack))
    }

    fn rack_for_host(&self, host: &str) -> Option<String> {
        *self
            .rack_lookups
            .borrow_mut()
            .entry(host.into())
            .or_default() += 1;
        self.racks.get(host).cloned()
    }
}

/// Spark's `TaskLocation(host, executorId)`: cached in that executor.
fn exec_loc(host: &str, executor: &str) -> TaskLocation {
    TaskLocation::ExecutorCache {
        host: host.into(),
        executor_id: executor.into(),
    }
}

/// Spark's `TaskLocation(host)`.
fn host_loc(host: &str) -> TaskLocation {
    TaskLocation::Host(host.into())
}

/// A task set of stage 0.0 whose task `i` prefers `prefs[i]` (Spark's
/// `FakeTask.createTaskSet`).
fn task_set(prefs: Vec<Vec<TaskLocation>>) -> TaskSet {
    task_set_for_stage(prefs, 0, 0)
}

fn task_set_for_stage(prefs: Vec<Vec<TaskLocation>>, stage: u32, attempt: u32) -> TaskSet {
    TaskSet {
        job_id: JobId(stage),
        stage_id: StageId(stage),
        stage_attempt: attempt,
        function: "f".into(),
        tasks: prefs
            .into_iter()
            .enumerate()
            .map(|(i, preferred_locations)| TaskSpec {
                partition: 100 + i as u32,
                preferred_locations,
                input: Bytes::from(format!("input {i}")),
            })
            .collect(),
        properties: BTreeMap::new(),
    }
}

fn no_prefs(n: usize) -> TaskSet {
    task_set(vec![Vec::new(); n])
}

/// Settings for speculation tests: on, speculate as soon as a task outlives the median
/// times `multiplier` (Spark's tests pass `minTimeToSpeculation = 0`).
fn speculation_conf(quantile: f64, multiplier: f64) -> SchedulerConf {
    SchedulerConf {
        speculation: true,
        speculation_quantile: quantile,
        speculation_multiplier: multiplier,
        speculation_min_task_runtime: Duration::ZERO,
        ..SchedulerConf::default()
    }
}

/// A manager, its cluster and a manual clock; hands out task ids like the scheduler.
struct Harness {
    tsm: TaskSetManager,
    cluster: FakeCluster,
    start: Instant,
    elapsed: Duration,
    next_tid: u64,
}

impl Harness {
    fn new(cluster: FakeCluster, task_set: TaskSet) -> Harness {
        Harness::with(
            cluster,
            task_set,
            MAX_TASK_FAILURES,
            SchedulerConf::default(),
        )
    }

    fn with(
        cluster: FakeCluster,
        task_set: TaskSet,
        max_task_failures: u32,
        conf: SchedulerConf,
    ) -> Harness {
        let start = Instant::now();
        let tsm = TaskSetManager::new(task_set, max_task_failures, &conf, start, &cluster);
        Harness {
            tsm,
            cluster,
            start,
            elapsed: Duration::ZERO,
            next_tid: 0,
        }
    }

    /// A manager that indexes `batch` tasks at a time, with the default settings.
    fn with_index_batch(cluster: FakeCluster, task_set: TaskSet, batch: u32) -> Harness {
        let start = Instant::now();
        let conf = SchedulerConf::default();
        let tsm =
            TaskSetManager::with_batch(task_set, MAX_TASK_FAILURES, &conf, start, &cluster, batch);
        Harness {
            tsm,
            cluster,
            start,
            elapsed: Duration::ZERO,
            next_tid: 0,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn advance(&mut self, by: Duration) {
        self.elapsed += by;
    }

    fn offer_full(&mut self, executor: &str, host: &str, max: TaskLocality) -> Offered {
        let now = self.now();
        let offered = self.tsm.resource_offer(
            &ExecutorId::new(executor),
            host,
            max,
            1,
            TaskId(self.next_tid),
            now,
            &self.cluster,
        );
        if offered.task.is_some() {
            self.next_tid += 1;
        }
        offered
    }

    fn offer(&mut self, executor: &str, host: &str, max: TaskLocality) -> Option<TaskDescription> {
        self.offer_full(executor, host, max).task
    }

    /// The index of the task an offer launches, if any.
    fn offer_index(&mut self, executor: &str, host: &str, max: TaskLocality) -> Option<u32> {
        self.offer(executor, host, max).map(|task| task.index)
    }

    fn succeed(&mut self, tid: u64) -> Vec<TaskSetEvent> {
        let now = self.now();
        self.tsm
            .handle_successful_task(TaskId(tid), Bytes::from_static(b"ok"), now)
    }

    fn fail(&mut self, tid: u64, reason: TaskFailedReason) -> Vec<TaskSetEvent> {
        let now = self.now();
        self.tsm
            .handle_failed_task(TaskId(tid), TaskState::Failed, reason, now)
    }

    fn add_executor(&mut self, executor: &str, host: &str) {
        self.cluster.add(executor, host);
        self.tsm.executor_added(&self.cluster);
    }

    /// Removes the executor from the cluster, then tells the manager (the scheduler's order).
    fn lose_executor(&mut self, executor: &str, reason: ExecutorLossReason) -> Vec<TaskSetEvent> {
        let host = self.cluster.remove(executor);
        let now = self.now();
        self.tsm.executor_lost(
            &ExecutorId::new(executor),
            &host,
            &reason,
            &crate::TaskIdSet::default(),
            now,
            &self.cluster,
        )
    }

    fn levels(&self) -> Vec<TaskLocality> {
        self.tsm.valid_locality_levels()
    }

    /// Spark's test hook `speculatableTasks += i; addPendingTask(i, speculatable = true)`.
    fn mark_speculatable(&mut self, index: u32) {
        self.tsm.mark_speculatable(index);
    }

    fn failures(&self, index: usize) -> u32 {
        self.tsm.tasks[index].failures
    }
}

/// Spark's `SlaveLost()` / `ExecutorProcessLost()`: "Worker lost", the application's fault.
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

fn killed(reason: &str) -> TaskFailedReason {
    TaskFailedReason::TaskKilled {
        reason: reason.into(),
    }
}

/// The indices of the `TaskSucceeded` events.
fn succeeded(events: &[TaskSetEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            TaskSetEvent::TaskSucceeded { index, .. } => Some(*index),
            _ => None,
        })
        .collect()
}

/// The `(task id, executor, reason)` of the `KillTask` events.
fn kills(events: &[TaskSetEvent]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            TaskSetEvent::KillTask {
                task_id,
                executor_id,
                reason,
            } => Some((task_id.0, executor_id.to_string(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn aborted(events: &[TaskSetEvent]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        TaskSetEvent::Aborted { message } => Some(message.as_str()),
        _ => None,
    })
}

fn finished(events: &[TaskSetEvent]) -> bool {
    events.contains(&TaskSetEvent::Finished)
}
