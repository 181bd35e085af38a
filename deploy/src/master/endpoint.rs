//! The `Master` endpoint: its state, the dispatch of every message by phase, and
//! `schedule()`, which turns a [`plan_schedule`] plan into launches.
//!
//! Handlers live next to the state they mostly touch: `on_workers.rs`, `on_apps.rs`,
//! `on_drivers.rs`, and `on_recovery.rs` for leadership and failover. Each dispatch arm is
//! one method call. Handlers that may free or add
//! resources end with one `schedule()`; helpers they share never schedule themselves.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use rpc_env::Ticker;
use rpc_env::{
    EndpointContext, EndpointRef, HandlerResult, Protocol, RpcAddress, RpcEndpoint, RpcEnv,
    Threading,
};

use crate::messages::{MasterAsk, MasterMessage, MasterProtocol, MasterState, WorkerMessage};

use super::apps::Apps;
use super::config::MasterSettings;
use super::drivers::Drivers;
use super::id_gen::IdGenerator;
use super::leader::LeaderElection;
use super::persistence::PersistenceEngine;
use super::phase::Phase;
use super::placement::{plan_schedule, AppDemand, DriverDemand, ScheduleInput, WorkerView};
use super::workers::{ExecutorKey, Workers};

/// Spark's `BACKUP_STANDALONE_MASTER_PREFIX`: how refusals of a master that does not lead
/// begin.
pub(super) const NOT_ALIVE: &str = "Current state is not alive";

/// The master: a single-threaded state machine over the cluster's workers, applications
/// and drivers.
pub(crate) struct Master {
    pub(super) settings: MasterSettings,
    pub(super) phase: Phase,
    /// Its own ref, handed to workers and applications.
    pub(super) me: EndpointRef<MasterProtocol>,
    /// `ember://host:port`.
    pub(super) url: String,
    pub(super) web_ui_url: String,
    pub(super) workers: Workers,
    pub(super) apps: Apps,
    pub(super) drivers: Drivers,
    pub(super) ids: IdGenerator,
    /// Where registrations are stored for a successor (nothing in recovery mode NONE).
    pub(super) persistence: Box<dyn PersistenceEngine>,
    /// Whether this master may lead; polled while it stands by.
    pub(super) election: Box<dyn LeaderElection>,
    /// Sends `CheckForWorkerTimeout` every `ember.worker.timeout`; dropped on stop.
    ticker: Option<Ticker>,
    /// Sends `CheckLeadership` every `ember.deploy.leaderPollInterval` while standing by.
    election_timer: Option<Ticker>,
    /// Sends `CompleteRecovery` once, `ember.deploy.recoveryTimeout` after recovery began.
    pub(super) recovery_timer: Option<Ticker>,
}

impl Master {
    /// A master that will answer as `me` (whose env must have an address). It starts
    /// STANDBY and takes the lead when `election` lets it ([`check_leadership`], first
    /// called from `on_start`, before any message).
    ///
    /// [`check_leadership`]: Self::check_leadership
    pub(crate) fn new(
        settings: MasterSettings,
        me: EndpointRef<MasterProtocol>,
        address: &RpcAddress,
        web_ui_url: String,
        persistence: Box<dyn PersistenceEngine>,
        election: Box<dyn LeaderElection>,
    ) -> Master {
        Master {
            apps: Apps::new(settings.retained_applications),
            drivers: Drivers::new(settings.retained_drivers),
            settings,
            phase: Phase::Standby,
            me,
            url: address.to_ember_url(),
            web_ui_url,
            workers: Workers::default(),
            ids: IdGenerator::default(),
            persistence,
            election,
            ticker: None,
            election_timer: None,
            recovery_timer: None,
        }
    }

