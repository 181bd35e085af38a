//! The master's leadership and recovery (Spark's `electedLeader`, `beginRecovery`,
//! `completeRecovery` and the failover handlers), and its persist points' helpers.
//!
//! A master that wins the election reads what its predecessor stored. Nothing → ALIVE.
//! Otherwise it re-registers every stored application and worker as UNKNOWN, tells each
//! `MasterChanged`, and waits (RECOVERING) until each has answered or
//! `ember.deploy.recoveryTimeout` has passed; then it drops the silent ones, settles the
//! drivers no worker claimed, and goes ALIVE.

use std::collections::BTreeSet;
use std::time::Instant;

use rpc_env::Ticker;
use rpc_env::{Decode, RpcEnv};

use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{
    AppClientMessage, AppClientProtocol, DriverState, ExecutorDescription, MasterControl,
    WorkerMessage, WorkerProtocol,
};

use super::apps::{AppInfo, AppStatus, ExecutorInfo};
use super::drivers::DriverInfo;
use super::effects::{Effect, Effects};
use super::endpoint::Master;
use super::phase::Phase;
use super::stored::{
    app_key, decode_record, driver_key, encode_record, worker_key, StoredApp, StoredDriver,
    StoredWorker, APP_PREFIX, DRIVER_PREFIX, WORKER_PREFIX,
};
use super::workers::{ExecutorKey, NewWorker, WorkerStatus};

/// What a newly elected master found in storage.
struct Stored {
    apps: Vec<StoredApp>,
    drivers: Vec<StoredDriver>,
    workers: Vec<StoredWorker>,
}

impl Master {
    /// Polls the leader election while standing by, and takes the lead on winning it
    /// (whether this master leads is then `self.phase.leads()`).
    pub(super) fn check_leadership(&mut self, env: &RpcEnv) -> Effects {
        if self.phase.leads() {
            return Effects::none();
        }
        match self.election.try_acquire() {
            Ok(true) => self.elected(env),
            Ok(false) => Effects::none(),
            Err(e) => {
                log::warn!("Leader election failed: {e}; standing by");
                Effects::none()
            }
        }
    }

    /// Spark's `ElectedLeader`: ALIVE when nothing is stored, else begin recovery.
    fn elected(&mut self, env: &RpcEnv) -> Effects {
        let stored = Stored {
            apps: self.read_stored(APP_PREFIX, |a: &StoredApp| app_key(&a.id)),
            drivers: self.read_stored(DRIVER_PREFIX, |d: &StoredDriver| driver_key(&d.id)),
            workers: self.read_stored(WORKER_PREFIX, |w: &StoredWorker| worker_key(&w.id)),
        };
        if stored.apps.is_empty() && stored.drivers.is_empty() && stored.workers.is_empty() {
            self.phase = Phase::Alive;
            self.accept_uploads();
            log::info!("I have been elected leader! New state: ALIVE");
            return self.schedule();
        }
        log::info!("I have been elected leader! New state: RECOVERING");
        self.begin_recovery(env, stored)
    }

    /// The records under `prefix` that decode and match their key; the others are logged
    /// and skipped, so one damaged record costs only itself.
    fn read_stored<T: Decode>(&self, prefix: &str, key_of: impl Fn(&T) -> String) -> Vec<T> {
        let mut records = Vec::new();
        for (key, bytes) in self.persistence.read(prefix) {
            match decode_record::<T>(&bytes) {
                Ok(record) if key_of(&record) == key => records.push(record),
                // `{key:?}`, and never the record's own id: both are bytes someone may have
                // planted (a name of up to 255 bytes, an id of up to a record's 1 MiB), and a
                // log line must stay one short line.
                Ok(_) => log::warn!("Skipping stored {key:?}: it holds another key's record"),
                Err(why) => log::warn!("Skipping stored {key:?}: {why}"),
            }
        }
        records
    }

