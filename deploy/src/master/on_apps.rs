//! The master's application handlers: registration, executor state changes and the
//! retry budget, launching executors, and removing applications.

use std::time::SystemTime;

use rpc_env::{EndpointRef, RpcAddress};

use crate::ids::AppId;
use crate::messages::{
    AppClientMessage, AppClientProtocol, ApplicationDescription, ExecutorState, WorkerMessage,
};

use super::apps::{AppInfo, AppStatus};
use super::effects::Effects;
use super::endpoint::Master;
use super::placement::ExecutorLaunch;
use super::stored::app_key;
use super::workers::ExecutorKey;

impl Master {
    /// `RegisterApplication` while leading (ALIVE or RECOVERING). The application is
    /// stored before it is told it is registered.
    ///
    /// A driver runs one application: a second registration from the same driver address
    /// (a retry whose answer crossed ours) is answered with the id already given, where
    /// Spark would answer with a fresh id it never registers.
    pub(super) fn register_application(
        &mut self,
        description: ApplicationDescription,
        driver: EndpointRef<AppClientProtocol>,
        sender: Option<&RpcAddress>,
    ) -> Effects {
        log::info!("Registering app {}", description.name);
        let mut out = Effects::none();
        // The sender, which rpc-env ties to the connection: the application's later
        // messages are accepted only from there (`senders.rs`).
        let Some(address) = sender.or(driver.rpc_address()).cloned() else {
            log::warn!(
                "Cannot register app {}: its driver has no address",
                description.name
            );
            return out;
        };
        let master = self.me.clone();
        if let Some(existing) = self.apps.at(&address) {
            log::info!("Attempted to re-register application at same address: {address}");
            let app_id = existing.clone();
            out.tell_app(
                &driver,
                AppClientMessage::RegisteredApplication { app_id, master },
            );
            return out;
        }
        let now = SystemTime::now();
        let id = self.ids.next_app_id(now);
        let name = description.name.clone();
        let default_cores = self.settings.default_cores;
        let app = AppInfo::new(
            id.clone(),
            description,
            driver.clone(),
            address,
            default_cores,
        );
        if let Err(existing) = self.apps.insert(app) {
            log::warn!("Could not register app {name} as {id}: {existing} is registered");
            return out;
        }
        log::info!("Registered app {name} with ID {id}");
        self.persist_app(&id);
        out.tell_app(
            &driver,
            AppClientMessage::RegisteredApplication { app_id: id, master },
        );
        out.append(self.schedule());
        out
    }

    /// `UnregisterApplication`: the application is done.
    pub(super) fn unregister_application(&mut self, id: &AppId) -> Effects {
        let mut out = Effects::none();
        if self.apps.get(id).is_some() {
            log::info!("Received unregister request from application {id}");
            out.append(self.remove_application(id, AppStatus::Finished));
            out.append(self.schedule());
        } else {
            // Any peer can send these: a few lines, not one per message.
            rpc_env::limited_log!(
                log::Level::Info,
                "Ignoring an unregister request from unknown application {id}"
            );
        }
        out
    }

    /// `RequestKillApplication`: remove it as KILLED; the answer is false if it is not
    /// active.
    pub(super) fn kill_application(&mut self, id: &AppId) -> (bool, Effects) {
        if self.apps.get(id).is_none() {
            rpc_env::limited_log!(log::Level::Warn, "Asked to kill unknown application {id}");
            return (false, Effects::none());
        }
        log::info!("Asked to kill application {id}");
        let mut out = self.remove_application(id, AppStatus::Killed);
        out.append(self.schedule());
        (true, out)
    }

