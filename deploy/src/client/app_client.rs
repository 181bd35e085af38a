//! The `AppClient` endpoint (Spark's `StandaloneAppClient`): registers the application with
//! every master, retries, follows a master change, and reports executors to a listener.
//!
//! Two things it says that Spark's does not:
//! - Registration fails at once, naming each master and its error, when no master of a round
//!   can be reached (each registration goes with an endpoint check, whose failure comes back
//!   in milliseconds for a refused connection); Spark retries for a minute in silence.
//! - Spark's starvation warning ("Initial job has not accepted any resources"), given here
//!   when no executor was granted within `ember.scheduler.starvationTimeout`, and repeated
//!   at that interval until one is, with the cause the client knows: the masters it cannot
//!   reach, or what the master said (`ApplicationWaiting`: no worker, none large enough).
//!   Spark's task scheduler warns when no task was launched; in standalone mode an
//!   application gets executors whether or not it runs a job, so "no executor" is the same
//!   situation, seen where its causes are known.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use rpc_env::{
    EndpointContext, EndpointRef, HandlerResult, Refusals, RpcAddress, RpcEndpoint, RpcEnv,
};

use rpc_env::Ticker;

use crate::ids::{AppId, WorkerId};
use crate::messages::{
    AppClientControl, AppClientMessage, AppClientProtocol, ApplicationDescription, ExecutorState,
    MasterMessage, MasterProtocol,
};

/// What the client says when no master answered (Spark's words); the masters that could not
/// be reached follow, each with its error.
pub const GIVING_UP: &str = "All masters are unresponsive! Giving up.";

/// Spark's starvation warning; the cause the client knows follows.
pub const STARVING: &str = "Initial job has not accepted any resources; check your cluster UI \
                            to ensure that workers are registered and have sufficient resources";

/// What the app client tells the scheduler backend (Spark's `StandaloneAppClientListener`).
pub trait AppClientListener: Send {
    /// The application was registered as `app_id`.
    fn connected(&mut self, app_id: &AppId);
    /// The connection to the master dropped; a new master may take over.
    fn disconnected(&mut self);
    /// The application is dead: the masters gave up on it, or it never registered.
    fn dead(&mut self, reason: &str);
    /// An executor was granted on a worker.
    fn executor_added(&mut self, id: u32, worker: &WorkerId, host_port: &str, cores: u32);
    /// An executor is gone; `exit_status` when its process exited, `worker_host` when its
    /// worker was lost with it.
    fn executor_removed(
        &mut self,
        id: u32,
        message: &str,
        exit_status: Option<i32>,
        worker_host: Option<&str>,
    );
    /// A worker was lost.
    fn worker_removed(&mut self, worker: &WorkerId, host: &str, message: &str);
}

/// How the app client registers.
#[derive(Debug, Clone)]
pub struct AppClientConfig {
    /// The masters' addresses (`ember://h1:p1,h2:p2`).
    pub masters: Vec<RpcAddress>,
    /// The application.
    pub description: ApplicationDescription,
    /// How long to wait for a registration answer before trying again (Spark: 20 s).
    pub registration_timeout: Duration,
    /// Rounds of registration before giving up (Spark: 3).
    pub registration_retries: u32,
    /// How long without an executor before warning, and how often again (Spark: 15 s);
    /// zero turns the warning off.
    pub starvation_timeout: Duration,
}

/// The app client endpoint.
pub struct AppClient {
    config: AppClientConfig,
    masters: Vec<EndpointRef<MasterProtocol>>,
    listener: Box<dyn AppClientListener>,
    app_id: Option<AppId>,
    pub(super) master: Option<EndpointRef<MasterProtocol>>,
    rounds: u32,
    retry: Option<Ticker>,
    dead: bool,
    /// The masters of this round that could not be reached, with why.
    unreachable: BTreeMap<RpcAddress, String>,
    /// What the master last said about why it cannot place the application.
    waiting: Option<String>,
    /// Whether an executor was ever granted (then the starvation check stops).
    granted: bool,
    starvation: Option<Ticker>,
    /// Messages refused because their sender may not send them (`senders.rs`).
    pub(super) refused: Refusals,
    /// How many, for [`refused_messages`](Self::refused_messages).
    pub(super) refused_count: Arc<AtomicU64>,
}