    /// Spark's `beginRecovery`: re-register what was stored, each application and worker
    /// UNKNOWN and told `MasterChanged`, then wait for their answers.
    fn begin_recovery(&mut self, env: &RpcEnv, stored: Stored) -> Effects {
        let now = Instant::now();
        let mut out = Effects::none();
        let mut unknown_apps = BTreeSet::new();
        for app in stored.apps {
            self.ids.observe_app(&app.id);
            let Some(address) = app.driver.address() else {
                // A client-mode driver can be answered only on the connection it opened,
                // which died with the old master: it cannot be told where we are.
                log::warn!("Cannot recover app {}: its driver has no address", app.id);
                self.unpersist(&app_key(&app.id));
                continue;
            };
            let driver = env.endpoint_ref_at::<AppClientProtocol>(address, app.driver.name());
            let info = AppInfo::new(
                app.id.clone(),
                app.description,
                driver.clone(),
                app.address,
                self.settings.default_cores,
            )
            .recovered(app.submitted_ms, app.next_executor_id);
            if let Err(other) = self.apps.insert(info) {
                log::warn!(
                    "Cannot recover app {}: {other} has its driver's address",
                    app.id
                );
                continue;
            }
            log::info!("Trying to recover app: {}", app.id);
            out.tell_app(&driver, self.app_master_changed());
            unknown_apps.insert(app.id);
        }
        for driver in stored.drivers {
            // Queued, worker unknown: a worker's answer places it, else completion does.
            self.ids.observe_driver(&driver.id);
            self.pin_program(&driver.description);
            let info = DriverInfo::new(driver.id, driver.description);
            self.drivers.insert(info.submitted_at(driver.submitted_ms));
        }
        let mut unknown_workers = BTreeSet::new();
        for w in stored.workers {
            let Some(address) = w.endpoint.address() else {
                log::warn!("Cannot recover worker {}: it has no address", w.id);
                self.unpersist(&worker_key(&w.id));
                continue;
            };
            let endpoint = env.endpoint_ref_at::<WorkerProtocol>(address, w.endpoint.name());
            let new = NewWorker {
                id: w.id.clone(),
                host: w.host,
                port: w.port,
                address: w.address,
                endpoint: endpoint.clone(),
                cores: w.cores,
                memory_mib: w.memory_mib,
                web_ui_url: String::new(),
            };
            if let Err(e) = self.workers.insert_unknown(new, now) {
                log::warn!("Cannot recover worker {}: {e:?}", w.id);
                continue;
            }
            log::info!("Trying to recover worker: {}", w.id);
            let changed = WorkerMessage::MasterChanged {
                master: self.me.clone(),
                master_web_ui_url: self.web_ui_url.clone(),
            };
            out.tell_worker(&endpoint, changed);
            unknown_workers.insert(w.id);
        }
        self.phase = Phase::Recovering {
            unknown_workers,
            unknown_apps,
            since: now,
        };
        // With nothing to wait for (only drivers were stored) this completes at once
        // (SPARK-46664); otherwise the timer ends the wait.
        out.append(self.maybe_complete_recovery());
        if matches!(self.phase, Phase::Recovering { .. }) {
            out.push(Effect::ArmRecoveryTimer);
        }
        out
    }

    /// Performs [`Effect::ArmRecoveryTimer`]: one `CompleteRecovery` after
    /// `ember.deploy.recoveryTimeout`.
    pub(super) fn arm_recovery_timer(&mut self) -> std::io::Result<()> {
        let Some(me) = self.control.clone() else {
            return Err(std::io::Error::other("the master endpoint has not started"));
        };
        // One tick, then the ticker's thread ends (the closure answers `false`).
        let started = Ticker::start(
            "master-recovery-timeout",
            self.settings.recovery_timeout,
            move || {
                let _ = me.send(MasterControl::CompleteRecovery);
                false
            },
        );
        self.recovery_timer = Some(started?);
        Ok(())
    }

    fn app_master_changed(&self) -> AppClientMessage {
        AppClientMessage::MasterChanged {
            master: self.me.clone(),
            master_web_ui_url: self.web_ui_url.clone(),
        }
    }

