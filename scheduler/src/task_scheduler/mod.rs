//! The task scheduler (Spark's `TaskSchedulerImpl`): task sets in, task launches out.
//!
//! A plain struct with no threads and no clock of its own: the driver endpoint owns it,
//! feeds it offers, status updates and executor losses with the current time, and acts on
//! the [`SchedulerEvent`]s it returns (results to jobs, kills to executors). It never talks
//! to an executor itself.

mod cluster;

#[cfg(test)]
mod tests;

use std::time::Instant;

use bytes::Bytes;

pub use cluster::Cluster;

use crate::conf::SchedulerConf;
use crate::ids::{ExecutorId, FastMap, JobId, TaskId, TaskIdSet};
use crate::locality::TaskLocality;
use crate::pool::{Pools, TaskSetKey, TaskSetView};
use crate::task::{ExecutorLossReason, TaskDescription, TaskSet, TaskStatus, WorkerOffer};
use crate::task_set_manager::{TaskSetEvent, TaskSetManager};
use crate::task_table::TaskTable;

/// What the scheduler's caller must do after a call.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent {
    /// A partition of a job has its result.
    TaskSucceeded {
        /// The job.
        job_id: JobId,
        /// The partition.
        partition: u32,
        /// The task function's encoded output.
        result: Bytes,
    },
    /// A job failed; its task set was aborted with this message.
    JobFailed {
        /// The job.
        job_id: JobId,
        /// Why (Spark's abort message).
        message: String,
    },
    /// A job's task set is gone (every partition done, or aborted, or cancelled).
    TaskSetFinished {
        /// The job.
        job_id: JobId,
    },
    /// Tell `executor_id` to kill this task attempt.
    KillTask {
        /// The attempt.
        task_id: TaskId,
        /// Where it runs.
        executor_id: ExecutorId,
        /// Why.
        reason: String,
    },
}

/// The running state of one submitted task set.
struct Entry {
    manager: TaskSetManager,
    job_id: JobId,
}

/// Task sets, the executors they run on, and the offers that launch their tasks.
pub struct TaskScheduler {
    conf: SchedulerConf,
    max_task_failures: u32,
    task_sets: FastMap<TaskSetKey, Entry>,
    next_key: u64,
    pools: Pools,
    cluster: Cluster,
    next_task_id: u64,
    /// Which task set each running attempt belongs to (a dense window of recent ids).
    task_to_set: TaskTable<TaskSetKey>,
    /// Shuffles offers so load spreads; tests turn it off to get a fixed order.
    shuffle: Option<SplitMix64>,
}

/// A small, fast generator for shuffling offers (not for anything secret).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The task sets' numbers, as the pools sort them.
struct SetsView<'a>(&'a FastMap<TaskSetKey, Entry>);

impl TaskSetView for SetsView<'_> {
    fn running_tasks(&self, key: TaskSetKey) -> usize {
        self.0.get(&key).map_or(0, |e| e.manager.running_tasks())
    }
    fn priority(&self, key: TaskSetKey) -> u32 {
        self.0.get(&key).map_or(u32::MAX, |e| e.job_id.0)
    }
    fn stage_id(&self, key: TaskSetKey) -> u32 {
        self.0
            .get(&key)
            .map_or(u32::MAX, |e| e.manager.task_set().stage_id.0)
    }
    fn name(&self, key: TaskSetKey) -> String {
        self.0
            .get(&key)
            .map_or_else(String::new, |e| e.manager.name())
    }
    fn is_schedulable(&self, key: TaskSetKey) -> bool {
        self.0.get(&key).is_some_and(|e| e.manager.is_schedulable())
    }
}

