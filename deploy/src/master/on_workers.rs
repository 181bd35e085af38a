//! The master's worker handlers: registration, heartbeats, the latest-state check, the
//! dead-worker timer, disconnects, and removing a lost worker.

use std::time::Instant;

use rpc_env::{EndpointRef, RpcAddress};

use crate::ids::{DriverId, WorkerId};
use crate::messages::{
    AppClientMessage, DriverState, ExecutorDescription, ExecutorState, WorkerMessage,
    WorkerProtocol, WorkerRegistration,
};

use super::apps::AppStatus;
use super::effects::Effects;
use super::endpoint::Master;
use super::stored::worker_key;
use super::workers::{ExecutorKey, InsertError, NewWorker, WorkerStatus};

impl Master {
    /// `RegisterWorker` while leading (ALIVE or RECOVERING).
    ///
    /// A worker is keyed by the address of its env (as Spark keys it by its endpoint's
    /// address), as the registration's sender: rpc-env ties a connection to that sender,
    /// so the worker's later messages are accepted only from there (`senders.rs`). A
    /// client-mode worker, which has no address, is keyed by the connection it wrote on.
    /// While recovering, a stored worker registering again is ALIVE at once and told it
    /// is a duplicate (SPARK-46346); a new worker at a stored worker's address replaces it
    /// (the worker restarted under a new id).
    pub(super) fn register_worker(
        &mut self,
        reg: WorkerRegistration,
        sender: Option<&RpcAddress>,
    ) -> Effects {
        log::info!(
            "Registering worker {}:{} with {} cores, {} MiB RAM",
            reg.host,
            reg.port,
            reg.cores,
            reg.memory_mib
        );
        let address = sender
            .or(reg.worker.rpc_address())
            .cloned()
            .unwrap_or_else(|| RpcAddress::new(&reg.host, reg.port));
        let mut out = Effects::none();
        // Owned copies: the handlers below change the master before answering.
        let (me, web_ui_url) = (self.me.clone(), self.web_ui_url.clone());
        let registered = |duplicate| WorkerMessage::RegisteredWorker {
            master: me.clone(),
            master_web_ui_url: web_ui_url.clone(),
            master_address: reg.master_address.clone(),
            duplicate,
        };
        if let Some(existing) = self.workers.live(&reg.id) {
            if existing.address() == &address {
                // Spark 4 (SPARK-23191): the same worker registering again (its first
                // answer was lost, or it retried too early) is told it is registered.
                let recovered = existing.status() == WorkerStatus::Unknown;
                out.tell_worker(&reg.worker, registered(true));
                if recovered {
                    self.workers.mark_known(&reg.id, Instant::now());
                    out.append(self.maybe_complete_recovery());
                }
            } else {
                // Another process claims a live worker's id: refuse it (Spark 4 would
                // answer it as a duplicate and keep the first worker's ref).
                log::warn!(
                    "Worker registration failed. Duplicate worker ID {} from {address}",
                    reg.id
                );
                let message = "Duplicate worker ID".to_string();
                out.tell_worker(&reg.worker, WorkerMessage::RegisterWorkerFailed { message });
            }
            return out;
        }
        let stale = self
            .workers
            .live_at(&address)
            .filter(|w| w.status() == WorkerStatus::Unknown)
            .map(|w| w.id().clone());
        if let Some(stale) = stale {
            log::info!("Worker {stale} replaced by a new worker with same address");
            out.append(
                self.remove_worker(&stale, "Worker replaced by a new worker with same address"),
            );
        }
        let new = NewWorker {
            id: reg.id.clone(),
            host: reg.host.clone(),
            port: reg.port,
            address,
            endpoint: reg.worker.clone(),
            cores: reg.cores,
            memory_mib: reg.memory_mib,
            web_ui_url: reg.web_ui_url.clone(),
        };
        match self.workers.insert(new, Instant::now()) {
            Ok(()) => {
                self.persist_worker(&reg.id);
                out.tell_worker(&reg.worker, registered(false));
                out.append(self.maybe_complete_recovery());
                out.append(self.schedule());
            }
            Err(InsertError::DuplicateAddress(address)) => {
                log::warn!(
                    "Worker registration failed. Attempted to re-register worker at same address: {address}"
                );
                let message = format!("Attempted to re-register worker at same address: {address}");
                out.tell_worker(&reg.worker, WorkerMessage::RegisterWorkerFailed { message });
            }
            Err(InsertError::DuplicateId) => {
                let message = "Duplicate worker ID".to_string();
                out.tell_worker(&reg.worker, WorkerMessage::RegisterWorkerFailed { message });
            }
        }
        out
    }

    /// `Heartbeat`: a live (or not yet recovered) worker is seen; a dead one is told to
    /// register again.
    pub(super) fn heartbeat(
        &mut self,
        id: &WorkerId,
        worker: &EndpointRef<WorkerProtocol>,
    ) -> Effects {
        let mut out = Effects::none();
        if let Some(info) = self.workers.live_mut(id) {
            info.heartbeat(Instant::now());
        } else if self.workers.get(id).is_some() {
            rpc_env::limited_log!(
                log::Level::Warn,
                "Got heartbeat from unregistered worker {id}. Asking it to re-register."
            );
            let master_url = self.url.clone();
            out.tell_worker(worker, WorkerMessage::ReconnectWorker { master_url });
        } else {
            rpc_env::limited_log!(log::Level::Warn,
                "Got heartbeat from unregistered worker {id}. This worker was never registered, so ignoring the heartbeat."
            );
        }
        out
    }

