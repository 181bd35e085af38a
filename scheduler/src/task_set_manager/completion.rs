//! How attempts end: success, failure, executor loss; and how task sets end: abort, cancel,
//! all tasks done (Spark's `handleSuccessfulTask`, `handleFailedTask`, `executorLost`,
//! `abort`, `killAllTaskAttempts`, `canFetchMoreResults`, `maybeFinishTaskSet`).

use std::time::Instant;

use bytes::Bytes;

use crate::ids::{ExecutorId, TaskId, TaskIdSet};
use crate::task::{ExecutorLossReason, TaskFailedReason, TaskState};

use super::records::{AttemptPhase, IndexStatus, TaskSetPhase, ZombieCause};
use super::{ClusterView, TaskSetEvent, TaskSetManager};

/// The kill reason when another attempt of the task succeeded.
const ANOTHER_ATTEMPT_SUCCEEDED: &str = "another attempt succeeded";

impl TaskSetManager {
    /// An attempt finished with `result`. If its task was not done yet, the result goes to
    /// the job (`TaskSucceeded`), the task's failure count resets (SPARK-37580) and every
    /// other running attempt of it is killed; the set turns zombie when all tasks are done.
    /// An attempt that finishes after being killed for another attempt's success is handled
    /// as killed (SPARK-13343) and its result dropped. Unknown or ended attempts are ignored.
    pub fn handle_successful_task(
        &mut self,
        task_id: TaskId,
        result: Bytes,
        now: Instant,
    ) -> Vec<TaskSetEvent> {
        let Some(attempt) = self.running.get(&task_id) else {
            log::debug!(
                "{}: ignoring success of unknown or ended TID {task_id}",
                self.name
            );
            return Vec::new();
        };
        let index = attempt.index;
        let status = self.tasks.get(index as usize).map(|t| t.status);
        if status == Some(IndexStatus::Succeeded) && attempt.killed_by.is_some() {
            // Its result was counted by `can_fetch_more_results` before it got here.
            self.results.undo(result.len() as u64);
            return self.handle_failed_task(
                task_id,
                TaskState::Killed,
                TaskFailedReason::TaskKilled {
                    reason: "Finish but did not commit due to another attempt succeeded".into(),
                },
                now,
            );
        }
        let Some(attempt) = self.running.remove(&task_id) else {
            return Vec::new();
        };
        let duration = now.saturating_duration_since(attempt.launched_at);
        self.speculation.record_success(duration);
        let mut events = Vec::new();
        if let Some(IndexStatus::Running { copies, .. }) = status {
            if copies > 1 {
                self.kill_other_attempts(index, task_id, &mut events);
            }
        }
        let num_tasks = self.task_set.tasks.len();
        let active = self.is_active();
        let Some(record) = self.tasks.get_mut(index as usize) else {
            return events;
        };
        match record.status {
            IndexStatus::Running { speculatable, .. } => {
                if speculatable {
                    self.speculatable = self.speculatable.saturating_sub(1);
                }
                record.status = IndexStatus::Succeeded;
                record.failures = 0;
                self.succeeded += 1;
                log::debug!(
                    "Finished task {index}.{} in stage {} (TID {task_id}) in {duration:?} on \
                     executor {} ({}{}) ({}/{})",
                    attempt.attempt_number,
                    self.task_set.stage_name(),
                    attempt.executor,
                    attempt.locality,
                    if attempt.speculative {
                        ", speculative"
                    } else {
                        ""
                    },
                    self.succeeded,
                    num_tasks
                );
                if self.succeeded == num_tasks && active {
                    self.phase = TaskSetPhase::Zombie(ZombieCause::AllSucceeded);
                }
                let partition = self
                    .task_set
                    .tasks
                    .get(index as usize)
                    .map_or(0, |spec| spec.partition);
                events.push(TaskSetEvent::TaskSucceeded {
                    task_id,
                    index,
                    partition,
                    result,
                });
            }
            IndexStatus::Succeeded | IndexStatus::Pending => log::info!(
                "{}: ignoring success of TID {task_id}: task {index} has already completed \
                 successfully",
                self.name
            ),
        }
        self.maybe_finish(&mut events);
        events
    }