    /// `KillExecutors` from an application's driver (Spark's `handleKillExecutors`): each
    /// executor it names is dropped from the application and its worker and killed there;
    /// its cores go back to scheduling, so a replacement may start. Nothing happens if the
    /// application is unknown.
    pub(super) fn kill_executors(&mut self, app_id: &AppId, exec_ids: &[u32]) -> Effects {
        let mut out = Effects::none();
        let Some(app) = self.apps.get_mut(app_id) else {
            rpc_env::limited_log!(
                log::Level::Warn,
                "Asked to kill executors of unknown application {app_id}"
            );
            return out;
        };
        log::info!("Application {app_id} asks to kill executors {exec_ids:?}");
        for &exec_id in exec_ids {
            let Some(exec) = app.kill_executor(exec_id) else {
                rpc_env::limited_log!(
                    log::Level::Warn,
                    "Asked to kill unknown executor {app_id}/{exec_id}"
                );
                continue;
            };
            let key = ExecutorKey {
                app: app_id.clone(),
                exec_id,
            };
            if let Some(worker) = self.workers.alive_mut(&exec.worker) {
                worker.remove_executor(&key);
                let kill = WorkerMessage::KillExecutor {
                    master_url: self.url.clone(),
                    app_id: app_id.clone(),
                    exec_id,
                };
                out.tell_worker(worker.endpoint(), kill);
            }
        }
        out.append(self.schedule());
        out
    }

    /// `ExecutorRegistered`: the executor runs Ember's executor; the application's retry
    /// count starts again.
    pub(super) fn executor_registered(&mut self, app_id: &AppId, exec_id: u32) -> Effects {
        let known = self.apps.get_mut(app_id).is_some_and(|app| {
            let known = app.mark_registered(exec_id);
            if known {
                app.reset_retry_count();
            }
            known
        });
        if !known {
            log::debug!("Registration of unknown executor {app_id}/{exec_id}; ignored");
        }
        Effects::none()
    }

    /// `ExecutorStateChanged`: record it, tell the application's driver, and when the
    /// executor is gone free its cores and apply the retry budget
    /// (`ember.deploy.maxExecutorRetries`): that many failures in a row, with no executor
    /// RUNNING, remove the application as FAILED. An executor that registered with its
    /// driver (`ExecutorRegistered`) resets the count, and its exit with status 0 does not
    /// count (as in Spark). One that ends before it ever registered counts whatever its
    /// status: a program that exits 0 without running Ember's executor (a test binary
    /// without `executor_entry!`) would otherwise be relaunched for ever, which Spark does.
    pub(super) fn executor_state_changed(
        &mut self,
        app_id: &AppId,
        exec_id: u32,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) -> Effects {
        let mut out = Effects::none();
        let old = self
            .apps
            .get(app_id)
            .and_then(|a| a.executor(exec_id))
            .map(|e| e.state);
        let (Some(old), Some(app)) = (old, self.apps.get_mut(app_id)) else {
            // The last words of an executor the master itself had killed, because its
            // application ended (every normal end) or asked for the kill: its end, or a
            // state it reached before the kill arrived (RUNNING). Expected.
            let expected = self.apps.is_completed(app_id)
                || self
                    .apps
                    .get_mut(app_id)
                    .is_some_and(|a| a.take_killed(exec_id, state.is_finished()));
            if expected {
                log::debug!(
                    "Executor {app_id}/{exec_id} reported {state:?} after it was removed; \
                     nothing to do"
                );
            } else {
                rpc_env::limited_log!(
                    log::Level::Warn,
                    "Got status update for unknown executor {app_id}/{exec_id}"
                );
            }
            return out;
        };
        if state == ExecutorState::Running && old != ExecutorState::Launching {
            // Spark asserts here; a repeated RUNNING (a worker retrying its ask) is harmless.
            rpc_env::limited_log!(log::Level::Warn, "Executor {app_id}/{exec_id} state transfer from {old:?} to RUNNING is illegal; ignored");
            return out;
        }
        app.set_executor_state(exec_id, state);
        let update = AppClientMessage::ExecutorUpdated {
            id: exec_id,
            state,
            message,
            exit_status,
            worker_host: None,
        };
        out.tell_app(app.driver(), update);
        if state.is_finished() {
            log::info!("Removing executor {app_id}/{exec_id} because it is {state:?}");
            let mut registered = false;
            if let Some(exec) = app.remove_executor(exec_id) {
                registered = exec.registered;
                let key = ExecutorKey {
                    app: app_id.clone(),
                    exec_id,
                };
                if let Some(worker) = self.workers.alive_mut(&exec.worker) {
                    worker.remove_executor(&key);
                }
            }
            if exit_status != Some(0) || !registered {
                let failures = app.increment_retry_count();
                let out_of_retries = self
                    .settings
                    .max_executor_retries
                    .is_some_and(|max| failures >= max);
                if out_of_retries && !app.has_running_executor() {
                    log::error!(
                        "Application {} with ID {app_id} failed {failures} times; removing it",
                        app.description().name
                    );
                    // A clean exit before registering is a program that is not an executor.
                    let why = (!registered && exit_status == Some(0)).then(|| {
                        format!(
                            "{failures} executors in a row exited (status 0) before \
                             registering with the driver"
                        )
                    });
                    out.append(self.remove_application_because(app_id, AppStatus::Failed, why));
                }
            }
        }
        out.append(self.schedule());
        out
    }