    /// Handles a one-way message; what each phase accepts is written down here.
    pub(super) fn handle(
        &mut self,
        msg: MasterMessage,
        sender: Option<&RpcAddress>,
    ) -> HandlerResult {
        use MasterMessage as M;
        match (&self.phase, msg) {
            (Phase::Standby, M::RegisterWorker { registration }) => {
                tell(&registration.worker, WorkerMessage::MasterInStandby);
            }
            (Phase::Standby, M::RegisterApplication { description, .. }) => {
                // As Spark: no answer at all, so the client keeps trying the other masters.
                log::info!("Ignoring application {} while in standby", description.name);
            }
            // The leader registers while recovering too. The worker's web UI URL waits for
            // the master's UI.
            (_, M::RegisterWorker { registration }) => {
                self.register_worker(registration, sender);
            }
            (
                _,
                M::RegisterApplication {
                    description,
                    driver,
                },
            ) => {
                self.register_application(description, driver, sender);
            }
            (_, M::Heartbeat { worker_id, worker }) => self.heartbeat(&worker_id, &worker),
            // While recovering, what runs where is still being learnt (from the answers to
            // MasterChanged): a worker registering meanwhile must not have it all killed.
            (Phase::Recovering { .. }, M::WorkerLatestState { id, .. }) => {
                log::info!("Not checking the latest state of {id} while recovering");
            }
            (
                _,
                M::WorkerLatestState {
                    id,
                    executors,
                    driver_ids,
                },
            ) => {
                self.worker_latest_state(&id, executors, driver_ids);
            }
            (_, M::UnregisterApplication { app_id }) => self.unregister_application(&app_id),
            (
                _,
                M::DriverStateChanged {
                    driver_id,
                    state,
                    exception,
                },
            ) => {
                return self.driver_state_changed(&driver_id, state, exception);
            }
            (_, M::CheckForWorkerTimeout) => self.time_out_dead_workers(Instant::now()),
            (
                Phase::Recovering { .. },
                M::WorkerSchedulerStateResponse {
                    id,
                    executors,
                    driver_ids,
                },
            ) => {
                self.worker_scheduler_state(&id, executors, driver_ids);
            }
            (_, M::WorkerSchedulerStateResponse { id, .. }) => {
                log::warn!("Ignoring scheduler state of worker {id}: not recovering");
            }
            (Phase::Recovering { .. }, M::MasterChangeAcknowledged { app_id }) => {
                self.master_change_acknowledged(&app_id);
            }
            (_, M::MasterChangeAcknowledged { app_id }) => {
                log::warn!("Ignoring master change acknowledgement of {app_id}: not recovering");
            }
            (_, M::CompleteRecovery) => self.complete_recovery(),
            (_, M::KillExecutors { app_id, exec_ids }) => {
                self.kill_executors(&app_id, &exec_ids);
            }
            // `receive` polls the election itself: it needs the env to rebuild refs.
            (_, M::CheckLeadership) => log::debug!("Leadership is checked by the endpoint"),
        }
        Ok(())
    }

