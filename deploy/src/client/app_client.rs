//! The `AppClient` endpoint (Spark's `StandaloneAppClient`): registers the application with
//! every master, retries, follows a master change, and reports executors to a listener.

use std::time::Duration;

use rpc_env::{EndpointContext, EndpointRef, HandlerResult, RpcAddress, RpcEndpoint, RpcEnv};

use rpc_env::Ticker;

use crate::ids::{AppId, WorkerId};
use crate::messages::{
    AppClientControl, AppClientMessage, AppClientProtocol, ApplicationDescription, ExecutorState,
    MasterMessage, MasterProtocol,
};

/// What the client says when no master answered (Spark's words).
pub const GIVING_UP: &str = "All masters are unresponsive! Giving up.";

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
}

/// The app client endpoint.
pub struct AppClient {
    config: AppClientConfig,
    masters: Vec<EndpointRef<MasterProtocol>>,
    listener: Box<dyn AppClientListener>,
    app_id: Option<AppId>,
    master: Option<EndpointRef<MasterProtocol>>,
    rounds: u32,
    retry: Option<Ticker>,
    dead: bool,
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
        }
    }

    fn register_with_all(&self, ctx: &EndpointContext<'_, AppClientProtocol>) {
        for master in &self.masters {
            log::info!("Connecting to master {}...", master.address());
            let sent = master.send(MasterMessage::RegisterApplication {
                description: self.config.description.clone(),
                driver: ctx.self_ref().clone(),
            });
            if let Err(e) = sent {
                log::warn!("Failed to connect to master {}: {e}", master.address());
            }
        }
    }

    fn mark_dead(&mut self, reason: &str, tell: bool) {
        if self.dead {
            return;
        }
        self.dead = true;
        self.retry = None;
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
        Ok(())
    }

    fn receive(
        &mut self,
        ctx: &EndpointContext<'_, AppClientProtocol>,
        msg: AppClientMessage,
    ) -> HandlerResult {
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
                    self.mark_dead(GIVING_UP, true);
                } else {
                    self.register_with_all(ctx);
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
        Ok(())
    }
}
