//! The task-set manager: schedules the tasks of one task set (Spark's `TaskSetManager`).
//!
//! A sans-IO state machine owned by the task scheduler. It answers single-executor offers
//! with at most one task, honouring locality preferences through delay scheduling; it
//! retries failed tasks until one fails `max_task_failures` times; it queues speculative
//! copies of slow tasks; and it reports what the scheduler must do as [`TaskSetEvent`]s.
//! It never reads a clock (every call that needs the time takes `now`) and never talks to
//! executors: the cluster is seen through [`ClusterView`].
//!
//! Ember jobs are one stage each, so the parts of Spark's manager that serve the DAG
//! scheduler are absent: fetch failures, re-running shuffle-map tasks whose output was lost
//! with an executor, barrier task sets, exclusion on failure (health tracker) and results
//! fetched through the block manager.
//!
//! Layout: this file holds the public types, construction and offers; `completion` handles
//! task ends, executor loss, abort and cancel; `pending` the per-locality pending lists;
//! `frontier` the tasks not indexed in them yet (they are indexed a batch at a time);
//! `launch` taking a task for an offer and the launch bookkeeping;
//! `locality` valid levels and delay scheduling; `speculation` speculative copies;
//! `records` the per-task and per-attempt state; `result_size` `maxResultSize`.

mod completion;
mod frontier;
mod launch;
mod locality;
mod pending;
mod records;
mod result_size;
mod speculation;

#[cfg(test)]
mod tests;

use std::time::Instant;

use bytes::Bytes;

use crate::conf::SchedulerConf;
use crate::ids::{ExecutorId, TaskId};
use crate::locality::TaskLocality;
use crate::task::{TaskDescription, TaskSet};

use self::frontier::Frontier;
use self::locality::{DelayScheduler, LevelSet};
use self::pending::{PendingCounts, PendingLists, RackCache};
use self::records::{AttemptMap, AttemptPhase, TaskRecord, TaskSetPhase};
use self::result_size::ResultSize;
use self::speculation::{HostTable, Speculation};

/// What a task-set manager needs to know of the cluster (implemented by the TaskScheduler).
pub trait ClusterView {
    /// Whether `executor` is registered and not lost.
    fn is_executor_alive(&self, executor: &ExecutorId) -> bool;
    /// Whether some live executor runs on `host`.
    fn has_executors_alive_on_host(&self, host: &str) -> bool;
    /// Whether some host with a live executor is in `rack`.
    fn has_hosts_alive_on_rack(&self, rack: &str) -> bool;
    /// The rack of `host`, if racks are known.
    fn rack_for_host(&self, host: &str) -> Option<String>;
    /// Whether any host can have a rack (a rack resolver is set). `false` spares a task set
    /// asking [`rack_for_host`](Self::rack_for_host) for each host it prefers; the default,
    /// `true`, is always correct.
    fn knows_racks(&self) -> bool {
        true
    }
}

/// The result of one offer to a task set.
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    /// The task to launch, if one was chosen.
    pub task: Option<TaskDescription>,
    /// Nothing launched although tasks are pending and the offer allowed ANY: delay
    /// scheduling held them back (SPARK-18886 uses this to decide timer resets).
    pub delay_rejected: bool,
    /// The locality the task was launched at.
    pub locality: Option<TaskLocality>,
}

impl Offered {
    fn nothing(delay_rejected: bool) -> Offered {
        Offered {
            task: None,
            delay_rejected,
            locality: None,
        }
    }
}

/// What happened, for the TaskScheduler to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskSetEvent {
    /// An attempt succeeded and its index was not done before: the job gets this result.
    /// A zombie task set still reports these (its running attempts keep going after an
    /// abort or cancel); the scheduler drops them for a job that has already ended.
    TaskSucceeded {
        /// The attempt.
        task_id: TaskId,
        /// The task's index in the set.
        index: u32,
        /// The partition it computed.
        partition: u32,
        /// The encoded result.
        result: Bytes,
    },
    /// Kill this running attempt (another attempt succeeded, or the task set was cancelled).
    KillTask {
        /// The attempt.
        task_id: TaskId,
        /// Where it runs.
        executor_id: ExecutorId,
        /// Why, for the executor's log and the task's end reason.
        reason: String,
    },
    /// The task set was aborted with this message (the job fails with it). Emitted at most
    /// once, and only by a task set that was still active.
    Aborted {
        /// Why.
        message: String,
    },
    /// The task set is done: zombie and nothing running. Remove it. Emitted once.
    Finished,
}