impl TaskScheduler {
    /// A scheduler with these settings; `max_task_failures` is `ember.task.maxFailures` (or
    /// the local mode's value), `pools` FIFO or FAIR.
    pub fn new(conf: SchedulerConf, max_task_failures: u32, pools: Pools) -> TaskScheduler {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5EED, |d| d.as_nanos() as u64);
        TaskScheduler {
            conf,
            max_task_failures: max_task_failures.max(1),
            task_sets: FastMap::default(),
            next_key: 0,
            pools,
            cluster: Cluster::default(),
            next_task_id: 0,
            task_to_set: TaskTable::default(),
            shuffle: Some(SplitMix64(seed)),
        }
    }

    /// Offers go to task sets in the order given, not shuffled (for tests).
    pub fn without_shuffling(mut self) -> TaskScheduler {
        self.shuffle = None;
        self
    }

    /// Hosts map to racks through `resolver` (none by default).
    pub fn with_rack_resolver(
        mut self,
        resolver: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> TaskScheduler {
        self.cluster.set_rack_resolver(Box::new(resolver));
        self
    }

    /// The settings.
    pub fn conf(&self) -> &SchedulerConf {
        &self.conf
    }

    /// What the scheduler knows of the executors.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// How many tasks run now for each job that has any, in job order: what the console
    /// progress bar shows as `(done + running)`. Walks the task sets, so it is for a
    /// periodic look, not for every status update.
    pub fn running_tasks_by_job(&self) -> Vec<(JobId, u32)> {
        let mut running: Vec<(JobId, u32)> = Vec::new();
        for entry in self.task_sets.values() {
            let n = u32::try_from(entry.manager.running_tasks()).unwrap_or(u32::MAX);
            match running.iter_mut().find(|(job, _)| *job == entry.job_id) {
                Some((_, count)) => *count = count.saturating_add(n),
                None if n > 0 => running.push((entry.job_id, n)),
                None => {}
            }
        }
        running.sort_unstable_by_key(|(job, _)| job.0);
        running
    }

    /// Whether any task set is still running or waiting.
    pub fn has_task_sets(&self) -> bool {
        !self.task_sets.is_empty()
    }

    /// Adds a task set; its tasks launch on the next offers. Its pool is the one its
    /// `ember.scheduler.pool` property names (FAIR), else `default`.
    pub fn submit_tasks(&mut self, task_set: TaskSet, now: Instant) {
        let key = TaskSetKey(self.next_key);
        self.next_key += 1;
        let job_id = task_set.job_id;
        let pool = task_set
            .properties
            .get(crate::conf::keys::POOL_PROPERTY)
            .cloned();
        let manager = TaskSetManager::new(
            task_set,
            self.max_task_failures,
            &self.conf,
            now,
            &self.cluster,
        );
        log::info!(
            "Adding task set {} with {} tasks",
            manager.name(),
            manager.task_set().tasks.len()
        );
        self.pools.add_task_set(key, pool.as_deref());
        self.task_sets.insert(key, Entry { manager, job_id });
    }

    /// Offers free cores to the task sets, most deserving first, each at its most local
    /// level first (Spark's `resourceOffers`). `all_free` is true for the periodic offer of
    /// every executor, which is what may reset a set's delay-scheduling timer.
    pub fn resource_offers(
        &mut self,
        offers: &[WorkerOffer],
        all_free: bool,
        now: Instant,
    ) -> Vec<TaskDescription> {
        let mut new_executor = false;
        for offer in offers {
            new_executor |= self.cluster.learn(&offer.executor_id, &offer.host);
        }
        if self.task_sets.is_empty() {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..offers.len()).collect();
        if let Some(rng) = &mut self.shuffle {
            rng.shuffle(&mut order);
        }
        let mut free: Vec<u32> = order.iter().map(|&i| offers[i].cores).collect();
        let task_cpus = self.conf.task_cpus;
        let sorted = self.pools.sorted_task_sets(&SetsView(&self.task_sets));
        if new_executor {
            for entry in self.task_sets.values_mut() {
                entry.manager.executor_added(&self.cluster);
            }
        }
        let mut launched = Vec::new();
        for key in sorted {
            let Some(entry) = self.task_sets.get_mut(&key) else {
                continue;
            };
            let mut launched_any = false;
            let mut no_rejects = true;
            let mut min_locality: Option<TaskLocality> = None;
            for level in entry.manager.valid_locality_levels() {
                loop {
                    let mut launched_this_pass = false;
                    for (slot, &offer_index) in order.iter().enumerate() {
                        if free[slot] < task_cpus {
                            continue;
                        }
                        let offer = &offers[offer_index];
                        let offered = entry.manager.resource_offer(
                            &offer.executor_id,
                            &offer.host,
                            level,
                            task_cpus,
                            TaskId(self.next_task_id),
                            now,
                            &self.cluster,
                        );
                        no_rejects &= !offered.delay_rejected;
                        if let Some(task) = offered.task {
                            self.next_task_id += 1;
                            free[slot] -= task_cpus;
                            if let Some(l) = offered.locality {
                                min_locality = Some(min_locality.map_or(l, |m| m.min(l)));
                            }
                            self.task_to_set.insert(task.task_id, key);
                            self.cluster.task_started(&offer.executor_id, task.task_id);
                            launched.push(task);
                            launched_this_pass = true;
                        }
                    }
                    launched_any |= launched_this_pass;
                    if !launched_this_pass {
                        break;
                    }
                }
            }
            if !self.conf.legacy_locality_reset {
                // SPARK-18886: reset the timer only after a round without delay rejects.
                if no_rejects && launched_any {
                    if all_free || entry.manager.no_rejects_since_last_reset() {
                        entry.manager.reset_delay_timer(min_locality, now);
                        entry.manager.set_no_rejects_since_last_reset(true);
                    }
                } else if !no_rejects {
                    entry.manager.set_no_rejects_since_last_reset(false);
                }
            }
        }
        launched
    }

    /// An executor reported on a task attempt.
    pub fn status_update(
        &mut self,
        task_id: TaskId,
        status: TaskStatus,
        now: Instant,
    ) -> Vec<SchedulerEvent> {
        let Some(&key) = self.task_to_set.get(&task_id) else {
            log::debug!(
                "Ignoring update with state {:?} for TID {task_id} because its task set is gone",
                status.state()
            );
            return Vec::new();
        };
        let state = status.state();
        if state.is_finished() {
            self.task_to_set.remove(&task_id);
            self.cluster.task_ended(task_id);
        }
        let Some(entry) = self.task_sets.get_mut(&key) else {
            return Vec::new();
        };
        let events = match status {
            TaskStatus::Running => {
                entry.manager.handle_task_running(task_id);
                Vec::new()
            }
            TaskStatus::Finished { result } => {
                match entry.manager.can_fetch_more_results(result.len() as u64) {
                    Ok(()) => entry.manager.handle_successful_task(task_id, result, now),
                    Err(mut aborted) => {
                        let reason = crate::TaskFailedReason::TaskKilled {
                            reason: "Tasks result size has exceeded maxResultSize".into(),
                        };
                        aborted.extend(entry.manager.handle_failed_task(
                            task_id,
                            crate::TaskState::Killed,
                            reason,
                            now,
                        ));
                        aborted
                    }
                }
            }
            TaskStatus::Failed { reason } => {
                entry
                    .manager
                    .handle_failed_task(task_id, crate::TaskState::Failed, reason, now)
            }
            TaskStatus::Killed { reason } => entry.manager.handle_failed_task(
                task_id,
                crate::TaskState::Killed,
                crate::TaskFailedReason::TaskKilled { reason },
                now,
            ),
        };
        self.translate(key, events)
    }

    /// An executor is gone: its running attempts fail (counted or not by the reason), and
    /// it gets no more offers. A `Pending` reason keeps its attempts until the real reason
    /// comes (Spark's `LossReasonPending`).
    ///
    /// `slots` is how many tasks the executor ran at once (its cores over `ember.task.cpus`).
    /// An executor runs what it is sent in launch order, so its `slots` oldest attempts had
    /// started even if their RUNNING report had not come yet: those count as running when
    /// the loss is the application's. Without this, a task that kills its executor at once
    /// would never count a failure and be retried forever. 0 keeps Spark's rule (only
    /// reported RUNNING counts).
    pub fn executor_lost(
        &mut self,
        executor: &ExecutorId,
        reason: &ExecutorLossReason,
        slots: u32,
        now: Instant,
    ) -> Vec<SchedulerEvent> {
        let Some(host) = self.cluster.host_of(executor).map(str::to_string) else {
            log::debug!("Lost an executor {executor} the scheduler never saw");
            return Vec::new();
        };
        if *reason == ExecutorLossReason::Pending {
            self.cluster.mark_pending_loss(executor);
            return Vec::new();
        }
        log::info!("Lost executor {executor} on {host}: {reason}");
        let mut running = self.cluster.remove_executor(executor);
        for task_id in &running {
            self.task_to_set.remove(task_id);
        }
        // Task ids grow in launch order.
        running.sort_unstable();
        let started: TaskIdSet = running.iter().take(slots as usize).copied().collect();
        let keys: Vec<TaskSetKey> = self.task_sets.keys().copied().collect();
        let mut events = Vec::new();
        for key in keys {
            if let Some(entry) = self.task_sets.get_mut(&key) {
                let happened = entry.manager.executor_lost(
                    executor,
                    &host,
                    reason,
                    &started,
                    now,
                    &self.cluster,
                );
                events.extend(self.translate(key, happened));
            }
        }
        events
    }

    /// Whether the executor is known and not being removed.
    pub fn is_executor_alive(&self, executor: &ExecutorId) -> bool {
        crate::task_set_manager::ClusterView::is_executor_alive(&self.cluster, executor)
    }

    /// Kills one attempt; the caller tells its executor. `None` if the attempt is unknown.
    pub fn kill_task(&self, task_id: TaskId) -> Option<ExecutorId> {
        self.executor_of_task(task_id).cloned()
    }

    /// The executor an attempt was launched on, while its task set runs and it has not
    /// ended; `None` otherwise.
    pub fn executor_of_task(&self, task_id: TaskId) -> Option<&ExecutorId> {
        let key = self.task_to_set.get(&task_id)?;
        self.task_sets
            .get(key)
            .and_then(|e| e.manager.executor_of(task_id))
    }

    /// A running attempt's job, partition, attempt number and launch time, while its task
    /// set runs and it has not ended; `None` otherwise. What a task-end event says of it.
    pub fn attempt_of(&self, task_id: TaskId) -> Option<(JobId, u32, u32, Instant)> {
        let entry = self.task_sets.get(self.task_to_set.get(&task_id)?)?;
        let (partition, attempt, launched_at) = entry.manager.attempt(task_id)?;
        Some((entry.job_id, partition, attempt, launched_at))
    }

    /// Cancels a job: its running attempts are killed with `Stage cancelled: <reason>` and
    /// its task set stops launching.
    pub fn cancel_job(&mut self, job_id: JobId, reason: &str) -> Vec<SchedulerEvent> {
        let keys: Vec<TaskSetKey> = self
            .task_sets
            .iter()
            .filter(|(_, e)| e.job_id == job_id)
            .map(|(k, _)| *k)
            .collect();
        let mut events = Vec::new();
        for key in keys {
            if let Some(entry) = self.task_sets.get_mut(&key) {
                let happened = entry.manager.kill_all_attempts(reason);
                events.extend(self.translate(key, happened));
            }
        }
        events
    }

    /// Aborts the task set of an attempt that could not be sent (too large), and ends the
    /// attempt, which never left the driver.
    pub fn abort_task_set_of(
        &mut self,
        task_id: TaskId,
        message: &str,
        now: Instant,
    ) -> Vec<SchedulerEvent> {
        let Some(&key) = self.task_to_set.get(&task_id) else {
            return Vec::new();
        };
        let mut events = Vec::new();
        if let Some(entry) = self.task_sets.get_mut(&key) {
            let aborted = entry.manager.abort(message.to_string());
            events.extend(self.translate(key, aborted));
        }
        let reason = message.to_string();
        events.extend(self.status_update(task_id, TaskStatus::Killed { reason }, now));
        events
    }

    /// Aborts every task set (the application is dying) with `message`.
    pub fn abort_all(&mut self, message: &str) -> Vec<SchedulerEvent> {
        let keys: Vec<TaskSetKey> = self.task_sets.keys().copied().collect();
        let mut events = Vec::new();
        for key in keys {
            if let Some(entry) = self.task_sets.get_mut(&key) {
                let happened = entry.manager.abort(message.to_string());
                events.extend(self.translate(key, happened));
            }
        }
        events
    }

    /// Looks for tasks to speculate; `true` if new ones were found and offers should be
    /// made.
    pub fn check_speculatable_tasks(&mut self, now: Instant) -> bool {
        if !self.conf.speculation {
            return false;
        }
        let mut found = false;
        for entry in self.task_sets.values_mut() {
            found |= entry.manager.check_speculatable_tasks(now);
        }
        found
    }

    /// Turns a task set's events into the caller's, removing the set when it finishes.
    fn translate(&mut self, key: TaskSetKey, events: Vec<TaskSetEvent>) -> Vec<SchedulerEvent> {
        let Some(job_id) = self.task_sets.get(&key).map(|e| e.job_id) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            match event {
                TaskSetEvent::TaskSucceeded {
                    partition, result, ..
                } => out.push(SchedulerEvent::TaskSucceeded {
                    job_id,
                    partition,
                    result,
                }),
                TaskSetEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                } => out.push(SchedulerEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                }),
                TaskSetEvent::Aborted { message } => {
                    out.push(SchedulerEvent::JobFailed { job_id, message })
                }
                TaskSetEvent::Finished => {
                    if let Some(entry) = self.task_sets.remove(&key) {
                        log::info!(
                            "Removed task set {}, whose tasks have all completed",
                            entry.manager.name()
                        );
                    }
                    self.pools.remove_task_set(key);
                    out.push(SchedulerEvent::TaskSetFinished { job_id });
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for TaskScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskScheduler")
            .field("task_sets", &self.task_sets.len())
            .field("next_task_id", &self.next_task_id)
            .finish()
    }
}
