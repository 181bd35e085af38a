//! Taking a task for an offer and launching it: the search of the pending lists (indexing
//! more tasks when the frontier may hold the answer), then the speculative copies, and the
//! bookkeeping of a launch.

use std::time::Instant;

use crate::ids::{ExecutorId, TaskId};
use crate::locality::TaskLocality;
use crate::task::TaskDescription;

use super::pending::{Candidate, Taken};
use super::records::{Attempt, AttemptPhase, IndexStatus};
use super::{ClusterView, TaskSetManager};

/// Batches one offer may index looking for its task before the frontier summarises every
/// key instead: an executor on a host no task prefers would otherwise index the whole set
/// in its first offer, to learn that none is there.
const SUMMARIZE_AFTER: u32 = 4;

/// A task chosen from the pending lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dequeued {
    pub(super) index: u32,
    pub(super) locality: TaskLocality,
    pub(super) speculative: bool,
}

impl TaskSetManager {
    /// Takes a normal task if one fits, else a speculative copy (Spark's `dequeueTask`).
    pub(super) fn dequeue(
        &mut self,
        executor: &ExecutorId,
        host: &str,
        allowed: TaskLocality,
        view: &dyn ClusterView,
    ) -> Option<Dequeued> {
        let mut batches = 0;
        while self.pending_total() > 0 {
            let tasks = &self.tasks;
            let frontier = &self.frontier;
            let taken = self.pending.take(
                executor.as_str(),
                host,
                allowed,
                || view.rack_for_host(host),
                |index| match tasks.get(index as usize).map(|t| t.status) {
                    Some(IndexStatus::Pending) => Candidate::Take,
                    _ => Candidate::Stale,
                },
                |source| frontier.may_hold(source),
            );
            match taken {
                Taken::Task(index, locality) => {
                    return Some(Dequeued {
                        index,
                        locality,
                        speculative: false,
                    })
                }
                Taken::Nothing => break,
                // The task a full index would give may be behind the frontier.
                Taken::NeedMore => {
                    batches += 1;
                    if batches == SUMMARIZE_AFTER
                        && self
                            .frontier
                            .summarize_once(&self.task_set.tasks, &mut self.racks, view)
                    {
                        // Ask again, with every key's last index known: a list no task
                        // behind the frontier names no longer asks for more.
                        continue;
                    }
                    self.index_batch(view);
                }
            }
        }
        let tasks = &self.tasks;
        if self.speculatable > 0 {
            // A host no launch ever went to cannot have run an attempt.
            let host_id = self.hosts.get(host);
            let taken = self.speculative.take(
                executor.as_str(),
                host,
                allowed,
                || view.rack_for_host(host),
                |index| {
                    let Some(task) = tasks.get(index as usize) else {
                        return Candidate::Stale;
                    };
                    match task.status {
                        IndexStatus::Running {
                            copies: 1,
                            speculatable: true,
                        } => match host_id {
                            Some(id) if task.hosts_tried.contains(id) => Candidate::Skip,
                            _ => Candidate::Take,
                        },
                        _ => Candidate::Stale,
                    }
                },
                // Copies are only ever pushed: nothing is behind a frontier.
                |_| false,
            );
            if let Taken::Task(index, locality) = taken {
                return Some(Dequeued {
                    index,
                    locality,
                    speculative: true,
                });
            }
        }
        None
    }

    /// Launch bookkeeping (Spark's `prepareLaunchingTask`): the task's record, the attempt,
    /// and the description sent to the executor.
    pub(super) fn launch(
        &mut self,
        dequeued: Dequeued,
        executor: &ExecutorId,
        host: &str,
        task_cpus: u32,
        task_id: TaskId,
        now: Instant,
    ) -> Option<TaskDescription> {
        let index = dequeued.index;
        let (Some(record), Some(spec)) = (
            self.tasks.get_mut(index as usize),
            self.task_set.tasks.get(index as usize),
        ) else {
            return None;
        };
        match (record.status, dequeued.speculative) {
            (IndexStatus::Pending, false) => {
                self.pending_counts.remove(record.levels);
                record.status = IndexStatus::Running {
                    copies: 1,
                    speculatable: false,
                };
            }
            (IndexStatus::Running { copies, .. }, true) => {
                self.speculatable = self.speculatable.saturating_sub(1);
                record.status = IndexStatus::Running {
                    copies: copies + 1,
                    speculatable: false,
                };
            }
            // `dequeue` only returns tasks in one of the states above.
            _ => return None,
        }
        let attempt_number = record.attempts;
        record.attempts += 1;
        if self.speculation.enabled() {
            record.hosts_tried.insert(self.hosts.intern(host));
        }
        self.running.insert(
            task_id,
            Attempt {
                index,
                attempt_number,
                executor: executor.clone(),
                launched_at: now,
                locality: dequeued.locality,
                speculative: dequeued.speculative,
                phase: AttemptPhase::Launching,
                killed_by: None,
            },
        );
        if log::log_enabled!(log::Level::Debug) {
            let name = crate::task::task_name(
                index,
                attempt_number,
                self.task_set.stage_id,
                self.task_set.stage_attempt,
                task_id,
            );
            log::debug!(
                "Starting {name} ({host}, executor {executor}, partition {}, {}{})",
                spec.partition,
                dequeued.locality,
                if dequeued.speculative {
                    ", speculative"
                } else {
                    ""
                }
            );
        }
        Some(TaskDescription {
            task_id,
            attempt_number,
            executor_id: executor.clone(),
            index,
            partition: spec.partition,
            job_id: self.task_set.job_id,
            stage_id: self.task_set.stage_id,
            stage_attempt: self.task_set.stage_attempt,
            function: std::sync::Arc::clone(&self.task_set.function),
            properties: self.task_set.properties.clone(),
            cpus: task_cpus,
            input: spec.input.clone(),
        })
    }
}