/// Schedules the tasks of one task set: offers, retries, speculation, completion.
///
/// # Example
///
/// ```
/// use std::collections::BTreeMap;
/// use std::time::Instant;
/// use ember_scheduler::{
///     ClusterView, ExecutorId, JobId, SchedulerConf, StageId, TaskId, TaskLocality, TaskSet,
///     TaskSetEvent, TaskSetManager, TaskSpec,
/// };
///
/// struct OneExecutor;
/// impl ClusterView for OneExecutor {
///     fn is_executor_alive(&self, e: &ExecutorId) -> bool { e.as_str() == "driver" }
///     fn has_executors_alive_on_host(&self, h: &str) -> bool { h == "localhost" }
///     fn has_hosts_alive_on_rack(&self, _: &str) -> bool { false }
///     fn rack_for_host(&self, _: &str) -> Option<String> { None }
/// }
///
/// let task_set = TaskSet {
///     job_id: JobId(0),
///     stage_id: StageId(0),
///     stage_attempt: 0,
///     function: "count".into(),
///     tasks: vec![TaskSpec { partition: 0, preferred_locations: vec![], input: Default::default() }],
///     properties: BTreeMap::new(),
/// };
/// let now = Instant::now();
/// let conf = SchedulerConf::default();
/// let mut tsm = TaskSetManager::new(task_set, 1, &conf, now, &OneExecutor);
/// let offered = tsm.resource_offer(
///     &ExecutorId::driver(), "localhost", TaskLocality::NoPref, 1, TaskId(0), now, &OneExecutor,
/// );
/// let task = offered.task.expect("a task");
/// assert_eq!(task.name(), "task 0.0 in stage 0.0 (TID 0)");
/// let events = tsm.handle_successful_task(task.task_id, "42".into(), now);
/// assert!(matches!(events[0], TaskSetEvent::TaskSucceeded { index: 0, .. }));
/// assert_eq!(events[1], TaskSetEvent::Finished);
/// ```
#[derive(Debug)]
pub struct TaskSetManager {
    task_set: TaskSet,
    /// `TaskSet_<stage>.<attempt>`, computed once.
    name: String,
    max_task_failures: u32,
    phase: TaskSetPhase,
    /// One record per indexed task, by index (the frontier says how many).
    tasks: Vec<TaskRecord>,
    /// Attempts that have not ended, by task id.
    running: AttemptMap,
    /// Indexed pending tasks by locality, with exact per-level counts.
    pending: PendingLists,
    pending_counts: PendingCounts,
    /// The tasks not indexed yet.
    frontier: Frontier,
    /// Queued speculative copies, and how many tasks want one.
    speculative: PendingLists,
    speculatable: usize,
    /// Tasks with a successful attempt.
    succeeded: usize,
    racks: RackCache,
    delay: DelayScheduler,
    /// `ember.locality.wait.legacyResetOnTaskLaunch`.
    legacy_locality_reset: bool,
    speculation: Speculation,
    hosts: HostTable,
    results: ResultSize,
}

impl TaskSetManager {
    /// A manager for `task_set`, all tasks pending, its locality levels computed from `view`
    /// and its delay-scheduling timer started at `now`. Only the first
    /// [`BATCH`](frontier::BATCH) tasks are indexed here; the rest are indexed as offers
    /// need them, so a large set launches its first task without indexing all of them.
    pub fn new(
        task_set: TaskSet,
        max_task_failures: u32,
        conf: &SchedulerConf,
        now: Instant,
        view: &dyn ClusterView,
    ) -> TaskSetManager {
        TaskSetManager::with_batch(
            task_set,
            max_task_failures,
            conf,
            now,
            view,
            frontier::BATCH,
        )
    }