    /// Launches one executor of a plan: account it to its application and worker, then
    /// `LaunchExecutor` to the worker and `ExecutorAdded` to the application's driver.
    pub(super) fn launch_executor(&mut self, launch: ExecutorLaunch) -> Effects {
        let mut out = Effects::none();
        let (Some(app), Some(worker)) = (
            self.apps.get_mut(&launch.app),
            self.workers.alive_mut(&launch.worker),
        ) else {
            return out;
        };
        let exec_id = app.add_executor(launch.worker.clone(), launch.cores, launch.memory_mib);
        let key = ExecutorKey {
            app: launch.app.clone(),
            exec_id,
        };
        worker.add_executor(key, launch.cores, launch.memory_mib);
        log::info!(
            "Launching executor {}/{exec_id} on worker {}",
            launch.app,
            launch.worker
        );
        let start = WorkerMessage::LaunchExecutor {
            master_url: self.url.clone(),
            app_id: launch.app.clone(),
            exec_id,
            description: app.description().clone(),
            cores: launch.cores,
            memory_mib: launch.memory_mib,
        };
        out.tell_worker(worker.endpoint(), start);
        let added = AppClientMessage::ExecutorAdded {
            id: exec_id,
            worker_id: launch.worker,
            host_port: worker.host_port(),
            cores: launch.cores,
            memory_mib: launch.memory_mib,
        };
        out.tell_app(app.driver(), added);
        out
    }

    /// Spark's `removeApplication` without its `schedule()`: kill its executors, tell its
    /// driver unless it finished by itself, and tell every worker (dead ones too, in case
    /// they come back) that it finished so they can clean its directories.
    pub(super) fn remove_application(&mut self, id: &AppId, status: AppStatus) -> Effects {
        self.remove_application_because(id, status, None)
    }

    /// [`remove_application`](Self::remove_application), telling the driver `why` after
    /// the state (`FAILED: why`).
    pub(super) fn remove_application_because(
        &mut self,
        id: &AppId,
        status: AppStatus,
        why: Option<String>,
    ) -> Effects {
        let mut out = Effects::none();
        let Some(removed) = self.apps.remove(id, status) else {
            return out;
        };
        log::info!("Removing app {id}");
        self.unpersist(&app_key(id));
        for (exec_id, exec) in removed.executors {
            let key = ExecutorKey {
                app: removed.id.clone(),
                exec_id,
            };
            if let Some(worker) = self.workers.alive_mut(&exec.worker) {
                worker.remove_executor(&key);
                let kill = WorkerMessage::KillExecutor {
                    master_url: self.url.clone(),
                    app_id: removed.id.clone(),
                    exec_id,
                };
                out.tell_worker(worker.endpoint(), kill);
            }
        }
        if status != AppStatus::Finished {
            let message = match why {
                Some(why) => format!("{}: {why}", status.as_str()),
                None => status.as_str().to_string(),
            };
            out.tell_app(
                &removed.driver,
                AppClientMessage::ApplicationRemoved { message },
            );
        }
        for worker in self.workers.iter() {
            let app_id = removed.id.clone();
            out.tell_worker(
                worker.endpoint(),
                WorkerMessage::ApplicationFinished { app_id },
            );
        }
        out
    }
}