    /// `WorkerSchedulerStateResponse` while RECOVERING: the worker is ALIVE again; its
    /// executors of known applications are re-added with their ids, and its drivers the
    /// master knows are RUNNING on it. What it runs that the master does not know is
    /// killed, as after a registration (SPARK-13604).
    pub(super) fn worker_scheduler_state(
        &mut self,
        id: &WorkerId,
        executors: Vec<ExecutorDescription>,
        driver_ids: Vec<DriverId>,
    ) -> Effects {
        let mut out = Effects::none();
        let Some(endpoint) = self.workers.live(id).map(|w| w.endpoint().clone()) else {
            rpc_env::limited_log!(
                log::Level::Warn,
                "Scheduler state from unknown worker: {id}"
            );
            return out;
        };
        log::info!("Worker has been re-registered: {id}");
        self.workers.mark_known(id, Instant::now());
        if let Phase::Recovering {
            unknown_workers, ..
        } = &mut self.phase
        {
            unknown_workers.remove(id);
        }
        for exec in executors.into_iter().filter(|e| !e.state.is_finished()) {
            let info = ExecutorInfo {
                worker: id.clone(),
                cores: exec.cores,
                memory_mib: exec.memory_mib,
                state: exec.state,
                // It outlived a master change: it runs, whoever its driver is.
                registered: true,
            };
            let key = ExecutorKey {
                app: exec.app_id,
                exec_id: exec.exec_id,
            };
            let added = self
                .apps
                .get_mut(&key.app)
                .map(|app| app.add_recovered_executor(key.exec_id, info));
            match added {
                Some(true) => {
                    if let Some(worker) = self.workers.alive_mut(id) {
                        worker.add_executor(key, exec.cores, exec.memory_mib);
                    }
                }
                Some(false) => log::warn!(
                    "Worker {id} reports executor {}/{}, whose id is taken",
                    key.app,
                    key.exec_id
                ),
                None => {
                    rpc_env::limited_log!(
                        log::Level::Warn,
                        "Killing executor {}/{} of an unknown app",
                        key.app,
                        key.exec_id
                    );
                    let kill = WorkerMessage::KillExecutor {
                        master_url: self.url.clone(),
                        app_id: key.app,
                        exec_id: key.exec_id,
                    };
                    out.tell_worker(&endpoint, kill);
                }
            }
        }
        for driver_id in driver_ids {
            match self
                .drivers
                .get(&driver_id)
                .map(|d| (d.worker().cloned(), d.description()))
            {
                Some((None, description)) => {
                    let (cores, memory) = (description.cores, description.memory_mib);
                    if let Some(worker) = self.workers.alive_mut(id) {
                        worker.add_driver(driver_id.clone(), cores, memory);
                    }
                    self.drivers.launch(&driver_id, id.clone());
                }
                Some((Some(other), _)) => {
                    log::warn!("Worker {id} reports driver {driver_id}, placed on {other}");
                }
                None => {
                    rpc_env::limited_log!(
                        log::Level::Warn,
                        "Killing unknown driver {driver_id} on {id}"
                    );
                    out.tell_worker(&endpoint, WorkerMessage::KillDriver { driver_id });
                }
            }
        }
        out.append(self.maybe_complete_recovery());
        out
    }

    /// `MasterChangeAcknowledged` while RECOVERING: the application follows; WAITING.
    pub(super) fn master_change_acknowledged(&mut self, app_id: &AppId) -> Effects {
        match self.apps.get_mut(app_id) {
            Some(app) => {
                log::info!("Application has been re-registered: {app_id}");
                app.recovery_step(AppStatus::Unknown, AppStatus::Waiting);
            }
            None => rpc_env::limited_log!(
                log::Level::Warn,
                "Master change ack from unknown app: {app_id}"
            ),
        }
        self.maybe_complete_recovery()
    }

    /// Completes recovery once every stored worker has reported what it runs and every
    /// stored application has answered (or was lost, replaced or removed meanwhile).
    ///
    /// A stored worker that registers again while the master recovers is ALIVE at once,
    /// but is still waited for: its executors come with its answer to `MasterChanged`,
    /// and ending recovery before would leave them running unaccounted.
    pub(super) fn maybe_complete_recovery(&mut self) -> Effects {
        let Phase::Recovering {
            unknown_workers,
            unknown_apps,
            ..
        } = &mut self.phase
        else {
            return Effects::none();
        };
        unknown_workers.retain(|id| self.workers.live(id).is_some());
        unknown_apps.retain(|id| {
            self.apps
                .get(id)
                .is_some_and(|a| a.status() == AppStatus::Unknown)
        });
        if unknown_workers.is_empty() && unknown_apps.is_empty() {
            return self.complete_recovery();
        }
        Effects::none()
    }