    /// Handles an ask; what each phase accepts is written down here.
    pub(super) fn handle_ask(&mut self, ask: MasterAsk) {
        use MasterAsk as A;
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
                self.executor_state_changed(&app_id, exec_id, state, message, exit_status);
                reply.send(true);
            }
            (_, A::RequestMasterState { reply }) => reply.send(self.snapshot()),
            (_, A::RequestKillApplication { app_id, reply }) => {
                reply.send(self.kill_application(&app_id));
            }
            (Phase::Alive, A::RequestSubmitDriver { description, reply }) => {
                reply.send(self.submit_driver(description));
            }
            (Phase::Alive, A::RequestKillDriver { driver_id, reply }) => {
                reply.send(self.kill_driver(driver_id));
            }
            (Phase::Alive, A::RequestDriverStatus { driver_id, reply }) => {
                reply.send(self.driver_status(&driver_id));
            }
            (phase, A::RequestSubmitDriver { reply, .. }) => {
                reply.send(super::on_drivers::refuse_submit(phase.as_str()));
            }
            (phase, A::RequestKillDriver { driver_id, reply }) => {
                reply.send(super::on_drivers::refuse_kill(phase.as_str(), driver_id));
            }
            (phase, A::RequestDriverStatus { reply, .. }) => {
                reply.send(super::on_drivers::refuse_status(phase.as_str()));
            }
        }
    }

    /// Spark's `schedule()`: in ALIVE only, place waiting drivers, then executors for each
    /// application in registration order, and launch what was placed.
    pub(super) fn schedule(&mut self) {
        if self.phase != Phase::Alive {
            return;
        }
        let plan = plan_schedule(&self.schedule_input());
        for warning in &plan.warnings {
            log::warn!("{warning}");
        }
        for launch in plan.drivers {
            self.launch_driver(&launch.driver, &launch.worker);
        }
        for launch in plan.executors {
            self.launch_executor(launch);
        }
    }

    fn schedule_input(&self) -> ScheduleInput {
        // By id, as the registry keeps them: Spark's order when drivers are packed.
        let mut workers: Vec<WorkerView> = self
            .workers
            .alive_iter()
            .map(|w| WorkerView {
                id: w.id().clone(),
                cores_free: w.cores_free(),
                memory_free_mib: w.memory_free_mib(),
                idle: w.is_idle(),
            })
            .collect();
        if self.settings.spread_out_drivers && self.drivers.waiting().next().is_some() {
            shuffle(&mut workers);
        }
        ScheduleInput {
            workers,
            waiting_drivers: self
                .drivers
                .waiting()
                .map(|d| DriverDemand {
                    id: d.id().clone(),
                    cores: d.description().cores,
                    memory_mib: d.description().memory_mib,
                })
                .collect(),
            running_drivers: self.drivers.running_count(),
            max_drivers: self
                .settings
                .max_drivers
                .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX)),
            spread_out_drivers: self.settings.spread_out_drivers,
            apps: self
                .apps
                .in_order()
                .map(|a| AppDemand {
                    id: a.id().clone(),
                    cores_left: a.cores_left(),
                    cores_per_executor: a.description().cores_per_executor,
                    memory_per_executor_mib: a.description().memory_per_executor_mib,
                    executors: a.executor_count(),
                    // Spark's per-profile target; unlimited until RequestExecutors exists.
                    executor_limit: usize::MAX,
                })
                .collect(),
            spread_out_apps: self.settings.spread_out_apps,
            policy: self.settings.worker_selection_policy,
        }
    }

    /// The answer to `RequestMasterState`.
    pub(super) fn snapshot(&self) -> MasterState {
        MasterState {
            url: self.url.clone(),
            status: self.phase.as_str().to_string(),
            workers: self.workers.iter().map(|w| w.summary()).collect(),
            active_apps: self.apps.in_order().map(|a| a.summary()).collect(),
            completed_apps: self.apps.completed().map(|a| a.summary()).collect(),
            active_drivers: self.drivers.active().map(|d| d.summary()).collect(),
            completed_drivers: self.drivers.completed().map(|d| d.summary()).collect(),
        }
    }

    // Only the debug-build consistency check calls this.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    /// Checks that the registries agree with themselves and with each other: every
    /// executor an application has runs on a live worker that counts it, and the other way
    /// round; the same for drivers.
    pub(super) fn check_consistency(&self) -> Result<(), String> {
        self.workers.check_indexes()?;
        self.apps.check_indexes()?;
        self.drivers.check_indexes()?;
        for app in self.apps.in_order() {
            for (exec_id, e) in app.executors() {
                let key = ExecutorKey {
                    app: app.id().clone(),
                    exec_id,
                };
                let counted = self
                    .workers
                    .alive(&e.worker)
                    .is_some_and(|w| w.has_executor(&key));
                if !counted {
                    return Err(format!(
                        "{}/{exec_id} is not counted by {}",
                        app.id(),
                        e.worker
                    ));
                }
            }
        }
        for worker in self.workers.iter() {
            if !worker.is_alive()
                && (worker.executors().next().is_some() || worker.drivers().next().is_some())
            {
                return Err(format!("dead worker {} still runs work", worker.id()));
            }
            for (key, cores) in worker.executors() {
                let owned = self
                    .apps
                    .get(&key.app)
                    .and_then(|a| a.executor(key.exec_id))
                    .is_some_and(|e| &e.worker == worker.id() && e.cores == cores);
                if !owned {
                    return Err(format!(
                        "{} runs {key:?}, which its app does not know",
                        worker.id()
                    ));
                }
            }
            for (id, _) in worker.drivers() {
                let placed = self.drivers.get(id).and_then(|d| d.worker());
                if placed != Some(worker.id()) {
                    return Err(format!(
                        "{} runs driver {id}, placed on {placed:?}",
                        worker.id()
                    ));
                }
            }
        }
        for driver in self.drivers.active() {
            if let Some(w) = driver.worker() {
                if !self
                    .workers
                    .alive(w)
                    .is_some_and(|w| w.has_driver(driver.id()))
                {
                    return Err(format!("driver {} is not counted by {w}", driver.id()));
                }
            }
        }
        Ok(())
    }

    #[cfg(debug_assertions)]
    fn debug_check(&self) {
        if let Err(e) = self.check_consistency() {
            log::error!("Master state is inconsistent: {e}");
        }
    }

    #[cfg(not(debug_assertions))]
    fn debug_check(&self) {}
}