    /// [`new`](Self::new), indexing `batch` tasks at a time.
    pub(crate) fn with_batch(
        task_set: TaskSet,
        max_task_failures: u32,
        conf: &SchedulerConf,
        now: Instant,
        view: &dyn ClusterView,
        batch: u32,
    ) -> TaskSetManager {
        let name = format!("TaskSet_{}", task_set.stage_name());
        let frontier = Frontier::new(&task_set.tasks, batch);
        let count = task_set.tasks.len();
        let mut tsm = TaskSetManager {
            name,
            max_task_failures,
            phase: TaskSetPhase::Active,
            running: AttemptMap::default(),
            pending: PendingLists::default(),
            pending_counts: PendingCounts::default(),
            frontier,
            speculative: PendingLists::default(),
            speculatable: 0,
            succeeded: 0,
            racks: RackCache::new(view),
            delay: DelayScheduler::new(LevelSet::from_flags(false, false, false, false), conf, now),
            legacy_locality_reset: conf.legacy_locality_reset,
            speculation: Speculation::new(conf, count),
            hosts: HostTable::default(),
            results: ResultSize::new(conf.max_result_size),
            // Reserved, not touched: pages are only paid for as records are written.
            tasks: Vec::with_capacity(count),
            task_set,
        };
        tsm.index_batch(view);
        let levels = tsm.valid_levels(view);
        log::debug!(
            "Valid locality levels for {}: {:?}",
            tsm.name,
            levels.as_slice()
        );
        tsm.delay = DelayScheduler::new(levels, conf, now);
        tsm
    }

    /// The task set this manager runs.
    pub fn task_set(&self) -> &TaskSet {
        &self.task_set
    }

    /// `TaskSet_<stageId>.<stageAttempt>`.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether the set launches nothing more (all tasks succeeded, aborted or cancelled).
    pub fn is_zombie(&self) -> bool {
        !self.is_active()
    }

    /// Attempts running (launching or running), for FAIR ordering.
    pub fn running_tasks(&self) -> usize {
        self.running.len()
    }

    /// Not zombie, and some task (or speculative copy) waits to be launched.
    pub fn is_schedulable(&self) -> bool {
        self.is_active() && self.has_pending()
    }

    /// The locality levels worth offering at, most local first, ending with ANY.
    pub fn valid_locality_levels(&self) -> Vec<TaskLocality> {
        self.delay.levels().to_vec()
    }

    /// [`TaskSetManager::valid_locality_levels`] without the allocation.
    pub fn locality_levels(&self) -> &[TaskLocality] {
        self.delay.levels()
    }

    /// One offer of `task_cpus` cores on `executor` at `host`; `task_id` is the id to give the
    /// task if one launches (the scheduler then advances its counter). A zombie launches
    /// nothing. Unless `max_locality` is NO_PREF (which bypasses delay scheduling, as in
    /// Spark), tasks are only taken up to the level delay scheduling allows at `now`.
    ///
    /// O(1) amortised: pending entries are dropped lazily as they surface.
    #[allow(clippy::too_many_arguments)] // the interface the task scheduler is written against
    pub fn resource_offer(
        &mut self,
        executor: &ExecutorId,
        host: &str,
        max_locality: TaskLocality,
        task_cpus: u32,
        task_id: TaskId,
        now: Instant,
        view: &dyn ClusterView,
    ) -> Offered {
        if !self.is_active() {
            return Offered::nothing(false);
        }
        if self.running.contains_key(&task_id) {
            log::error!(
                "{}: offered task id {task_id}, which is already running; launching nothing",
                self.name
            );
            return Offered::nothing(false);
        }
        let allowed = if max_locality == TaskLocality::NoPref {
            TaskLocality::NoPref
        } else {
            let behind = self
                .frontier
                .levels_present(&self.task_set.tasks, &mut self.racks, view);
            let counts = &self.pending_counts;
            self.delay
                .allowed(now, |level| counts.any_at(level) || behind[level as usize])
                .min(max_locality)
        };
        let Some(dequeued) = self.dequeue(executor, host, allowed, view) else {
            let delay_rejected = max_locality == TaskLocality::Any && self.has_pending();
            return Offered::nothing(delay_rejected);
        };
        if self.legacy_locality_reset && max_locality != TaskLocality::NoPref {
            self.delay.reset(Some(dequeued.locality), now);
        }
        let task = self.launch(dequeued, executor, host, task_cpus, task_id, now);
        Offered {
            locality: task.as_ref().map(|_| dequeued.locality),
            task,
            delay_rejected: false,
        }
    }