impl AppClient {
    /// A client that registers `config.description` and reports to `listener`.
    pub fn new(config: AppClientConfig, listener: Box<dyn AppClientListener>) -> AppClient {
        AppClient {
            config,
            masters: Vec::new(),
            listener,
            app_id: None,
            master: None,
            rounds: 0,
            retry: None,
            dead: false,
            unreachable: BTreeMap::new(),
            waiting: None,
            granted: false,
            starvation: None,
            refused: Refusals::new(),
            refused_count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A counter of the messages this client refuses because their sender is not its
    /// master: take it before the client becomes an endpoint, read it while it runs.
    pub fn refused_messages(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused_count)
    }

    /// Sends the registration to every master, each with an endpoint check whose failure
    /// (a refused connection, no master there) comes back as `MasterUnreachable`.
    fn register_with_all(&mut self, ctx: &EndpointContext<'_, AppClientProtocol>) {
        self.unreachable.clear();
        for (master, address) in self.masters.iter().zip(&self.config.masters) {
            log::info!("Connecting to master {}...", master.address());
            let me = ctx.control_ref();
            let at = address.clone();
            ctx.env()
                .check_endpoint(address, crate::messages::MASTER_ENDPOINT_NAME)
                .on_complete(move |answer| {
                    let error = match answer {
                        Ok(true) => return,
                        Ok(false) => "it answers, but runs no Ember master".to_string(),
                        Err(e) => e.to_string(),
                    };
                    // The client may be gone by now: nobody to tell.
                    let _ = me.send(AppClientControl::MasterUnreachable { master: at, error });
                });
            let sent = master.send(MasterMessage::RegisterApplication {
                description: self.config.description.clone(),
                driver: ctx.self_ref().clone(),
            });
            if let Err(e) = sent {
                log::warn!("Failed to connect to master {}: {e}", master.address());
            }
        }
    }

    /// The masters that could not be reached, each with its error:
    /// `ember://h:p: <error>; ember://h2:p2: <error>`.
    fn unreachable_masters(&self) -> String {
        self.unreachable
            .iter()
            .map(|(master, error)| format!("ember://{}: {error}", master.host_port()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cause to give with the starvation warning, as far as the client knows it.
    fn starvation_cause(&self) -> String {
        match (&self.master, &self.waiting) {
            (Some(master), Some(reason)) => {
                let at = master
                    .rpc_address()
                    .map_or_else(String::new, |a| format!(" ember://{}", a.host_port()));
                format!("the master{at} says: {reason}")
            }
            (Some(_), None) => "the master has not placed any executor yet".to_string(),
            (None, _) if !self.unreachable.is_empty() => {
                format!("no master can be reached: {}", self.unreachable_masters())
            }
            (None, _) => {
                let masters: Vec<String> = self
                    .config
                    .masters
                    .iter()
                    .map(|a| format!("ember://{}", a.host_port()))
                    .collect();
                format!(
                    "no master has answered the registration yet ({})",
                    masters.join(", ")
                )
            }
        }
    }

    fn mark_dead(&mut self, reason: &str, tell: bool) {
        if self.dead {
            return;
        }
        self.dead = true;
        self.retry = None;
        self.starvation = None;
        if tell {
            log::error!("Application has been killed. Reason: {reason}");
            self.listener.dead(reason);
        }
    }
}

impl RpcEndpoint for AppClient {
    type Protocol = AppClientProtocol;

    fn on_start(&mut self, ctx: &EndpointContext<'_, AppClientProtocol>) -> HandlerResult {
        self.masters = self
            .config
            .masters
            .iter()
            .map(|a| {
                ctx.env()
                    .endpoint_ref_at(a, crate::messages::MASTER_ENDPOINT_NAME)
            })
            .collect();
        self.register_with_all(ctx);
        let me = ctx.control_ref();
        self.retry = Some(Ticker::start(
            "appclient-registration-retry",
            self.config.registration_timeout,
            move || me.send(AppClientControl::RetryRegistration).is_ok(),
        )?);
        if !self.config.starvation_timeout.is_zero() {
            let me = ctx.control_ref();
            self.starvation = Some(Ticker::start(
                "appclient-starvation-check",
                self.config.starvation_timeout,
                move || me.send(AppClientControl::CheckStarvation).is_ok(),
            )?);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, AppClientProtocol>,
        msg: AppClientMessage,
    ) -> HandlerResult {
        if !self.accepts(&msg, ctx.sender()) {
            return Ok(());
        }
        match msg {
            AppClientMessage::RegisteredApplication { app_id, master } => {
                log::info!("Connected to the master of the application: {app_id}");
                self.retry = None;
                self.listener.connected(&app_id);
                self.app_id = Some(app_id);
                self.master = Some(master);
            }
            AppClientMessage::ExecutorAdded {
                id,
                worker_id,
                host_port,
                cores,
                ..
            } => {
                log::info!(
                    "Executor added: {id} on {worker_id} ({host_port}) with {cores} core(s)"
                );
                self.granted = true;
                self.starvation = None;
                self.listener
                    .executor_added(id, &worker_id, &host_port, cores);
            }
            AppClientMessage::ExecutorUpdated {
                id,
                state,
                message,
                exit_status,
                worker_host,
            } => {
                let message = message.unwrap_or_default();
                log::info!("Executor updated: {id} is now {state:?} ({message})");
                if state.is_finished() {
                    self.listener.executor_removed(
                        id,
                        &message,
                        exit_status,
                        worker_host.as_deref(),
                    );
                } else if state == ExecutorState::Running {
                    log::debug!("Executor {id} runs");
                }
            }
            AppClientMessage::ApplicationRemoved { message } => {
                self.mark_dead(&format!("Master removed our application: {message}"), true);
                ctx.stop();
            }
            AppClientMessage::WorkerRemoved { id, host, message } => {
                log::info!("Worker removed: {id} on {host} ({message})");
                self.listener.worker_removed(&id, &host, &message);
            }
            AppClientMessage::MasterChanged { master, .. } => {
                log::info!("Master has changed, new master is at {}", master.address());
                if let Some(app_id) = &self.app_id {
                    let ack = MasterMessage::MasterChangeAcknowledged {
                        app_id: app_id.clone(),
                    };
                    // The new master is the leader whether or not this ack gets through
                    // (unacknowledged apps are dropped when its recovery completes), so
                    // follow it either way rather than stay with the old one.
                    if let Err(e) = master.send(ack) {
                        log::warn!(
                            "Could not acknowledge the new master {}: {e}",
                            master.address()
                        );
                    }
                }
                self.master = Some(master);
            }
            AppClientMessage::MasterInStandby => {
                log::debug!("A standby master answered; waiting for the leader");
            }
            AppClientMessage::ApplicationWaiting { reason } => {
                log::info!("The master cannot place the application yet: {reason}");
                self.waiting = Some(reason);
            }
        }
        Ok(())
    }

    fn receive_control(
        &mut self,
        ctx: &EndpointContext<'_, AppClientProtocol>,
        msg: AppClientControl,
    ) -> HandlerResult {
        match msg {
            AppClientControl::RetryRegistration => {
                if self.app_id.is_some() || self.dead {
                    self.retry = None;
                    return Ok(());
                }
                self.rounds += 1;
                if self.rounds >= self.config.registration_retries {
                    let reason = if self.unreachable.is_empty() {
                        GIVING_UP.to_string()
                    } else {
                        format!("{GIVING_UP} {}", self.unreachable_masters())
                    };
                    self.mark_dead(&reason, true);
                } else {
                    self.register_with_all(ctx);
                }
            }
            AppClientControl::MasterUnreachable { master, error } => {
                if self.app_id.is_some() || self.dead {
                    return Ok(());
                }
                // The registration's end names every master and error, if it comes to that.
                log::info!(
                    "Cannot reach master ember://{}: {error}",
                    master.host_port()
                );
                self.unreachable.insert(master, error);
                // Every master refused: retrying in silence for a minute helps nobody.
                if self
                    .config
                    .masters
                    .iter()
                    .all(|m| self.unreachable.contains_key(m))
                {
                    let reason = format!("{GIVING_UP} {}", self.unreachable_masters());
                    self.mark_dead(&reason, true);
                }
            }
            AppClientControl::CheckStarvation => {
                if self.granted || self.dead {
                    self.starvation = None;
                    return Ok(());
                }
                log::warn!("{STARVING}. Why: {}", self.starvation_cause());
            }
            AppClientControl::ExecutorRegistered { exec_id } => {
                if let (Some(app_id), Some(master)) = (&self.app_id, &self.master) {
                    let sent = master.send(MasterMessage::ExecutorRegistered {
                        app_id: app_id.clone(),
                        exec_id,
                    });
                    if let Err(e) = sent {
                        log::debug!("Could not tell the master executor {exec_id} registered: {e}");
                    }
                }
            }
            AppClientControl::KillExecutors { exec_ids } => match (&self.app_id, &self.master) {
                (Some(app_id), Some(master)) => {
                    log::info!("Asking the master to kill executors {exec_ids:?}");
                    let sent = master.send(MasterMessage::KillExecutors {
                        app_id: app_id.clone(),
                        exec_ids,
                    });
                    if let Err(e) = sent {
                        log::warn!("Could not ask the master to kill executors: {e}");
                    }
                }
                _ => log::warn!(
                    "Attempted to kill executors {exec_ids:?} before registering with a master"
                ),
            },
            AppClientControl::StopAppClient { reply } => {
                // The application stops on purpose: nobody needs telling it died.
                self.mark_dead("Application has been stopped.", false);
                if let (Some(app_id), Some(master)) = (&self.app_id, &self.master) {
                    if let Err(e) = master.send(MasterMessage::UnregisterApplication {
                        app_id: app_id.clone(),
                    }) {
                        log::warn!("Could not unregister {app_id}: {e}");
                    }
                }
                reply.send(true);
                ctx.stop();
            }
        }
        Ok(())
    }

    fn on_disconnected(
        &mut self,
        _ctx: &EndpointContext<'_, AppClientProtocol>,
        remote: &RpcAddress,
    ) {
        let from_master = self.master.as_ref().and_then(|m| m.rpc_address()) == Some(remote);
        if from_master && !self.dead {
            log::warn!("Connection to {remote} failed; waiting for master to reconnect...");
            self.listener.disconnected();
        }
    }

    fn on_stop(&mut self, _env: &RpcEnv) -> HandlerResult {
        self.retry = None;
        self.starvation = None;
        Ok(())
    }
}
