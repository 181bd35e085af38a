//! Executors joining and leaving the driver: registration, loss (at once, or pending the
//! cluster manager's reason after a dropped connection), silence, and what happens when
//! none is left for too long.

use std::time::Instant;

use rpc_env::{EndpointContext, EndpointRef};

use super::{DriverEndpoint, ExecutorData, ExecutorSink, Stage};
use crate::job::JobError;
use crate::messages::{DriverProtocol, ExecutorMessage, ExecutorProtocol, HeartbeatControl};
use crate::{DriverEvent, ExecutorId, ExecutorLossReason};

/// The message Spark gives for an executor whose connection dropped.
pub const DISASSOCIATED: &str = "Remote RPC client disassociated. Likely due to containers \
     exceeding thresholds, or network issues. Check driver logs for WARN messages.";

/// How an executor whose connection dropped, and whose real end nobody reported, is lost.
fn disassociated() -> ExecutorLossReason {
    ExecutorLossReason::ProcessLost {
        message: DISASSOCIATED.to_string(),
        worker_host: None,
        caused_by_app: true,
    }
}

impl DriverEndpoint {
    pub(super) fn remove_executor(&mut self, executor_id: &ExecutorId, reason: ExecutorLossReason) {
        if reason == ExecutorLossReason::Pending {
            self.loss_pending(executor_id, None);
            return;
        }
        let Some(data) = self.executors.remove(executor_id) else {
            log::debug!("Asked to remove non-existent executor {executor_id}");
            return;
        };
        log::info!("Removing executor {executor_id} on {}: {reason}", data.host);
        let lost = self.lost_task_ends(executor_id, &data.host, &reason);
        self.post(|| DriverEvent::ExecutorRemoved {
            executor_id: executor_id.clone(),
            reason: reason.to_string(),
        });
        if self.executors.is_empty() {
            self.no_executors_since = Some(Instant::now());
        }
        if let ExecutorSink::Remote(r) = &data.sink {
            // It may still be up (its heartbeats stopped, not its process): it must not run
            // on unseen. For one already gone the send just fails.
            if let Err(e) = r.send(ExecutorMessage::StopExecutor) {
                log::debug!("Could not tell removed executor {executor_id} to stop: {e}");
            }
        }
        if let Some(hb) = &self.heartbeat {
            let _ = hb.send(HeartbeatControl::ExecutorRemoved {
                executor_id: executor_id.clone(),
            });
        }
        // Its oldest attempts, one per task slot, had started (it runs tasks in launch
        // order), reported RUNNING or not.
        let slots = data.total_cores / self.scheduler.conf().task_cpus.max(1);
        let events = self
            .scheduler
            .executor_lost(executor_id, &reason, slots, Instant::now());
        for end in lost {
            self.post(|| DriverEvent::TaskEnd(end));
        }
        self.handle_events(events);
        self.make_offers(None);
    }

    /// The real loss reason comes later (from the cluster manager): keep the executor known,
    /// give it nothing new, and let its tasks wait for that reason, until `until` if given.
    fn loss_pending(&mut self, executor_id: &ExecutorId, until: Option<Instant>) {
        let Some(e) = self.executors.get_mut(executor_id) else {
            return;
        };
        e.stage = e.stage.disconnected(until);
        if let Some(due) = e.stage.removal_due() {
            self.next_removal_due = Some(self.next_removal_due.map_or(due, |d| d.min(due)));
        }
        let events = self.scheduler.executor_lost(
            executor_id,
            &ExecutorLossReason::Pending,
            0,
            Instant::now(),
        );
        self.handle_events(events);
    }

    /// An executor's connection is gone. In standalone mode it takes no more tasks and its
    /// tasks wait for the master's word on how it ended; otherwise it is removed now.
    pub(super) fn executor_unreachable(&mut self, executor_id: &ExecutorId) {
        if self
            .executors
            .get(executor_id)
            .is_none_or(|e| e.stage.is_disconnected())
        {
            return;
        }
        match self.disconnect_removal_delay {
            Some(delay) => {
                log::info!(
                    "Executor {executor_id} disconnected; waiting up to {} ms for the master \
                     to say why",
                    delay.as_millis()
                );
                self.loss_pending(executor_id, Some(Instant::now() + delay));
            }
            None => self.remove_executor(executor_id, disassociated()),
        }
    }