    /// Resets the delay-scheduling timer at `now` and, given a level, makes it the current
    /// one (SPARK-18886: the scheduler calls this after an offer round that launched
    /// without delay rejects, with the most local level launched).
    pub fn reset_delay_timer(&mut self, min_locality: Option<TaskLocality>, now: Instant) {
        self.delay.reset(min_locality, now);
    }

    /// Whether no offer was delay-rejected since the last full-offer reset (SPARK-18886;
    /// kept here for the scheduler, true at first).
    pub fn no_rejects_since_last_reset(&self) -> bool {
        self.delay.no_rejects_since_last_reset()
    }

    /// Sets the flag read by [`TaskSetManager::no_rejects_since_last_reset`].
    pub fn set_no_rejects_since_last_reset(&mut self, value: bool) {
        self.delay.set_no_rejects_since_last_reset(value);
    }

    /// The attempt's executor reported it running: from now on, losing the executor counts
    /// as the task's failure when the loss is the application's fault (SPARK-39955).
    pub fn handle_task_running(&mut self, task_id: TaskId) {
        match self.running.get_mut(&task_id) {
            Some(attempt) => attempt.phase = AttemptPhase::Running,
            None => log::debug!("{}: ignoring RUNNING for unknown TID {task_id}", self.name),
        }
    }

    /// Recomputes the valid locality levels after an executor registered (SPARK-31837: a
    /// newly possible, more local level becomes the current one).
    pub fn executor_added(&mut self, view: &dyn ClusterView) {
        self.recompute_locality(view);
    }

    /// The executor of a running attempt.
    pub fn executor_of(&self, task_id: TaskId) -> Option<&ExecutorId> {
        self.running.get(&task_id).map(|attempt| &attempt.executor)
    }

    /// A running attempt's partition, attempt number and launch time.
    pub fn attempt(&self, task_id: TaskId) -> Option<(u32, u32, Instant)> {
        self.running
            .get(&task_id)
            .map(|a| (a.index, a.attempt_number, a.launched_at))
    }

    /// The ids of the running attempts, in increasing order.
    pub fn running_task_ids(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self.running.keys().collect();
        ids.sort_unstable();
        ids
    }

    fn is_active(&self) -> bool {
        self.phase == TaskSetPhase::Active
    }

    fn has_pending(&self) -> bool {
        self.pending_counts.total() > 0 || !self.frontier.is_done() || self.speculatable > 0
    }

    /// Tasks pending, indexed or not.
    fn pending_total(&self) -> usize {
        self.pending_counts.total() + self.frontier.remaining()
    }

    /// How many tasks have been indexed (have a record and list entries) so far.
    #[cfg(test)]
    pub(crate) fn indexed_tasks(&self) -> usize {
        self.frontier.indexed()
    }

    /// Indexes the next batch of tasks behind the frontier.
    fn index_batch(&mut self, view: &dyn ClusterView) {
        self.frontier.index_batch(
            &self.task_set.tasks,
            &mut self.tasks,
            &mut self.pending_counts,
            &mut self.pending,
            &mut self.racks,
            view,
        );
    }

    /// The valid locality levels: what the lists give, and what the tasks behind the
    /// frontier add.
    fn valid_levels(&mut self, view: &dyn ClusterView) -> LevelSet {
        let listed = self.pending.valid_levels(view);
        self.frontier
            .valid_levels(listed, &self.task_set.tasks, &mut self.racks, view)
            .levels()
    }

    /// Recomputes the valid levels from the pending tasks and who is alive (skipped once
    /// zombie: nothing more will launch).
    fn recompute_locality(&mut self, view: &dyn ClusterView) {
        if !self.is_active() {
            return;
        }
        let levels = self.valid_levels(view);
        log::debug!(
            "Valid locality levels for {}: {:?}",
            self.name,
            levels.as_slice()
        );
        self.delay.recompute(levels);
    }
}
