//! The `Master` endpoint: its state, and the one place that performs what its handlers
//! return.
//!
//! A message goes from `receive` to the dispatch (`dispatch.rs`, one arm per phase and
//! message) to a handler: `on_workers.rs`, `on_apps.rs`, `on_drivers.rs`, and
//! `on_recovery.rs` for leadership and failover. A handler changes the registries and
//! returns its [`Effects`] (what to send to whom, the recovery timer); [`Master::perform`]
//! then does them. Handlers that may free or add resources end with one `schedule()`
//! (`scheduling.rs`); helpers they share never schedule themselves.
//!
//! The handlers import this module for [`Master`]; it imports none of them.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use rpc_env::Ticker;
use rpc_env::{
    ControlRef, EndpointContext, EndpointRef, HandlerResult, Protocol, Refusals, RpcAddress,
    RpcEndpoint, RpcEnv, Threading,
};

use crate::messages::{MasterAsk, MasterControl, MasterMessage, MasterProtocol, MasterState};

use super::apps::Apps;
use super::config::MasterSettings;
use super::drivers::Drivers;
use super::effects::{Effect, Effects};
use super::id_gen::IdGenerator;
use super::leader::LeaderElection;
use super::persistence::PersistenceEngine;
use super::phase::Phase;
use super::program_store::ProgramStore;
use super::workers::{ExecutorKey, Workers};

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
    pub(super) election_timer: Option<Ticker>,
    /// Sends `CompleteRecovery` once, `ember.deploy.recoveryTimeout` after recovery began.
    pub(super) recovery_timer: Option<Ticker>,
    /// How its timers reach it (set in `on_start`): control messages, which no peer can
    /// send.
    pub(super) control: Option<ControlRef<MasterProtocol>>,
    /// Messages refused because their sender may not send them (`senders.rs`).
    pub(super) refused: Refusals,
    /// Worker records `schedule()` has copied into its snapshots and waiting checks so far:
    /// what the complexity tests count (issue 15), since the master's events must not each
    /// cost a walk of every worker.
    pub(super) workers_scanned: u64,
    /// Cluster-mode drivers' uploaded programs (`program_store/`), shared with the
    /// `ProgramStore` endpoint; `None` in tests that drive handlers without one.
    pub(super) programs: Option<Arc<Mutex<ProgramStore>>>,
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
            control: None,
            refused: Refusals::new(),
            workers_scanned: 0,
            programs: None,
        }
    }

    /// The same master, keeping uploaded programs in `store`: a submitted driver whose
    /// program was uploaded is accepted only if the store holds it, and is launched with
    /// the URI this master serves it at.
    pub(crate) fn with_program_store(mut self, store: Arc<Mutex<ProgramStore>>) -> Master {
        self.programs = Some(store);
        self
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
            refused_messages: self.refused_messages(),
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

    /// Performs what a handler returned, in order: the one place the master sends.
    fn perform(&mut self, effects: Effects) {
        let mut queue: VecDeque<Effect> = effects.into_iter().collect();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::ToWorker { to, msg } => tell(&to, msg),
                Effect::ToApp { to, msg } => tell(&to, msg),
                Effect::ArmRecoveryTimer => {
                    if let Err(e) = self.arm_recovery_timer() {
                        log::error!(
                            "Cannot start the recovery timer ({e}); completing recovery now"
                        );
                        // Completing now: its effects come before the ones queued after.
                        for effect in self.complete_recovery().into_iter().rev() {
                            queue.push_front(effect);
                        }
                    }
                }
                Effect::CancelRecoveryTimer => self.recovery_timer = None,
            }
        }
    }
}

impl RpcEndpoint for Master {
    type Protocol = MasterProtocol;

    /// Handlers update the registries and `perform` only queues sends, so a message may
    /// be handled on the thread that delivered it; unless they also write to a store that may block (a
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
        self.control = Some(ctx.control_ref());
        let me = ctx.control_ref();
        self.ticker = Some(Ticker::start(
            "master-forward-message-thread",
            self.settings.worker_timeout,
            move || me.send(MasterControl::CheckForWorkerTimeout).is_ok(),
        )?);
        // The first poll happens before any message is handled, so a master that leads
        // from the start (recovery mode NONE) never turns anyone away.
        let effects = self.check_leadership(ctx.env());
        self.perform(effects);
        if !self.phase.leads() {
            log::info!("Master state: {}", self.phase.as_str());
            let me = ctx.control_ref();
            self.election_timer = Some(Ticker::start(
                "master-leader-election",
                self.settings.leader_poll_interval,
                move || me.send(MasterControl::CheckLeadership).is_ok(),
            )?);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, MasterProtocol>,
        msg: MasterMessage,
    ) -> HandlerResult {
        let result = self.handle(msg, ctx.sender());
        let result = result.map(|effects| self.perform(effects));
        self.debug_check();
        result
    }

    fn receive_control(
        &mut self,
        ctx: &EndpointContext<'_, MasterProtocol>,
        msg: MasterControl,
    ) -> HandlerResult {
        let effects = self.handle_control(msg, ctx.env());
        self.perform(effects);
        self.debug_check();
        Ok(())
    }

    fn receive_and_reply(
        &mut self,
        ctx: &EndpointContext<'_, MasterProtocol>,
        ask: MasterAsk,
    ) -> HandlerResult {
        let (effects, answer) = self.handle_ask(ask, ctx.sender());
        self.perform(effects);
        answer.send();
        self.debug_check();
        Ok(())
    }

    fn on_disconnected(&mut self, _ctx: &EndpointContext<'_, MasterProtocol>, remote: &RpcAddress) {
        let effects = self.disconnected(remote);
        self.perform(effects);
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
fn tell<P: Protocol>(to: &EndpointRef<P>, msg: P::Message) {
    if let Err(e) = to.send(msg) {
        log::warn!("Could not send to {to}: {e}");
    }
}