    /// Removes the disconnected executors due at `now`, in the order they became due.
    fn remove_due(&mut self, now: Instant) {
        if self.next_removal_due.is_none_or(|at| at > now) {
            return;
        }
        let mut due: Vec<(Instant, ExecutorId)> = self
            .executors
            .iter()
            .filter_map(|(id, e)| Some((e.stage.removal_due()?, id.clone())))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        for (_, executor_id) in due {
            self.remove_executor(&executor_id, disassociated());
        }
        self.next_removal_due = self
            .executors
            .values()
            .filter_map(|e| e.stage.removal_due())
            .min();
    }

    /// Removes disconnected executors whose real loss reason never came, and fails the
    /// running jobs once the application has been without executors for the grace period.
    pub(super) fn check_deadlines(&mut self, now: Instant) {
        self.remove_due(now);
        let grace = self.scheduler.conf().executor_loss_grace;
        let Some(since) = self.no_executors_since else {
            return;
        };
        if now.duration_since(since) < grace || !self.scheduler.has_task_sets() {
            return;
        }
        let message = format!(
            "every executor of the application was lost and none came back within {} ms \
             ({})",
            grace.as_millis(),
            crate::conf::keys::EXECUTOR_LOSS_GRACE
        );
        log::error!("Failing all running jobs: {message}");
        let events = self.scheduler.abort_all(&message);
        self.handle_events(events);
        for job in self.jobs.values() {
            job.fail(JobError::Failed {
                message: message.clone(),
            });
        }
    }

    pub(super) fn register_executor(
        &mut self,
        ctx: &EndpointContext<'_, DriverProtocol>,
        executor_id: ExecutorId,
        executor_ref: EndpointRef<ExecutorProtocol>,
        hostname: String,
        cores: u32,
    ) -> Result<(), String> {
        if self.executors.contains_key(&executor_id) {
            return Err(format!("Duplicate executor ID: {executor_id}"));
        }
        // Executors run client-mode envs: they are known by the address their messages
        // come from. That address, checked by rpc-env against the connection, is the one
        // their later messages must come from, whatever address the ref names.
        let address = ctx
            .sender()
            .cloned()
            .or_else(|| executor_ref.rpc_address().cloned());
        self.no_executors_since = None;
        log::info!(
            "Registered executor {executor_id} ({}) with {cores} core(s)",
            address
                .as_ref()
                .map_or_else(|| "?".to_string(), |a| a.host_port())
        );
        self.post(|| DriverEvent::ExecutorAdded {
            executor_id: executor_id.clone(),
            host: hostname.clone(),
            cores,
        });
        if let Some(hook) = &self.registration_hook {
            hook(&executor_id);
        }
        self.executors.insert(
            executor_id.clone(),
            ExecutorData {
                sink: ExecutorSink::Remote(executor_ref),
                host: hostname,
                address: address.clone(),
                total_cores: cores,
                busy_cores: 0,
                stage: Stage::Registered,
            },
        );
        if let Some(hb) = &self.heartbeat {
            let _ = hb.send(HeartbeatControl::ExecutorRegistered {
                executor_id,
                address,
            });
        }
        Ok(())
    }

    /// Its heartbeats stopped: it may still run, hung, so its cluster manager is asked to
    /// kill it before it is removed (Spark's `killAndReplaceExecutor`).
    pub(super) fn executor_unresponsive(&mut self, executor_id: &ExecutorId, silent_ms: u64) {
        if !self.executors.contains_key(executor_id) {
            return;
        }
        if let Some(kill) = &self.executor_killer {
            kill(executor_id);
        }
        let reason = ExecutorLossReason::ProcessLost {
            message: format!("Executor heartbeat timed out after {silent_ms} ms"),
            worker_host: None,
            caused_by_app: true,
        };
        self.remove_executor(executor_id, reason);
    }
}
