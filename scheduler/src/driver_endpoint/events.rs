//! What the driver endpoint tells its [`EventSink`]: task ends, executors added and
//! removed. Each helper returns at once when there is no sink, before gathering anything,
//! so a driver without a listener pays one branch per event.

use std::sync::Arc;
use std::time::Instant;

use super::DriverEndpoint;
use crate::events::{DriverEvent, EventSink, TaskEnd, TaskOutcome};
use crate::messages::TaskUpdate;
use crate::{ExecutorId, ExecutorLossReason, TaskStatus};

impl DriverEndpoint {
    /// Driver events (task ends, executors added and removed) go to `sink`, which must
    /// never block (see [`EventSink`]).
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// What a finished update will tell the sink, taken before the scheduler forgets the
    /// attempt. `None` without a sink, for an unfinished update, or for an attempt the
    /// scheduler no longer tracks (its late duplicate: it was told of already).
    pub(super) fn task_end_of(
        &self,
        executor_id: &ExecutorId,
        update: &TaskUpdate,
        now: Instant,
    ) -> Option<TaskEnd> {
        self.events.as_ref()?;
        let outcome = match &update.status {
            TaskStatus::Running => return None,
            TaskStatus::Finished { .. } => TaskOutcome::Success,
            TaskStatus::Failed { reason } => TaskOutcome::Failed {
                reason: reason.to_string(),
            },
            TaskStatus::Killed { reason } => TaskOutcome::Killed {
                reason: reason.clone(),
            },
        };
        self.attempt_end(executor_id, update.task_id, outcome, now)
    }

    fn attempt_end(
        &self,
        executor_id: &ExecutorId,
        task_id: crate::TaskId,
        outcome: TaskOutcome,
        now: Instant,
    ) -> Option<TaskEnd> {
        let (job_id, partition, attempt, launched_at) = self.scheduler.attempt_of(task_id)?;
        Some(TaskEnd {
            job_id,
            partition,
            task_id,
            attempt,
            executor_id: executor_id.clone(),
            host: self.executors.get(executor_id).map(|e| e.host.clone()),
            duration: now.saturating_duration_since(launched_at),
            outcome,
        })
    }

    /// The ends of the attempts an executor's loss takes with it (they report nothing
    /// themselves), to post once the loss is handled; `host` is the executor's, which is
    /// no longer among the known ones. Empty without a sink.
    pub(super) fn lost_task_ends(
        &self,
        executor_id: &ExecutorId,
        host: &str,
        reason: &ExecutorLossReason,
    ) -> Vec<TaskEnd> {
        if self.events.is_none() {
            return Vec::new();
        }
        let now = Instant::now();
        let why = format!("ExecutorLostFailure (executor {executor_id} exited: {reason})");
        self.scheduler
            .cluster()
            .attempts_on(executor_id)
            .into_iter()
            .filter_map(|task_id| {
                let outcome = TaskOutcome::Failed {
                    reason: why.clone(),
                };
                let mut end = self.attempt_end(executor_id, task_id, outcome, now)?;
                end.host = Some(host.to_string());
                Some(end)
            })
            .collect()
    }

    /// Hands `event` to the sink, if any.
    pub(super) fn post(&self, event: impl FnOnce() -> DriverEvent) {
        if let Some(sink) = &self.events {
            sink.post(event());
        }
    }

    /// Tells the sink of the executors known before any registered (the in-process one of
    /// the local modes), so that its log has every executor it has task ends for.
    pub(super) fn post_known_executors(&self) {
        for (id, e) in &self.executors {
            self.post(|| DriverEvent::ExecutorAdded {
                executor_id: id.clone(),
                host: e.host.clone(),
                cores: e.total_cores,
            });
        }
    }
}
