//! The driver endpoint's handlers: which message reaches which method. What executors send
//! over the network (`DriverMessage`, `DriverAsk`) is accepted only from the connection of
//! the executor it names; what the driver's own process says (`DriverControl`) cannot come
//! from the network at all.

use std::time::{Duration, Instant};

use rpc_env::{EndpointContext, HandlerResult, RpcAddress, RpcEndpoint, RpcEnv, Threading, Ticker};

use super::{DriverEndpoint, ExecutorData, ExecutorSink};
use crate::job::JobError;
use crate::messages::{DriverAsk, DriverControl, DriverMessage, DriverProtocol, TaskUpdate};
use crate::ExecutorId;

impl DriverEndpoint {
    /// How many messages from the network were refused because their sender was not the
    /// executor they named (also asked with `DriverControl::RefusedMessages`).
    pub fn refused_messages(&self) -> u64 {
        self.refused.count()
    }

    /// Whether `sender` is the connection `executor_id` registered from. An in-process
    /// executor has no connection, so nothing from the network speaks for it. A refusal is
    /// counted and logged once per peer. A message naming an executor the driver does not
    /// know (never registered, or removed: its late updates) is not taken either, but is
    /// no one's to refuse: its tasks, if any, were resubmitted when it was removed.
    fn sent_by_executor(
        &mut self,
        sender: Option<&RpcAddress>,
        executor_id: &ExecutorId,
        what: &str,
    ) -> bool {
        let Some(e) = self.executors.get(executor_id) else {
            log::debug!(
                "Ignored {what} of unknown executor {:?}",
                executor_id.as_str()
            );
            return false;
        };
        let registered = match e.sink {
            ExecutorSink::Remote(_) => e.address.as_ref(),
            ExecutorSink::Local(_) => None,
        };
        if registered.is_some() && registered == sender {
            return true;
        }
        self.refused.refuse(
            "The driver endpoint",
            sender,
            format_args!("{what} naming executor {:?}", executor_id.as_str()),
        );
        false
    }

    /// A remote executor's updates, once its sender is checked: an update of a task that
    /// runs on another executor is refused (one executor cannot report for another).
    fn remote_status_update(
        &mut self,
        sender: Option<&RpcAddress>,
        executor_id: &ExecutorId,
        updates: Vec<TaskUpdate>,
    ) {
        // An attempt the scheduler no longer tracks (its set is gone) is its to ignore.
        let runs_here = |scheduler: &crate::TaskScheduler, u: &TaskUpdate| {
            scheduler
                .executor_of_task(u.task_id)
                .is_none_or(|on| on == executor_id)
        };
        // The common case, every update its own, costs a lookup per update and no copy.
        let updates = match updates.iter().find(|u| !runs_here(&self.scheduler, u)) {
            None => updates,
            Some(foreign) => {
                self.refused.refuse(
                    "The driver endpoint",
                    sender,
                    format_args!(
                        "a StatusUpdate of executor {:?} for TID {}, which runs elsewhere",
                        executor_id.as_str(),
                        foreign.task_id
                    ),
                );
                updates
                    .into_iter()
                    .filter(|u| runs_here(&self.scheduler, u))
                    .collect()
            }
        };
        if !updates.is_empty() {
            self.status_update(executor_id, updates);
        }
    }
}

impl RpcEndpoint for DriverEndpoint {
    type Protocol = DriverProtocol;

    /// Its handlers never block (they compute and send), so messages from executors may be
    /// handled right on the IO thread that read them.
    fn threading(&self) -> Threading {
        Threading::Inline
    }

