//! The master's dispatch: which handler each message reaches in each phase. Every arm is
//! one handler call, and returns what the handler wants done; the endpoint performs it.

use std::time::Instant;

use rpc_env::{Encode, EndpointError, Reply, RpcAddress, RpcEnv};

use crate::messages::{MasterAsk, MasterControl, MasterMessage, WorkerMessage};

use super::effects::Effects;
use super::endpoint::Master;
use super::on_drivers::{refuse_kill, refuse_status, refuse_submit};
use super::phase::Phase;

/// An ask's answer, sent once the effects of handling the ask have been performed: as in
/// Spark, the reply comes after what the handler sent.
pub(super) struct Answer(Box<dyn FnOnce()>);

impl Answer {
    fn new<T: Encode + Send + 'static>(reply: Reply<T>, value: T) -> Answer {
        Answer(Box::new(move || reply.send(value)))
    }

    /// The answer to an ask refused for its sender: a failure, so the asker does not take
    /// it for done.
    fn refused(ask: MasterAsk) -> Answer {
        const REFUSED: &str = "Refused: the sender may not send this message";
        use MasterAsk as A;
        Answer(match ask {
            A::ExecutorStateChanged { reply, .. } | A::RequestKillApplication { reply, .. } => {
                Box::new(move || reply.fail(REFUSED))
            }
            A::RequestMasterState { reply } => Box::new(move || reply.fail(REFUSED)),
            A::RequestSubmitDriver { reply, .. } => Box::new(move || reply.fail(REFUSED)),
            A::RequestKillDriver { reply, .. } => Box::new(move || reply.fail(REFUSED)),
            A::RequestDriverStatus { reply, .. } => Box::new(move || reply.fail(REFUSED)),
        })
    }

    /// Sends the answer.
    pub(super) fn send(self) {
        (self.0)();
    }
}

impl Master {
    /// Handles a one-way message; what each phase accepts is written down here.
    pub(super) fn handle(
        &mut self,
        msg: MasterMessage,
        sender: Option<&RpcAddress>,
    ) -> Result<Effects, EndpointError> {
        use MasterMessage as M;
        if !self.accepts(&msg, sender) {
            return Ok(Effects::none());
        }
        let effects = match (&self.phase, msg) {
            (Phase::Standby, M::RegisterWorker { registration }) => {
                let mut out = Effects::none();
                out.tell_worker(&registration.worker, WorkerMessage::MasterInStandby);
                out
            }
            (Phase::Standby, M::RegisterApplication { description, .. }) => {
                // As Spark: no answer at all, so the client keeps trying the other masters.
                log::info!("Ignoring application {} while in standby", description.name);
                Effects::none()
            }
            // The leader registers while recovering too. The worker's web UI URL waits for
            // the master's UI.
            (_, M::RegisterWorker { registration }) => self.register_worker(registration, sender),
            (
                _,
                M::RegisterApplication {
                    description,
                    driver,
                },
            ) => self.register_application(description, driver, sender),
            (_, M::Heartbeat { worker_id, worker }) => self.heartbeat(&worker_id, &worker),
            // While recovering, what runs where is still being learnt (from the answers to
            // MasterChanged): a worker registering meanwhile must not have it all killed.
            (Phase::Recovering { .. }, M::WorkerLatestState { id, .. }) => {
                log::info!("Not checking the latest state of {id} while recovering");
                Effects::none()
            }
            (
                _,
                M::WorkerLatestState {
                    id,
                    executors,
                    driver_ids,
                },
            ) => self.worker_latest_state(&id, executors, driver_ids),
            (_, M::UnregisterApplication { app_id }) => self.unregister_application(&app_id),
            (
                _,
                M::DriverStateChanged {
                    driver_id,
                    state,
                    exception,
                },
            ) => self.driver_state_changed(&driver_id, state, exception)?,
            (
                Phase::Recovering { .. },
                M::WorkerSchedulerStateResponse {
                    id,
                    executors,
                    driver_ids,
                },
            ) => self.worker_scheduler_state(&id, executors, driver_ids),
            (_, M::WorkerSchedulerStateResponse { id, .. }) => {
                log::warn!("Ignoring scheduler state of worker {id}: not recovering");
                Effects::none()
            }
            (Phase::Recovering { .. }, M::MasterChangeAcknowledged { app_id }) => {
                self.master_change_acknowledged(&app_id)
            }
            (_, M::MasterChangeAcknowledged { app_id }) => {
                log::warn!("Ignoring master change acknowledgement of {app_id}: not recovering");
                Effects::none()
            }
            (_, M::KillExecutors { app_id, exec_ids }) => self.kill_executors(&app_id, &exec_ids),
            (_, M::ExecutorRegistered { app_id, exec_id }) => {
                self.executor_registered(&app_id, exec_id)
            }
        };
        Ok(effects)
    }