    /// An attempt ended without a result. Failures that count
    /// ([`TaskFailedReason::counts_towards_failures`]) count while the set is active; the
    /// `max_task_failures`-th aborts the set with `Task <index> in stage <stage>.<attempt>
    /// failed <n> times, most recent failure: <reason>`. Otherwise the task is queued again
    /// unless another attempt succeeded or still runs. Unknown or ended attempts are ignored.
    pub fn handle_failed_task(
        &mut self,
        task_id: TaskId,
        state: TaskState,
        reason: TaskFailedReason,
        _now: Instant,
    ) -> Vec<TaskSetEvent> {
        let Some(attempt) = self.running.remove(&task_id) else {
            log::debug!(
                "{}: ignoring {state:?} of unknown or ended TID {task_id}",
                self.name
            );
            return Vec::new();
        };
        let index = attempt.index;
        let active = self.is_active();
        let mut events = Vec::new();
        let Some(record) = self.tasks.get_mut(index as usize) else {
            return events;
        };
        let requeue = match record.status {
            IndexStatus::Running {
                copies,
                speculatable,
            } if copies > 1 => {
                record.status = IndexStatus::Running {
                    copies: copies - 1,
                    speculatable,
                };
                false
            }
            IndexStatus::Running { speculatable, .. } => {
                // The last attempt is gone: the task is plainly pending again, and a wanted
                // speculative copy is moot.
                if speculatable {
                    self.speculatable = self.speculatable.saturating_sub(1);
                }
                record.status = IndexStatus::Pending;
                self.pending_counts.add(record.levels);
                true
            }
            IndexStatus::Succeeded | IndexStatus::Pending => false,
        };
        let lost = format!(
            "Lost task {index}.{} in stage {} (TID {task_id}) (executor {}): {reason}",
            attempt.attempt_number,
            self.task_set.stage_name(),
            attempt.executor
        );
        let counts = reason.counts_towards_failures();
        if counts {
            log::warn!("{lost}");
        } else {
            log::info!("{lost} (not counted towards the task's failures)");
        }
        if active && counts {
            record.failures += 1;
            if record.failures >= self.max_task_failures {
                let message = format!(
                    "Task {index} in stage {} failed {} times, most recent failure: {reason}",
                    self.task_set.stage_name(),
                    record.failures
                );
                log::error!(
                    "Task {index} in stage {} failed {} times; aborting job",
                    self.task_set.stage_name(),
                    record.failures
                );
                self.abort_into(message, &mut events);
                return events;
            }
        }
        // A zombie queues nothing: it will launch nothing more.
        if requeue && active {
            if let Some(spec) = self.task_set.tasks.get(index as usize) {
                self.pending
                    .push(index, &spec.preferred_locations, &self.racks);
            }
        }
        self.maybe_finish(&mut events);
        events
    }

    /// `executor` (on `host`) is gone: every attempt running there fails with
    /// `ExecutorLostFailure`, then the valid locality levels are recomputed. The failure is
    /// the task's fault only if the loss was the application's (`exit_caused_by_app`) and
    /// the attempt had started: it reported running, or it is in `started`, the attempts
    /// the caller knows had started without their report (Ember's executors hold back the
    /// RUNNING report of a short task). An attempt still launching never reached the
    /// executor as far as we know (SPARK-39955). A pending reason (`None`) is treated as
    /// the application's, as Spark does for reasons it does not know.
    pub fn executor_lost(
        &mut self,
        executor: &ExecutorId,
        host: &str,
        reason: &ExecutorLossReason,
        started: &TaskIdSet,
        now: Instant,
        view: &dyn ClusterView,
    ) -> Vec<TaskSetEvent> {
        let mut lost: Vec<(TaskId, AttemptPhase)> = self
            .running
            .iter()
            .filter(|(_, attempt)| &attempt.executor == executor)
            .map(|(tid, attempt)| (tid, attempt.phase))
            .collect();
        lost.sort_unstable_by_key(|&(tid, _)| tid);
        if !lost.is_empty() {
            log::info!(
                "{}: executor {executor} on {host} lost ({reason}); failing {} attempts",
                self.name,
                lost.len()
            );
        }
        let app_fault = reason.exit_caused_by_app().unwrap_or(true);
        let description = reason.to_string();
        let mut events = Vec::new();
        for (tid, phase) in lost {
            let failure = TaskFailedReason::ExecutorLostFailure {
                executor_id: executor.clone(),
                exit_caused_by_app: app_fault
                    && (phase == AttemptPhase::Running || started.contains(&tid)),
                reason: Some(description.clone()),
            };
            events.extend(self.handle_failed_task(tid, TaskState::Failed, failure, now));
        }
        self.recompute_locality(view);
        events
    }