    fn on_start(&mut self, ctx: &EndpointContext<'_, DriverProtocol>) -> HandlerResult {
        self.post_known_executors();
        let conf = self.scheduler.conf().clone();
        if self.periodic_revive {
            let me = ctx.control_ref();
            self.tickers.push(Ticker::start(
                "driver-revive-thread",
                conf.revive_interval,
                move || me.send(DriverControl::ReviveOffers).is_ok(),
            )?);
            // Deadlines are seconds long; a tenth of the shortest keeps them close enough.
            let shortest = self
                .disconnect_removal_delay
                .map_or(conf.executor_loss_grace, |d| {
                    d.min(conf.executor_loss_grace)
                });
            let interval = (shortest / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
            let me = ctx.control_ref();
            self.tickers
                .push(Ticker::start("driver-deadlines", interval, move || {
                    me.send(DriverControl::CheckDeadlines).is_ok()
                })?);
        }
        if conf.speculation {
            let me = ctx.control_ref();
            self.tickers.push(Ticker::start(
                "task-scheduler-speculation",
                conf.speculation_interval,
                move || me.send(DriverControl::CheckSpeculation).is_ok(),
            )?);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, DriverProtocol>,
        msg: DriverMessage,
    ) -> HandlerResult {
        match msg {
            DriverMessage::LaunchedExecutor { executor_id } => {
                if self.sent_by_executor(ctx.sender(), &executor_id, "a LaunchedExecutor") {
                    if let Some(e) = self.executors.get_mut(&executor_id) {
                        e.stage = e.stage.launched();
                        self.make_offers(Some(&executor_id));
                    }
                }
            }
            DriverMessage::StatusUpdate {
                executor_id,
                updates,
            } => {
                if self.sent_by_executor(ctx.sender(), &executor_id, "a StatusUpdate") {
                    self.remote_status_update(ctx.sender(), &executor_id, updates);
                }
            }
        }
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, DriverProtocol>,
        ask: DriverAsk,
    ) -> HandlerResult {
        match ask {
            DriverAsk::RegisterExecutor {
                executor_id,
                executor_ref,
                hostname,
                cores,
                log_urls: _,
                reply,
            } => match self.register_executor(ctx, executor_id, executor_ref, hostname, cores) {
                Ok(()) => reply.send(true),
                Err(message) => reply.fail(message),
            },
            DriverAsk::RetrieveAppConfig { reply } => reply.send(self.app_config.clone()),
        }
        Ok(())
    }

    fn receive_control(
        &mut self,
        _ctx: &EndpointContext<'_, DriverProtocol>,
        msg: DriverControl,
    ) -> HandlerResult {
        match msg {
            DriverControl::SubmitJob { task_set, job } => {
                self.jobs.insert(job.job_id(), job);
                self.scheduler.submit_tasks(task_set, Instant::now());
                self.make_offers(None);
            }
            DriverControl::CancelJob { job_id, reason } => {
                let events = self.scheduler.cancel_job(job_id, &reason);
                if let Some(job) = self.jobs.get(&job_id) {
                    job.fail(JobError::Cancelled { reason });
                }
                self.handle_events(events);
            }
            DriverControl::AbortAll { message } => {
                let events = self.scheduler.abort_all(&message);
                self.handle_events(events);
                for job in self.jobs.values() {
                    job.fail(JobError::Failed {
                        message: message.clone(),
                    });
                }
            }
            DriverControl::ReviveOffers => self.make_offers(None),
            DriverControl::CheckDeadlines => self.check_deadlines(Instant::now()),
            DriverControl::CheckSpeculation => {
                if self.scheduler.check_speculatable_tasks(Instant::now()) {
                    self.make_offers(None);
                }
            }
            DriverControl::KillTask { task_id, reason } => {
                match self.scheduler.kill_task(task_id) {
                    Some(executor_id) => self.kill_on(&executor_id, task_id, reason),
                    None => log::debug!("Asked to kill TID {task_id}, which is not running"),
                }
            }
            DriverControl::RemoveExecutor {
                executor_id,
                reason,
            } => self.remove_executor(&executor_id, reason),
            DriverControl::ExecutorUnresponsive {
                executor_id,
                silent_ms,
            } => self.executor_unresponsive(&executor_id, silent_ms),
            DriverControl::LocalStatusUpdate {
                executor_id,
                updates,
            } => self.status_update(&executor_id, updates),
            DriverControl::StopExecutors { reply } => {
                self.stop_executors();
                reply.send(true);
            }
            DriverControl::IsExecutorAlive { executor_id, reply } => {
                reply.send(self.executors.contains_key(&executor_id))
            }
            DriverControl::ExecutorIds { reply } => {
                let mut ids: Vec<ExecutorId> = self.executors.keys().cloned().collect();
                ids.sort();
                reply.send(ids);
            }
            DriverControl::ExecutorCount { reply } => {
                let launched: Vec<&ExecutorData> = self
                    .executors
                    .values()
                    .filter(|e| e.stage.takes_tasks())
                    .collect();
                let cores = launched.iter().map(|e| e.total_cores).sum();
                reply.send((launched.len() as u32, cores));
            }
            DriverControl::RefusedMessages { reply } => reply.send(self.refused_messages()),
            DriverControl::RunningTasks { reply } => {
                reply.send(self.scheduler.running_tasks_by_job())
            }
        }
        Ok(())
    }

    fn on_disconnected(&mut self, _ctx: &EndpointContext<'_, DriverProtocol>, remote: &RpcAddress) {
        let gone: Vec<ExecutorId> = self
            .executors
            .iter()
            .filter(|(_, e)| e.address.as_ref() == Some(remote) && !e.stage.is_disconnected())
            .map(|(id, _)| id.clone())
            .collect();
        for executor_id in gone {
            self.executor_unreachable(&executor_id);
        }
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.tickers.clear();
        for job in self.jobs.values() {
            job.fail(JobError::Cancelled {
                reason: "the driver stopped".into(),
            });
        }
        self.stop_executors();
        Ok(())
    }
}