    /// Handles a timer of the master's own (a control message: never from the network).
    /// Polling the election needs the env, to rebuild refs to what it recovers.
    pub(super) fn handle_control(&mut self, msg: MasterControl, env: &RpcEnv) -> Effects {
        match msg {
            MasterControl::CheckForWorkerTimeout => self.time_out_dead_workers(Instant::now()),
            MasterControl::CompleteRecovery => self.complete_recovery(),
            MasterControl::CheckLeadership => {
                let effects = self.check_leadership(env);
                if self.phase.leads() {
                    self.election_timer = None;
                }
                effects
            }
            MasterControl::View { reply } => {
                reply.send(self.view());
                Effects::none()
            }
        }
    }

    /// Handles an ask; what each phase accepts is written down here. The answer is sent
    /// after the effects are performed. An ask its sender may not make is failed.
    pub(super) fn handle_ask(
        &mut self,
        ask: MasterAsk,
        sender: Option<&RpcAddress>,
    ) -> (Effects, Answer) {
        use MasterAsk as A;
        if !self.accepts_ask(&ask, sender) {
            return (Effects::none(), Answer::refused(ask));
        }
        match (&self.phase, ask) {
            (
                _,
                A::ExecutorStateChanged {
                    app_id,
                    exec_id,
                    state,
                    message,
                    exit_status,
                    reply,
                },
            ) => {
                let out =
                    self.executor_state_changed(&app_id, exec_id, state, message, exit_status);
                (out, Answer::new(reply, true))
            }
            (_, A::RequestMasterState { reply }) => {
                (Effects::none(), Answer::new(reply, self.snapshot()))
            }
            (_, A::RequestKillApplication { app_id, reply }) => {
                let (killed, out) = self.kill_application(&app_id);
                (out, Answer::new(reply, killed))
            }
            (Phase::Alive, A::RequestSubmitDriver { description, reply }) => {
                let (response, out) = self.submit_driver(description);
                (out, Answer::new(reply, response))
            }
            (Phase::Alive, A::RequestKillDriver { driver_id, reply }) => {
                let (response, out) = self.kill_driver(driver_id);
                (out, Answer::new(reply, response))
            }
            (Phase::Alive, A::RequestDriverStatus { driver_id, reply }) => {
                let response = self.driver_status(&driver_id);
                (Effects::none(), Answer::new(reply, response))
            }
            (phase, A::RequestSubmitDriver { reply, .. }) => {
                let response = refuse_submit(phase.as_str());
                (Effects::none(), Answer::new(reply, response))
            }
            (phase, A::RequestKillDriver { driver_id, reply }) => {
                let response = refuse_kill(phase.as_str(), driver_id);
                (Effects::none(), Answer::new(reply, response))
            }
            (phase, A::RequestDriverStatus { reply, .. }) => {
                let response = refuse_status(phase.as_str());
                (Effects::none(), Answer::new(reply, response))
            }
        }
    }
}