    /// Spark's `completeRecovery` (also the `CompleteRecovery` timer): drop the workers and
    /// applications that did not answer, make the answering applications RUNNING, relaunch
    /// (supervised) or end in ERROR the drivers no worker claimed, go ALIVE and schedule.
    pub(super) fn complete_recovery(&mut self) -> Effects {
        let mut out = Effects::none();
        if !matches!(self.phase, Phase::Recovering { .. }) {
            log::debug!("Not recovering; nothing to complete");
            return out;
        }
        let Phase::Recovering {
            unknown_workers,
            unknown_apps,
            since,
        } = std::mem::replace(&mut self.phase, Phase::CompletingRecovery)
        else {
            return out;
        };
        out.push(Effect::CancelRecoveryTimer);
        for id in unknown_workers {
            match self.workers.get(&id).map(|w| w.status()) {
                Some(WorkerStatus::Unknown) => {
                    out.append(self.remove_worker(&id, "Not responding for recovery"));
                }
                Some(WorkerStatus::Alive) => log::warn!(
                    "Worker {id} registered again but never reported what it runs; \
                     its executors are not counted"
                ),
                Some(WorkerStatus::Dead) | None => {}
            }
        }
        for id in unknown_apps {
            if self.apps.get(&id).map(|a| a.status()) == Some(AppStatus::Unknown) {
                log::info!("Application {id} did not answer; finishing it");
                out.append(self.remove_application(&id, AppStatus::Finished));
            }
        }
        let apps: Vec<AppId> = self.apps.in_order().map(|a| a.id().clone()).collect();
        for id in apps {
            if let Some(app) = self.apps.get_mut(&id) {
                app.recovery_step(AppStatus::Waiting, AppStatus::Running);
            }
        }
        let unclaimed: Vec<(DriverId, bool)> = self
            .drivers
            .active()
            .filter(|d| d.worker().is_none())
            .map(|d| (d.id().clone(), d.description().supervise))
            .collect();
        for (id, supervised) in unclaimed {
            if supervised {
                log::info!("Re-launching {id}");
                self.relaunch_driver(&id);
            } else {
                log::info!("Not re-launching {id} because it was not supervised");
                self.remove_driver(&id, DriverState::Error, None);
            }
        }
        self.phase = Phase::Alive;
        self.accept_uploads();
        out.append(self.schedule());
        log::info!(
            "Recovery complete in {} ms - resuming operations!",
            since.elapsed().as_millis()
        );
        out
    }

    /// Stores a registered worker (before its registration is acknowledged).
    pub(super) fn persist_worker(&mut self, id: &WorkerId) {
        let Some(w) = self.workers.get(id) else {
            return;
        };
        let record = StoredWorker {
            id: id.clone(),
            host: w.host().to_string(),
            port: w.port(),
            endpoint: w.endpoint().address().clone(),
            address: w.address().clone(),
            cores: w.cores(),
            memory_mib: w.memory_mib(),
        };
        self.persist(&worker_key(id), &encode_record(&record));
    }

    /// Stores a registered application (before its registration is acknowledged).
    pub(super) fn persist_app(&mut self, id: &AppId) {
        let Some(app) = self.apps.get(id) else {
            return;
        };
        let record = StoredApp {
            id: id.clone(),
            description: app.description().clone(),
            driver: app.driver().address().clone(),
            address: app.address().clone(),
            submitted_ms: app.submitted_ms(),
            next_executor_id: app.next_executor_id(),
        };
        self.persist(&app_key(id), &encode_record(&record));
    }

    /// Stores a submitted (or relaunched) driver.
    pub(super) fn persist_driver(&mut self, id: &DriverId) {
        let Some(driver) = self.drivers.get(id) else {
            return;
        };
        let record = StoredDriver {
            id: id.clone(),
            description: driver.description().clone(),
            submitted_ms: driver.submitted_ms(),
        };
        self.persist(&driver_key(id), &encode_record(&record));
    }

    /// A failure to store costs the entity its recovery after a failover, not the
    /// cluster its availability now: it is logged and the master carries on.
    fn persist(&mut self, key: &str, value: &[u8]) {
        if let Err(e) = self.persistence.persist(key, value) {
            log::error!("Could not persist {key}: {e}; it will not survive a master restart");
        }
    }

    /// Forgets a stored entity; a failure leaves a stale record, which a later recovery
    /// tolerates (the entity will not answer), so it is only logged.
    pub(super) fn unpersist(&mut self, key: &str) {
        if let Err(e) = self.persistence.unpersist(key) {
            log::warn!("Could not unpersist {key}: {e}");
        }
    }
}
