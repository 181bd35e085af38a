//! The worker's handlers for executors, drivers and cleanup: launch, kill, state changes.

use std::sync::Arc;

use crate::messages::{
    ApplicationDescription, DriverDescription, DriverState, ExecutorDescription, ExecutorState,
    MasterMessage, WorkerControl,
};
use crate::ui::view::AppLabel;
use crate::{AppId, DriverId};

use super::cleanup::clean_in_background;
use super::driver_runner::{DriverRunner, DriverSpec, FIRST_BACKOFF};
use super::executor_runner::{ExecutorRunner, ExecutorSpec, Fetch, Started};
use super::{trim_oldest, Ctx, FinishedDriver, FinishedExecutor, Report, RunningExecutor, Worker};

impl Worker {
    /// `LaunchExecutor`: start the process now (it takes milliseconds) and report RUNNING,
    /// or FAILED if it cannot start. Ignored unless it comes from the active master.
    // One parameter per field of the message, as every handler here takes them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch_executor(
        &mut self,
        ctx: &Ctx<'_>,
        master_url: &str,
        app_id: AppId,
        exec_id: u32,
        description: ApplicationDescription,
        cores: u32,
        memory_mib: u32,
    ) {
        if self.active_master_url().as_deref() != Some(master_url) {
            log::warn!("Invalid Master ({master_url}) attempted to launch executor.");
            return;
        }
        let key = (app_id.clone(), exec_id);
        if self.executors.contains_key(&key) {
            log::warn!("Executor {app_id}/{exec_id} is already running; ignoring its launch");
            return;
        }
        log::info!(
            "Asked to launch executor {app_id}/{exec_id} for {}",
            description.name
        );
        let app = app_label(&description);
        let spec = ExecutorSpec {
            app_id: app_id.clone(),
            exec_id,
            command: description.command,
            cores,
            memory_mib,
            host: self.who.address.host().to_string(),
            worker_url: ctx.self_ref().address().to_string(),
            work_dir: self.who.work_dir.clone(),
            kill_grace: self.settings.executor_kill_grace,
            launcher: self.who.launcher.clone(),
            security_env: self.who.security_env.clone(),
            fetch: description.program_digest.map(|digest| Fetch {
                digest,
                cache: Arc::clone(&self.programs),
                env: ctx.env().clone(),
            }),
        };
        // The runner's thread reports the end through this endpoint, like any message.
        let me = ctx.control_ref();
        let reported_app = app_id.clone();
        let report = move |u: super::executor_runner::StateUpdate| {
            let _ = me.send(WorkerControl::ExecutorStateChanged {
                app_id: reported_app.clone(),
                exec_id,
                state: u.state,
                message: u.message,
                exit_status: u.exit_status,
            });
        };
        match ExecutorRunner::start(spec, report) {
            Ok((runner, started)) => {
                let state = ExecutorState::Launching;
                self.executors
                    .insert(key, RunningExecutor { runner, state, app });
                // Else its thread reports RUNNING once the program is fetched and started.
                if started == Started::Now {
                    self.executor_state_changed(
                        app_id,
                        exec_id,
                        ExecutorState::Running,
                        None,
                        None,
                    );
                }
            }
            Err(message) => {
                log::error!("{message}");
                self.finished_executors.push_back(FinishedExecutor {
                    description: ExecutorDescription {
                        app_id: app_id.clone(),
                        exec_id,
                        cores,
                        memory_mib,
                        state: ExecutorState::Failed,
                    },
                    app,
                });
                trim_oldest(
                    &mut self.finished_executors,
                    self.settings.retained_executors,
                );
                self.report_to_master(app_id, exec_id, ExecutorState::Failed, Some(message), None);
            }
        }
    }

    /// `KillExecutor`: kill it (SIGTERM, then SIGKILL after the grace); its runner then
    /// reports KILLED.
    pub(super) fn kill_executor(&mut self, master_url: &str, app_id: AppId, exec_id: u32) {
        let full_id = format!("{app_id}/{exec_id}");
        if self.active_master_url().as_deref() != Some(master_url) {
            log::warn!("Invalid Master ({master_url}) attempted to kill executor {full_id}");
            return;
        }
        match self.executors.get(&(app_id, exec_id)) {
            Some(e) => {
                log::info!("Asked to kill executor {full_id}");
                e.runner.kill();
            }
            None => log::info!("Asked to kill unknown executor {full_id}"),
        }
    }

    /// `ExecutorStateChanged` from a runner (or from the launch itself): tell the master,
    /// and when the executor is gone free what it held.
    pub(super) fn executor_state_changed(
        &mut self,
        app_id: AppId,
        exec_id: u32,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        let key = (app_id.clone(), exec_id);
        if state.is_finished() {
            match self.executors.remove(&key) {
                Some(e) => {
                    log::info!(
                        "Executor {app_id}/{exec_id} finished with state {state:?}{}{}",
                        message
                            .as_deref()
                            .map(|m| format!(" message {m}"))
                            .unwrap_or_default(),
                        exit_status
                            .map(|c| format!(" exitStatus {c}"))
                            .unwrap_or_default()
                    );
                    self.finished_executors.push_back(FinishedExecutor {
                        description: e.runner.description(state),
                        app: e.app,
                    });
                    trim_oldest(
                        &mut self.finished_executors,
                        self.settings.retained_executors,
                    );
                }
                None => {
                    log::info!("Unknown Executor {app_id}/{exec_id} finished with state {state:?}")
                }
            }
            self.maybe_cleanup_application(&app_id);
        } else if let Some(e) = self.executors.get_mut(&key) {
            e.state = state;
        }
        self.report_to_master(app_id, exec_id, state, message, exit_status);
    }

    fn report_to_master(
        &self,
        app_id: AppId,
        exec_id: u32,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        match (&self.sync, &self.master) {
            (Some(sync), Some(master)) => sync.report(Report {
                master: master.clone(),
                app_id,
                exec_id,
                state,
                message,
                exit_status,
            }),
            _ => log::warn!(
                "Dropping the state {state:?} of executor {app_id}/{exec_id} because the \
                 connection to master has not yet been established"
            ),
        }
    }

    /// `LaunchDriver`: start its supervise loop.
    pub(super) fn launch_driver(
        &mut self,
        ctx: &Ctx<'_>,
        driver_id: DriverId,
        description: DriverDescription,
    ) {
        log::info!("Asked to launch driver {driver_id}");
        if self.drivers.contains_key(&driver_id) {
            log::warn!("Driver {driver_id} is already running; ignoring its launch");
            return;
        }
        let fetch = description.program_digest.clone().map(|digest| Fetch {
            digest,
            cache: Arc::clone(&self.programs),
            env: ctx.env().clone(),
        });
        let spec = DriverSpec {
            driver_id: driver_id.clone(),
            description,
            host: self.who.address.host().to_string(),
            worker_url: ctx.self_ref().address().to_string(),
            work_dir: self.who.work_dir.clone(),
            kill_grace: self.settings.driver_kill_grace,
            first_backoff: FIRST_BACKOFF,
            launcher: self.who.launcher.clone(),
            security_env: self.who.security_env.clone(),
            fetch,
        };
        let me = ctx.control_ref();
        let reported_id = driver_id.clone();
        let report = move |state, exception| {
            let _ = me.send(WorkerControl::DriverStateChanged {
                driver_id: reported_id,
                state,
                exception,
            });
        };
        match DriverRunner::start(spec, report) {
            Ok(runner) => {
                self.drivers.insert(driver_id, runner);
            }
            Err(reason) => {
                log::error!("{reason}");
                self.send_to_master(MasterMessage::DriverStateChanged {
                    driver_id,
                    state: DriverState::Error,
                    exception: Some(reason),
                });
            }
        }
    }

    /// `KillDriver`.
    pub(super) fn kill_driver(&mut self, driver_id: &DriverId) {
        log::info!("Asked to kill driver {driver_id}");
        match self.drivers.get(driver_id) {
            Some(runner) => runner.kill(),
            None => log::error!("Asked to kill unknown driver {driver_id}"),
        }
    }

    /// `DriverStateChanged` from a runner: tell the master, free what it held.
    pub(super) fn driver_state_changed(
        &mut self,
        driver_id: DriverId,
        state: DriverState,
        exception: Option<String>,
    ) {
        match state {
            DriverState::Error => log::warn!(
                "Driver {driver_id} failed with unrecoverable exception: {}",
                exception.as_deref().unwrap_or("")
            ),
            DriverState::Failed => log::warn!("Driver {driver_id} exited with failure"),
            DriverState::Finished => log::info!("Driver {driver_id} exited successfully"),
            DriverState::Killed => log::info!("Driver {driver_id} was killed by user"),
            other => log::info!("Driver {driver_id} changed state to {other:?}"),
        }
        self.send_to_master(MasterMessage::DriverStateChanged {
            driver_id: driver_id.clone(),
            state,
            exception,
        });
        if !state.is_finished() {
            return;
        }
        if let Some(runner) = self.drivers.remove(&driver_id) {
            self.finished_drivers.push_back(FinishedDriver {
                id: driver_id,
                state,
                cores: runner.cores(),
                memory_mib: runner.memory_mib(),
                program: runner.program().to_string(),
            });
            trim_oldest(&mut self.finished_drivers, self.settings.retained_drivers);
        }
    }

    /// `ApplicationFinished`: remember it until its last executor here is gone.
    pub(super) fn application_finished(&mut self, app_id: AppId) {
        self.finished_apps.insert(app_id.clone());
        self.maybe_cleanup_application(&app_id);
    }

    /// Forgets a finished application once none of its executors runs here. Ember keeps no
    /// per-application local dirs outside `work/<app>`, whose logs stay for the periodic
    /// cleanup (as in Spark), so there is nothing else to delete.
    fn maybe_cleanup_application(&mut self, app_id: &AppId) {
        let running = self.executors.keys().any(|(a, _)| a == app_id);
        if !running && self.finished_apps.remove(app_id) {
            log::info!("Application {app_id} finished; its work dir stays until cleanup");
        }
    }

    /// `WorkDirCleanup` (timer): delete old directories of finished apps and drivers.
    pub(super) fn work_dir_cleanup(&mut self) {
        let Some(cleanup) = self.settings.cleanup else {
            return;
        };
        let in_use = self
            .executors
            .keys()
            .map(|(app, _)| app.0.clone())
            .chain(self.drivers.keys().map(|d| d.0.clone()))
            .collect();
        clean_in_background(
            self.who.work_dir.clone(),
            in_use,
            cleanup.app_data_ttl,
            std::sync::Arc::clone(&self.cleanup_running),
        );
    }
}

/// What the status UI shows of an executor's application: its name, user, sizes and
/// command line, redacted.
fn app_label(description: &ApplicationDescription) -> AppLabel {
    let command = &description.command;
    AppLabel {
        name: description.name.clone(),
        user: description.user.clone(),
        max_cores: description.max_cores,
        memory_per_executor_mib: description.memory_per_executor_mib,
        command: crate::ui::redacted_command_line(&command.program, &command.args, &command.env),
    }
}