impl RpcEndpoint for Master {
    type Protocol = MasterProtocol;

    /// Handlers update the registries and send, so a message may be handled on the
    /// thread that delivered it; unless they also write to a store that may block (a
    /// flushed file), which must not stall an IO thread: then on a loop of its own.
    fn threading(&self) -> Threading {
        if self.persistence.blocks() {
            Threading::Dedicated
        } else {
            Threading::Inline
        }
    }

    fn on_start(&mut self, ctx: &EndpointContext<'_, MasterProtocol>) -> HandlerResult {
        log::info!("Starting Ember master at {}", self.url);
        log::info!("Running Ember version {}", env!("CARGO_PKG_VERSION"));
        let me = ctx.self_ref().clone();
        self.ticker = Some(Ticker::start(
            "master-forward-message-thread",
            self.settings.worker_timeout,
            move || me.send(MasterMessage::CheckForWorkerTimeout).is_ok(),
        )?);
        // The first poll happens before any message is handled, so a master that leads
        // from the start (recovery mode NONE) never turns anyone away.
        if !self.check_leadership(ctx.env()) {
            log::info!("Master state: {}", self.phase.as_str());
            let me = ctx.self_ref().clone();
            self.election_timer = Some(Ticker::start(
                "master-leader-election",
                self.settings.leader_poll_interval,
                move || me.send(MasterMessage::CheckLeadership).is_ok(),
            )?);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, MasterProtocol>,
        msg: MasterMessage,
    ) -> HandlerResult {
        let result = match msg {
            MasterMessage::CheckLeadership => {
                if self.check_leadership(ctx.env()) {
                    self.election_timer = None;
                }
                Ok(())
            }
            msg => self.handle(msg, ctx.sender()),
        };
        self.debug_check();
        result
    }

    fn receive_and_reply(
        &mut self,
        _ctx: &EndpointContext<'_, MasterProtocol>,
        ask: MasterAsk,
    ) -> HandlerResult {
        self.handle_ask(ask);
        self.debug_check();
        Ok(())
    }

    fn on_disconnected(&mut self, _ctx: &EndpointContext<'_, MasterProtocol>, remote: &RpcAddress) {
        self.disconnected(remote);
        self.debug_check();
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.ticker = None;
        self.election_timer = None;
        self.recovery_timer = None;
        // Let a standby take over now rather than when this process exits.
        self.election.release();
        log::info!("Master at {} stopped", self.url);
        Ok(())
    }
}

/// Sends a one-way message, logging a failure: delivery is never confirmed anyway, and a
/// peer that is gone is noticed by its disconnect or its missing heartbeats.
pub(super) fn tell<P: Protocol>(to: &EndpointRef<P>, msg: P::Message) {
    if let Err(e) = to.send(msg) {
        log::warn!("Could not send to {to}: {e}");
    }
}

/// Shuffles in place (Fisher-Yates), seeded from the standard library's per-process random
/// hasher keys: spreading drivers needs no stronger randomness than that.
fn shuffle<T>(items: &mut [T]) {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_usize(items.len());
    let mut state = hasher.finish() | 1;
    for i in (1..items.len()).rev() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(state % bound).unwrap_or(0);
        items.swap(i, j);
    }
}