    /// Aborts the task set with `message`: it turns zombie and, if it was active, reports
    /// `Aborted`; `Finished` follows once nothing runs.
    pub fn abort(&mut self, message: String) -> Vec<TaskSetEvent> {
        let mut events = Vec::new();
        self.abort_into(message, &mut events);
        events
    }

    /// Cancel: kill every running attempt with reason `Stage cancelled: <reason>`, then turn
    /// zombie (Spark's `killAllTaskAttempts` and `suspend`). No `Aborted`: the scheduler
    /// knows why it cancelled. `Finished` comes once the killed attempts have ended.
    pub fn kill_all_attempts(&mut self, reason: &str) -> Vec<TaskSetEvent> {
        let mut events: Vec<TaskSetEvent> = self
            .running_task_ids()
            .into_iter()
            .filter_map(|task_id| {
                let executor = &self.running.get(&task_id)?.executor;
                Some(TaskSetEvent::KillTask {
                    task_id,
                    executor_id: executor.clone(),
                    reason: format!("Stage cancelled: {reason}"),
                })
            })
            .collect();
        if self.is_active() {
            log::info!("{}: cancelled ({reason})", self.name);
            self.phase = TaskSetPhase::Zombie(ZombieCause::Cancelled);
        }
        self.maybe_finish(&mut events);
        events
    }

    /// Counts a result of `size` bytes against `ember.driver.maxResultSize` before it is
    /// accepted. Over the limit, the result must be dropped (Spark then reports the attempt
    /// killed) and the task set is aborted with `Total size of serialized results of <n>
    /// tasks (<size>) is bigger than ember.driver.maxResultSize (<max>)`; the error carries
    /// the abort's events (none if the set was already a zombie). `size` should be the
    /// result's length, which [`TaskSetManager::handle_successful_task`] takes back if the
    /// result turns out to be a discarded duplicate.
    pub fn can_fetch_more_results(&mut self, size: u64) -> Result<(), Vec<TaskSetEvent>> {
        match self.results.add(size) {
            Ok(()) => Ok(()),
            Err(message) => {
                log::error!("{message}");
                Err(self.abort(message))
            }
        }
    }

    /// Zombie first: the job must not hear `Aborted` from a set that already finished or
    /// was cancelled.
    pub(crate) fn abort_into(&mut self, message: String, events: &mut Vec<TaskSetEvent>) {
        match self.phase {
            TaskSetPhase::Active => {
                log::error!("{}: aborting: {message}", self.name);
                self.phase = TaskSetPhase::Zombie(ZombieCause::Aborted);
                events.push(TaskSetEvent::Aborted { message });
            }
            TaskSetPhase::Zombie(cause) | TaskSetPhase::Finished(cause) => log::info!(
                "{}: not aborting, already stopped ({cause}): {message}",
                self.name
            ),
        }
        self.maybe_finish(events);
    }

    /// Kills every running attempt of `index` but `winner`.
    fn kill_other_attempts(&mut self, index: u32, winner: TaskId, events: &mut Vec<TaskSetEvent>) {
        // Only reached with several copies running (speculation), so the O(running) scan
        // is rare.
        let mut others: Vec<TaskId> = self
            .running
            .iter()
            .filter(|(tid, attempt)| attempt.index == index && *tid != winner)
            .map(|(tid, _)| tid)
            .collect();
        others.sort_unstable();
        for tid in others {
            if let Some(attempt) = self.running.get_mut(&tid) {
                log::info!(
                    "Killing attempt {} of task {index} in stage {} (TID {tid}) on executor {} \
                     as TID {winner} succeeded",
                    attempt.attempt_number,
                    self.task_set.stage_name(),
                    attempt.executor
                );
                attempt.killed_by = Some(winner);
                events.push(TaskSetEvent::KillTask {
                    task_id: tid,
                    executor_id: attempt.executor.clone(),
                    reason: ANOTHER_ATTEMPT_SUCCEEDED.to_string(),
                });
            }
        }
    }

    /// A zombie with nothing running is finished; report it once (Spark's
    /// `maybeFinishTaskSet`).
    fn maybe_finish(&mut self, events: &mut Vec<TaskSetEvent>) {
        if let TaskSetPhase::Zombie(cause) = self.phase {
            if self.running.is_empty() {
                log::debug!("{}: finished ({cause})", self.name);
                self.phase = TaskSetPhase::Finished(cause);
                events.push(TaskSetEvent::Finished);
            }
        }
    }
}