    /// `WorkerLatestState`: kill what a worker runs that the master does not know of
    /// (SPARK-13604), such as executors of applications removed while it was away.
    pub(super) fn worker_latest_state(
        &self,
        id: &WorkerId,
        executors: Vec<ExecutorDescription>,
        driver_ids: Vec<DriverId>,
    ) -> Effects {
        let mut out = Effects::none();
        let Some(worker) = self.workers.alive(id) else {
            rpc_env::limited_log!(log::Level::Warn, "Worker state from unknown worker: {id}");
            return out;
        };
        for exec in executors {
            let key = ExecutorKey {
                app: exec.app_id,
                exec_id: exec.exec_id,
            };
            if !worker.has_executor(&key) {
                let kill = WorkerMessage::KillExecutor {
                    master_url: self.url.clone(),
                    app_id: key.app,
                    exec_id: key.exec_id,
                };
                out.tell_worker(worker.endpoint(), kill);
            }
        }
        for driver_id in driver_ids {
            if !worker.has_driver(&driver_id) {
                out.tell_worker(worker.endpoint(), WorkerMessage::KillDriver { driver_id });
            }
        }
        out
    }

    /// `CheckForWorkerTimeout`: remove live workers silent for longer than the timeout,
    /// and forget dead ones silent for `(ember.dead.worker.persistence + 1)` timeouts.
    /// UNKNOWN workers are left to recovery, which has its own timeout.
    pub(super) fn time_out_dead_workers(&mut self, now: Instant) -> Effects {
        let timeout = self.settings.worker_timeout;
        let cull_after =
            timeout.saturating_mul(self.settings.dead_worker_persistence.saturating_add(1));
        let silent: Vec<(WorkerId, WorkerStatus, bool)> = self
            .workers
            .iter()
            .filter_map(|w| {
                let silence = now.saturating_duration_since(w.last_heartbeat());
                (silence > timeout).then(|| (w.id().clone(), w.status(), silence > cull_after))
            })
            .collect();
        let mut out = Effects::none();
        let mut removed = false;
        for (id, status, cull) in silent {
            if status == WorkerStatus::Alive {
                log::warn!(
                    "Removing {id} because we got no heartbeat in {} ms",
                    timeout.as_millis()
                );
                let message = format!("Not receiving heartbeat for {} seconds", timeout.as_secs());
                out.append(self.remove_worker(&id, &message));
                removed = true;
            } else if status == WorkerStatus::Dead && cull {
                self.workers.cull(&id);
            }
        }
        if removed {
            out.append(self.schedule());
        }
        out
    }

    /// A connection closed: the worker or application at that address is gone.
    pub(super) fn disconnected(&mut self, address: &RpcAddress) -> Effects {
        let worker = self.workers.live_at(address).map(|w| w.id().clone());
        let app = self.apps.at(address).cloned();
        if worker.is_none() && app.is_none() {
            log::debug!("{address} disconnected");
            return Effects::none();
        }
        log::info!("{address} got disassociated, removing it.");
        let mut out = Effects::none();
        if let Some(id) = worker {
            out.append(self.remove_worker(&id, &format!("{address} got disassociated")));
        }
        if let Some(id) = app {
            out.append(self.remove_application(&id, AppStatus::Finished));
        }
        out.append(self.maybe_complete_recovery());
        out.append(self.schedule());
        out
    }

    /// Spark's `removeWorker` without its `schedule()`: the worker is DEAD; its executors
    /// are reported LOST to their applications (with the worker's host, so drivers drop
    /// its shuffle outputs), its drivers relaunched if supervised or ended in ERROR, and
    /// every application is told the worker is gone.
    pub(super) fn remove_worker(&mut self, id: &WorkerId, message: &str) -> Effects {
        let mut out = Effects::none();
        let Some(lost) = self.workers.mark_dead(id) else {
            return out;
        };
        log::info!("Removing worker {id} on {}", lost.host);
        self.unpersist(&worker_key(id));
        for key in lost.executors {
            let Some(app) = self.apps.get_mut(&key.app) else {
                continue;
            };
            if app.remove_executor(key.exec_id).is_some() {
                log::info!("Telling app of lost executor: {}", key.exec_id);
                let update = AppClientMessage::ExecutorUpdated {
                    id: key.exec_id,
                    state: ExecutorState::Lost,
                    message: Some(format!("worker lost: {message}")),
                    exit_status: None,
                    worker_host: Some(lost.host.clone()),
                };
                out.tell_app(app.driver(), update);
            }
        }
        for driver_id in lost.drivers {
            let supervised = self
                .drivers
                .get(&driver_id)
                .is_some_and(|d| d.description().supervise);
            if supervised {
                log::info!("Re-launching {driver_id}");
                self.relaunch_driver(&driver_id);
            } else {
                log::info!("Not re-launching {driver_id} because it was not supervised");
                self.remove_driver(&driver_id, DriverState::Error, None);
            }
        }
        log::info!("Telling app of lost worker: {id}");
        for app in self.apps.in_order() {
            let removed = AppClientMessage::WorkerRemoved {
                id: id.clone(),
                host: lost.host.clone(),
                message: message.to_string(),
            };
            out.tell_app(app.driver(), removed);
        }
        out
    }
}
